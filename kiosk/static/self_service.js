/* Citizen self-service (预约与查询): book a slot, find or cancel a booking, follow an
 * application case, open a ticket's status page. Public: no token is ever sent. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var BASE = "/api/halls/" + encodeURIComponent(API.hall);
  var FLOWS = JSON.parse($("case-flows").textContent || "{}");
  var policy = $("tab-book").dataset;
  var info = null;
  var pick = { service: "", day: "", slot: null, slotLabel: "" };

  function call(method, path, data) {
    return API.request(method, path, data, { token: null });
  }
  function phoneOk(p) { return /^1[3-9]\d{9}$/.test(p); }
  function digits(el) { el.value = el.value.replace(/\D+/g, ""); return el.value; }
  function dayHtml(iso) { var d = API.fmtDay(iso); return esc(d[0]) + '<span class="sub-en" lang="en">' + esc(d[1]) + "</span>"; }
  function slotText(a) { return API.fmtTime(a.slot_start) + "–" + API.fmtTime(a.slot_end); }
  function serviceNames(code) {
    var s = info && info.serviceByCode[code];
    return s ? [s.name_zh, s.name_en] : [code, code];
  }
  function fact(zh, en, value, id) {
    return "<div><dt>" + esc(zh) + '<span class="en" lang="en">' + esc(en) + "</span></dt><dd" +
      (id ? ' id="' + id + '"' : "") + ">" + value + "</dd></div>";
  }

  // --- tabs ----------------------------------------------------------------------------

  function showTab(name) {
    document.querySelectorAll("#tabs [data-tab]").forEach(function (b) {
      b.setAttribute("aria-selected", String(b.dataset.tab === name));
    });
    document.querySelectorAll(".ss-panel").forEach(function (p) { p.hidden = p.id !== "tab-" + name; });
  }

  // --- booking ---------------------------------------------------------------------------

  function fillServices() {
    var sel = $("bk-service");
    info.departments.forEach(function (d) {
      var services = info.services.filter(function (s) {
        return s.department === d.code && s.bookable && s.channel === "hall";
      });
      if (!services.length) return;
      var group = document.createElement("optgroup");
      group.label = d.name_zh + " · " + d.name_en;
      services.forEach(function (s) {
        var o = document.createElement("option");
        o.value = s.code;
        o.textContent = s.name_zh;
        group.appendChild(o);
      });
      sel.appendChild(group);
    });
  }

  /** Under the choice: the English name, the department and the promised time. */
  function serviceInfo() {
    var s = info.serviceByCode[pick.service], box = $("bk-svc-info");
    box.hidden = !s;
    if (!s) return;
    var d = info.departments.filter(function (x) { return x.code === s.department; })[0] || { name_zh: "", name_en: "" };
    box.innerHTML = esc(d.name_zh) + (s.case_flow === "instant" ? " · 即办件" : " · 承诺" + s.promise_days + "个工作日办结") +
      '<span class="sub-en" lang="en">' + esc(s.name_en) + " · " + esc(d.name_en) +
      (s.case_flow === "instant" ? " · done at the window" : " · ready in " + s.promise_days + " working days") + "</span>";
  }

  function loadDays() {
    return call("GET", BASE + "/booking/days").then(function (days) {
      $("bk-days").innerHTML = days.length ? days.map(function (day) {
        var d = API.fmtDay(day);
        return '<button type="button" class="chip" data-day="' + esc(day) + '" aria-pressed="false">' +
          bi(d[0], d[1]) + "</button>";
      }).join("") : '<span class="muted">暂无可预约日期 · No days open for booking</span>';
    });
  }

  function loadSlots() {
    pick.slot = null;
    sync();
    if (!pick.service || !pick.day) return Promise.resolve();
    $("bk-slots").innerHTML = '<p class="muted hint-line">正在查询… Loading…</p>';
    return call("GET", BASE + "/booking/slots?service=" + encodeURIComponent(pick.service) +
      "&day=" + encodeURIComponent(pick.day)).then(function (slots) {
      $("bk-slots").innerHTML = slots.length ? slots.map(function (s) {
        var full = s.free <= 0;
        return '<button type="button" class="slot" data-start="' + s.start + '" data-label="' + esc(s.label) + '"' +
          (full ? " disabled" : "") + ' aria-pressed="false"><b>' + esc(s.label) + "</b><small>" +
          (full ? "已约满 · Full" : "余 " + s.free + " · " + s.free + " left") + "</small></button>";
      }).join("") : '<p class="muted hint-line">当天不办理预约<span class="sub-en" lang="en">No appointments on this day</span></p>';
    }, function (err) { $("bk-slots").innerHTML = API.errorHtml(err); });
  }

  function sync() {
    document.querySelectorAll("#bk-days [data-day]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.day === pick.day));
    });
    document.querySelectorAll("#bk-slots [data-start]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.start) === pick.slot));
    });
    $("bk-submit").disabled = !(pick.service && pick.day && pick.slot != null &&
      phoneOk($("bk-phone").value) && $("bk-consent").checked);
  }

  function book(e) {
    e.preventDefault();
    $("bk-error").innerHTML = "";
    var body = {
      service: pick.service, day: pick.day, slot_start: pick.slot,
      phone: $("bk-phone").value, sms_consent: $("bk-consent").checked,
    };
    var id = $("bk-id").value.trim().toUpperCase();
    if (id) body.id_number = id;
    $("bk-submit").disabled = true;
    call("POST", BASE + "/appointments", body).then(booked, function (err) {
      $("bk-error").innerHTML = API.errorHtml(err);
      if (err.code === "slot_full") loadSlots(); else sync();
    });
  }

  function booked(a) {
    var n = serviceNames(a.service);
    var phone = $("bk-phone").value;
    $("book-form").hidden = true;
    $("bk-done").hidden = false;
    $("bk-done").innerHTML =
      '<div class="code-card" id="bk-result" data-code="' + esc(a.code) + '">' +
      '<div class="code-ok">' + bi("预约成功", "Booked") + "</div>" +
      '<div class="code-label">' + bi("预约码", "Booking code") + "</div>" +
      '<div class="code" id="bk-code">' + esc(a.code) + "</div>" +
      '<dl class="facts">' +
      fact("办理事项", "Service", esc(n[0]) + '<span class="sub-en" lang="en">' + esc(n[1]) + "</span>") +
      fact("预约日期", "Day", dayHtml(a.day), "bk-day") +
      fact("预约时段", "Time", esc(slotText(a)), "bk-slot") +
      fact("手机号", "Mobile", esc(a.phone)) +
      "</dl>" +
      '<p class="code-note">请于预约当天、时段开始前' + esc(policy.earlyMin) + "分钟起，到大厅自助取号机点击“预约签到”输入预约码（或身份证号）取号；" +
      "迟到超过" + esc(policy.graceMin) + "分钟将按普通号排队。如需取消，请至少在时段开始" + esc(policy.cancelH) + "小时前办理。" +
      '<span class="sub-en" lang="en">On the day, from ' + esc(policy.earlyMin) + " minutes before your time, tap “Check in” at a hall kiosk and enter this code (or your ID number). More than " +
      esc(policy.graceMin) + " minutes late, you join the normal queue. Cancel at least " + esc(policy.cancelH) + " hours ahead.</span></p>" +
      '<button type="button" class="btn block" id="bk-again">' + bi("再预约一项", "Book another", "row") + "</button></div>";
    $("look-code").value = a.code;
    $("look-last4").value = phone.slice(-4);
    $("bk-again").addEventListener("click", function () {
      $("bk-done").hidden = true;
      $("book-form").hidden = false;
      loadSlots();
    });
  }

  // --- my booking ---------------------------------------------------------------------

  var APPT_STATE = {
    booked: ["已预约", "Booked", "st-serving"], checked_in: ["已签到", "Checked in", "st-available"],
    late: ["迟到签到", "Checked in late", "st-calling"], cancelled: ["已取消", "Cancelled", "st-offline"],
    no_show: ["预约未到", "Missed", "st-paused"],
  };

  function lookUp(e) {
    if (e) e.preventDefault();
    $("look-error").innerHTML = "";
    var code = digits($("look-code")), last4 = digits($("look-last4"));
    if (!/^\d{6}$/.test(code) || !/^\d{4}$/.test(last4)) {
      $("look-error").innerHTML = API.errorHtml({ message_zh: "请输入6位预约码和手机后四位", message_en: "Enter the 6-digit code and the last 4 digits of the phone" });
      return;
    }
    call("GET", BASE + "/appointments/" + code + "?phone_last4=" + last4).then(function (a) { showBooking(a); }, function (err) {
      $("look-result").innerHTML = "";
      $("look-error").innerHTML = API.errorHtml(err);
    });
  }

  function showBooking(a, note) {
    var n = serviceNames(a.service), st = APPT_STATE[a.status] || [a.status_zh, a.status, ""];
    $("look-result").innerHTML =
      (note || "") + '<div class="result-card" id="booking" data-status="' + esc(a.status) + '">' +
      '<div class="result-head"><span class="result-code">' + esc(a.code) + '</span><span class="pill ' + st[2] + '" id="booking-status">' +
      esc(st[0]) + ' <span class="en" lang="en">' + esc(st[1]) + "</span></span></div>" +
      '<dl class="facts">' +
      fact("办理事项", "Service", esc(n[0]) + '<span class="sub-en" lang="en">' + esc(n[1]) + "</span>") +
      fact("预约日期", "Day", dayHtml(a.day)) +
      fact("预约时段", "Time", esc(slotText(a))) +
      fact("手机号", "Mobile", esc(a.phone)) +
      "</dl>" +
      (a.status === "booked"
        ? '<form id="cancel-form" class="cancel-box" novalidate><label class="field"><span>取消预约须输入完整手机号 <small>To cancel, enter the full mobile number</small></span>' +
          '<input id="cancel-phone" type="tel" inputmode="numeric" maxlength="11"></label>' +
          '<button type="submit" class="btn danger block" id="cancel-submit">' + bi("取消预约", "Cancel the booking", "row") + "</button></form>"
        : "") +
      "</div>";
    var form = $("cancel-form");
    if (form) form.addEventListener("submit", cancel);
  }

  function cancel(e) {
    e.preventDefault();
    $("look-error").innerHTML = "";
    var code = $("look-code").value, phone = digits($("cancel-phone"));
    if (!phoneOk(phone)) {
      $("look-error").innerHTML = API.errorHtml({ message_zh: "请输入11位手机号", message_en: "Enter the 11-digit mobile number" });
      return;
    }
    call("POST", BASE + "/appointments/" + code + "/cancel", { phone: phone }).then(function (a) {
      showBooking(a, '<div class="status-msg ok" id="cancelled-note">' + esc("预约已取消，名额已释放给其他市民") +
        '<span class="en" lang="en">The booking is cancelled and its place is free for others.</span></div>');
    }, function (err) {
      $("look-error").innerHTML = API.errorHtml(err);
    });
  }

  // --- application cases ------------------------------------------------------------------

  /** The case's path: the statuses reached, then the usual way on (each status's first next one). */
  function casePath(c) {
    var svc = info && info.serviceByCode[c.service];
    var flow = FLOWS[(svc && svc.case_flow) || ""];
    var reached = (c.steps || []).map(function (s) { return s.status; });
    if (!flow) {
      return (c.flow || []).map(function (s) { return { status: s, reached: reached.indexOf(s) >= 0 }; });
    }
    var path = reached.slice(), cur = c.status, guard = 0;
    while (flow.transitions[cur] && flow.transitions[cur].length && guard++ < 30) {
      cur = flow.transitions[cur][0];
      if (path.indexOf(cur) >= 0) break;
      path.push(cur);
    }
    return path.map(function (s, i) { return { status: s, reached: i < reached.length, step: c.steps[i] }; });
  }

  function findCase(e) {
    e.preventDefault();
    $("case-error").innerHTML = "";
    var number = $("case-number").value.trim().toUpperCase(), last4 = digits($("case-last4"));
    if (!number || !/^\d{4}$/.test(last4)) {
      $("case-error").innerHTML = API.errorHtml({ message_zh: "请输入办件编号和手机后四位", message_en: "Enter the case number and the last 4 digits of the phone" });
      return;
    }
    call("GET", "/api/cases/" + encodeURIComponent(number) + "?phone_last4=" + last4).then(showCase, function (err) {
      $("case-result").innerHTML = "";
      $("case-error").innerHTML = API.errorHtml(err);
    });
  }

  function showCase(c) {
    var svc = (info && info.serviceByCode[c.service]) || {};
    var flow = FLOWS[svc.case_flow || ""] || {};
    var pickupStatus = flow.pickup_status || "待取件";
    var path = casePath(c);
    var closed = c.closed_at != null;
    var late = !closed && c.promised_day < API.today();
    var steps = path.map(function (p, i) {
      var current = p.reached && i === (c.steps || []).length - 1;
      var cls = current ? "now" : p.reached ? "done" : "todo";
      return '<li class="' + cls + '" data-status="' + esc(p.status) + '"><span class="dot" aria-hidden="true"></span><div>' +
        '<b>' + esc(p.status) + "</b>" +
        (p.step ? '<time>' + esc(API.fmtDateTime(p.step.at)) + "</time>" : '<time class="muted">待办理 · Not yet</time>') +
        (p.step && p.step.note ? '<p class="step-note">' + esc(p.step.note) + "</p>" : "") + "</div></li>";
    }).join("");
    var pickup = c.status === pickupStatus
      ? '<div class="pickup" id="case-pickup"><div class="pickup-main">请到 <b>' + esc(c.pickup_window || "综合") + "</b> 号窗口取件</div>" +
        '<div class="pickup-en" lang="en">Ready for pickup at window ' + esc(c.pickup_window || "(general counter)") + "</div>" +
        (svc.pickup_note_zh ? '<p>' + esc(svc.pickup_note_zh) + '<span class="sub-en" lang="en">' + esc(svc.pickup_note_en) + "</span></p>" : "") + "</div>"
      : "";
    var promised = API.fmtDay(c.promised_day);
    var dept = (info && info.departments.filter(function (x) { return x.code === c.department; })[0]) ||
      { name_zh: c.department, name_en: c.department };
    $("case-result").innerHTML =
      '<div class="result-card" id="case" data-status="' + esc(c.status) + '">' +
      '<div class="result-head"><span class="result-code small">' + esc(c.number) + '</span><span class="pill ' +
      (closed ? "st-available" : "st-serving") + '" id="case-status">' + esc(c.status) + "</span></div>" +
      '<div class="case-service">' + esc(c.service_zh) + '<span class="sub-en" lang="en">' + esc(c.service_en) + "</span></div>" +
      '<dl class="facts">' +
      fact("受理时间", "Accepted", esc(API.fmtDateTime(c.opened_at).slice(0, 16))) +
      fact("承诺办结", "Promised by", esc(promised[0]) + '<span class="sub-en" lang="en">' + esc(promised[1]) + "</span>" +
        (late ? ' <span class="pill st-paused">已超期 · Overdue</span>' : ""), "case-promised") +
      fact("承办部门", "Department", esc(dept.name_zh) + '<span class="sub-en" lang="en">' + esc(dept.name_en) + "</span>") +
      fact("手机号", "Mobile", esc(c.phone || "—")) +
      "</dl>" + pickup +
      '<ol class="timeline" id="case-timeline">' + steps + "</ol></div>";
  }

  // --- ticket status link ---------------------------------------------------------------

  function openTicket(e) {
    e.preventDefault();
    $("ticket-error").innerHTML = "";
    var raw = $("ticket-link").value.trim();
    var m = raw.match(/\/t\/([A-Za-z0-9_-]{6,64})/) || raw.match(/^([A-Za-z0-9_-]{6,64})$/);
    if (!m) {
      $("ticket-error").innerHTML = API.errorHtml({ message_zh: "请输入号票上的查询链接", message_en: "Enter the status link printed on your ticket" });
      return;
    }
    location.href = "/t/" + encodeURIComponent(m[1]);
  }

  // --- wiring -------------------------------------------------------------------------------

  function bind() {
    $("tabs").addEventListener("click", function (e) {
      var b = e.target.closest("[data-tab]");
      if (b) showTab(b.dataset.tab);
    });
    $("bk-service").addEventListener("change", function () { pick.service = this.value; serviceInfo(); loadSlots(); });
    $("bk-days").addEventListener("click", function (e) {
      var b = e.target.closest("[data-day]");
      if (b) { pick.day = b.dataset.day; loadSlots(); }
    });
    $("bk-slots").addEventListener("click", function (e) {
      var b = e.target.closest("[data-start]");
      if (b && !b.disabled) { pick.slot = Number(b.dataset.start); pick.slotLabel = b.dataset.label; sync(); }
    });
    $("bk-phone").addEventListener("input", function () { digits(this); sync(); });
    $("bk-consent").addEventListener("change", sync);
    $("book-form").addEventListener("submit", book);
    $("look-form").addEventListener("submit", lookUp);
    $("case-form").addEventListener("submit", findCase);
    $("ticket-form").addEventListener("submit", openTicket);
    var tab = (location.hash || "").replace("#", "");
    if (["book", "mine", "case", "ticket"].indexOf(tab) >= 0) showTab(tab);
  }

  bind();
  API.hallInfo().then(function (hall) {
    info = hall;
    fillServices();
    return loadDays();
  }).catch(function (err) { $("bk-error").innerHTML = API.errorHtml(err); });
})();
