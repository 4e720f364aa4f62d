/* The agent console's call notes. A call's notes are saved with the call on the server a
 * moment after typing stops (and on leaving the box or the call). Until the server has them
 * they are also kept as a draft in localStorage, so a dropped network or a closed tab loses
 * nothing: drafts go up on retry. Notes not tied to a call stay on this computer only. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var esc = API.esc, bi = API.bi;
  var NOTES = "cc.agent.notes.free"; // notes not tied to a call: on this computer only
  var DRAFT = "cc.agent.draft.";     // a call's notes the server has not confirmed yet
  var BASE = null, who = function () { return null; };
  var notesKey = null, notesId = null, notesChain = Promise.resolve(), notesTimer = null, retryTimer = null;
  var notesSaved = {}, refused = {}, loading = {}; // by ticket id: the server's text; refused drafts

  function store(key, value) {
    try {
      if (value == null || value === "") localStorage.removeItem(key); else localStorage.setItem(key, value);
    } catch (e) { /* private mode */ }
  }
  function recall(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }

  function draftKey(id) { return DRAFT + who().virtual_number + "." + id; }
  function notesUrl(id) { return BASE + "/tickets/" + id + "/notes"; }

  function notesStatus(state, zh, en) {
    var el = $("notes-status");
    el.dataset.state = state;
    el.innerHTML = zh ? bi(zh, en, "row") : "";
  }
  function savedStatus(at) {
    notesStatus("saved", "已保存 " + API.fmtTime(at), "Saved " + API.fmtTime(at));
  }

  /** Show the notes of this call (a ticket with id and number), or the free notes for null. */
  function switchTo(call) {
    var id = call ? call.id : null, key = id ? "call." + id : "free";
    if (key === notesKey) return;
    saveNotes(); // whatever the call being left still has unsaved goes now
    notesKey = key;
    notesId = id;
    $("notes-for").innerHTML = id && call ? bi("来电 " + call.number, "Call " + call.number, "row") : bi("未关联来电", "Not tied to a call", "row");
    if (!id) {
      $("notes").value = recall(NOTES) || "";
      notesStatus("local", "仅保存在本机", "Kept on this computer");
      return;
    }
    $("notes").value = recall(draftKey(id)) || "";
    notesStatus("", "", "");
    delete notesSaved[id];
    loadNotes(id);
  }

  /** The agent's own note on the call as the server has it. Nothing of the call is saved
   * before this is known, so an empty box never overwrites a saved note; what was typed
   * meanwhile (or left as a draft) wins and goes up next. */
  function loadNotes(id) {
    if (loading[id]) return;
    loading[id] = true;
    API.get(notesUrl(id)).then(function (body) {
      loading[id] = false;
      var mine = body.notes.filter(function (n) { return n.author === who().virtual_number; })[0];
      notesSaved[id] = mine ? mine.text : "";
      if (id !== notesId) return;
      if (!$("notes").value) $("notes").value = notesSaved[id];
      if ($("notes").value.trim() !== notesSaved[id]) saveNotes();
      else if (mine) savedStatus(mine.at);
    }, function (err) {
      loading[id] = false;
      if (err.status === 401) { Signin.guard(err); return; }
      if (id === notesId) notesStatus("failed", "未能读取已保存的记录，稍后重试", "Could not read the saved notes; retrying");
      clearTimeout(retryTimer);
      retryTimer = setTimeout(flushDrafts, 5000);
    });
  }

  function typedNotes() {
    var text = $("notes").value;
    clearTimeout(notesTimer);
    if (!notesId) { store(NOTES, text); return; }
    store(draftKey(notesId), text);
    notesTimer = setTimeout(saveNotes, 800);
  }

  /** Save the open call's box now (or once its saved text is known). */
  function saveNotes() {
    clearTimeout(notesTimer);
    if (!notesId || !who()) return;
    if (notesId in notesSaved) queueSave(notesId, $("notes").value.trim());
    else loadNotes(notesId); // saves once it knows what the server holds
  }

  /** Saves run one after another, so the server keeps them in the order they were typed. */
  function queueSave(id, text) {
    notesChain = notesChain.then(function () { return putNotes(id, text); });
  }

  function putNotes(id, text) {
    if (notesSaved[id] === text) { forgetDraft(id, text); return null; }
    if (id === notesId) notesStatus("saving", "正在保存…", "Saving…");
    return API.request("PUT", notesUrl(id), { text: text }).then(function (note) {
      notesSaved[id] = note.text;
      forgetDraft(id, note.text);
      if (id === notesId) savedStatus(note.at);
    }, function (err) {
      if (err.status === 401) { Signin.guard(err); return; }
      var again = !err.status || err.status === 429 || err.status >= 500;
      if (!again) refused[id] = true; // the draft stays on this computer, but is not sent again
      if (id === notesId) {
        if (again) notesStatus("failed", "保存失败，稍后重试", "Not saved, retrying");
        else notesStatus("failed", "未保存：" + err.message_zh, "Not saved: " + err.message_en);
      }
      if (again) { clearTimeout(retryTimer); retryTimer = setTimeout(flushDrafts, 5000); }
    });
  }

  function forgetDraft(id, text) {
    var draft = recall(draftKey(id));
    if (draft != null && draft.trim() === text) store(draftKey(id), null);
  }

  /** Send every draft the server has not confirmed (after an outage, or left by a closed tab). */
  function flushDrafts() {
    if (!who()) return;
    var prefix = DRAFT + who().virtual_number + ".", found = [];
    try {
      for (var i = 0; i < localStorage.length; i++) {
        var key = localStorage.key(i);
        if (key && key.indexOf(prefix) === 0 && /^\d+$/.test(key.slice(prefix.length))) found.push(+key.slice(prefix.length));
      }
    } catch (e) { return; }
    found.forEach(function (id) {
      if (id !== notesId && !refused[id]) queueSave(id, (recall(draftKey(id)) || "").trim());
    });
    saveNotes(); // the open call's box (a cleared note leaves no draft behind)
  }

  /** Past calls' notes, as shown under a ticket in the caller's history. */
  function render(list) {
    if (!list || !list.length) return "";
    return '<div class="call-notes">' + list.map(function (n) {
      return '<p class="call-note"><b>' + esc(n.author_name || n.author) + "</b><time>" + esc(API.fmtTime(n.at)) + "</time>" +
        "<span>" + esc(n.text) + "</span></p>";
    }).join("") + "</div>";
  }

  /** Wire the box: base is the hall's API path, me returns the signed-in agent (or null). */
  function init(opts) {
    BASE = opts.base;
    who = opts.me;
    $("notes").addEventListener("input", typedNotes);
    $("notes").addEventListener("blur", saveNotes);
    window.addEventListener("online", flushDrafts);
    window.addEventListener("pagehide", saveNotes);
  }

  window.AgentNotes = { init: init, switchTo: switchTo, save: saveNotes, flushDrafts: flushDrafts, render: render };
})();
