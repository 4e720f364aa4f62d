/* The department officer's page (部门审批): the department's open cases, each with its
 * steps, and buttons for the statuses the case's flow allows next. Late cases are red. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var BASE = "/api/halls/" + encodeURIComponent(API.hall);
  var FLOWS = JSON.parse($("case-flows").textContent || "{}");
  var info = null, feed = null, cases = [], selected = null, busy = false;

  function names(code) {
    var s = info && info.serviceByCode[code];
    return s ? [s.name_zh, s.name_en] : [code, code];
  }
  function deptName(code) {
    var d = info && info.departments.filter(function (x) { return x.code === code; })[0];
    return d ? [d.name_zh, d.name_en] : [code, code];
  }
  function overdue(c) { return c.closed_at == null && c.promised_day < API.today(); }
  function lateDays(c) {
    var ms = new Date(API.today() + "T00:00:00Z") - new Date(c.promised_day + "T00:00:00Z");
    return Math.round(ms / 86400000);
  }
  function promisedCell(c) {
    return esc(c.promised_day) + (overdue(c) ? ' <span class="late-tag">超期' + lateDays(c) + "天 · " + lateDays(c) + "d late</span>" : "");
  }

  // --- the list ---------------------------------------------------------------------

  function renderList() {
    var late = cases.filter(overdue).length;
    $("case-count").textContent = cases.length + " 件 · open";
    $("overdue-count").hidden = !late;
    $("overdue-count").textContent = "超期 " + late + " · overdue";
    $("cases").innerHTML = cases.length ? cases.map(function (c) {
      var n = names(c.service);
      return '<tr data-case="' + esc(c.number) + '" class="' + (overdue(c) ? "overdue" : "") +
        (c.number === selected ? " selected" : "") + '" tabindex="0">' +
        '<td class="mono"><b>' + esc(c.number) + "</b></td>" +
        '<td class="svc-name">' + esc(n[0]) + ' <span class="en" lang="en">' + esc(n[1]) + "</span></td>" +
        '<td><span class="pill st-serving case-status">' + esc(c.status) + "</span></td>" +
        "<td>" + esc(API.fmtDateTime(c.opened_at).slice(0, 16)) + "</td>" +
        '<td class="promised">' + promisedCell(c) + "</td></tr>";
    }).join("") : '<tr><td colspan="5" class="empty">本部门暂无在办件 · No open cases in your department</td></tr>';
  }

  function load() {
    return API.get(BASE + "/cases").then(function (list) {
      cases = list;
      renderList();
      if (selected) return select(selected, true);
      return null;
    });
  }

  // --- one case ------------------------------------------------------------------------

  function select(number, quiet) {
    selected = number;
    document.querySelectorAll("#cases [data-case]").forEach(function (r) {
      r.classList.toggle("selected", r.dataset.case === number);
    });
    return API.get(BASE + "/cases/" + encodeURIComponent(number)).then(renderDetail, function (err) {
      if (!quiet) guard(err);
    });
  }

  function renderDetail(c) {
    var flow = FLOWS[c.flow] || { transitions: {} };
    var nexts = flow.transitions[c.status] || [];
    var n = names(c.service), d = deptName(c.department);
    var steps = (c.steps || []).map(function (s, i, all) {
      return '<li class="' + (i === all.length - 1 ? "now" : "done") + '" data-status="' + esc(s.status) + '"><span class="dot" aria-hidden="true"></span><div>' +
        "<b>" + esc(s.status) + "</b><time>" + esc(API.fmtDateTime(s.at)) + "</time>" +
        (s.by ? '<span class="by">' + esc(s.by) + "</span>" : "") +
        (s.note ? '<p class="step-note">' + esc(s.note) + "</p>" : "") + "</div></li>";
    }).join("");
    var buttons = nexts.map(function (to, i) {
      var refusal = i > 0 && !(flow.transitions[to] || []).length;
      return '<button type="button" class="btn ' + (refusal ? "danger" : "go") + '" data-to="' + esc(to) + '">' +
        bi("转为 " + to, "Move to " + to, "row") + "</button>";
    }).join("");
    $("detail-body").innerHTML =
      '<div class="detail-head" data-number="' + esc(c.number) + '" data-status="' + esc(c.status) + '">' +
      '<span class="detail-number mono">' + esc(c.number) + '</span><span class="pill ' +
      (c.closed_at ? "st-available" : "st-serving") + '" id="detail-status">' + esc(c.status) + "</span></div>" +
      '<dl class="cur-facts">' +
      "<dt>事项<span class=\"en\">Service</span></dt><dd>" + esc(n[0]) + ' <span class="muted en">' + esc(n[1]) + "</span></dd>" +
      "<dt>部门<span class=\"en\">Department</span></dt><dd>" + esc(d[0]) + "</dd>" +
      "<dt>受理<span class=\"en\">Opened</span></dt><dd>" + esc(API.fmtDateTime(c.opened_at)) + (c.opened_by ? ' <span class="muted">· ' + esc(c.opened_by) + "</span>" : "") + "</dd>" +
      "<dt>承诺办结<span class=\"en\">Promised</span></dt><dd" + (overdue(c) ? ' class="late"' : "") + ' id="detail-promised">' + promisedCell(c) + "</dd>" +
      "<dt>申请人手机<span class=\"en\">Phone</span></dt><dd>" + esc(c.phone || "—") + "</dd>" +
      "</dl>" +
      '<h3 class="sub-h">办理步骤 <span class="en">Steps</span></h3><ol class="timeline compact">' + steps + "</ol>" +
      (nexts.length
        ? '<div class="advance"><label class="field"><span>办理意见（选填，将随短信告知申请人）<small>Note (optional, sent to the applicant)</small></span>' +
          '<textarea id="advance-note" maxlength="500" rows="2"></textarea></label><div class="advance-buttons" id="advance-buttons">' + buttons + "</div></div>"
        : '<div class="status-msg ok">' + bi("该办件已办结", "This case is closed") + "</div>");
  }

  function advance(to) {
    if (busy || !selected) return;
    busy = true;
    var note = ($("advance-note") && $("advance-note").value.trim()) || null;
    document.querySelectorAll("#advance-buttons button").forEach(function (b) { b.disabled = true; });
    API.post(BASE + "/cases/" + encodeURIComponent(selected) + "/advance", { to: to, note: note }).then(function () {
      busy = false;
      return load();
    }, function (err) {
      busy = false;
      guard(err);
      select(selected, true);
    });
  }

  // --- sign-in, errors, live updates -------------------------------------------------------

  function guard(err) {
    if (err && err.status === 403) {
      API.setToken(null);
      $("work").hidden = true;
      Signin.showLogin();
      API.showError(err);
      return;
    }
    Signin.guard(err);
  }
  var reload = API.debounce(function () { load().catch(guard); }, 300);

  $("cases").addEventListener("click", function (e) {
    var row = e.target.closest("[data-case]");
    if (row) select(row.dataset.case);
  });
  $("cases").addEventListener("keydown", function (e) {
    var row = e.target.closest("[data-case]");
    if (row && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); select(row.dataset.case); }
  });
  $("detail").addEventListener("click", function (e) {
    var b = e.target.closest("[data-to]");
    if (b && !b.disabled) advance(b.dataset.to);
  });

  Signin.start(function () {
    $("work").hidden = false;
    API.hallInfo().then(function (hall) {
      info = hall;
      // The server's clock decides what is overdue.
      return API.get(BASE + "/snapshot").then(function (snap) { API.syncClock(snap.at); }, function () { /* browser time */ });
    }).then(load).then(function () {
      if (!feed) {
        feed = API.feed(API.hall, API.token(), function (ev) {
          if (/^case\./.test(ev.type)) reload();
        }, { onOpen: reload });
      }
    }).catch(guard);
  });
  setInterval(function () { if (!$("work").hidden) reload(); }, 60000);
})();
