/* What the rating pad and the SMS rating link share: the five levels (好差评) with their
 * faces and colours, and the comment chips offered for each. Drawn here, no image files. */
(function () {
  "use strict";
  var esc = API.esc, bi = API.bi;

  var LEVELS = [
    { level: 5, zh: "非常满意", en: "Very satisfied", colour: "#1d7a4c" },
    { level: 4, zh: "满意", en: "Satisfied", colour: "#4f9a2f" },
    { level: 3, zh: "基本满意", en: "Fairly satisfied", colour: "#c98a00" },
    { level: 2, zh: "不满意", en: "Dissatisfied", colour: "#d8611c" },
    { level: 1, zh: "非常不满意", en: "Very dissatisfied", colour: "#c0262d" },
  ];
  var GOOD = [["态度好", "Friendly"], ["办事快", "Quick"], ["解释清楚", "Clear answers"],
    ["一次办成", "Done in one visit"], ["环境整洁", "Tidy hall"]];
  var MIXED = [["办事快", "Quick"], ["等候久", "Long wait"], ["解释不清", "Unclear answers"],
    ["材料要求多", "Too much paperwork"]];
  var BAD = [["等候久", "Long wait"], ["解释不清", "Unclear answers"], ["态度差", "Unfriendly"],
    ["办事慢", "Slow"], ["材料要求多", "Too much paperwork"], ["多次跑腿", "Had to come back"]];

  function level(n) { return LEVELS.filter(function (l) { return l.level === n; })[0]; }

  /** A round face: the mouth bends with the level (5 a broad smile, 1 a deep frown). */
  function face(n) {
    var l = level(n), bend = (n - 3) * 11, eyes = n <= 2 ? 'transform="translate(0 2)"' : "";
    return '<svg class="face" viewBox="0 0 100 100" aria-hidden="true">' +
      '<circle cx="50" cy="50" r="46" fill="' + l.colour + '"/>' +
      '<g fill="#fff" ' + eyes + '><circle cx="34" cy="40" r="6"/><circle cx="66" cy="40" r="6"/></g>' +
      (n <= 1 ? '<path d="M24 28 L40 33 M76 28 L60 33" stroke="#fff" stroke-width="4" stroke-linecap="round"/>' : "") +
      '<path d="M28 ' + (66 - bend / 3) + " Q50 " + (66 + bend) + " 72 " + (66 - bend / 3) +
      '" fill="none" stroke="#fff" stroke-width="6" stroke-linecap="round"/></svg>';
  }

  function buttons() {
    return LEVELS.map(function (l) {
      return '<button type="button" class="level" data-level="' + l.level + '" style="--c:' + l.colour + '" aria-pressed="false">' +
        face(l.level) + bi(l.zh, l.en) + "</button>";
    }).join("");
  }

  function chips(n) {
    var set = n >= 4 ? GOOD : n === 3 ? MIXED : BAD;
    return set.map(function (c) {
      return '<button type="button" class="chip" data-chip="' + esc(c[0]) + '" aria-pressed="false">' + bi(c[0], c[1], "row") + "</button>";
    }).join("");
  }

  /** The comment: the chosen chips (in Chinese, as staff read them) and any free text. */
  function comment(root, extra) {
    var picked = Array.prototype.map.call(root.querySelectorAll('[data-chip][aria-pressed="true"]'), function (b) {
      return b.dataset.chip;
    });
    var text = picked.join("，");
    if (extra) text = text ? text + "；" + extra : extra;
    return text || null;
  }

  window.Rating = { LEVELS: LEVELS, level: level, face: face, buttons: buttons, chips: chips, comment: comment };
})();
