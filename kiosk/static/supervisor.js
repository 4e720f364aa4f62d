/* The supervisor dashboard: every window and seat with its virtual number, state and
 * time in state; every queue; today's totals. Live through the feed. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var feed = null, seats = [], windows = {};

  function totals(s) {
    var tiles = [
      ["今日取号", "Issued today", s.issued, "张"],
      ["正在等候", "Waiting now", s.waiting, "人"],
      ["已办结", "Served", s.served, "件"],
      ["过号", "No-shows", s.no_show, "个"],
      ["平均等候", "Average wait", s.avg_wait_min == null ? "—" : s.avg_wait_min, "分钟"],
      ["平均办理", "Average handling", s.avg_handle_min == null ? "—" : s.avg_handle_min, "分钟"],
    ];
    $("totals").innerHTML = tiles.map(function (t, i) {
      return '<div class="total" data-total="' + ["issued", "waiting", "served", "no_show", "avg_wait", "avg_handle"][i] + '">' +
        bi(t[0], t[1]) + "<b>" + esc(t[2]) + "<small>" + t[3] + "</small></b></div>";
    }).join("");
  }

  function queues(rows) {
    $("queues").innerHTML = rows.map(function (q) {
      var share = q.within_target_share, pct = share == null ? null : Math.round(share * 100);
      var over = q.waiting > 0 && q.longest_wait_min > q.target_wait_min;
      return '<tr data-service="' + esc(q.service) + '"' + (over ? ' class="over"' : "") + ">" +
        '<td class="svc"><b>' + esc(q.prefix) + "</b> " + esc(q.name_zh) + ' <span class="en" lang="en">' + esc(q.name_en) + "</span></td>" +
        '<td class="r"><b class="q-waiting">' + q.waiting + "</b></td>" +
        '<td class="r longest">' + (q.waiting ? esc(API.fmtMinutes(q.longest_wait_min)) + " 分" : "—") + "</td>" +
        '<td class="r"><b class="q-served">' + q.served_today + "</b></td>" +
        "<td>" + (pct == null ? '<span class="muted">—</span>' :
          '<span class="share' + (pct < 80 ? " low" : "") + '"><i style="--p:' + pct + '%"></i>' + pct + "%</span>") + "</td>" +
        '<td class="r muted">' + esc(q.target_wait_min < 1 ? Math.round(q.target_wait_min * 60) + " 秒" : q.target_wait_min + " 分") + "</td></tr>";
    }).join("");
  }

  function seatRows(snap, rows) {
    var byWindow = {};
    rows.forEach(function (r) { if (r.window && r.state !== "offline") byWindow[r.window] = r; });
    var zone = null, html = "";
    seats = [];
    (snap.windows || []).forEach(function (l) {
      var r = byWindow[l.window] || null;
      var z = /^H/.test(l.window) ? "H" : null;
      var w = windows[l.window];
      var zoneName = w ? w.zone : z;
      if (zoneName !== zone) {
        zone = zoneName;
        html += '<div class="seat-zone">' + (zone === "H" ? "热线坐席 · Hotline seats" : esc(zone) + " 区 · Zone " + esc(zone)) + "</div>";
      }
      var state = r ? r.state : "offline";
      var extra = "";
      if (state === "paused" && r.pause_reason) extra = (API.PAUSE[r.pause_reason] || [r.pause_reason])[0];
      else if (r && r.ticket) extra = r.ticket;
      else if (r) extra = "办结" + r.served_today;
      seats.push({ id: "seat-" + l.window, since: r ? r.since : null });
      html += '<div class="seat s-' + state + '" data-window="' + esc(l.window) + '" data-state="' + state + '">' +
        '<div class="seat-top"><span class="seat-no">' + esc(l.window) + '</span><span class="seat-vn">' + esc(r ? r.virtual_number : "—") + "</span></div>" +
        '<div class="seat-state">' + esc((API.WS_STATE[state] || [state])[0]) + "</div>" +
        '<div class="seat-extra"><span class="seat-time" id="seat-' + esc(l.window) + '"></span><b>' + esc(extra) + "</b></div></div>";
    });
    $("seats").innerHTML = html;
    tick();
  }

  function legend() {
    $("legend").innerHTML = ["offline", "available", "calling", "serving", "wrap_up", "paused"].map(function (s) {
      return '<span class="pill st-' + s + '">' + esc(API.WS_STATE[s][0]) + " " + esc(API.WS_STATE[s][1]) + "</span>";
    }).join("");
  }

  function tick() {
    var now = API.now() / 1000;
    seats.forEach(function (s) {
      var el = document.getElementById(s.id);
      if (el) el.textContent = s.since ? API.fmtDuration(now - s.since) : "";
    });
  }

  function load() {
    var base = "/api/halls/" + API.hall;
    return Promise.all([API.get(base + "/stats"), API.get(base + "/workstations"), API.get(base + "/snapshot")])
      .then(function (res) {
        API.syncClock(res[2].at);
        totals(res[0]);
        queues(res[0].queues || []);
        seatRows(res[2], res[1]);
        if (window.Records) Records.staff(res[1]);
      });
  }
  // A staffer who is not a supervisor gets a 403: say so, and ask for another sign-in.
  function guard(err) {
    if (err && err.status === 403) {
      API.setToken(null);
      $("board").hidden = true;
      Signin.showLogin();
      API.showError(err);
      return;
    }
    Signin.guard(err);
  }
  var reload = API.debounce(function () { load().catch(guard); }, 300);

  Signin.start(function (who) {
    $("board").hidden = false;
    legend();
    API.hallInfo().then(function (hall) {
      hall.windows.forEach(function (w) { windows[w.number] = w; });
      return load();
    }).then(function () {
      if (window.Records) Records.start(guard);
      if (!feed) {
        feed = API.feed(API.hall, API.token(), function (ev) {
          reload();
          if (window.Records) Records.onEvent(ev);
        }, { onOpen: function () { reload(); if (window.Records) Records.reload(); } });
      }
    }).catch(guard);
  });
  setInterval(tick, 1000);
  setInterval(function () { if (!$("board").hidden) reload(); }, 15000);
})();
