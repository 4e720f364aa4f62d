/* Staff sign-in shared by the staff console and the supervisor dashboard: the bearer
 * token and who it names stay in localStorage until the staffer signs out. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc;
  var WHO = (document.body.dataset.store || "cc.staff") + ".who";
  var onReady = null;

  function who() {
    try { return JSON.parse(localStorage.getItem(WHO) || "null"); } catch (e) { return null; }
  }

  function userbox(w) {
    var box = $("userbox");
    if (!w) { box.hidden = true; return; }
    box.hidden = false;
    box.innerHTML = "<span>工号 <b>" + esc(w.virtual_number) + "</b> · " + esc(w.name) + "</span>" +
      '<button type="button" class="btn" id="logout">退出登录 · Log out</button>';
    $("logout").addEventListener("click", logout);
  }

  function showLogin() {
    userbox(null);
    document.querySelectorAll("[data-after-login]").forEach(function (el) { el.hidden = true; });
    $("login").hidden = false;
    setTimeout(function () { $("login-vn").focus(); }, 0);
  }

  function logout() {
    API.setToken(null);
    try { localStorage.removeItem(WHO); } catch (e) { /* ignore */ }
    location.reload();
  }

  /** A 401 from any call means the session ended: ask for the password again. */
  function guard(err) {
    if (err && err.status === 401) { logout(); return; }
    API.showError(err);
  }

  function submit(e) {
    e.preventDefault();
    var vn = $("login-vn").value.trim().toUpperCase();
    API.request("POST", "/api/auth/login", {
      virtual_number: vn, password: $("login-password").value, hall: API.hall,
    }, { token: null }).then(function (session) {
      API.hideError();
      API.setToken(session.token);
      var w = { virtual_number: session.virtual_number, name: session.name, role: session.role };
      try { localStorage.setItem(WHO, JSON.stringify(w)); } catch (err) { /* ignore */ }
      $("login").hidden = true;
      $("login-password").value = "";
      userbox(w);
      onReady(w);
    }, API.showError);
  }

  function start(ready) {
    onReady = ready;
    $("login-form").addEventListener("submit", submit);
    var w = who();
    if (API.token() && w) { userbox(w); ready(w); } else showLogin();
  }

  window.Signin = { start: start, who: who, logout: logout, guard: guard, showLogin: showLogin };
})();
