/* Shared helpers for every page: the JSON API with its bearer token, bilingual
 * errors, the live feed (Server-Sent Events), labels and time formatting. */
(function () {
  "use strict";

  var body = document.body;
  var HALL = body.dataset.hall;
  var TZ = body.dataset.tz || "Asia/Shanghai";
  var STORE = body.dataset.store || "cc.device";
  var params = new URLSearchParams(location.search);

  // Every event type the engine writes; SSE delivers named events only to listeners by name.
  var EVENT_TYPES = [
    "ticket.issued", "ticket.called", "ticket.recalled", "ticket.started", "ticket.completed",
    "ticket.no_show", "ticket.held", "ticket.resumed", "ticket.transferred", "ticket.requeued",
    "ticket.cancelled", "ticket.abandoned", "ticket.expired", "ticket.offered",
    "ticket.offer_declined", "workstation.signed_in", "workstation.signed_out",
    "workstation.paused", "workstation.resumed",
    "rating.given", "followup.opened", "followup.verified", "followup.closed",
    "case.opened", "case.updated", "appointment.booked", "appointment.cancelled",
    "appointment.checked_in", "appointment.no_show", "appointment.reminder", "booking.suspended",
  ];

  var WS_STATE = {
    offline: ["未登录", "Signed out"], available: ["空闲", "Idle"],
    calling: ["呼叫中", "Calling"], serving: ["正在处理", "Serving"],
    wrap_up: ["整理中", "Wrap-up"], paused: ["暂停", "Paused"],
  };
  var PAUSE = {
    "break": ["休息", "Break"], meeting: ["会议", "Meeting"],
    back_office: ["后台处理", "Back office"], away: ["暂离", "Stepped away"],
    missed_offers: ["未接来电", "Missed calls"],
  };
  var TICKET_STATE = {
    waiting: ["等候中", "Waiting"], called: ["已叫号", "Called"],
    serving: ["正在办理", "Being served"], held: ["挂起", "On hold"],
    done: ["已办结", "Completed"], no_show: ["已过号", "Missed"],
    transferred: ["已转办", "Transferred"], cancelled: ["已取消", "Cancelled"],
    abandoned: ["已放弃", "Abandoned"], expired: ["已失效", "Expired"],
  };
  var CHANNEL = { phone: ["电话", "phone"], callback: ["回拨", "call-back"], hall: ["大厅", "hall"] };

  function esc(value) {
    return String(value == null ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  /** Chinese first, English beneath it (or beside it with cls "row"). */
  function bi(zh, en, cls) {
    return '<span class="bi ' + (cls || "") + '"><span class="zh">' + esc(zh) +
      '</span><span class="en" lang="en">' + esc(en) + "</span></span>";
  }
  function label(table, key) {
    var pair = table[key] || [key, key];
    return bi(pair[0], pair[1]);
  }

  // --- the bearer token -------------------------------------------------------

  function token() {
    var fromUrl = params.get("token");
    if (fromUrl) {
      try { localStorage.setItem(STORE, fromUrl); } catch (e) { /* private mode */ }
      return fromUrl;
    }
    try { return localStorage.getItem(STORE); } catch (e) { return null; }
  }
  function setToken(value) {
    try {
      if (value) localStorage.setItem(STORE, value); else localStorage.removeItem(STORE);
    } catch (e) { /* private mode */ }
  }

  // --- requests and errors ----------------------------------------------------

  function ApiError(status, code, zh, en) {
    this.status = status; this.code = code;
    this.message_zh = zh; this.message_en = en;
    this.message = en;
  }
  ApiError.prototype = Object.create(Error.prototype);

  function request(method, path, data, options) {
    var opts = options || {};
    var headers = { Accept: "application/json" };
    var tok = opts.token === undefined ? token() : opts.token;
    if (tok) headers.Authorization = "Bearer " + tok;
    var init = { method: method, headers: headers, cache: "no-store" };
    if (data !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(data);
    }
    return fetch(path, init).then(function (resp) {
      return resp.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        if (resp.ok) return json;
        var err = (json && json.error) || {};
        throw new ApiError(resp.status, err.code || "http_" + resp.status,
          err.message_zh || "请求失败（" + resp.status + "）",
          err.message_en || "Request failed (" + resp.status + ")");
      });
    }, function () {
      throw new ApiError(0, "network", "网络连接中断，请稍后重试", "The network is unavailable; please try again");
    });
  }

  /** An API error as a bilingual block for inline display (forms on citizen pages). */
  function errorHtml(err) {
    var zh = (err && err.message_zh) || "操作失败", en = (err && (err.message_en || err.message)) || "Something went wrong";
    return '<div class="form-error" role="alert"><strong>' + esc(zh) + '</strong><span lang="en">' + esc(en) + "</span></div>";
  }

  var toastTimer = null;
  function showError(err) {
    var box = document.getElementById("toast");
    if (!box) return;
    var zh = err.message_zh || "操作失败", en = err.message_en || String(err.message || err);
    box.innerHTML = '<strong>' + esc(zh) + '</strong><span lang="en">' + esc(en) + "</span>";
    box.className = "show";
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.className = ""; }, 6000);
  }

  function hideError() {
    var box = document.getElementById("toast");
    if (box) box.className = "";
  }

  // --- the live feed ----------------------------------------------------------

  function setLive(on) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      el.dataset.live = on ? "on" : "off";
    });
  }

  /** Follow the hall's events; EventSource resumes with Last-Event-ID, and if the
   * browser gives up (an HTTP error) a new one starts from the last id seen. */
  function feed(hall, tok, onEvent, options) {
    var opts = options || {};
    var last = null, source = null, timer = null, delay = 1000, stopped = false;
    function handle(msg) {
      if (msg.lastEventId) last = msg.lastEventId;
      var data;
      try { data = JSON.parse(msg.data); } catch (e) { return; }
      onEvent(data);
    }
    function connect() {
      var url = "/api/halls/" + encodeURIComponent(hall) + "/feed?token=" + encodeURIComponent(tok || "");
      if (last) url += "&last_id=" + encodeURIComponent(last);
      source = new EventSource(url);
      source.onopen = function () {
        delay = 1000;
        setLive(true);
        if (opts.onOpen) opts.onOpen();
      };
      EVENT_TYPES.forEach(function (type) { source.addEventListener(type, handle); });
      source.onmessage = handle;
      source.onerror = function () {
        setLive(false);
        if (source.readyState === EventSource.CLOSED && !stopped) {
          source.close();
          timer = setTimeout(connect, delay);
          delay = Math.min(delay * 2, 30000);
        }
      };
    }
    connect();
    return { close: function () { stopped = true; clearTimeout(timer); if (source) source.close(); } };
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  // --- time -------------------------------------------------------------------

  var skew = 0; // server clock minus browser clock, in ms
  function syncClock(serverEpochSeconds) {
    if (serverEpochSeconds) skew = serverEpochSeconds * 1000 - Date.now();
  }
  function now() { return Date.now() + skew; }

  function parts(date, opts) {
    return new Intl.DateTimeFormat("zh-CN", Object.assign({ timeZone: TZ }, opts)).format(date);
  }
  function fmtTime(epochSeconds) {
    if (!epochSeconds) return "—";
    return parts(new Date(epochSeconds * 1000), { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }
  function fmtDateTime(epochSeconds) {
    var d = new Date(epochSeconds * 1000);
    return parts(d, { year: "numeric", month: "2-digit", day: "2-digit" }) + " " +
      parts(d, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  }
  /** The hall's local date as YYYY-MM-DD (epoch seconds; default: now by the server's clock). */
  function isoDay(epochSeconds) {
    var d = new Date(epochSeconds == null ? now() : epochSeconds * 1000);
    return new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit" }).format(d);
  }
  function today() { return isoDay(null); }
  /** A YYYY-MM-DD day as 3月5日 周四 and Thu 5 Mar (noon UTC, so no zone can move it). */
  function fmtDay(iso) {
    var d = new Date(iso + "T12:00:00Z");
    var zh = new Intl.DateTimeFormat("zh-CN", { timeZone: "UTC", month: "long", day: "numeric", weekday: "short" }).format(d);
    var en = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", weekday: "short", day: "numeric", month: "short" }).format(d);
    return [zh, en];
  }
  function fmtMinutes(min) {
    if (min == null) return "—";
    if (min === 0) return "0";
    return min < 1 ? "<1" : String(Math.round(min));
  }
  function fmtDuration(seconds) {
    if (seconds == null || seconds < 0) return "—";
    var s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h ? h + ":" + pad(m) : m) + ":" + pad(s % 60);
  }

  /** Keep every [data-clock] element showing the hall's local date and time. */
  function startClock() {
    var els = document.querySelectorAll("[data-clock]");
    if (!els.length) return;
    var weekdays = ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"];
    var weekdaysEn = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    function tick() {
      var d = new Date(now());
      var wd = weekdaysEn.indexOf(new Intl.DateTimeFormat("en-US", { timeZone: TZ, weekday: "short" }).format(d));
      var time = parts(d, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
      var date = parts(d, { year: "numeric", month: "long", day: "numeric" });
      var dateEn = new Intl.DateTimeFormat("en-GB", { timeZone: TZ, day: "numeric", month: "short", year: "numeric" }).format(d);
      els.forEach(function (el) {
        el.innerHTML = '<span class="clock-time">' + esc(time) + '</span><span class="clock-date">' +
          esc(date) + " " + (weekdays[wd] || "") + '<span lang="en"> · ' + esc((weekdaysEn[wd] || "") + " " + dateEn) + "</span></span>";
      });
    }
    tick();
    setInterval(tick, 1000);
  }

  // --- language ----------------------------------------------------------------
  // Chinese comes first. The English switch swaps the text of every Chinese/English
  // pair (.zh followed by .en), so the layout keeps its sizes and English leads.

  function englishFirst() { return document.documentElement.classList.contains("en-first"); }

  function swapPairs(root) {
    if (root.nodeType !== 1) return;
    var want = englishFirst();
    var found = Array.prototype.slice.call(root.querySelectorAll(".zh"));
    if (root.classList.contains("zh")) found.push(root);
    found.forEach(function (zh) {
      var en = zh.nextElementSibling;
      if (!en || !en.classList.contains("en") || (zh.dataset.swapped === "1") === want) return;
      var html = zh.innerHTML;
      zh.innerHTML = en.innerHTML;
      en.innerHTML = html;
      zh.lang = want ? "en" : "zh-CN";
      en.lang = want ? "zh-CN" : "en";
      zh.dataset.swapped = want ? "1" : "0";
    });
  }

  function applyLang(lang) {
    var en = lang === "en";
    document.documentElement.classList.toggle("en-first", en);
    document.documentElement.lang = en ? "en" : "zh-CN";
    swapPairs(document.body);
    document.querySelectorAll("[data-lang-toggle]").forEach(function (b) {
      b.textContent = en ? "中文" : "English";
      b.setAttribute("aria-pressed", en ? "true" : "false");
    });
  }

  function initLang() {
    var lang = params.get("lang");
    try { lang = lang || localStorage.getItem("cc.lang"); } catch (e) { /* ignore */ }
    applyLang(lang);
    new MutationObserver(function (records) {
      if (!englishFirst()) return;
      records.forEach(function (r) { r.addedNodes.forEach(swapPairs); });
    }).observe(document.body, { childList: true, subtree: true });
    document.querySelectorAll("[data-lang-toggle]").forEach(function (b) {
      b.addEventListener("click", function () {
        var next = englishFirst() ? "zh" : "en";
        try { localStorage.setItem("cc.lang", next); } catch (e) { /* ignore */ }
        applyLang(next);
      });
    });
  }

  /** The hall's services, departments and classes (public), fetched once. */
  var hallInfo = null;
  function hall() {
    if (!hallInfo) {
      hallInfo = request("GET", "/api/halls/" + encodeURIComponent(HALL), undefined, { token: null })
        .then(function (info) {
          info.serviceByCode = {};
          info.services.forEach(function (s) { info.serviceByCode[s.code] = s; });
          return info;
        });
    }
    return hallInfo;
  }

  window.API = {
    hall: HALL, tz: TZ, params: params, token: token, setToken: setToken,
    request: request, get: function (p) { return request("GET", p); },
    post: function (p, d) { return request("POST", p, d === undefined ? {} : d); },
    ApiError: ApiError, showError: showError, hideError: hideError, errorHtml: errorHtml,
    feed: feed, debounce: debounce,
    hallInfo: hall, esc: esc, bi: bi, label: label,
    WS_STATE: WS_STATE, PAUSE: PAUSE, TICKET_STATE: TICKET_STATE, CHANNEL: CHANNEL,
    syncClock: syncClock, now: now, fmtTime: fmtTime, fmtDateTime: fmtDateTime,
    fmtMinutes: fmtMinutes, fmtDuration: fmtDuration, isoDay: isoDay, today: today, fmtDay: fmtDay,
  };

  initLang();
  startClock();
})();
