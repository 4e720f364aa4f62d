/* The ticket kiosk: choose a service, optionally the green channel and an SMS number,
 * then a printable ticket with a QR code to the citizen's status page. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var RETURN_S = 20, IDLE_RESET_S = 60;
  var state = { green: false, phone: "", consent: false, busy: false };
  var info = null, greenClass = null, countdown = null, idleTimer = null, pollTimer = null;

  function findGreenClass(classes) {
    return classes.find(function (c) { return c.code === "green"; }) ||
      classes.find(function (c) { return /绿色/.test(c.name_zh); }) ||
      classes.find(function (c) { return c.code === "priority"; }) || null;
  }

  function serviceButton(q) {
    return '<button type="button" class="service" data-service="' + esc(q.service) + '">' +
      '<span class="prefix" aria-hidden="true">' + esc(q.prefix) + "</span>" +
      bi(q.name_zh, q.name_en, "name") +
      '<span class="wait"><span class="w-count">等候 <b class="num">' + q.waiting + "</b> 人</span><br>" +
      (q.waiting ? '<span class="w-min">约 ' + esc(API.fmtMinutes(q.expected_wait_min)) + " 分钟</span>" +
        '<span class="en" lang="en">' + q.waiting + " waiting · ~" + esc(API.fmtMinutes(q.expected_wait_min)) + " min</span>"
        : '<span class="w-min">无需等候</span><span class="en" lang="en">No wait</span>') + "</span></button>";
  }

  function render(queues) {
    var byDept = {};
    queues.filter(function (q) { return q.channel === "hall"; }).forEach(function (q) {
      (byDept[q.department] = byDept[q.department] || []).push(q);
    });
    var html = info.departments.filter(function (d) { return byDept[d.code]; }).map(function (d) {
      return '<section class="dept"><div class="dept-head"><span class="zh">' + esc(d.name_zh) +
        '</span><span class="en" lang="en">' + esc(d.name_en) + '</span></div><div class="dept-services">' +
        byDept[d.code].map(serviceButton).join("") + "</div></section>";
    }).join("");
    $("services").innerHTML = html || '<p class="empty">今日暂无可取号事项 · No services available today</p>';
  }

  function refresh() {
    return API.get("/api/halls/" + API.hall + "/services").then(render, API.showError);
  }

  function take(service) {
    if (state.busy) return;
    state.busy = true;
    var body = { service: service, priority: state.green && greenClass ? greenClass.code : "normal" };
    if (state.phone && state.consent) { body.phone = state.phone; body.sms_consent = true; }
    API.post("/api/halls/" + API.hall + "/tickets", body)
      .then(showTicket)
      .catch(API.showError)
      .then(function () { state.busy = false; });
  }

  function showTicket(t) {
    var statusUrl = new URL(t.status_url, location.origin).href;
    var sms = t.phone_masked ? "，并将短信通知 " + esc(t.phone_masked) : "";
    var smsEn = t.phone_masked ? " and texted to " + esc(t.phone_masked) : "";
    $("ticket-card").innerHTML =
      '<div class="ticket-top">' + bi(info.name_zh, info.name_en) + "</div>" +
      '<div class="ticket-body">' +
      '<div class="ticket-label">' + bi("您的排队号", "Your number") + "</div>" +
      '<div class="ticket-number" id="ticket-number">' + esc(t.number) + "</div>" +
      '<div class="ticket-service">' + esc(t.service_zh) + '<span class="en" lang="en">' + esc(t.service_en) + "</span></div>" +
      badge(t) +
      '<div class="ticket-facts">' +
      '<div><b class="num" id="ticket-ahead">' + (t.ahead == null ? "—" : t.ahead) + '</b><span>前面等候（人）<span class="en" lang="en">People ahead</span></span></div>' +
      '<div><b class="num">' + esc(API.fmtMinutes(t.expected_wait_min)) + '</b><span>预计等候（分钟）<span class="en" lang="en">Expected wait (min)</span></span></div>' +
      "</div>" +
      '<div class="ticket-qr"><div id="ticket-qr" data-url="' + esc(statusUrl) + '">' + QR.svg(statusUrl, { scale: 4 }) + "</div>" +
      "<p>手机扫码，随时查看排队进度。叫号时请留意大厅屏幕" + sms + "。" +
      '<span class="en" lang="en">Scan to follow your place in the queue. Your call is shown on the hall screens' + smsEn + ".</span></p></div>" +
      '<div class="ticket-warn">过号无效，请重新取号<span class="en" lang="en">A missed number is void: please take a new ticket.</span></div>' +
      '<div class="ticket-time">取号时间 Issued ' + esc(API.fmtDateTime(t.arrived_at)) + "</div>" +
      "</div>";
    $("start").hidden = true;
    $("ticket").hidden = false;
    resetOptions();
    startCountdown();
    refresh();
  }

  /** The ticket's class when it is not the normal one: the green channel, or an appointment (预约). */
  function badge(t) {
    if (t.priority === "normal") return "";
    var c = (info.priority_classes || []).find(function (p) { return p.code === t.priority; });
    var green = greenClass && t.priority === greenClass.code;
    var zh = green ? "绿色通道" : c ? c.name_zh : t.priority, en = green ? "Green channel" : c ? c.name_en : t.priority;
    return '<div class="ticket-badge' + (green ? "" : " appt") + '" id="ticket-badge" data-priority="' + esc(t.priority) + '">' +
      esc(zh) + " · " + esc(en) + "</div>";
  }

  // --- appointment check-in (预约签到) ------------------------------------------------------

  var ci = { mode: "code", draft: "", busy: false };

  function ciValid() {
    return ci.mode === "code" ? /^\d{6}$/.test(ci.draft) : /^\d{17}[\dX]$/.test(ci.draft);
  }

  function ciSync() {
    var d = ci.draft, shown;
    if (ci.mode === "code") shown = d.length > 3 ? d.slice(0, 3) + " " + d.slice(3) : d;
    else {
      // An ID number on a public screen: the birth date stays hidden, only the last key shows.
      shown = d.split("").map(function (c, i) {
        return i >= 6 && i < 14 && i !== d.length - 1 ? "•" : c;
      }).join("").replace(/^(.{6})(.{0,8})(.*)$/, function (m, a, b, c) { return [a, b, c].filter(Boolean).join(" "); });
    }
    $("ci-display").textContent = shown;
    $("ci-display").dataset.mode = ci.mode;
    $("ci-x").disabled = ci.mode !== "id" || d.length !== 17;
    $("ci-ok").disabled = ci.busy || !ciValid();
    document.querySelectorAll("[data-ci-mode]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.ciMode === ci.mode));
    });
  }

  function openCheckIn() {
    ci.mode = "code"; ci.draft = ""; ci.busy = false;
    $("ci-error").innerHTML = "";
    ciSync();
    $("checkin-dialog").showModal();
  }

  function checkIn() {
    if (ci.busy || !ciValid()) return;
    ci.busy = true;
    ciSync();
    $("ci-error").innerHTML = "";
    var body = ci.mode === "code" ? { code: ci.draft } : { id_number: ci.draft };
    API.post("/api/halls/" + API.hall + "/check-in", body).then(function (t) {
      ci.busy = false; ci.draft = "";
      $("checkin-dialog").close();
      showTicket(t);
    }, function (err) {
      ci.busy = false;
      $("ci-error").innerHTML = API.errorHtml(err);
      ciSync();
    });
  }

  function bindCheckIn() {
    $("opt-checkin").addEventListener("click", openCheckIn);
    $("ci-keypad").addEventListener("click", function (e) {
      var key = e.target.closest("[data-key]");
      if (!key || key.disabled) return;
      var k = key.dataset.key, max = ci.mode === "code" ? 6 : 18;
      if (k === "back") ci.draft = ci.draft.slice(0, -1);
      else if (ci.draft.length < max) ci.draft += k;
      $("ci-error").innerHTML = "";
      ciSync();
    });
    document.querySelectorAll("[data-ci-mode]").forEach(function (b) {
      b.addEventListener("click", function () { ci.mode = b.dataset.ciMode; ci.draft = ""; $("ci-error").innerHTML = ""; ciSync(); });
    });
    $("ci-ok").addEventListener("click", checkIn);
    $("ci-cancel").addEventListener("click", function () { ci.draft = ""; $("checkin-dialog").close(); });
  }

  function startCountdown() {
    var left = RETURN_S;
    var show = function () { $("countdown").textContent = left; $("countdown-en").textContent = left; };
    show();
    clearInterval(countdown);
    countdown = setInterval(function () {
      left -= 1;
      show();
      if (left <= 0) backToStart();
    }, 1000);
  }

  function backToStart() {
    clearInterval(countdown);
    $("ticket").hidden = true;
    $("start").hidden = false;
    window.scrollTo(0, 0);
  }

  // --- options: green channel, SMS number, large text ---------------------------

  function resetOptions() {
    state.green = false; state.phone = ""; state.consent = false;
    syncOptions();
  }

  function syncOptions() {
    $("opt-green").setAttribute("aria-pressed", String(state.green));
    var smsOn = Boolean(state.phone && state.consent);
    $("opt-sms").setAttribute("aria-pressed", String(smsOn));
    $("sms-state").textContent = smsOn
      ? "将短信通知 " + state.phone.slice(0, 3) + "****" + state.phone.slice(-4) + " · We will text this number"
      : "可选，点击填写手机号 · Optional: add a mobile number";
  }

  function validPhone(p) { return /^1[3-9]\d{9}$/.test(p); }

  function syncDialog() {
    var p = state.draft;
    $("phone-display").textContent = p.length > 7 ? p.slice(0, 3) + " " + p.slice(3, 7) + " " + p.slice(7)
      : p.length > 3 ? p.slice(0, 3) + " " + p.slice(3) : p;
    $("sms-ok").disabled = !(validPhone(p) && $("sms-consent").checked);
  }

  function openSms() {
    state.draft = state.phone;
    $("sms-consent").checked = state.consent;
    syncDialog();
    $("sms-dialog").showModal();
  }

  function bind() {
    $("services").addEventListener("click", function (e) {
      var btn = e.target.closest("[data-service]");
      if (btn) take(btn.dataset.service);
    });
    $("opt-green").addEventListener("click", function () { state.green = !state.green; syncOptions(); });
    $("opt-large").addEventListener("click", function () {
      var on = !document.body.classList.contains("large");
      document.body.classList.toggle("large", on);
      this.setAttribute("aria-pressed", String(on));
    });
    $("opt-sms").addEventListener("click", openSms);
    $("keypad").addEventListener("click", function (e) {
      var key = e.target.closest("[data-key]");
      if (!key) return;
      var k = key.dataset.key;
      if (k === "clear") state.draft = "";
      else if (k === "back") state.draft = state.draft.slice(0, -1);
      else if (state.draft.length < 11) state.draft += k;
      syncDialog();
    });
    $("sms-consent").addEventListener("change", syncDialog);
    $("sms-ok").addEventListener("click", function () {
      state.phone = state.draft; state.consent = true;
      $("sms-dialog").close();
      syncOptions();
    });
    $("sms-remove").addEventListener("click", function () {
      state.phone = ""; state.consent = false;
      $("sms-dialog").close();
      syncOptions();
    });
    $("print").addEventListener("click", function () { window.print(); });
    $("done").addEventListener("click", backToStart);
    ["pointerdown", "keydown"].forEach(function (type) {
      document.addEventListener(type, function () {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(function () {
          if (!$("start").hidden && !$("sms-dialog").open && !$("checkin-dialog").open) { resetOptions(); window.scrollTo(0, 0); }
        }, IDLE_RESET_S * 1000);
      });
    });
  }

  bind();
  bindCheckIn();
  API.hallInfo().then(function (hall) {
    info = hall;
    greenClass = findGreenClass(hall.priority_classes || []);
    if (!greenClass) $("opt-green").hidden = true;
    else $("green-desc").textContent = (greenClass.name_zh.replace(/^绿色通道[（(]?|[）)]$/g, "") || "优先办理") +
      " · " + greenClass.name_en.replace(/^Green channel\s*\(?|\)$/g, "");
    return refresh();
  }, API.showError);
  pollTimer = setInterval(function () { if (!$("start").hidden && info) refresh(); }, 10000);
})();
