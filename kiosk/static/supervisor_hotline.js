/* The supervisor dashboard's hotline panel: today's 96166 figures (offered, answered,
 * abandoned, service levels, ASA, AHT, longest waiting now, reservations) and the work
 * orders by state, overdue and satisfied rate; read every few seconds. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var board = $("board");
  if (!board) return;
  var EVERY_MS = 5000;
  var STATES = [["受理", "accepted"], ["派单", "dispatched"], ["签收", "signed for"], ["办理", "in hand"],
                ["反馈", "replied"], ["回访", "follow-up"], ["办结", "closed"]];
  var loading = false, stopped = false;

  if (!document.querySelector('link[href="/static/hotline.css"]')) {
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = "/static/hotline.css";
    document.head.appendChild(link);
  }

  var panel = document.createElement("section");
  panel.className = "card hl-panel";
  panel.id = "hotline-panel";
  panel.innerHTML = "<h2>96166 热线 <span class=\"en\">Hotline today</span><span class=\"h2-tools\">" +
    '<a class="pill" href="/orders" style="text-decoration:none">工单 · Work orders →</a><span class="pill" id="hl-updated">—</span></span></h2>' +
    '<div class="hl-tiles" id="hl-tiles"></div>' +
    '<div class="hl-row2"><div class="hl-states" id="hl-states"></div><div class="hl-res" id="hl-res"></div></div>';
  var totals = $("totals");
  if (totals && totals.parentNode === board) board.insertBefore(panel, totals.nextSibling);
  else board.insertBefore(panel, board.firstChild);

  function pct(x) { return x == null ? "—" : Math.round(x * 1000) / 10 + "<small>%</small>"; }
  function secs(x) { return x == null ? "—" : (x < 100 ? Math.round(x * 10) / 10 + "<small>秒</small>" : esc(API.fmtDuration(x))); }

  function tile(key, zh, en, value, cls, sub) {
    return '<div class="hl-tile ' + (cls || "") + '" data-hl="' + key + '">' + bi(zh, en) + "<b>" + value + "</b>" +
      (sub ? '<div class="sub">' + sub + "</div>" : "") + "</div>";
  }

  function render(s) {
    var wo = s.work_orders || { by_state: {}, overdue: 0, satisfied_rate: null };
    var res = s.reservations || {};
    var slBad = s.service_level != null && s.service_level < 0.8;
    $("hl-tiles").innerHTML = [
      tile("offered", "来电", "Offered", esc(s.offered)),
      tile("answered", "接通", "Answered", esc(s.answered), "good"),
      tile("abandoned", "放弃", "Abandoned", esc(s.abandoned), s.abandoned ? "bad" : "",
        "5 秒内 " + esc(s.abandoned_within_5s) + " · ≤5 s"),
      tile("sl", "服务水平", "SL · 15 s", pct(s.service_level), slBad ? "bad" : "good", "接通计 answered"),
      tile("sl2", "服务水平2", "SL2 · 15 s", pct(s.service_level_2), "", "含放弃 incl. abandoned"),
      tile("asa", "平均应答", "ASA", secs(s.average_speed_of_answer_s)),
      tile("aht", "平均处理", "AHT", s.average_handle_time_s == null ? "—" : esc(API.fmtDuration(s.average_handle_time_s))),
      tile("longest", "当前最长等待", "Longest waiting", s.longest_waiting_now_s ? esc(API.fmtDuration(s.longest_waiting_now_s)) : "0",
        s.longest_waiting_now_s > 15 ? "bad" : ""),
      tile("overdue", "超期工单", "Overdue orders", esc(wo.overdue), wo.overdue ? "bad" : ""),
      tile("satisfied", "满意率", "Satisfied", pct(wo.satisfied_rate), "", "满意+基本满意 · 1–2"),
    ].join("");
    $("hl-states").innerHTML = STATES.map(function (st) {
      return '<div class="os-' + st[0] + '" data-hl-state="' + st[0] + '"><b>' + esc((wo.by_state || {})[st[0]] || 0) + "</b>" +
        bi(st[0], st[1]) + "</div>";
    }).join("");
    $("hl-res").innerHTML = '<span class="muted">' + bi("预占", "Reservations", "row") + "</span>" +
      "<span>分配 offered<b>" + esc(res.offered || 0) + "</b></span>" +
      '<span data-hl="accepted">接听 accepted<b>' + esc(res.accepted || 0) + "</b></span>" +
      '<span data-hl="rejected">拒接 rejected<b>' + esc(res.rejected || 0) + "</b></span>" +
      '<span data-hl="timeout">超时 timed out<b>' + esc(res.timeout || 0) + "</b></span>";
    $("hl-updated").textContent = API.fmtTime(API.now() / 1000) + " 更新 updated";
  }

  function load() {
    if (stopped || loading || board.hidden || !API.token()) return;
    loading = true;
    API.get("/api/halls/" + encodeURIComponent(API.hall) + "/hotline/stats").then(function (s) {
      loading = false;
      render(s);
    }, function (err) {
      loading = false;
      if (err.status === 401 || err.status === 403) return; // the dashboard asks for a sign-in
      if (err.status === 404) { stopped = true; panel.hidden = true; return; } // no hotline here
      API.showError(err);
    });
  }

  new MutationObserver(load).observe(board, { attributes: true, attributeFilter: ["hidden"] });
  load();
  setInterval(load, EVERY_MS);
})();
