/* The supervisor's records (supervisor.js starts it after sign-in): bad-rating
 * follow-ups with their verify and close forms, 好评率 and the rating distribution per
 * staffer and per service, and open cases past their promised date. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var BASE = "/api/halls/" + encodeURIComponent(API.hall);
  var info = null, names = {}, onError = API.showError, started = false, shownFollowUps = "";

  function serviceNames(code) {
    var s = info && info.serviceByCode[code];
    return s ? [s.name_zh, s.name_en, s.prefix] : [code, code, ""];
  }
  function deptName(code) {
    var d = info && info.departments.filter(function (x) { return x.code === code; })[0];
    return d ? d.name_zh : code;
  }
  function pastDue(day) { return day && API.today() > day; }
  function daysLate(day) {
    return Math.round((new Date(API.today() + "T00:00:00Z") - new Date(day + "T00:00:00Z")) / 86400000);
  }

  // --- follow-ups ---------------------------------------------------------------------

  function due(zh, en, day, done) {
    var late = !done && pastDue(day);
    return '<span class="due' + (late ? " late" : "") + (done ? " met" : "") + '">' + esc(zh) + ' <span class="en" lang="en">' + esc(en) +
      "</span> <b>" + esc(day) + "</b>" + (late ? " · 已逾期 overdue" : "") + "</span>";
  }

  function followUp(f) {
    var state = { open: "st-paused", verified: "st-calling", fixed: "st-available", explained: "st-available" }[f.state] || "";
    var head = '<div class="fu-head"><span class="fu-id">#' + f.id + '</span><span class="pill ' + state + ' fu-state">' +
      esc(f.state_zh) + ' <span class="en" lang="en">' + esc(f.state) + "</span></span>" +
      '<span class="fu-meta">号票 Ticket #' + esc(f.ticket_id) + " · 工号 " + esc(f.virtual_number || "—") +
      (names[f.virtual_number] ? " " + esc(names[f.virtual_number]) : "") + " · 差评时间 " + esc(API.fmtDateTime(f.opened_at).slice(0, 16)) + "</span>" +
      '<span class="fu-dues">' + due("核实期限", "verify by", f.verify_by, f.state !== "open") + due("办结期限", "close by", f.deadline, false) + "</span></div>";
    var body;
    if (f.state === "open") {
      body = '<form class="fu-form" data-verify="' + f.id + '" novalidate>' +
        '<label class="field"><span>回访核实情况 <small>What the call-back found</small></span>' +
        '<textarea name="finding" maxlength="1000" rows="2" placeholder="已电话回访市民，核实情况如下……"></textarea></label>' +
        '<button type="submit" class="btn primary">' + bi("核实", "Verify", "row") + "</button></form>";
    } else {
      body = '<p class="fu-finding"><b>核实 Finding:</b> ' + esc(f.finding || "") + "</p>" +
        '<form class="fu-form close" data-close="' + f.id + '" novalidate>' +
        '<label class="field"><span>处理结果 <small>Outcome</small></span><select name="outcome">' +
        '<option value="fixed">已整改 · Fixed</option><option value="explained">已解释说明 · Explained</option></select></label>' +
        '<label class="field"><span>整改措施或说明 <small>Resolution</small></span><input name="resolution" maxlength="1000"></label>' +
        '<label class="field wide"><span>给市民的答复（短信发送）<small>Reply to the citizen (sent by text)</small></span>' +
        '<textarea name="reply" maxlength="300" rows="2"></textarea></label>' +
        '<button type="submit" class="btn go">' + bi("办结", "Close", "row") + "</button></form>";
    }
    return '<article class="fu" data-follow-up="' + f.id + '" data-state="' + esc(f.state) + '">' + head + body + "</article>";
  }

  function renderFollowUps(list) {
    $("fu-count").textContent = list.length + " 待办 · open";
    var sig = JSON.stringify(list.map(function (f) { return [f.id, f.state]; }));
    if (sig === shownFollowUps) return; // keep what the supervisor is typing
    shownFollowUps = sig;
    $("follow-ups").innerHTML = list.length ? list.map(followUp).join("")
      : '<p class="empty">暂无待处理的差评 · No open follow-ups</p>';
  }

  function submitFollowUp(form) {
    var data = {}, path;
    Array.prototype.forEach.call(form.elements, function (el) { if (el.name) data[el.name] = el.value.trim(); });
    if (form.dataset.verify) {
      path = BASE + "/follow-ups/" + form.dataset.verify + "/verify";
      if (!data.finding) return API.showError({ message_zh: "请填写核实情况", message_en: "Write what the call-back found" });
    } else {
      path = BASE + "/follow-ups/" + form.dataset.close + "/close";
      if (!data.resolution || !data.reply) return API.showError({ message_zh: "请填写整改措施和答复", message_en: "Write the resolution and the reply" });
    }
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    return API.post(path, data).then(function () { shownFollowUps = ""; return load(); }, function (err) {
      button.disabled = false;
      onError(err);
    });
  }

  // --- rating statistics ----------------------------------------------------------------

  function dist(counts, rated) {
    if (!rated) return '<span class="muted">—</span>';
    return '<span class="dist" title="5→1: ' + [5, 4, 3, 2, 1].map(function (l) { return counts[l] || 0; }).join(" / ") + '">' +
      [5, 4, 3, 2, 1].map(function (l) {
        var n = counts[l] || 0;
        return n ? '<i style="flex:' + n + ";background:" + Rating.level(l).colour + '" data-level="' + l + '">' + n + "</i>" : "";
      }).join("") + "</span>";
  }

  function statRow(r, label, attr) {
    var pct = r.good_rate == null ? null : Math.round(r.good_rate * 100);
    return "<tr " + attr + '="' + esc(r.key) + '">' + "<td>" + label + "</td>" +
      '<td class="r">' + r.served + "</td>" +
      '<td class="r rated">' + r.rated + "</td>" +
      "<td>" + dist(r.ratings, r.rated) + "</td>" +
      '<td class="r good-rate' + (pct != null && pct < 90 ? " low" : "") + '">' + (pct == null ? "—" : "<b>" + pct + "%</b>") + "</td>" +
      '<td class="r">' + (r.avg_wait_min == null ? "—" : r.avg_wait_min + " 分") + "</td>" +
      '<td class="r">' + (r.avg_handle_min == null ? "—" : r.avg_handle_min + " 分") + "</td></tr>";
  }

  function renderStats(stats) {
    var empty = '<tr><td colspan="7" class="empty">今日暂无办结 · Nothing served today</td></tr>';
    $("by-staff").innerHTML = (stats.by_staff || []).map(function (r) {
      return statRow(r, '<b class="mono">' + esc(r.key || "—") + "</b>" + (names[r.key] ? " " + esc(names[r.key]) : ""), "data-rated-staff");
    }).join("") || empty;
    $("by-service").innerHTML = (stats.by_service || []).map(function (r) {
      var n = serviceNames(r.key);
      return statRow(r, '<span class="svc-cell"><b class="prefix">' + esc(n[2]) + "</b>" + esc(n[0]) + "</span>", "data-rated-service");
    }).join("") || empty;
  }

  // --- overdue cases -----------------------------------------------------------------------

  function renderOverdue(list) {
    $("overdue-count").textContent = list.length + " 件";
    $("overdue-count").className = "pill" + (list.length ? " st-paused" : "");
    $("overdue").innerHTML = list.length ? list.map(function (c) {
      var n = serviceNames(c.service);
      return '<tr class="overdue" data-case="' + esc(c.number) + '"><td class="mono"><b>' + esc(c.number) + "</b></td>" +
        "<td>" + esc(n[0]) + ' <span class="en" lang="en">' + esc(n[1]) + "</span></td>" +
        "<td>" + esc(deptName(c.department)) + "</td>" +
        '<td><span class="pill st-serving">' + esc(c.status) + "</span></td>" +
        "<td>" + esc(API.fmtDateTime(c.opened_at).slice(0, 16)) + "</td>" +
        '<td class="late">' + esc(c.promised_day) + "</td>" +
        '<td class="r late"><b>' + daysLate(c.promised_day) + "</b> 天 · days</td></tr>";
    }).join("") : '<tr><td colspan="7" class="empty">没有超期办件 · No overdue cases</td></tr>';
  }

  function legend() {
    $("dist-legend").innerHTML = Rating.LEVELS.map(function (l) {
      return '<span><i style="background:' + l.colour + '"></i>' + l.level + " " + esc(l.zh) + ' <span class="en" lang="en">' + esc(l.en) + "</span></span>";
    }).join("");
  }

  function load() {
    return Promise.all([API.get(BASE + "/follow-ups"), API.get(BASE + "/ratings/stats"), API.get(BASE + "/cases/overdue")])
      .then(function (res) {
        renderFollowUps(res[0]);
        renderStats(res[1]);
        renderOverdue(res[2]);
      });
  }
  var reload = API.debounce(function () { if (started) load().catch(onError); }, 400);

  $("follow-ups").addEventListener("submit", function (e) {
    e.preventDefault();
    submitFollowUp(e.target);
  });

  window.Records = {
    /** Begin once the supervisor is signed in (guard handles 401/403 like the board). */
    start: function (guard) {
      onError = guard || API.showError;
      started = true;
      legend();
      return API.hallInfo().then(function (hall) { info = hall; return load(); }).catch(onError);
    },
    staff: function (rows) { rows.forEach(function (r) { if (r.name) names[r.virtual_number] = r.name; }); },
    onEvent: function (ev) { if (/^(rating|followup|case|ticket\.completed)/.test(ev.type)) reload(); },
    reload: reload,
  };
  setInterval(reload, 30000);
})();
