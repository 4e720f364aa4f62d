/* The rating pad (评价器) at a window: five faces, optional comment chips, a thank-you.
 * A service finished at this window lights it up; a rating (here, by link or by SMS)
 * sends it back to idle. The pad holds a device token bound to its window. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc;
  var pad = $("pad"), WINDOW = pad.dataset.window;
  var THANKS_S = 6, MESSAGE_S = 8, CHOOSE_S = 25, LIT_S = 15 * 60;
  // Where 下一位 finishes a service and calls the next citizen at once (the hall's
  // next_completes), the finished citizen still rates while the next one walks up;
  // elsewhere the next call means the finished citizen has gone.
  var NEXT_GRACE_S = 60;
  var litAt = 0;
  var info = null, chosen = null, timer = null, busy = false;

  function names(code) {
    var s = info && info.serviceByCode[code];
    return s ? [s.name_zh, s.name_en] : [code || "", code || ""];
  }

  function later(fn, seconds) {
    clearTimeout(timer);
    timer = setTimeout(fn, seconds * 1000);
  }

  function set(state) {
    pad.dataset.state = state;
    var choosing = state === "choose";
    $("levels").hidden = state === "thanks" || state === "message";
    $("pad-comment").hidden = !choosing;
    $("pad-message").hidden = !(state === "thanks" || state === "message");
    document.querySelector(".pad-prompt").hidden = state === "thanks" || state === "message";
    document.querySelectorAll("#levels [data-level]").forEach(function (b) {
      var on = chosen === Number(b.dataset.level);
      b.setAttribute("aria-pressed", String(choosing && on));
      b.classList.toggle("dim", choosing && !on);
    });
  }

  function idle() {
    clearTimeout(timer);
    chosen = null;
    $("pad-ticket").hidden = true;
    $("pad-ticket").innerHTML = "";
    set("idle");
  }

  /** A service was just finished here: invite this citizen to rate it. */
  function lightUp(ticket) {
    chosen = null;
    var n = names(ticket.service);
    $("pad-ticket").hidden = false;
    $("pad-ticket").innerHTML = '<b id="pad-number">' + esc(ticket.number) + "</b><span>" + esc(n[0]) +
      '<span class="en" lang="en">' + esc(n[1]) + "</span></span>";
    set("lit");
    litAt = Date.now();
    later(idle, LIT_S);
  }

  function choose(level) {
    chosen = level;
    $("chips").innerHTML = Rating.chips(level);
    set("choose");
    later(submit, CHOOSE_S); // a chosen face is not lost if the citizen walks away
  }

  function message(kind, zh, en, detail) {
    var faceHtml = kind === "thanks" && chosen ? Rating.face(chosen) : '<div class="pad-icon" aria-hidden="true">' + (kind === "thanks" ? "✓" : "i") + "</div>";
    $("pad-message").dataset.kind = kind;
    $("pad-message").innerHTML = faceHtml + '<h2 class="bi"><span class="zh">' + esc(zh) + '</span><span class="en" lang="en">' +
      esc(en) + "</span></h2>" + (detail ? '<p class="pad-detail">' + detail + "</p>" : "");
    set(kind === "thanks" ? "thanks" : "message");
    later(idle, kind === "thanks" ? THANKS_S : MESSAGE_S);
  }

  function submit() {
    if (busy || chosen == null) return;
    busy = true;
    clearTimeout(timer);
    var body = { level: chosen, comment: Rating.comment($("chips")) };
    API.post("/api/halls/" + API.hall + "/windows/" + encodeURIComponent(WINDOW) + "/rating", body).then(function () {
      busy = false;
      message("thanks", "感谢您的评价！", "Thank you for your feedback!",
        esc("您的意见将帮助我们把服务做得更好") + '<span class="en" lang="en">It helps us serve you better.</span>');
    }, function (err) {
      busy = false;
      if (err.code === "invalid_request" || err.code === "not_rateable") {
        message("none", "暂时没有需要评价的服务", "There is no service to rate right now",
          esc("办理完成后即可在此评价，感谢您的支持。") + '<span class="en" lang="en">You can rate here once your service is finished. Thank you!</span>');
      } else if (err.code === "already_rated") {
        message("none", "本次服务已评价", "This service has already been rated",
          esc("感谢您的支持！") + '<span class="en" lang="en">Thank you for your support!</span>');
      } else {
        message("none", err.message_zh || "评价未能提交", err.message_en || "The rating could not be sent",
          esc("请稍后再试或告知窗口工作人员。") + '<span class="en" lang="en">Please try again or tell the staff.</span>');
      }
    });
  }

  function onEvent(ev) {
    var t = ev.ticket, here = ev.window === WINDOW || (t && t.window === WINDOW);
    if (!here) return;
    var state = pad.dataset.state;
    if (ev.type === "ticket.completed" && t) lightUp(t);
    else if (ev.type === "rating.given" && (state === "lit" || state === "choose") && !busy) idle();
    else if (ev.type === "ticket.called" && state === "lit") {
      var left = info && info.next_completes ? NEXT_GRACE_S - (Date.now() - litAt) / 1000 : 0;
      if (left > 0) later(idle, left); else idle();
    }
  }

  function bind() {
    $("levels").innerHTML = Rating.buttons();
    $("levels").addEventListener("click", function (e) {
      var b = e.target.closest("[data-level]");
      if (b && !busy) choose(Number(b.dataset.level));
    });
    $("chips").addEventListener("click", function (e) {
      var b = e.target.closest("[data-chip]");
      if (!b) return;
      b.setAttribute("aria-pressed", String(b.getAttribute("aria-pressed") !== "true"));
      later(submit, CHOOSE_S);
    });
    $("pad-back").addEventListener("click", function () {
      chosen = null;
      set($("pad-ticket").hidden ? "idle" : "lit");
    });
    $("pad-submit").addEventListener("click", submit);
  }

  bind();
  idle();
  var token = API.token();
  if (!token) {
    message("none", "此评价器尚未配置设备令牌", "This pad has no device token",
      '请在地址后加上 <code>?token=…</code><span class="en" lang="en">Open it with ?token=… from the configuration.</span>');
    clearTimeout(timer);
    return;
  }
  API.hallInfo().then(function (hall) { info = hall; }).catch(function () { /* names fall back to codes */ })
    .then(function () { API.feed(API.hall, token, onEvent); });
})();
