/* The staff console: sign in at a window, then call, recall, start, complete, mark a
 * no-show, hold, transfer, pause and resume; the feed keeps it current. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var info = null, me = null, ws = null, feed = null, busy = false;

  // Which actions make sense in which state (the engine has the final word).
  var ENABLED = {
    "call-next": function (w) { return (!w.ticket && (w.state === "available" || w.state === "wrap_up")) || finishesInHand(w); },
    recall: function (w) { return w.ticket && w.ticket.state === "called"; },
    start: function (w) { return w.ticket && w.ticket.state === "called"; },
    "no-show": function (w) { return w.ticket && w.ticket.state === "called"; },
    complete: function (w) { return w.ticket && w.ticket.state === "serving"; },
    hold: function (w) { return w.ticket && w.ticket.state === "serving"; },
    transfer: function (w) { return w.ticket && (w.ticket.state === "called" || w.ticket.state === "serving"); },
    accept: function (w) { return w.state === "calling" && w.ticket && w.ticket.state === "called"; },
    reject: function (w) { return w.state === "calling" && w.ticket && w.ticket.state === "called"; },
    resume: function (w) { return w.state === "paused" || w.state === "wrap_up"; },
    "sign-out": function (w) { return !w.ticket && ["available", "paused", "wrap_up"].indexOf(w.state) >= 0; },
  };

  // Under the hall's "next_completes" policy 下一位 also finishes the ticket in hand.
  function finishesInHand(w) {
    return !!(info && info.next_completes && w.kind === "window" && w.ticket &&
      (w.ticket.state === "called" || w.ticket.state === "serving"));
  }

  function path(action) {
    return "/api/halls/" + API.hall + "/workstations/" + encodeURIComponent(me.virtual_number) + (action ? "/" + action : "");
  }

  function serviceName(code) {
    var s = info && info.serviceByCode[code];
    return s ? [s.name_zh, s.name_en] : [code, code];
  }

  // --- choosing a window ------------------------------------------------------------

  function myKind() {
    var codes = Object.keys(ws.skills || {});
    var phone = codes.some(function (c) { var s = info.serviceByCode[c]; return s && s.channel !== "hall"; });
    return phone ? "hotline" : "window";
  }

  function showPicker() {
    $("desk").hidden = true;
    $("pick").hidden = false;
    var kind = myKind();
    $("pick-hint").innerHTML = kind === "hotline"
      ? "请选择热线坐席。<span class='en'>Choose a hotline seat.</span>"
      : "请选择您今天所在的窗口；已被占用的窗口不可选。<span class='en'>Choose the window you sit at today; windows in use are greyed out.</span>";
    API.get("/api/halls/" + API.hall + "/snapshot").then(function (snap) {
      var taken = {};
      (snap.windows || []).forEach(function (l) { if (l.state !== "offline") taken[l.window] = l.virtual_number; });
      $("window-picker").innerHTML = info.windows.filter(function (w) { return w.kind === kind; }).map(function (w) {
        var by = taken[w.number];
        return '<button type="button" data-window="' + esc(w.number) + '"' + (by ? " disabled" : "") + "><b>" +
          esc(w.number) + "</b><small>" + (by ? esc(by) + " 在岗" : w.zone + " 区 · 空闲") + "</small></button>";
      }).join("");
    }, Signin.guard);
  }

  function signIn(windowNo) {
    API.post(path("sign-in"), { window: windowNo }).then(render, Signin.guard);
  }

  // --- the desk ----------------------------------------------------------------------

  function render(w) {
    ws = w;
    if (w.state === "offline") { showPicker(); return; }
    $("pick").hidden = true;
    $("desk").hidden = false;
    var seat = w.kind === "hotline" ? "坐席 Seat" : "号窗口 Window";
    $("ws-window").innerHTML = "<b>" + esc(w.window) + "</b> " + seat;
    $("ws-state").className = "pill st-" + w.state;
    $("ws-state").innerHTML = API.label(API.WS_STATE, w.state).replace('class="bi ', 'class="bi row ') +
      (w.pause_reason && API.PAUSE[w.pause_reason] ? " · " + esc(API.PAUSE[w.pause_reason][0]) : "");
    $("ws-who").textContent = w.virtual_number + " · " + w.name;
    renderTicket(w.ticket);
    renderSkills(w);
    renderHeld(w.held || []);
    var hotline = w.kind === "hotline";
    document.querySelectorAll("[data-action]").forEach(function (b) {
      var a = b.dataset.action;
      if (a === "accept" || a === "reject") b.hidden = !hotline;
      if (a === "call-next") {
        b.hidden = hotline;
        b.innerHTML = finishesInHand(w) ? bi("办结并呼叫下一位", "Complete and call next") : bi("呼叫下一位", "Call next");
      }
      b.disabled = busy || !ENABLED[a](w);
    });
    document.querySelectorAll("[data-reason]").forEach(function (b) {
      b.disabled = busy || !(w.state === "available" || w.state === "wrap_up");
    });
    tickSince();
  }

  function renderTicket(t) {
    if (!t) {
      $("current").innerHTML = '<div class="cur-none">' + bi("当前没有号票，请点击“呼叫下一位”", "No ticket in hand: press Call next") + "</div>";
      return;
    }
    var state = API.TICKET_STATE[t.state] || [t.state, t.state];
    var waited = t.called_at ? (t.called_at - t.arrived_at) : null;
    $("current").innerHTML =
      '<div class="cur-number" id="cur-number">' + esc(t.number) + "</div>" +
      '<dl class="cur-facts">' +
      '<dt>状态<span class="en">State</span></dt><dd id="cur-state" data-state="' + esc(t.state) + '">' + esc(state[0]) + ' <span class="muted en">' + esc(state[1]) + "</span></dd>" +
      '<dt>事项<span class="en">Service</span></dt><dd>' + esc(t.service_zh) + ' <span class="muted en">' + esc(t.service_en) + "</span></dd>" +
      '<dt>取号<span class="en">Issued</span></dt><dd>' + esc(API.fmtTime(t.arrived_at)) +
        (waited != null ? ' <span class="muted">· 等候 ' + esc(API.fmtDuration(waited)) + "</span>" : "") + "</dd>" +
      (t.priority !== "normal" ? '<dt>类别<span class="en">Class</span></dt><dd>' + esc(priorityName(t.priority)) + "</dd>" : "") +
      (t.recalls ? '<dt>重呼<span class="en">Recalls</span></dt><dd>' + t.recalls + "</dd>" : "") +
      (t.phone_masked ? '<dt>短信<span class="en">SMS</span></dt><dd>' + esc(t.phone_masked) + "</dd>" : "") +
      "</dl>";
  }

  function priorityName(code) {
    var c = (info.priority_classes || []).find(function (p) { return p.code === code; });
    return c ? c.name_zh + " · " + c.name_en : code;
  }

  function renderSkills(w) {
    var codes = Object.keys(w.skills || {});
    $("skills").innerHTML = codes.length ? codes.map(function (code) {
      var n = serviceName(code);
      return '<li data-service="' + esc(code) + '">' + bi(n[0], n[1]) + '<b class="num">' + (w.waiting[code] || 0) +
        "<small>人 waiting</small></b></li>";
    }).join("") : '<li class="muted">未配置技能 · No skills configured</li>';
  }

  function renderHeld(held) {
    var canResume = ws.state === "available" || ws.state === "wrap_up";
    $("held").innerHTML = held.length ? held.map(function (t) {
      return "<li><span><b>" + esc(t.number) + "</b> " + esc(t.service_zh) + "</span>" +
        '<button class="btn go" data-resume="' + t.id + '"' + (canResume && !busy ? "" : " disabled") + ">" +
        bi("恢复办理", "Resume", "row") + "</button></li>";
    }).join("") : '<li class="muted">没有挂起的号票 · Nothing on hold</li>';
  }

  function tickSince() {
    if (!ws) return;
    $("ws-since").textContent = API.fmtDuration((API.now() / 1000) - ws.since);
  }

  function load() {
    return API.get(path()).then(render, Signin.guard);
  }
  var reload = API.debounce(load, 200);

  // --- after the service: open an application case (开具办件) ---------------------------------

  var LAST = "cc.staff.last";
  var last = null; // { ticket: the ticket just completed, case: its case once opened }
  try { last = JSON.parse(sessionStorage.getItem(LAST) || "null"); } catch (e) { last = null; }

  function keepLast(value) {
    last = value;
    try { sessionStorage.setItem(LAST, JSON.stringify(value)); } catch (e) { /* private mode */ }
    renderCase();
  }

  function renderCase() {
    $("case-card").hidden = !last;
    if (!last) return;
    var t = last.ticket, c = last.case;
    var head = '<div class="case-ticket"><b>' + esc(t.number) + "</b> " + esc(t.service_zh) +
      ' <span class="muted en">' + esc(t.service_en) + '</span> <span class="pill st-available">已办结 · Done</span></div>';
    if (!c) {
      $("case-box").innerHTML = head +
        '<p class="muted">需要后续审查、制证或取件的事项，请为申请人开具办件；办件编号和承诺办结日期将以短信告知。' +
        '<span class="sub-en" lang="en">For services that need review, production or pickup, open a case: the applicant is texted its number and promised date.</span></p>' +
        '<button type="button" class="btn primary" id="open-case" data-open-case>' + bi("开具办件", "Open a case", "row") + "</button>";
      return;
    }
    var promised = API.fmtDay(c.promised_day);
    $("case-box").innerHTML = head +
      '<dl class="case-made">' +
      '<div><dt>办件编号<span class="en">Case number</span></dt><dd class="mono" id="case-number">' + esc(c.number) + "</dd></div>" +
      '<div><dt>承诺办结<span class="en">Promised by</span></dt><dd id="case-promised" data-day="' + esc(c.promised_day) + '">' +
        esc(c.promised_day) + ' <small>' + esc(promised[0]) + "</small></dd></div>" +
      '<div><dt>状态<span class="en">Status</span></dt><dd>' + esc(c.status) + "</dd></div></dl>" +
      '<p class="muted">' + (c.phone ? "已短信告知申请人 " + esc(c.phone) + " · The applicant has been texted." :
        "请将办件编号告知申请人（未留手机号）· Give the applicant this number (no phone on file).") + "</p>";
  }

  function openCase() {
    if (!last || last.case || busy) return;
    var b = $("open-case");
    if (b) b.disabled = true;
    API.post("/api/halls/" + API.hall + "/cases", { ticket_id: last.ticket.id }).then(function (c) {
      keepLast({ ticket: last.ticket, case: c });
    }, function (err) {
      Signin.guard(err);
      if (b) b.disabled = false;
    });
  }

  function act(action, data) {
    busy = true;
    if (ws) render(ws);
    var next = action === "call-next" && ws && finishesInHand(ws);
    var finishing = (action === "complete" || next) && ws && ws.ticket ? ws.ticket : null;
    // 下一位 names the ticket it finishes: a second click finds another in hand and does nothing.
    var target = path(action) + (next && finishing ? "?finish=" + finishing.id : "");
    return API.post(target, data).then(function (w) {
      busy = false;
      if (finishing) keepLast({ ticket: finishing, case: null });
      render(w);
      if (action === "sign-out") showPicker();
    }, function (err) {
      busy = false;
      Signin.guard(err);
      load();
    });
  }

  // --- transfer ---------------------------------------------------------------------------

  function openTransfer() {
    var sel = $("transfer-service");
    if (sel.options.length <= 1) {
      info.services.filter(function (s) { return s.channel === "hall"; }).forEach(function (s) {
        var o = document.createElement("option");
        o.value = s.code;
        o.textContent = s.prefix + " · " + s.name_zh + " · " + s.name_en;
        sel.appendChild(o);
      });
    }
    sel.value = ""; $("transfer-vn").value = ""; $("transfer-position").value = "";
    $("transfer-dialog").showModal();
  }

  function submitTransfer() {
    var body = {}, svc = $("transfer-service").value, vn = $("transfer-vn").value.trim().toUpperCase();
    if (svc) body.to_service = svc;
    if (vn) body.to_workstation = vn;
    if ($("transfer-position").value) body.position = $("transfer-position").value;
    if (!svc && !vn) {
      API.showError({ message_zh: "请选择事项或填写工号", message_en: "Choose a service or enter a work number" });
      return;
    }
    $("transfer-dialog").close();
    act("transfer", body);
  }

  function bind() {
    $("window-picker").addEventListener("click", function (e) {
      var b = e.target.closest("[data-window]");
      if (b && !b.disabled) signIn(b.dataset.window);
    });
    $("desk").addEventListener("click", function (e) {
      var b = e.target.closest("button");
      if (!b || b.disabled) return;
      if (b.dataset.action === "transfer") openTransfer();
      else if (b.dataset.action) act(b.dataset.action);
      else if (b.dataset.reason) act("pause", { reason: b.dataset.reason });
      else if (b.dataset.resume) act("resume-ticket", { ticket_id: Number(b.dataset.resume) });
      else if (b.hasAttribute("data-open-case")) openCase();
    });
    $("transfer-ok").addEventListener("click", submitTransfer);
    $("transfer-cancel").addEventListener("click", function () { $("transfer-dialog").close(); });
    setInterval(tickSince, 1000);
  }

  bind();
  renderCase();
  Signin.start(function (who) {
    me = who;
    API.hallInfo().then(function (hall) {
      info = hall;
      return load();
    }).then(function () {
      if (!feed) feed = API.feed(API.hall, API.token(), reload, { onOpen: reload });
    }).catch(Signin.guard);
  });
})();
