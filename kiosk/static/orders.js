/* Hotline work orders (工单): agents and supervisors see every open order, officers their
 * department's, each with its state, type, deadline and yellow/red warning. Officers sign,
 * handle, reply, return and ask for extensions; agents dispatch and record the citizen's
 * verdict; supervisors grant or refuse extensions. Each order opens with its history. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var CFG = JSON.parse($("hotline-config").textContent);
  var BASE = "/api/halls/" + encodeURIComponent(API.hall);
  var OPEN_STATES = CFG.states.filter(function (s) { return s[0] !== "办结"; });
  var STATE_EN = {};
  CFG.states.forEach(function (s) { STATE_EN[s[0]] = s[1]; });
  var ACTION = {
    open: ["受理", "opened"], dispatch: ["派单", "dispatched"], sign: ["签收", "signed for"],
    handle: ["办理", "in hand"], reply: ["反馈", "replied"], follow_up: ["回访", "follow-up"],
    "return": ["退单", "returned"], extension_requested: ["申请延期", "extension asked"],
    extension_granted: ["批准延期", "extension granted"], extension_refused: ["不批准延期", "extension refused"],
    reopen: ["不满意，重办", "dissatisfied: re-handle"], close: ["办结", "closed"],
    warning_yellow: ["黄色预警", "yellow warning"], warning_red: ["红色预警", "red warning"],
    escalated: ["超期督办", "escalated"],
  };
  var SATISFACTION = [[1, "满意", "Satisfied"], [2, "基本满意", "Fairly satisfied"], [3, "不满意", "Dissatisfied"]];
  var EVENTS = Object.keys(ACTION);
  var SCAN_DAYS = 14;

  var info = null, me = null, role = "", myDept = null;
  var rows = [], selected = null, filter = { state: "", warn: false, text: "" };
  var listBroken = false, scan = { days: {}, orders: {}, scannedPast: false };
  var source = null, busy = false;

  function isOfficer() { return role === "officer"; }
  function isSupervisor() { return role === "supervisor" || role === "admin"; }
  function canDispatch() { return !isOfficer(); }

  function deptName(code) {
    var d = info && info.departments.filter(function (x) { return x.code === code; })[0];
    return d ? [d.name_zh, d.name_en] : [code || "—", code || "—"];
  }
  function stateTag(state, stacked, extra) {
    if (stacked) {
      return '<span class="ostate os-' + esc(state) + '">' + esc(state) + "</span>" + (extra || "") + '<small class="st-en" lang="en">' +
        esc(STATE_EN[state] || "") + "</small>";
    }
    return '<span class="ostate os-' + esc(state) + '">' + esc(state) + '<span class="en">' + esc(STATE_EN[state] || "") + "</span></span>";
  }
  function nowS() { return API.now() / 1000; }
  function left(order) {
    var s = order.deadline_at - nowS(), a = Math.abs(s);
    var d = Math.floor(a / 86400), h = Math.floor((a % 86400) / 3600), m = Math.floor((a % 3600) / 60);
    var zh = d ? d + "天" + h + "时" : h ? h + "时" + m + "分" : m + "分";
    var en = d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m + "m";
    return s < 0 ? ["超 " + zh, en + " late"] : [zh, en];
  }
  function warnClass(o) { return o.warning ? "w-" + o.warning : ""; }
  function warnTag(o) {
    if (o.warning === "red") return '<span class="tag warn-red">红 · overdue</span>';
    if (o.warning === "yellow") return '<span class="tag warn-yellow">黄 · due soon</span>';
    return "";
  }

  // --- reading the orders --------------------------------------------------------------------

  /** The list route; should it fail (it answers 422 today), the orders found by their numbers:
   * GD + opening day + a daily sequence, so each day is read until its first missing number. */
  function fetchOrders() {
    if (listBroken) return scanOrders();
    return API.get(BASE + "/work-orders").catch(function (err) {
      if (err.status !== 422) throw err;
      listBroken = true;
      $("notice").innerHTML = '<p class="notice" id="list-fallback">工单列表接口暂不可用，现按编号检索近' + SCAN_DAYS +
        '天受理的工单。<span class="sub-en" lang="en">The work-order list API is failing: showing orders opened in the last ' +
        SCAN_DAYS + " days, found by number.</span></p>";
      return scanOrders();
    });
  }

  function one(number) {
    return API.get(BASE + "/work-orders/" + encodeURIComponent(number)).then(function (o) {
      scan.orders[o.number] = o;
      return o;
    }, function (err) {
      if (err.status === 404) return null;
      throw err;
    });
  }

  function probeDay(day) {
    var seq = (scan.days[day] || 0) + 1;
    function next() {
      var number = "GD" + day + ("000" + seq).slice(-4);
      return one(number).then(function (o) {
        if (!o || seq >= 9999) return;
        scan.days[day] = seq;
        seq += 1;
        return next();
      });
    }
    return next();
  }

  function scanOrders() {
    var today = API.today().replace(/-/g, ""), days = [today];
    if (!scan.scannedPast) {
      for (var k = 1; k < SCAN_DAYS; k++) days.push(API.isoDay(nowS() - k * 86400).replace(/-/g, ""));
    }
    var known = Object.keys(scan.orders).filter(function (n) { return !scan.orders[n].closed_at; });
    return Promise.all(known.map(one)).then(function () {
      return Promise.all(days.map(probeDay));
    }).then(function () {
      scan.scannedPast = true;
      return Object.keys(scan.orders).map(function (n) { return scan.orders[n]; }).filter(function (o) {
        return !o.closed_at && (!isOfficer() || o.department === myDept);
      }).sort(function (a, b) { return b.opened_at - a.opened_at; });
    });
  }

  function load() {
    return fetchOrders().then(function (list) {
      rows = list;
      render();
      if (selected) openOrder(selected, true);
    }, guard);
  }
  var reload = API.debounce(load, 250);

  // --- the list ----------------------------------------------------------------------------------

  function render() {
    var counts = {};
    rows.forEach(function (o) { counts[o.state] = (counts[o.state] || 0) + 1; });
    $("state-chips").innerHTML = [["", "全部在办", "All open", rows.length]].concat(OPEN_STATES.map(function (s) {
      return [s[0], s[0], s[1], counts[s[0]] || 0];
    })).map(function (c) {
      return '<button type="button" class="chip" data-state="' + esc(c[0]) + '" aria-pressed="' + (filter.state === c[0]) + '">' +
        '<span class="bi row"><span class="zh">' + esc(c[1]) + '</span><span class="en" lang="en">' + esc(c[2]) + "</span></span><b>" + c[3] + "</b></button>";
    }).join("");
    var shown = rows.filter(function (o) {
      if (filter.state && o.state !== filter.state) return false;
      if (filter.warn && !o.warning) return false;
      if (filter.text) {
        var hay = (o.number + " " + o.description + " " + (o.location || "") + " " + o.type_zh).toLowerCase();
        if (hay.indexOf(filter.text) < 0) return false;
      }
      return true;
    });
    $("order-count").textContent = shown.length + (shown.length !== rows.length ? " / " + rows.length : "");
    var red = rows.filter(function (o) { return o.warning === "red"; }).length;
    $("red-count").hidden = !red;
    $("red-count").textContent = "超期 " + red + " overdue";
    $("orders").innerHTML = shown.length ? shown.map(row).join("") :
      '<tr><td colspan="7" class="empty">' + (isOfficer() ? "本部门暂无在办工单 · No open orders for your department" : "暂无在办工单 · No open work orders") + "</td></tr>";
    renderExtensions();
  }

  function row(o) {
    var d = o.department ? deptName(o.department) : null, l = left(o);
    return '<tr data-number="' + esc(o.number) + '" class="' + warnClass(o) + (o.number === selected ? " sel" : "") + '">' +
      '<td class="num">' + esc(o.number) + "</td>" +
      "<td>" + bi(o.type_zh, o.type_en) + (o.urgent ? ' <span class="tag urgent">急 urgent</span>' : "") + "</td>" +
      "<td>" + stateTag(o.state, true, o.extension_days ? ' <span class="tag" title="延期申请 extension requested">延+' + o.extension_days + "</span>" : "") + "</td>" +
      '<td class="dept" title="' + esc(d ? d[0] + " · " + d[1] : "") + '">' + (d ? esc(d[0]) : '<span class="muted">未派 · none</span>') + "</td>" +
      '<td class="desc" title="' + esc(o.description) + '">' + esc(o.description) + "</td>" +
      '<td class="due"><b>' + esc(l[0]) + " " + warnTag(o) + "</b>" + esc(API.fmtDateTime(o.deadline_at).slice(5, 16)) + "</td>" +
      '<td><span class="acts">' + quickAction(o) + "</span></td></tr>";
  }

  /** The one next step that fits the row (the rest are in the detail panel). */
  function quickAction(o) {
    var a = null;
    if (isOfficer()) a = { "派单": ["sign", "签收", "Sign"], "签收": ["handle", "办理", "Handle"], "办理": ["reply", "反馈", "Reply"] }[o.state];
    else if (o.state === "受理") a = ["dispatch", "派单", "Dispatch"];
    if (!a) return "";
    return '<button type="button" class="btn" data-do="' + a[0] + '" data-number="' + esc(o.number) + '">' + bi(a[1], a[2], "row") + "</button>";
  }

  function renderExtensions() {
    if (!isSupervisor()) return;
    var asks = rows.filter(function (o) { return o.extension_days; });
    $("ext-card").hidden = false;
    $("ext-count").textContent = asks.length;
    $("extensions").innerHTML = asks.length ? asks.map(function (o) {
      var d = deptName(o.department);
      return '<li data-ext="' + esc(o.number) + '"><span><span class="mono">' + esc(o.number) + "</span> · " + esc(d[0]) +
        " · " + bi("延期 " + o.extension_days + " 个工作日", o.extension_days + " working days", "row") + "</span>" +
        '<span class="acts"><button type="button" class="btn go" data-do="grant" data-number="' + esc(o.number) + '">' + bi("批准", "Grant", "row") +
        '</button><button type="button" class="btn danger" data-do="refuse" data-number="' + esc(o.number) + '">' + bi("不批准", "Refuse", "row") + "</button></span>" +
        '<span class="why">' + esc(o.extension_note || "") + " · 现期限 " + esc(API.fmtDateTime(o.deadline_at).slice(0, 16)) + "</span></li>";
    }).join("") : '<li class="muted">暂无延期申请 · No extension requests</li>';
  }

  // --- one order -------------------------------------------------------------------------------------

  function openOrder(number, quiet) {
    selected = number;
    document.querySelectorAll("#orders tr[data-number]").forEach(function (tr) {
      tr.classList.toggle("sel", tr.dataset.number === number);
    });
    if (!quiet) $("detail").innerHTML = '<p class="muted">…</p>';
    return API.get(BASE + "/work-orders/" + encodeURIComponent(number)).then(renderDetail, function (err) {
      if (err.status === 401) { guard(err); return; }
      $("detail").innerHTML = API.errorHtml(err);
    });
  }

  function renderDetail(o) {
    if (o.number !== selected) return;
    var d = o.department ? deptName(o.department) : null, l = left(o);
    var steps = (o.steps || []).map(function (s, i, all) {
      var a = ACTION[s.action] || [s.action, s.action];
      return '<li class="' + (i === all.length - 1 ? "now" : "done") + '"><span class="dot"></span><div><b>' + esc(a[0]) +
        ' <span class="muted" style="font-weight:400;font-size:12px">' + esc(a[1]) + "</span></b>" +
        "<time>" + esc(API.fmtDateTime(s.at)) + '</time><span class="by">' + esc(s.by || "") + " · " + esc(s.state) + "</span>" +
        (s.note ? '<p class="step-note">' + esc(s.note) + "</p>" : "") + "</div></li>";
    }).join("");
    $("detail").innerHTML =
      '<div class="head"><h3 id="detail-number">' + esc(o.number) + "</h3>" + stateTag(o.state) +
        '<span class="tag">' + esc(o.type_zh) + " " + esc(o.type_en) + "</span>" + (o.urgent ? '<span class="tag urgent">紧急 urgent</span>' : "") + warnTag(o) + "</div>" +
      "<dl>" +
      "<dt>诉求<span class=\"en\">Matter</span></dt><dd class=\"desc-text\">" + esc(o.description) + "</dd>" +
      "<dt>地点<span class=\"en\">Location</span></dt><dd>" + esc(o.location || "—") + "</dd>" +
      "<dt>来电<span class=\"en\">Phone</span></dt><dd class=\"mono\">" + esc(o.phone || "—") + "</dd>" +
      "<dt>部门<span class=\"en\">Department</span></dt><dd>" + (d ? esc(d[0]) + ' <span class="muted" style="font-weight:400">' + esc(d[1]) + "</span>" : "—") + "</dd>" +
      "<dt>受理<span class=\"en\">Opened</span></dt><dd>" + esc(API.fmtDateTime(o.opened_at)) + " · " + esc(o.opened_by) + "</dd>" +
      "<dt>期限<span class=\"en\">Deadline</span></dt><dd id=\"detail-deadline\">" + esc(API.fmtDateTime(o.deadline_at)) + " · " + esc(l[0]) + ' <span class="muted" style="font-weight:400">' + esc(l[1]) + "</span></dd>" +
      (o.extension_days ? "<dt>延期申请<span class=\"en\">Extension</span></dt><dd>" + o.extension_days + " 个工作日 · " + esc(o.extension_note || "") + "</dd>" : "") +
      (o.returns ? "<dt>退单<span class=\"en\">Returns</span></dt><dd>" + o.returns + "</dd>" : "") +
      (o.reopens ? "<dt>重办<span class=\"en\">Reopened</span></dt><dd>" + o.reopens + "</dd>" : "") +
      (o.reply ? "<dt>答复<span class=\"en\">Reply</span></dt><dd class=\"desc-text\">" + esc(o.reply) + "</dd>" : "") +
      (o.satisfaction ? "<dt>满意度<span class=\"en\">Verdict</span></dt><dd>" + esc(SATISFACTION[o.satisfaction - 1][1]) + "</dd>" : "") +
      "</dl>" +
      '<div class="acts" id="detail-actions">' + actions(o) + "</div>" +
      "<h3 style=\"font-family:inherit;font-size:15px;color:var(--muted);margin:0 0 8px\">处理记录 <span class=\"en\" style=\"font-size:12px;font-weight:400\">History</span></h3>" +
      '<ul class="timeline compact" id="detail-steps">' + steps + "</ul>";
  }

  function button(action, zh, en, cls, number) {
    return '<button type="button" class="btn ' + (cls || "") + '" data-do="' + action + '" data-number="' + esc(number) + '"' +
      (busy ? " disabled" : "") + ">" + bi(zh, en, "row") + "</button>";
  }

  function actions(o) {
    var n = o.number, out = [];
    if (o.closed_at) return '<span class="muted">已办结 · Closed</span>';
    if (isOfficer()) {
      if (o.department !== myDept) return "";
      if (o.state === "派单") out.push(button("sign", "签收", "Sign for it", "primary", n));
      if (o.state === "签收") out.push(button("handle", "开始办理", "Start handling", "primary", n));
      if (o.state === "办理") out.push(button("reply", "反馈结果", "Reply", "go", n));
      if (["签收", "办理"].indexOf(o.state) >= 0 && !o.extension_days) out.push(button("extension", "申请延期", "Ask for more time", "", n));
      if (["派单", "签收", "办理"].indexOf(o.state) >= 0) out.push(button("return", "退单", "Return", "danger", n));
    } else {
      if (o.state === "受理") out.push(button("dispatch", "派单", "Dispatch", "primary", n));
      if (o.state === "回访") SATISFACTION.forEach(function (s) {
        out.push(button("satisfaction-" + s[0], "回访：" + s[1], s[2], s[0] === 3 ? "danger" : "go", n));
      });
      if (isSupervisor() && o.extension_days) {
        out.push(button("grant", "批准延期", "Grant extension", "go", n));
        out.push(button("refuse", "不批准", "Refuse", "danger", n));
      }
    }
    return out.join("") || '<span class="muted">' + bi("当前无可执行操作", "Nothing for you to do now", "row") + "</span>";
  }

  // --- doing things ----------------------------------------------------------------------------------

  function post(number, action, body) {
    busy = true;
    return API.post(BASE + "/work-orders/" + encodeURIComponent(number) + "/" + action, body).then(function () {
      busy = false;
      selected = number;
      return load();
    }, function (err) {
      busy = false;
      guard(err);
      return load();
    });
  }

  var pending = null;
  function ask(title, html, then) {
    pending = then;
    $("act-title").innerHTML = title;
    $("act-body").innerHTML = html;
    $("act-dialog").showModal();
    var first = $("act-body").querySelector("textarea, select, input");
    if (first) first.focus();
  }

  function run(action, number) {
    if (action === "sign" || action === "handle") return post(number, action, action === "handle" ? {} : undefined);
    if (action === "grant" || action === "refuse") return post(number, "extension/decision", { granted: action === "grant" });
    if (action.indexOf("satisfaction-") === 0) return post(number, "satisfaction", { level: Number(action.slice(13)) });
    if (action === "dispatch") {
      var options = info.departments.map(function (d) {
        return '<option value="' + esc(d.code) + '">' + esc(d.name_zh) + " · " + esc(d.name_en) + "</option>";
      }).join("");
      return ask(bi("派单 " + number, "Dispatch", "row"),
        '<label class="field"><span>承办部门 <small>Department</small></span><select id="f-dept" required>' + options + "</select></label>" +
        '<label class="field"><span>派单说明 <small>Note (optional)</small></span><textarea id="f-note" maxlength="500"></textarea></label>',
        function () { return post(number, "dispatch", { department: $("f-dept").value, note: $("f-note").value.trim() || null }); });
    }
    if (action === "reply") {
      return ask(bi("反馈办理结果 " + number, "Reply to the caller", "row"),
        '<p class="muted" style="margin-top:0">答复将以短信发送给来电人，并请其评价满意度。<span class="sub-en" lang="en">The reply is texted to the caller with a request to rate it.</span></p>' +
        '<label class="field"><span>办理结果 <small>Reply</small></span><textarea id="f-text" required maxlength="2000"></textarea></label>',
        function () { return post(number, "reply", { reply: $("f-text").value.trim() }); });
    }
    if (action === "return") {
      return ask(bi("退单 " + number, "Return the order", "row"),
        '<label class="field"><span>退单理由 <small>Reason</small></span><textarea id="f-text" required maxlength="1000" placeholder="不属于本部门职责… · Not this department\'s remit…"></textarea></label>',
        function () { return post(number, "return", { reason: $("f-text").value.trim() }); });
    }
    if (action === "extension") {
      return ask(bi("申请延期 " + number, "Ask for more time", "row"),
        '<label class="field"><span>延期工作日 <small>Working days (1–30)</small></span><input id="f-days" type="number" min="1" max="30" value="3" required></label>' +
        '<label class="field"><span>延期理由 <small>Reason</small></span><textarea id="f-text" required maxlength="1000"></textarea></label>',
        function () { return post(number, "extension", { days: Number($("f-days").value), reason: $("f-text").value.trim() }); });
    }
  }

  // --- live --------------------------------------------------------------------------------------------

  function setLive(state) {
    document.querySelectorAll("[data-live]").forEach(function (el) { el.dataset.live = state; });
  }

  /** The shared feed helper listens to queue events only; work-order events are named
   * workorder.*, so this page follows them on its own stream (the payload is not public:
   * any of them means "read again"). */
  function watch() {
    if (source) source.close();
    source = new EventSource(BASE + "/feed?token=" + encodeURIComponent(API.token() || ""));
    source.onopen = function () { setLive("on"); };
    EVENTS.forEach(function (t) { source.addEventListener("workorder." + t, reload); });
    source.onerror = function () {
      setLive("off");
      if (source.readyState === EventSource.CLOSED) setTimeout(watch, 5000);
    };
  }

  function guard(err) { Signin.guard(err); }

  function bind() {
    $("work").addEventListener("click", function (e) {
      var b = e.target.closest("[data-do]");
      if (b) {
        e.stopPropagation();
        if (!b.disabled && !busy) run(b.dataset.do, b.dataset.number);
        return;
      }
      var chip = e.target.closest("[data-state]");
      if (chip && chip.closest("#state-chips")) { filter.state = chip.dataset.state; render(); return; }
      var tr = e.target.closest("tr[data-number]");
      if (tr) {
        history.replaceState(null, "", "#" + tr.dataset.number);
        openOrder(tr.dataset.number);
      }
    });
    $("warn-chip").addEventListener("click", function () {
      filter.warn = !filter.warn;
      $("warn-chip").setAttribute("aria-pressed", String(filter.warn));
      render();
    });
    $("search").addEventListener("input", function () {
      filter.text = $("search").value.trim().toLowerCase();
      render();
    });
    $("search").addEventListener("keydown", function (e) {
      var v = $("search").value.trim().toUpperCase();
      if (e.key === "Enter" && /^GD\d{12}$/.test(v)) openOrder(v); // any order by its number
    });
    $("act-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var missing = $("act-body").querySelector(":invalid");
      if (missing) { missing.reportValidity(); return; }
      $("act-dialog").close();
      if (pending) pending();
      pending = null;
    });
    $("act-cancel").addEventListener("click", function () { pending = null; $("act-dialog").close(); });
  }

  bind();
  Signin.start(function (who) {
    me = who;
    role = who.role || "";
    myDept = CFG.officers[who.virtual_number] || null;
    $("to-agent").hidden = isOfficer();
    if (isOfficer()) {
      API.hallInfo().then(function (hall) {
        var d = hall.departments.filter(function (x) { return x.code === myDept; })[0];
        $("list-title").textContent = "本部门工单 · " + (d ? d.name_zh : myDept || "");
        $("list-title-en").textContent = "Your department's open orders";
      });
    }
    $("work").hidden = false;
    API.hallInfo().then(function (hall) {
      info = hall;
      return API.get(BASE + "/snapshot").then(function (snap) { API.syncClock(snap.at); });
    }).then(function () {
      var hash = decodeURIComponent(location.hash.slice(1));
      if (/^GD\d{12}$/.test(hash)) selected = hash;
      return load();
    }).then(function () {
      watch();
    }).catch(guard);
  });
  setInterval(function () { if (me && !$("work").hidden && !busy) reload(); }, 15000);
})();
