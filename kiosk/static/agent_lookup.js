/* The agent console's look-ups: the caller's history (tickets with their call notes, cases,
 * work orders, texts) for the call in hand or a number typed in, and a case by its number.
 * agent.js hands over what they share with the desk through AgentLookup.init. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var BASE = null, historyFor = null;
  var who = function () { return null; }, serviceName = null, deptName = null;

  // --- the caller's history ------------------------------------------------------------------

  function loadHistory(ticketId) {
    historyFor = ticketId;
    $("history").innerHTML = '<p class="none">' + bi("正在读取来电人记录…", "Reading the caller's history…", "row") + "</p>";
    API.get(BASE + "/tickets/" + ticketId + "/caller").then(renderHistory, function (err) {
      historyFor = null;
      $("history").innerHTML = API.errorHtml(err);
    });
  }

  function lookupCaller(e) {
    e.preventDefault();
    var phone = $("caller-phone").value.replace(/[\s-]/g, "");
    if (!phone) return;
    historyFor = null;
    API.get(BASE + "/callers/" + encodeURIComponent(phone)).then(renderHistory, function (err) {
      $("history").innerHTML = API.errorHtml(err);
    });
  }

  function renderHistory(h) {
    if (!h.phone) {
      $("history").innerHTML = '<p class="none">' + bi("来电未显示号码，无历史记录", "The caller's number is withheld: no history", "row") + "</p>";
      return;
    }
    var parts = ['<div class="who"><b id="hist-phone">' + esc(h.phone) + "</b>" +
      '<span class="muted">' + bi("号票 " + h.tickets.length + " · 办件 " + h.cases.length + " · 工单 " + h.work_orders.length,
        h.tickets.length + " tickets · " + h.cases.length + " cases · " + h.work_orders.length + " orders", "row") + "</span></div>"];
    parts.push(section("工单", "Work orders", h.work_orders, function (o) {
      return '<li><a class="mono" href="/orders#' + esc(o.number) + '">' + esc(o.number) + "</a>" +
        '<span class="ostate os-' + esc(o.state) + '">' + esc(o.state) + "</span>" +
        '<span class="tag">' + esc(o.type_zh) + "</span>" + warnTag(o.warning) +
        '<span class="grow" title="' + esc(o.description) + '">' + esc(o.description) + "</span>" +
        "<time>" + esc(API.fmtDateTime(o.opened_at).slice(5, 16)) + "</time></li>";
    }));
    parts.push(section("办件", "Cases", h.cases, function (c) {
      var n = serviceName(c.service);
      return '<li><span class="mono">' + esc(c.number) + '</span><span class="tag">' + esc(c.status) + "</span>" +
        '<span class="grow">' + esc(n[0]) + "</span><time>" + esc(c.promised_day) + "</time></li>";
    }));
    parts.push(section("号票", "Tickets", h.tickets, function (t) {
      var n = serviceName(t.service), st = API.TICKET_STATE[t.state] || [t.state, t.state];
      var ch = API.CHANNEL[t.channel] || [t.channel, t.channel];
      var said = AgentNotes.render(t.notes);
      return "<li" + (said ? ' class="has-notes"' : "") + ' data-ticket="' + esc(t.id) + '"><span class="mono">' + esc(t.number) + "</span>" +
        '<span class="tag">' + esc(ch[0]) + "</span>" + '<span class="grow">' + esc(n[0]) + " · " + esc(st[0]) + "</span><time>" +
        esc(t.day.slice(5)) + " " + esc(API.fmtTime(t.arrived_at)) + "</time>" + said + "</li>";
    }));
    parts.push(section("短信", "Texts", h.sms, function (s) {
      return '<li><span class="tag">' + esc(s.status) + '</span><span class="grow" title="' + esc(s.body) + '">' +
        esc(s.body || s.template) + "</span><time>" + esc(API.fmtTime(s.at)) + "</time></li>";
    }));
    $("history").innerHTML = parts.join("");
  }

  function section(zh, en, rows, one) {
    return "<h3>" + esc(zh) + '<span class="en">' + esc(en) + "</span></h3>" +
      (rows.length ? "<ul>" + rows.slice(0, 6).map(one).join("") + "</ul>" : '<p class="none">无 · none</p>');
  }

  function warnTag(colour) {
    if (colour === "red") return '<span class="tag warn-red">超期 overdue</span>';
    if (colour === "yellow") return '<span class="tag warn-yellow">临期 due soon</span>';
    return "";
  }

  // --- case look-up -----------------------------------------------------------------------------

  /** Officers and supervisors open any case; an agent asks the caller for the phone's last four
   * digits and uses the citizen's look-up (agents may not read cases directly). */
  function lookupCase(e) {
    e.preventDefault();
    var number = $("case-number").value.trim().toUpperCase();
    if (!number) return;
    var me = who(), direct = me && ["officer", "supervisor", "admin"].indexOf(me.role) >= 0;
    var last4 = $("case-last4");
    if (!direct) {
      last4.hidden = false;
      if (!/^\d{4}$/.test(last4.value)) {
        $("case-result").innerHTML = '<p class="muted">' + bi("请询问来电人办件登记手机号的后四位，填入后查询。",
          "Ask the caller for the last four digits of the case's phone, then look it up.") + "</p>";
        last4.focus();
        return;
      }
    }
    var url = direct ? BASE + "/cases/" + encodeURIComponent(number)
      : "/api/cases/" + encodeURIComponent(number) + "?phone_last4=" + encodeURIComponent(last4.value);
    $("case-result").innerHTML = '<p class="muted">…</p>';
    API.get(url).then(renderCase, function (err) { $("case-result").innerHTML = API.errorHtml(err); });
  }

  function renderCase(c) {
    var n = serviceName(c.service), d = deptName(c.department);
    var steps = (c.steps || []).slice(-4).map(function (s) {
      return "<li><b>" + esc(s.status) + "</b><time>" + esc(API.fmtDateTime(s.at)) + "</time>" +
        (s.note ? '<p class="step-note">' + esc(s.note) + "</p>" : "") + "</li>";
    }).join("");
    $("case-result").innerHTML = '<dl id="case-found">' +
      "<dt>编号 Number</dt><dd class=\"mono\">" + esc(c.number) + "</dd>" +
      "<dt>事项 Service</dt><dd>" + esc(c.service_zh || n[0]) + "</dd>" +
      "<dt>部门 Dept</dt><dd>" + esc(d[0]) + "</dd>" +
      "<dt>状态 Status</dt><dd>" + esc(c.status) + (c.closed_at ? " · 已办结 closed" : "") + "</dd>" +
      "<dt>承诺 Promised</dt><dd>" + esc(c.promised_day) + "</dd></dl>" +
      (steps ? '<ul class="timeline compact">' + steps + "</ul>" : "");
  }

  window.AgentLookup = {
    init: function (opts) {
      BASE = opts.base;
      who = opts.me;
      serviceName = opts.serviceName;
      deptName = opts.deptName;
      $("caller-form").addEventListener("submit", lookupCaller);
      $("case-form").addEventListener("submit", lookupCase);
    },
    /** Show the history of the caller of this ticket (once per call). */
    historyOf: function (ticketId) { if (ticketId !== historyFor) loadHistory(ticketId); },
    /** Read the shown call's history again (a work order was just opened). */
    refresh: function () { if (historyFor) loadHistory(historyFor); },
  };
})();
