/* A small QR Code encoder: byte mode, error correction level M, versions 1–10.
 * Enough for a ticket's status URL (up to 213 bytes). Follows ISO/IEC 18004;
 * the layout steps mirror Project Nayuki's reference encoder.
 *   QR.svg("https://…/t/abc", {scale: 6}) -> "<svg …>"
 */
(function (root) {
  "use strict";

  // Level M per version: [data codewords, EC codewords per block, blocks].
  var TABLE = [null,
    [16, 10, 1], [28, 16, 1], [44, 26, 1], [64, 18, 2], [86, 24, 2],
    [108, 16, 4], [124, 18, 4], [154, 22, 4], [182, 22, 5], [216, 26, 5]];
  var ALIGN = [null, [], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34],
    [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50]];
  var FORMAT_M = 0; // the two EC-level bits of the format word for level M

  // GF(256) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1.
  var EXP = new Array(512), LOG = new Array(256);
  (function () {
    var x = 1;
    for (var i = 0; i < 255; i++) { EXP[i] = x; LOG[x] = i; x <<= 1; if (x & 256) x ^= 0x11d; }
    for (i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
  })();
  function mul(a, b) { return a && b ? EXP[LOG[a] + LOG[b]] : 0; }

  function generator(degree) {
    var g = [1];
    for (var i = 0; i < degree; i++) {
      var next = new Array(g.length + 1).fill(0);
      for (var j = 0; j < g.length; j++) {
        next[j] ^= g[j];
        next[j + 1] ^= mul(g[j], EXP[i]);
      }
      g = next;
    }
    return g; // highest power first, g[0] == 1
  }

  function remainder(data, degree) {
    var g = generator(degree), rem = new Array(degree).fill(0);
    data.forEach(function (byte) {
      var factor = byte ^ rem.shift();
      rem.push(0);
      for (var i = 0; i < degree; i++) rem[i] ^= mul(g[i + 1], factor);
    });
    return rem;
  }

  function utf8(text) {
    return Array.from(new TextEncoder().encode(text));
  }

  function chooseVersion(length) {
    for (var v = 1; v <= 10; v++) {
      var countBits = v < 10 ? 8 : 16;
      if (4 + countBits + 8 * length <= TABLE[v][0] * 8) return v;
    }
    throw new Error("QR: text too long for version 10-M (" + length + " bytes)");
  }

  function dataCodewords(bytes, version) {
    var capacity = TABLE[version][0] * 8, bits = [];
    function put(value, n) { for (var i = n - 1; i >= 0; i--) bits.push((value >>> i) & 1); }
    put(4, 4); // byte mode
    put(bytes.length, version < 10 ? 8 : 16);
    bytes.forEach(function (b) { put(b, 8); });
    put(0, Math.min(4, capacity - bits.length));
    put(0, (8 - bits.length % 8) % 8);
    for (var pad = 0xec; bits.length < capacity; pad ^= 0xec ^ 0x11) put(pad, 8);
    var words = [];
    for (var i = 0; i < bits.length; i += 8) {
      var w = 0;
      for (var j = 0; j < 8; j++) w = (w << 1) | bits[i + j];
      words.push(w);
    }
    return words;
  }

  function interleave(words, version) {
    var ecLen = TABLE[version][1], blocks = TABLE[version][2];
    var shortLen = Math.floor(words.length / blocks), longBlocks = words.length % blocks;
    var data = [], ec = [], at = 0;
    for (var b = 0; b < blocks; b++) {
      var len = shortLen + (b >= blocks - longBlocks ? 1 : 0);
      var block = words.slice(at, at + len);
      at += len;
      data.push(block);
      ec.push(remainder(block, ecLen));
    }
    var out = [];
    for (var i = 0; i <= shortLen; i++) data.forEach(function (d) { if (i < d.length) out.push(d[i]); });
    for (i = 0; i < ecLen; i++) ec.forEach(function (e) { out.push(e[i]); });
    return out;
  }

  function Matrix(version) {
    this.size = version * 4 + 17;
    this.dark = [];
    this.fixed = [];
    for (var y = 0; y < this.size; y++) {
      this.dark.push(new Array(this.size).fill(false));
      this.fixed.push(new Array(this.size).fill(false));
    }
  }
  Matrix.prototype.set = function (x, y, dark) { this.dark[y][x] = dark; this.fixed[y][x] = true; };

  function drawFunctionPatterns(m, version) {
    var size = m.size, i;
    for (i = 0; i < size; i++) { m.set(6, i, i % 2 === 0); m.set(i, 6, i % 2 === 0); }
    [[3, 3], [size - 4, 3], [3, size - 4]].forEach(function (c) {
      for (var dy = -4; dy <= 4; dy++) for (var dx = -4; dx <= 4; dx++) {
        var d = Math.max(Math.abs(dx), Math.abs(dy)), x = c[0] + dx, y = c[1] + dy;
        if (x >= 0 && x < size && y >= 0 && y < size) m.set(x, y, d !== 2 && d !== 4);
      }
    });
    var pos = ALIGN[version], n = pos.length;
    for (i = 0; i < n; i++) for (var j = 0; j < n; j++) {
      if ((i === 0 && j === 0) || (i === 0 && j === n - 1) || (i === n - 1 && j === 0)) continue;
      for (var ay = -2; ay <= 2; ay++) for (var ax = -2; ax <= 2; ax++) {
        m.set(pos[i] + ax, pos[j] + ay, Math.max(Math.abs(ax), Math.abs(ay)) !== 1);
      }
    }
    drawFormat(m, 0);
    if (version >= 7) {
      var rem = version;
      for (i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
      var bits = (version << 12) | rem;
      for (i = 0; i < 18; i++) {
        var bit = ((bits >>> i) & 1) === 1, a = size - 11 + (i % 3), b = Math.floor(i / 3);
        m.set(a, b, bit);
        m.set(b, a, bit);
      }
    }
  }

  function drawFormat(m, mask) {
    var data = (FORMAT_M << 3) | mask, rem = data, i, size = m.size;
    for (i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
    var bits = ((data << 10) | rem) ^ 0x5412;
    function bit(k) { return ((bits >>> k) & 1) === 1; }
    for (i = 0; i <= 5; i++) m.set(8, i, bit(i));
    m.set(8, 7, bit(6));
    m.set(8, 8, bit(7));
    m.set(7, 8, bit(8));
    for (i = 9; i < 15; i++) m.set(14 - i, 8, bit(i));
    for (i = 0; i < 8; i++) m.set(size - 1 - i, 8, bit(i));
    for (i = 8; i < 15; i++) m.set(8, size - 15 + i, bit(i));
    m.set(8, size - 8, true); // the dark module
  }

  function placeData(m, codewords) {
    var size = m.size, i = 0, total = codewords.length * 8;
    for (var right = size - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5;
      var upward = ((right + 1) & 2) === 0;
      for (var vert = 0; vert < size; vert++) {
        for (var j = 0; j < 2; j++) {
          var x = right - j, y = upward ? size - 1 - vert : vert;
          if (m.fixed[y][x]) continue;
          m.dark[y][x] = i < total && ((codewords[i >>> 3] >>> (7 - (i & 7))) & 1) === 1;
          i++;
        }
      }
    }
  }

  var MASKS = [
    function (x, y) { return (x + y) % 2 === 0; },
    function (x, y) { return y % 2 === 0; },
    function (x) { return x % 3 === 0; },
    function (x, y) { return (x + y) % 3 === 0; },
    function (x, y) { return (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0; },
    function (x, y) { return ((x * y) % 2) + ((x * y) % 3) === 0; },
    function (x, y) { return (((x * y) % 2) + ((x * y) % 3)) % 2 === 0; },
    function (x, y) { return (((x + y) % 2) + ((x * y) % 3)) % 2 === 0; },
  ];

  function applyMask(m, mask) {
    for (var y = 0; y < m.size; y++) for (var x = 0; x < m.size; x++) {
      if (!m.fixed[y][x] && MASKS[mask](x, y)) m.dark[y][x] = !m.dark[y][x];
    }
  }

  function lineScore(line) {
    var score = 0, run = 1, i;
    for (i = 1; i <= line.length; i++) {
      if (i < line.length && line[i] === line[i - 1]) { run++; continue; }
      if (run >= 5) score += run - 2;
      run = 1;
    }
    var s = line.map(function (d) { return d ? "1" : "0"; }).join("");
    var pads = "0000" + s + "0000";
    for (i = pads.indexOf("1011101"); i !== -1; i = pads.indexOf("1011101", i + 1)) {
      if (pads.substr(i - 4, 4) === "0000" || pads.substr(i + 7, 4) === "0000") score += 40;
    }
    return score;
  }

  function penalty(m) {
    var size = m.size, score = 0, dark = 0, x, y;
    for (y = 0; y < size; y++) {
      score += lineScore(m.dark[y]);
      score += lineScore(m.dark.map(function (row) { return row[y]; }));
    }
    for (y = 0; y < size; y++) for (x = 0; x < size; x++) {
      if (m.dark[y][x]) dark++;
      if (x < size - 1 && y < size - 1) {
        var c = m.dark[y][x];
        if (c === m.dark[y][x + 1] && c === m.dark[y + 1][x] && c === m.dark[y + 1][x + 1]) score += 3;
      }
    }
    var total = size * size;
    return score + 10 * (Math.ceil(Math.abs(dark * 20 - total * 10) / total) - 1);
  }

  /** The module matrix (array of rows of booleans) for ``text``. */
  function encode(text) {
    var bytes = utf8(text), version = chooseVersion(bytes.length);
    var codewords = interleave(dataCodewords(bytes, version), version);
    var best = null, bestScore = Infinity;
    for (var mask = 0; mask < 8; mask++) {
      var m = new Matrix(version);
      drawFunctionPatterns(m, version);
      placeData(m, codewords);
      applyMask(m, mask);
      drawFormat(m, mask);
      var score = penalty(m);
      if (score < bestScore) { best = m; bestScore = score; }
    }
    return { version: version, size: best.size, modules: best.dark };
  }

  /** An SVG image of ``text`` with a four-module quiet zone. */
  function svg(text, options) {
    var opts = options || {}, q = encode(text), border = 4, scale = opts.scale || 4;
    var dim = q.size + border * 2, path = [];
    for (var y = 0; y < q.size; y++) for (var x = 0; x < q.size; x++) {
      if (q.modules[y][x]) path.push("M" + (x + border) + "," + (y + border) + "h1v1h-1z");
    }
    return '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ' + dim + " " + dim +
      '" width="' + dim * scale + '" height="' + dim * scale + '" shape-rendering="crispEdges"' +
      ' role="img" aria-label="QR code"><rect width="100%" height="100%" fill="#fff"/>' +
      '<path fill="#000" d="' + path.join("") + '"/></svg>';
  }

  root.QR = { encode: encode, svg: svg };
})(typeof window !== "undefined" ? window : globalThis);
