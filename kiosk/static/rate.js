/* The one-time rating link from the text message (/r/{token}): what is being rated,
 * five levels, optional comment; "already rated" answered kindly. Public, no token. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc;
  var card = $("rate"), TOKEN = card.dataset.token;
  var PATH = "/api/ratings/" + encodeURIComponent(TOKEN);
  var chosen = null;

  function done(kind, zh, en, detailZh, detailEn) {
    card.dataset.state = kind;
    $("rate-form").hidden = true;
    $("rate-done").hidden = false;
    $("rate-done").innerHTML = (kind === "thanks" && chosen ? Rating.face(chosen) : '<div class="pad-icon" aria-hidden="true">' +
      (kind === "invalid" ? "?" : "✓") + "</div>") +
      '<div class="status-msg ' + (kind === "invalid" ? "warn" : "ok") + '" id="rate-result">' + esc(zh) +
      '<span class="en" lang="en">' + esc(en) + "</span></div>" +
      (detailZh ? '<p class="rate-detail">' + esc(detailZh) + '<span class="en" lang="en">' + esc(detailEn) + "</span></p>" : "");
  }

  function show(t) {
    card.dataset.state = "form";
    $("rate-what").innerHTML =
      '<div class="status-number" id="rate-number">' + esc(t.number) + "</div>" +
      '<div class="status-service">' + esc(t.service_zh) + '<span class="en" lang="en">' + esc(t.service_en) + "</span></div>" +
      (t.window ? '<div class="rate-window">' + esc(t.window) + ' 号窗口<span class="en" lang="en">Window ' + esc(t.window) + "</span></div>" : "");
    $("rate-form").hidden = false;
  }

  function choose(level) {
    chosen = level;
    document.querySelectorAll("#levels [data-level]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.level) === level));
    });
    $("chips").innerHTML = Rating.chips(level);
    $("rate-more").hidden = false;
    $("rate-submit").disabled = false;
  }

  function submit(e) {
    e.preventDefault();
    if (chosen == null) return;
    $("rate-error").innerHTML = "";
    $("rate-submit").disabled = true;
    var body = { level: chosen, comment: Rating.comment($("chips"), $("rate-text").value.trim()) };
    API.request("POST", PATH, body, { token: null }).then(function () {
      done("thanks", "感谢您的评价！", "Thank you for your feedback!",
        "我们会认真对待每一条意见。", "We read every comment.");
    }, function (err) {
      if (err.code === "already_rated") {
        done("already", "您已经评价过本次服务，感谢您的支持！", "You have already rated this service. Thank you!",
          "每次服务只能评价一次。如有其他意见，欢迎拨打 96166。", "Each service can be rated once. For anything else, call 96166.");
      } else if (err.status === 404) {
        done("invalid", "评价链接无效或已失效", "This rating link is not valid");
      } else {
        $("rate-submit").disabled = false;
        $("rate-error").innerHTML = API.errorHtml(err);
      }
    });
  }

  $("levels").innerHTML = Rating.buttons();
  $("levels").addEventListener("click", function (e) {
    var b = e.target.closest("[data-level]");
    if (b) choose(Number(b.dataset.level));
  });
  $("chips").addEventListener("click", function (e) {
    var b = e.target.closest("[data-chip]");
    if (b) b.setAttribute("aria-pressed", String(b.getAttribute("aria-pressed") !== "true"));
  });
  $("rate-form").addEventListener("submit", submit);
  API.request("GET", PATH, undefined, { token: null }).then(show, function (err) {
    $("rate-what").innerHTML = "";
    if (err.status === 404) done("invalid", "评价链接无效或已失效", "This rating link is not valid",
      "请核对短信中的链接，或拨打 96166。", "Check the link in the text message, or call 96166.");
    else $("rate-what").innerHTML = API.errorHtml(err);
  });
})();
