/* A window's own screen: who is called or served here now, and who is signed in
 * (virtual number and masked name only). */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var body = $("win-body");
  var WINDOW = body.dataset.window;
  var token = API.token();
  var line = null, info = null;

  function ticketView(stateZh, stateEn, l) {
    return '<div class="win-state">' + esc(stateZh) + '<span class="en" lang="en">' + esc(stateEn) + "</span></div>" +
      '<div class="win-ticket" id="win-ticket">' + esc(l.number) + "</div>" +
      (l.service_zh ? '<div class="win-service">' + esc(l.service_zh) + '<span class="en" lang="en">' + esc(l.service_en || "") + "</span></div>" : "");
  }

  function bigMessage(zh, en, small) {
    return '<div class="win-big-msg">' + esc(zh) + '<span class="en" lang="en">' + esc(en) + "</span></div>" +
      (small ? '<div class="win-state" style="margin-top:30px">' + small + "</div>" : "");
  }

  function render(l) {
    line = l;
    var state = l.state, cls = "win-" + state, html;
    if (l.number && l.ticket_state === "called") {
      cls = "win-calling";
      html = ticketView("请以下号码到本窗口办理", "Now calling: please come to this window", l);
    } else if (l.number && l.ticket_state === "serving") {
      cls = "win-serving";
      html = ticketView("正在办理", "Now serving", l);
    } else if (state === "paused") {
      var reason = API.PAUSE[l.pause_reason];
      html = bigMessage("暂停服务", "Service suspended",
        reason ? esc(reason[0]) + '<span class="en" lang="en">' + esc(reason[1]) + "</span>" : "");
    } else if (state === "offline") {
      html = bigMessage("暂未开放", "Window closed",
        '请留意其他窗口叫号<span class="en" lang="en">Please watch the hall display for your call</span>');
    } else if (state === "wrap_up") {
      html = bigMessage("请稍候", "One moment, please");
    } else {
      html = bigMessage("欢迎光临", "Welcome",
        '请留意叫号<span class="en" lang="en">Please wait for your number to be called</span>');
    }
    body.className = "win-body " + cls;
    body.dataset.state = l.ticket_state || state;
    body.innerHTML = html;
    $("win-staff").innerHTML = l.virtual_number
      ? '<span class="tag">工号 Staff No.<b>' + esc(l.virtual_number) + "</b></span>" +
        (l.staff_masked ? '<span class="tag">' + esc(l.staff_masked) + "</span>" : "")
      : "";
  }

  function load() {
    return API.get("/api/halls/" + API.hall + "/windows/" + encodeURIComponent(WINDOW)).then(render, API.showError);
  }
  var reload = API.debounce(load, 120);

  function onEvent(ev) {
    var t = ev.ticket, here = ev.window === WINDOW || (t && t.window === WINDOW) ||
      (ev.workstation && ev.workstation.window === WINDOW) ||
      (line && line.virtual_number && ev.virtual_number === line.virtual_number);
    if (!here) return;
    if (t && t.window === WINDOW && (ev.type === "ticket.called" || ev.type === "ticket.recalled") && line) {
      var svc = (info && info.serviceByCode[t.service]) || {};
      render(Object.assign({}, line, {
        number: t.number, ticket_state: "called", state: "calling",
        service_zh: svc.name_zh || null, service_en: svc.name_en || null,
      }));
    }
    reload();
  }

  API.hallInfo().then(function (hall) { info = hall; }).catch(function () { /* names come with the next load */ });
  load().then(function () { API.feed(API.hall, token, onEvent, { onOpen: reload }); });
  setInterval(load, 60000);
})();
