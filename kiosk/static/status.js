/* The citizen's status page (from the ticket's QR code): polls the ticket by its
 * unguessable token; it has no access to the hall feed. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc;
  var TOKEN = $("status").dataset.token;
  var POLL_MS = 3000;
  var timer = null, lastState = null;

  var STATE_CLASS = {
    waiting: "st-serving", called: "st-calling", serving: "st-available", held: "st-wrap_up",
    done: "st-available", no_show: "st-paused", expired: "st-offline", cancelled: "st-offline",
    transferred: "st-offline", abandoned: "st-offline",
  };

  function facts(t) {
    return '<div class="status-facts">' +
      '<div><b class="num" id="status-ahead">' + (t.ahead == null ? "—" : t.ahead) + '</b><span>前面等候（人）<span class="en" lang="en">People ahead</span></span></div>' +
      '<div><b class="num">' + esc(API.fmtMinutes(t.expected_wait_min)) + '</b><span>预计等候（分钟）<span class="en" lang="en">Expected wait (min)</span></span></div></div>';
  }

  function message(zh, en, cls) {
    return '<div class="status-msg ' + (cls || "") + '">' + esc(zh) + '<span class="en" lang="en">' + esc(en) + "</span></div>";
  }

  function middle(t) {
    switch (t.state) {
      case "waiting": return facts(t) + message("请留意大厅叫号屏幕", "Please watch the hall display for your number");
      case "called": return '<div class="status-go" id="status-window"><div class="go-zh">请到<b>' + esc(t.window) +
        '</b>号窗口办理</div><div class="go-en" lang="en">Please go to window ' + esc(t.window) + " now</div></div>";
      case "serving": return message(t.window ? "正在 " + t.window + " 号窗口办理" : "正在办理", "Being served" + (t.window ? " at window " + t.window : ""), "ok");
      case "held": return message("业务已挂起，补齐材料后请回到窗口", "On hold: come back to the window with the missing documents");
      case "done": return message("已办结，感谢您的耐心等候", "Completed. Thank you for waiting.", "ok");
      case "no_show": return message("已过号，号票作废，请重新取号", "Your number was missed and is void: please take a new ticket", "warn");
      case "expired": return message("号票已失效（已过今日办公时间）", "This ticket has expired (the hall has closed for the day)", "warn");
      default: return message("号票已结束", "This ticket is closed", "warn");
    }
  }

  function render(t) {
    var state = API.TICKET_STATE[t.state] || [t.state, t.state];
    $("status").dataset.state = t.state;
    $("status-body").className = "";
    $("status-body").innerHTML =
      '<div class="status-state pill ' + (STATE_CLASS[t.state] || "") + '" id="status-state">' + esc(state[0]) +
      '<span class="en" lang="en">' + esc(state[1]) + "</span></div>" +
      '<div class="status-number" id="status-number">' + esc(t.number) + "</div>" +
      '<div class="status-service">' + esc(t.service_zh) + '<span class="en" lang="en">' + esc(t.service_en) + "</span></div>" +
      middle(t);
    $("status-foot").textContent = "取号时间 Issued " + API.fmtDateTime(t.arrived_at) +
      (t.phone_masked ? " · 短信 SMS " + t.phone_masked : "");
    if (t.state === "called" && lastState !== "called" && navigator.vibrate) {
      try { navigator.vibrate([300, 150, 300]); } catch (e) { /* not allowed before a tap */ }
    }
    lastState = t.state;
    return ["waiting", "called", "serving", "held"].indexOf(t.state) >= 0;
  }

  function poll() {
    API.request("GET", "/api/tickets/" + encodeURIComponent(TOKEN), undefined, { token: null }).then(function (t) {
      if (render(t)) timer = setTimeout(poll, POLL_MS);
    }, function (err) {
      if (err.status === 404) {
        $("status-body").innerHTML = message("未找到该号票，请核对链接或重新取号", "No ticket matches this link; please check it or take a new ticket", "warn");
        return;
      }
      API.showError(err);
      timer = setTimeout(poll, POLL_MS * 2);
    });
  }

  poll();
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { clearTimeout(timer); poll(); }
  });
})();
