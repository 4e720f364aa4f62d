/* The 96166 agent console: sign in at a hotline seat; presence (available, on a call,
 * wrap-up with its countdown, paused with a reason); the offered call with accept, reject
 * and the offer's countdown; on the call the caller's history (with past calls' notes), a
 * case look-up, call notes saved with the call (agent_notes.js), and the work-order form;
 * finish the call into wrap-up. Live through the feed. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var CFG = JSON.parse($("hotline-config").textContent);
  var BASE = "/api/halls/" + encodeURIComponent(API.hall);
  var LAST = "cc.agent.last";       // the call just finished, for orders opened in wrap-up
  var info = null, me = null, ws = null, feed = null, busy = false;
  var titleBase = document.title;

  var PRESENCE = {
    available: ["空闲", "Available"], calling: ["来电待接", "Call offered"],
    serving: ["通话中", "On call"], wrap_up: ["整理", "Wrap-up"],
    paused: ["暂停", "Paused"], offline: ["未签到", "Signed out"],
  };

  function path(action) {
    return BASE + "/workstations/" + encodeURIComponent(me.virtual_number) + (action ? "/" + action : "");
  }
  function nowS() { return API.now() / 1000; }
  function serviceName(code) {
    var s = info && info.serviceByCode[code];
    return s ? [s.name_zh, s.name_en] : [code, code];
  }
  function deptName(code) {
    var d = info && info.departments.filter(function (x) { return x.code === code; })[0];
    return d ? [d.name_zh, d.name_en] : [code || "—", code || "—"];
  }
  function lastCall() {
    try { return JSON.parse(sessionStorage.getItem(LAST) || "null"); } catch (e) { return null; }
  }
  function keepLastCall(t) {
    try { sessionStorage.setItem(LAST, JSON.stringify(t)); } catch (e) { /* private mode */ }
  }
  /** The call notes and orders belong to: the ticket at the seat, or in wrap-up the one just finished. */
  function currentCall() {
    if (ws && ws.ticket) return ws.ticket;
    return ws && ws.state === "wrap_up" ? lastCall() : null;
  }
  function currentCallId() {
    var call = currentCall();
    return call ? call.id : null;
  }

  // --- choosing a seat -----------------------------------------------------------------

  function showPicker() {
    $("desk").hidden = true;
    $("pick").hidden = false;
    setAlert(false);
    API.get(BASE + "/snapshot").then(function (snap) {
      API.syncClock(snap.at);
      var taken = {};
      (snap.windows || []).forEach(function (l) { if (l.state !== "offline") taken[l.window] = l.virtual_number; });
      $("seat-picker").innerHTML = info.windows.filter(function (w) { return w.kind === "hotline"; }).map(function (w) {
        var by = taken[w.number], mine = by === me.virtual_number;
        return '<button type="button" data-seat="' + esc(w.number) + '"' + (by && !mine ? " disabled" : "") + "><b>" +
          esc(w.number) + "</b><small>" + (by ? esc(by) + " 在岗" : "空闲 · free") + "</small></button>";
      }).join("");
    }, Signin.guard);
  }

  // --- the desk ----------------------------------------------------------------------------

  function render(w) {
    ws = w;
    if (w.state === "offline") { showPicker(); return; }
    $("pick").hidden = true;
    $("desk").hidden = false;
    var t = w.ticket;
    if (t && t.state === "serving") keepLastCall({ id: t.id, number: t.number, phone_masked: t.phone_masked });
    $("seat-label").innerHTML = "<b>" + esc(w.window) + "</b>" + bi("坐席", "Seat", "row");
    var p = PRESENCE[w.state] || [w.state, w.state];
    var reason = w.state === "paused" && w.pause_reason ? (API.PAUSE[w.pause_reason] || [w.pause_reason, w.pause_reason]) : null;
    $("presence").className = "pill st-" + w.state;
    $("presence").dataset.state = w.state;
    $("presence").innerHTML = bi(p[0] + (reason ? " · " + reason[0] : ""), p[1] + (reason ? " · " + reason[1] : ""), "row");
    var idle = w.state === "available" || w.state === "wrap_up";
    $("pause-box").hidden = !idle;
    $("btn-pause").disabled = busy || !idle;
    $("btn-resume").hidden = !(w.state === "paused" || w.state === "wrap_up");
    $("btn-resume").disabled = busy;
    $("btn-signout").disabled = busy || !!t || !(idle || w.state === "paused");
    renderCall(w);
    setAlert(w.state === "calling" && t && t.state === "called");
    if (t) AgentLookup.historyOf(t.id);
    linkOrder();
    AgentNotes.switchTo(currentCall());
    tick();
  }

  function renderCall(w) {
    var t = w.ticket, card = $("call-card");
    card.classList.toggle("is-offer", w.state === "calling");
    card.classList.toggle("is-talk", w.state === "serving");
    card.classList.toggle("is-wrap", w.state === "wrap_up");
    $("call-tools").innerHTML = "";
    if (w.state === "calling" && t) {
      $("call-tools").innerHTML = '<span class="pill st-calling">' + bi("请接听", "Incoming", "row") + "</span>";
      $("call").innerHTML = callMain(t,
        '<div class="countdown-box"><small>' + bi("接听剩余", "Time to answer", "row") + '</small><b id="offer-left">—</b>' +
        '<div class="meter"><i id="offer-meter"></i></div></div>' +
        '<div class="call-btns" style="grid-column:1/-1;grid-template-columns:2fr 1fr">' +
        '<button class="btn go" type="button" data-act="accept" id="btn-accept"' + (busy ? " disabled" : "") + ">" + bi("接听", "Accept", "row") + "</button>" +
        '<button class="btn danger" type="button" data-act="reject" id="btn-reject"' + (busy ? " disabled" : "") + ">" + bi("拒接", "Reject", "row") + "</button></div>",
        "offer");
      return;
    }
    if (w.state === "serving" && t) {
      $("call").innerHTML = callMain(t,
        '<div class="talk-time"><span id="talk-time">0:00</span><small>' + bi("通话时长", "Talk time", "row") + "</small></div>" +
        '<div class="call-btns" style="grid-column:1/-1"><button class="btn primary" type="button" data-act="complete" id="btn-complete"' +
        (busy ? " disabled" : "") + ">" + bi("结束通话，进入整理", "Finish the call · wrap up", "row") + "</button></div>",
        "talk");
      return;
    }
    if (w.state === "wrap_up") {
      var last = lastCall();
      $("call").innerHTML = '<div class="call-wait"><div>' + bi("整理中：请完成记录和工单", "Wrap-up: finish your notes and work order") +
        (last ? '<p class="muted" style="margin:6px 0 0">' + bi("刚结束 " + last.number + (last.phone_masked ? " · " + last.phone_masked : ""),
          "Just finished " + last.number, "row") + "</p>" : "") + "</div>" +
        '<div class="countdown-box" style="min-width:200px"><small>' + bi("自动恢复接听", "Back to available in", "row") +
        '</small><b id="wrap-left" style="color:#5b3fa8">—</b><div class="meter"><i id="wrap-meter"></i></div></div></div>';
      return;
    }
    if (w.state === "paused") {
      var r = API.PAUSE[w.pause_reason] || [w.pause_reason || "", w.pause_reason || ""];
      $("call").innerHTML = '<div class="call-wait"><div>' + bi("已暂停：不会为您分配来电", "Paused: no calls are offered to you") +
        '<p class="muted" style="margin:6px 0 0">' + bi("原因：" + r[0], "Reason: " + r[1], "row") +
        (w.pause_reason === "missed_offers" ? " " + bi("（连续未接来电）", "(calls went unanswered)", "row") : "") + "</p></div>" +
        queueChips(w) + "</div>";
      return;
    }
    $("call").innerHTML = '<div class="call-wait"><div>' + bi("等待来电", "Waiting for a call") +
      '<p class="muted" style="margin:6px 0 0;font-size:13px">' + bi("来电将自动分配到本坐席", "Calls are offered to this seat automatically", "row") + "</p></div>" +
      queueChips(w) + "</div>";
  }

  function callMain(t, side, kind) {
    var n = serviceName(t.service), ch = API.CHANNEL[t.channel] || [t.channel, t.channel];
    var waited = (t.called_at || nowS()) - t.arrived_at;
    return '<div class="call-main" data-kind="' + kind + '">' +
      '<div><div class="call-no" id="call-number">' + esc(t.number) + '</div><span class="call-tag"><span class="tag">' +
      esc(ch[0]) + " · " + esc(ch[1]) + "</span></span></div>" +
      '<dl class="call-facts">' +
      "<dt>来电<span class=\"en\">Caller</span></dt><dd class=\"mono\" id=\"call-phone\">" + esc(t.phone_masked || "未显示号码") +
        (t.phone_masked ? "" : '<span class="en">no number</span>') + "</dd>" +
      "<dt>业务<span class=\"en\">Line</span></dt><dd>" + esc(n[0]) + '<span class="en">' + esc(n[1]) + "</span></dd>" +
      "<dt>进线<span class=\"en\">Arrived</span></dt><dd>" + esc(API.fmtTime(t.arrived_at)) +
        '<span class="en">等待 waited ' + esc(API.fmtDuration(waited)) + "</span></dd>" +
      (t.priority && t.priority !== "normal" ? "<dt>类别<span class=\"en\">Class</span></dt><dd>" + esc(t.priority) + "</dd>" : "") +
      "</dl>" + side + "</div>";
  }

  function queueChips(w) {
    var codes = Object.keys(w.skills || {});
    if (!codes.length) return "";
    return '<div class="queue-chips" id="queue-chips">' + codes.map(function (code) {
      var n = serviceName(code);
      return '<span title="' + esc(n[1]) + '">' + esc(n[0]) + "<b>" + (w.waiting[code] || 0) + "</b></span>";
    }).join("") + "</div>";
  }

  /** A sound-free alert: the card glows and the tab title says a call is waiting. */
  function setAlert(on) {
    document.title = on ? "【来电 Incoming】 " + titleBase : titleBase;
  }

  function tick() {
    if (!ws || $("desk").hidden) return;
    var now = nowS(), t = ws.ticket;
    $("in-state").textContent = API.fmtDuration(Math.max(0, now - ws.since));
    if (ws.state === "calling" && t) {
      var total = CFG.offer_timeout_s || 20;
      var expires = t.offer_expires_at || ((t.called_at || ws.since) + total);
      var left = Math.max(0, expires - now);
      if ($("offer-left")) $("offer-left").textContent = Math.ceil(left) + " s";
      if ($("offer-meter")) $("offer-meter").style.setProperty("--p", Math.round(100 * left / total) + "%");
    }
    if (ws.state === "serving" && $("talk-time")) $("talk-time").textContent = API.fmtDuration(Math.max(0, now - ws.since));
    var wrap = $("wrap-count");
    if (ws.state === "wrap_up") {
      var span = CFG.wrap_up_s || 0;
      var until = ws.wrap_up_until || (ws.since + span);
      var rest = Math.max(0, until - now);
      wrap.hidden = false;
      wrap.textContent = "剩 " + API.fmtDuration(rest);
      if ($("wrap-left")) $("wrap-left").textContent = API.fmtDuration(rest);
      if ($("wrap-meter") && span) $("wrap-meter").style.setProperty("--p", Math.round(100 * rest / span) + "%");
    } else {
      wrap.hidden = true;
    }
  }

  function load() {
    return API.get(path()).then(render, Signin.guard);
  }
  var reload = API.debounce(load, 150);

  function act(action, data) {
    if (busy) return;
    busy = true;
    if (ws) render(ws);
    API.post(path(action), data).then(function (w) {
      busy = false;
      render(w);
    }, function (err) {
      busy = false;
      Signin.guard(err);
      load();
    });
  }

  // --- the work-order form -----------------------------------------------------------------------

  function buildForm() {
    $("order-types").innerHTML = CFG.types.map(function (t, i) {
      return '<label><input type="radio" name="type" value="' + esc(t[0]) + '"' + (i === 0 ? " checked" : "") + ">" +
        esc(t[1]) + " <small>" + esc(t[2]) + "</small></label>";
    }).join("");
    var sel = $("order-dept");
    info.departments.forEach(function (d) {
      var o = document.createElement("option");
      o.value = d.code;
      o.textContent = d.name_zh + " · " + d.name_en;
      sel.appendChild(o);
    });
    sel.addEventListener("change", submitLabel);
    submitLabel();
  }

  function submitLabel() {
    var dispatch = !!$("order-dept").value; // new nodes, so the English switch swaps them too
    $("order-submit").innerHTML = dispatch ? bi("受理并派单", "Open and dispatch", "row") : bi("受理", "Open", "row");
  }

  function linkOrder() {
    var id = currentCallId(), pill = $("order-link-ticket");
    var t = ws && ws.ticket ? ws.ticket : lastCall();
    pill.hidden = !id;
    if (id && t) pill.innerHTML = "关联来电 " + esc(t.number) + ' <span class="en">linked call</span>';
  }

  function submitOrder(e) {
    e.preventDefault();
    var checked = document.querySelector("#order-types input:checked");
    var department = $("order-dept").value;
    var body = {
      type: checked ? checked.value : "consult",
      description: $("order-desc").value.trim(),
      phone: $("order-phone").value.replace(/[\s-]/g, "") || null,
      location: $("order-location").value.trim() || null,
      department: department || null,
      urgent: $("order-urgent").checked,
      ticket_id: currentCallId(),
    };
    $("order-error").innerHTML = "";
    if (!body.description) {
      $("order-error").innerHTML = API.errorHtml({ message_zh: "请填写诉求内容", message_en: "Describe what the caller needs" });
      return;
    }
    $("order-submit").disabled = true;
    API.post(BASE + "/work-orders", body).then(function (order) {
      if (!department) return order;
      return API.post(BASE + "/work-orders/" + encodeURIComponent(order.number) + "/dispatch", { department: department })
        .catch(function (err) { API.showError(err); return order; });
    }).then(function (order) {
      $("order-submit").disabled = false;
      $("order-form").reset();
      submitLabel();
      var d = order.department ? deptName(order.department) : null;
      $("order-made").innerHTML = '<div class="made" id="order-made-box"><span>' + bi("已受理", "Opened", "row") + "</span>" +
        '<b id="made-number">' + esc(order.number) + "</b>" +
        '<span class="ostate os-' + esc(order.state) + '" id="made-state">' + esc(order.state) + '<span class="en">' + esc(order.state_en) + "</span></span>" +
        (d ? "<span>→ " + esc(d[0]) + "</span>" : "") +
        '<span class="muted">' + bi("期限 " + API.fmtDateTime(order.deadline_at).slice(5, 16), "due", "row") + "</span>" +
        '<a href="/orders#' + esc(order.number) + '">' + bi("查看", "Open", "row") + " →</a></div>";
      AgentLookup.refresh();
    }, function (err) {
      $("order-submit").disabled = false;
      if (err.status === 401) { Signin.guard(err); return; }
      $("order-error").innerHTML = API.errorHtml(err);
    });
  }

  // --- wiring ----------------------------------------------------------------------------------------

  function onEvent(ev) {
    var mine = ev.virtual_number === (me && me.virtual_number);
    if (mine && (ev.type === "ticket.offered" || ev.type === "ticket.offer_declined")) { load(); return; }
    reload();
  }

  function bind() {
    $("seat-picker").addEventListener("click", function (e) {
      var b = e.target.closest("[data-seat]");
      if (b && !b.disabled) API.post(path("sign-in"), { window: b.dataset.seat }).then(render, Signin.guard);
    });
    $("desk").addEventListener("click", function (e) {
      var b = e.target.closest("[data-act]");
      if (!b || b.disabled) return;
      var a = b.dataset.act;
      if (a === "complete") AgentNotes.save(); // wrap-up: the call's notes go with it
      if (a === "pause") act("pause", { reason: $("pause-reason").value });
      else act(a);
    });
    $("order-form").addEventListener("submit", submitOrder);
    $("order-form").addEventListener("reset", function () { setTimeout(submitLabel, 0); $("order-error").innerHTML = ""; });
    AgentLookup.init({ base: BASE, me: function () { return me; }, serviceName: serviceName, deptName: deptName });
    AgentNotes.init({ base: BASE, me: function () { return me; } });
    $("notes-copy").addEventListener("click", function () {
      var text = $("notes").value.trim(), desc = $("order-desc");
      if (!text) return;
      desc.value = desc.value.trim() ? desc.value.trim() + "\n" + text : text;
      desc.focus();
    });
    setInterval(tick, 1000);
    setInterval(function () { if (me && !busy) load(); }, 20000); // a missed event never lasts
  }

  bind();
  Signin.start(function (who) {
    me = who;
    API.hallInfo().then(function (hall) {
      info = hall;
      buildForm();
      return API.get(BASE + "/snapshot").then(function (snap) { API.syncClock(snap.at); });
    }).then(load).then(function () {
      AgentNotes.flushDrafts();
      if (!feed) feed = API.feed(API.hall, API.token(), onEvent, { onOpen: reload });
    }).catch(Signin.guard);
  });
})();
