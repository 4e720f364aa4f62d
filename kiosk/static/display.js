/* The hall display: the call being made now (spoken in Mandarin unless the hall is
 * silent), the last 8 calls, and every queue's waiting count and expected wait. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var token = API.token();
  var silent = document.body.dataset.silent === "true" || API.params.get("silent") === "1";
  var info = null, shownCall = null;

  function serviceName(code) {
    var s = info && info.serviceByCode[code];
    return s ? [s.name_zh, s.name_en] : [code, code];
  }

  function showCall(call, others) {
    var key = call ? call.ticket_id + ":" + call.window + ":" + (call.recall || 0) : null;
    if (call) {
      var name = serviceName(call.service);
      $("call-text").innerHTML =
        '<div class="call-line" id="call-line" data-number="' + esc(call.number) + '" data-window="' + esc(call.window) + '">' +
        '请<span class="big">' + esc(call.number) + "</span>号</div>" +
        '<div class="call-line">到<span class="big">' + esc(call.window) + "</span>号窗口办理</div>" +
        '<div class="call-en" lang="en">Ticket ' + esc(call.number) + ", please go to window " + esc(call.window) + "</div>" +
        '<div class="call-service">' + esc(name[0]) + '<span class="en" lang="en">' + esc(name[1]) + "</span></div>";
    } else {
      $("call-text").innerHTML = '<div class="call-idle">欢迎光临 请留意叫号<span class="en" lang="en">Welcome. Please watch for your number.</span></div>';
    }
    var rest = (others || []).slice(0, 4);
    $("also-calling").innerHTML = rest.length ? '<span class="also-label">同时呼叫 <i lang="en">Also</i></span>' + rest.map(function (c) {
      return "<span><b>" + esc(c.number) + "</b> → <b>" + esc(c.window) + "</b> 号窗口</span>";
    }).join("") : "";
    if (key && key !== shownCall) flash();
    shownCall = key;
  }

  function flash() {
    var box = $("now-calling");
    box.classList.remove("flash");
    void box.offsetWidth; // restart the animation
    box.classList.add("flash");
  }

  function speak(text) {
    if (silent || !("speechSynthesis" in window)) return;
    try {
      var u = new SpeechSynthesisUtterance(text);
      u.lang = "zh-CN";
      u.rate = 0.9;
      var voice = speechSynthesis.getVoices().find(function (v) { return /^zh[-_]CN/i.test(v.lang); });
      if (voice) u.voice = voice;
      speechSynthesis.speak(u);
    } catch (e) { /* no speech on this screen */ }
  }

  function renderRecent(recent) {
    $("recent").innerHTML = recent.length ? recent.slice(0, 8).map(function (c) {
      return '<tr><td class="n">' + esc(c.number) + '</td><td class="w">' + esc(c.window) +
        '<small>号窗口</small></td><td class="t">' + esc(API.fmtTime(c.at)) + "</td></tr>";
    }).join("") : '<tr><td colspan="3" class="empty">暂无叫号 · No calls yet</td></tr>';
  }

  function waitText(q) {
    if (!q.waiting) return "无需等候" + '<span class="en" lang="en">No wait</span>';
    var m = API.fmtMinutes(q.expected_wait_min);
    return "约 " + esc(m) + " 分钟" + '<span class="en" lang="en">~' + esc(m) + " min</span>";
  }

  function renderQueues(queues) {
    $("queues").innerHTML = queues.filter(function (q) { return q.channel === "hall"; }).map(function (q) {
      return '<div class="q-tile' + (q.waiting ? "" : " idle") + '" data-service="' + esc(q.service) + '">' +
        '<div class="q-name"><span class="q-prefix">' + esc(q.prefix) + "</span>" + bi(q.name_zh, q.name_en) + "</div>" +
        '<div class="q-line"><span>等候<b class="q-waiting">' + q.waiting + '</b>人<span class="en" lang="en">waiting</span></span>' +
        '<span class="q-wait">' + waitText(q) + "</span></div></div>";
    }).join("");
  }

  function render(snap) {
    API.syncClock(snap.at);
    if (snap.silent) silent = true;
    var calling = snap.calling || [];
    // With nobody being called right now, the last call stays up until the next one.
    showCall(calling[0] || (snap.recent || [])[0] || null, calling.slice(1));
    renderRecent(snap.recent || []);
    renderQueues(snap.queues || []);
  }

  function load() {
    return API.get("/api/halls/" + API.hall + "/snapshot").then(render, API.showError);
  }
  var reload = API.debounce(load, 300);

  function onEvent(ev) {
    if ((ev.type === "ticket.called" || ev.type === "ticket.recalled") && ev.ticket && ev.ticket.channel === "hall") {
      var window_ = ev.ticket.window || ev.window;
      showCall({
        ticket_id: ev.ticket.id, number: ev.ticket.number, window: window_,
        service: ev.ticket.service, recall: ev.ticket.recalls,
      }, []);
      speak("请" + ev.ticket.number + "号到" + window_ + "号窗口办理");
    }
    reload();
  }

  API.hallInfo().then(function (hall) { info = hall; }).catch(function () { /* names fall back to codes */ })
    .then(load)
    .then(function () { API.feed(API.hall, token, onEvent, { onOpen: reload }); });
  setInterval(load, 60000); // a safety net if the feed is quiet for long
})();
