/* The shared drawing components of llmpath's HTML pages (walk, attention).
 *
 * Plain JavaScript, no framework and no network: everything is drawn on the page from
 * the numbers it embeds. Text from the data only ever reaches the page through
 * textContent, title and canvas fillText, never as HTML.
 *
 * window.LLM holds: colour scales (scale, legend), a canvas heatmap with hover tooltips
 * and masked cells drawn grey (heatmap), token labels (tokens), a vector colour strip
 * (strip), horizontal probability bars (bars), a tooltip (showTip, hideTip), and number
 * formatting (num, delta, group, si, visible).
 */
(function () {
  "use strict";

  const MONO = 'ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace';
  const SANS = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
  const INK = "#1d2330";
  const MUTED = "#5b6475";
  const FAINT = "#8a93a3";
  const MARK = "#e4572e";
  const MASKED = [212, 212, 212];

  const hexes = (list) => list.map((h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16)));
  // viridis (weights, 0 to 1), ColorBrewer Blues (probabilities) and RdBu reversed
  // (signed values: blue below 0, white at 0, red above).
  const VIRIDIS = hexes(["#440154", "#48186a", "#472d7b", "#424086", "#3b528b", "#33638d",
    "#2c728e", "#26828e", "#21918c", "#1fa088", "#28ae80", "#3fbc73", "#5ec962", "#84d44b",
    "#addc30", "#d8e219", "#fde725"]);
  const BLUES = hexes(["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6",
    "#2171b5", "#08519c", "#08306b"]);
  const RDBU = hexes(["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
    "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"]);

  const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

  function ramp(stops, t) {
    t = clamp(Number.isFinite(t) ? t : 0, 0, 1);
    const x = t * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(x));
    const f = x - k;
    return stops[k].map((a, c) => Math.round(a + (stops[k + 1][c] - a) * f));
  }

  const css = (c) => "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")";
  const light = (c) => (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255 > 0.55;
  const inkOn = (c) => (light(c) ? INK : "#fff");

  /* A colour scale: kind "weights" (viridis, 0..max, 1 by default), "prob" (blues,
   * 0..max), "signed" (diverging, -max..max) or "similarity" (diverging, -1..1); with
   * o.sqrt, the colour follows the square root (small weights show). scale.colour(v)
   * gives [r, g, b]; pos(v) is where v lies on the legend (0..1), at(t) the colour there. */
  function scale(kind, max, o) {
    o = o || {};
    if (kind === "signed" || kind === "scores" || kind === "similarity") {
      const m = kind === "similarity" ? 1 : max > 0 ? max : 1;
      const pos = (v) => clamp(0.5 + 0.5 * (v / m), 0, 1);
      const at = (t) => ramp(RDBU, t);
      return { kind, lo: -m, hi: m, pos, at, colour: (v) => at(pos(v)) };
    }
    const hi = max > 0 ? max : 1;
    const stops = kind === "prob" ? BLUES : VIRIDIS;
    const pos = o.sqrt ? (v) => Math.sqrt(clamp(v / hi, 0, 1)) : (v) => clamp(v / hi, 0, 1);
    const at = (t) => ramp(stops, t);
    return { kind, lo: 0, hi, sqrt: !!o.sqrt, pos, at, colour: (v) => at(pos(v)) };
  }

  // --- numbers ------------------------------------------------------------------------

  const group = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

  /* A number as a person reads it: integers whole (grouped by thousands unless plain),
   * others to 5 significant digits, very small or large ones in exponent form. */
  function num(v, plain) {
    if (v === null || v === undefined) return "\u2014";
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v !== "number") return String(v);
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return plain || Math.abs(v) < 10000 ? String(v) : group(v);
    const a = Math.abs(v);
    if (a < 1e-3 || a >= 1e6) return v.toExponential(2).replace(/\.?0+e/, "e").replace("e+", "e");
    return String(+v.toPrecision(5));
  }

  /* A max |difference|: 0, or one significant digit and a half in exponent form. */
  function delta(v) {
    if (v === null || v === undefined || !Number.isFinite(v)) return "not finite";
    if (v === 0) return "0";
    return v.toExponential(1).replace("e+", "e");
  }

  function si(n) {
    const units = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (const [size, name] of units) {
      if (n >= size) return String(+(n / size).toPrecision(3)) + " " + name;
    }
    return String(n) + " ";
  }

  /* Whitespace made visible, as the terminal shows it: · space, ↵ newline, → tab. */
  function visible(text) {
    let out = "";
    for (const ch of String(text)) {
      const c = ch.codePointAt(0);
      if (ch === " ") out += "\u00b7";
      else if (ch === "\n") out += "\u21b5";
      else if (ch === "\t") out += "\u2192";
      else if (ch === "\r") out += "\u240d";
      else if (c < 32 || c === 127) out += "\\x" + c.toString(16).padStart(2, "0");
      else out += ch;
    }
    return out;
  }

  const short = (s, n) => {
    const chars = Array.from(String(s));
    return chars.length > n ? chars.slice(0, n - 1).join("") + "\u2026" : chars.join("");
  };

  // --- elements -----------------------------------------------------------------------

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /* A canvas of w x h CSS pixels, sharp on a high-density screen. */
  function sized(canvas, w, h) {
    const r = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.ceil(w * r));
    canvas.height = Math.max(1, Math.ceil(h * r));
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(r, 0, 0, r, 0, 0);
    return ctx;
  }

  function clear(canvas) {
    const ctx = canvas.getContext("2d");
    const r = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(r, 0, 0, r, 0, 0);
    return ctx;
  }

  // --- the tooltip --------------------------------------------------------------------

  let tipBox = null;
  function tipElement() {
    if (!tipBox) {
      tipBox = el("div", "llm-tip");
      tipBox.hidden = true;
      tipBox.append(el("div", "main"), el("div", "sub"));
      document.body.append(tipBox);
    }
    return tipBox;
  }

  /* Show main (monospace) and sub (a note) next to the pointer at (x, y). */
  function showTip(x, y, main, sub) {
    const tip = tipElement();
    tip.children[0].textContent = main;
    tip.children[1].textContent = sub || "";
    tip.children[1].hidden = !sub;
    tip.hidden = false;
    const r = tip.getBoundingClientRect();
    const left = x + 16 + r.width > window.innerWidth ? x - 12 - r.width : x + 16;
    const top = y + 18 + r.height > window.innerHeight ? y - 12 - r.height : y + 18;
    tip.style.left = Math.max(4, left) + "px";
    tip.style.top = Math.max(4, top) + "px";
  }

  function hideTip() {
    if (tipBox) tipBox.hidden = true;
  }

  function tipText() {
    return tipBox && !tipBox.hidden
      ? [tipBox.children[0].textContent, tipBox.children[1].textContent] : null;
  }

  // --- the heatmap --------------------------------------------------------------------

  /* A cell size that keeps 7-12 tokens legible and 100 or more usable (hover). */
  function cellSize(n, big) {
    const top = big || 34;
    if (n <= 8) return top;
    if (n <= 12) return Math.max(24, Math.floor(top * 0.83));
    return clamp(Math.floor(440 / n), 3, 22);
  }

  /* A value as a cell shows it: two decimals without the leading 0 (.43), "1", "0", or
   * "\u00b7" for one that is not 0 but would show as .00. */
  function cellText(v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 0.995 && a < 1.005) return v > 0 ? "1" : "-1";
    if (a < 0.005) return "\u00b7";
    const text = a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
    return text.replace(/^(-?)0\./, "$1.");
  }

  const SLANT = Math.PI / 3; // column labels rise at 60 degrees

  /* A canvas heatmap of values[row][col] (null: masked, drawn grey).
   *
   * o.rows, o.cols: labels (or omit o.labels to show indices only: o.labels = false);
   * o.scale: from scale(); o.cell: the cell size (by default from the size);
   * o.rowName, o.colName: what rows and columns are ("query", "key");
   * o.format(v): a value in the tooltip; o.numbers: write values in the cells
   * (by default when the cells are large); o.maskedText: written in masked cells;
   * o.markRow: a row outlined; o.tip(i, j, v) -> [main, sub]: the tooltip's text;
   * o.onHover(i, j): the pointer is over a cell; o.onClick(i, j). Returns a div holding
   * the canvas. */
  function heatmap(o) {
    const values = o.values;
    const R = values.length;
    const C = R ? values[0].length : 0;
    const cs = o.cell || cellSize(Math.max(R, C));
    const showLabels = o.labels !== false;
    // A label that only repeats its index (positions "0", "1", ...) is not written twice.
    const rowIndex = (i) => String(o.rowIndex ? o.rowIndex[i] : i);
    const colIndex = (j) => String(o.colIndex ? o.colIndex[j] : j);
    const rows = (o.rows || []).map((s, i) => (String(s) === rowIndex(i) ? "" : short(s, 14)));
    const cols = (o.cols || []).map((s, j) => (String(s) === colIndex(j) ? "" : short(s, 14)));
    const format = o.format || ((v) => num(v));
    const numbers = o.numbers !== undefined ? o.numbers : cs >= 28;
    const probe = document.createElement("canvas").getContext("2d");

    // The geometry: labels left of the rows, slanted above the columns, in the largest
    // font (9 to 13 px) that fits between two slanted labels; past that, every step-th.
    const across = cs * Math.sin(SLANT); // the room between two slanted column labels
    const fs = showLabels ? clamp(Math.floor(across) - 2, 9, 13) : 10;
    const step = Math.max(1, Math.ceil((fs + 2) / across));
    probe.font = fs + "px " + MONO;
    const iw = probe.measureText(String(Math.max(R, C) - 1)).width;
    let rw = 0;
    let cw = 0;
    let reach = 0; // how far right of the grid's left edge the slanted labels reach
    if (showLabels) {
      for (let i = 0; i < R; i += step) rw = Math.max(rw, probe.measureText(rows[i] || "").width);
      for (let j = 0; j < C; j += step) {
        const w = probe.measureText(cols[j] || "").width;
        cw = Math.max(cw, w);
        reach = Math.max(reach, (j + 0.5) * cs + (iw + 5 + w) * Math.cos(SLANT));
      }
    }
    const rowLabel = showLabels ? rw + iw + 10 : 0;
    const colLabel = showLabels ? cw + iw + 8 : 0;
    const x0 = showLabels ? Math.ceil(Math.max(rowLabel + 8, 56)) : 1;
    const y0 = showLabels ? Math.ceil(colLabel * Math.sin(SLANT) + fs + 10) : 1;
    const W = Math.ceil(x0 + Math.max(C * cs, reach) + (showLabels ? 6 : 1));
    const H = Math.ceil(y0 + R * cs + (showLabels ? 6 : 1));
    const g = { cs, x0, y0, W, H, fs, iw, colLabel };

    const box = el("div", "heat");
    const stack = el("div", "stack");
    const canvas = el("canvas");
    const overlay = el("canvas", "overlay");
    stack.append(canvas, overlay);
    box.append(stack);
    const ctx = sized(canvas, W, H);
    sized(overlay, W, H);

    // One pixel per cell, drawn scaled up without smoothing: fast for a long text.
    const img = document.createElement("canvas");
    img.width = Math.max(1, C);
    img.height = Math.max(1, R);
    const ictx = img.getContext("2d");
    const data = ictx.createImageData(img.width, img.height);
    for (let i = 0; i < R; i++) {
      for (let j = 0; j < C; j++) {
        const v = values[i][j];
        const c = v === null || v === undefined ? MASKED : o.scale.colour(v);
        const p = 4 * (i * C + j);
        data.data[p] = c[0]; data.data[p + 1] = c[1]; data.data[p + 2] = c[2];
        data.data[p + 3] = 255;
      }
    }
    ictx.putImageData(data, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(img, x0, y0, C * cs, R * cs);

    if (cs >= 10) { // thin white lines between cells
      ctx.strokeStyle = "rgba(255,255,255,0.55)";
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let j = 1; j < C; j++) {
        ctx.moveTo(x0 + j * cs + 0.5, y0); ctx.lineTo(x0 + j * cs + 0.5, y0 + R * cs);
      }
      for (let i = 1; i < R; i++) {
        ctx.moveTo(x0, y0 + i * cs + 0.5); ctx.lineTo(x0 + C * cs, y0 + i * cs + 0.5);
      }
      ctx.stroke();
    }
    if (numbers) {
      ctx.font = Math.min(12, Math.max(8, Math.floor(cs / 3))) + "px " + SANS;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      for (let i = 0; i < R; i++) {
        for (let j = 0; j < C; j++) {
          const v = values[i][j];
          const masked = v === null || v === undefined;
          if (masked && !o.maskedText) continue;
          ctx.fillStyle = masked ? "#7b7b7b" : inkOn(o.scale.colour(v));
          ctx.fillText(masked ? o.maskedText : cellText(v), x0 + (j + 0.5) * cs,
            y0 + (i + 0.5) * cs + 0.5);
        }
      }
    }
    if (o.markRow !== undefined && o.markRow !== null && o.markRow < R) {
      ctx.strokeStyle = MARK;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(x0 - 0.75, y0 + o.markRow * cs - 0.75, C * cs + 1.5, cs + 1.5);
    }
    if (showLabels) {
      ctx.font = fs + "px " + MONO;
      ctx.textBaseline = "middle";
      for (let i = 0; i < R; i += step) {
        const y = y0 + (i + 0.5) * cs;
        ctx.textAlign = "right";
        ctx.fillStyle = FAINT;
        ctx.fillText(rowIndex(i), x0 - 5, y);
        ctx.fillStyle = i === o.markRow ? MARK : INK;
        ctx.fillText(rows[i] || "", x0 - 10 - iw, y);
      }
      for (let j = 0; j < C; j += step) {
        ctx.save();
        ctx.translate(x0 + (j + 0.5) * cs, y0 - 5);
        ctx.rotate(-SLANT);
        ctx.textAlign = "left";
        ctx.fillStyle = FAINT;
        ctx.fillText(colIndex(j), 0, 0);
        ctx.fillStyle = INK;
        ctx.fillText(cols[j] || "", iw + 5, 0);
        ctx.restore();
      }
      ctx.font = "italic 12px " + SANS;
      ctx.fillStyle = MUTED;
      ctx.textAlign = "left";
      ctx.textBaseline = "alphabetic";
      if (o.colName) ctx.fillText(o.colName + " \u2192", 2, y0 - 22);
      if (o.rowName) ctx.fillText(o.rowName + " \u2193", 2, y0 - 6);
    }

    const cellAt = (e) => {
      const r = canvas.getBoundingClientRect();
      const i = Math.floor((e.clientY - r.top - y0) / cs);
      const j = Math.floor((e.clientX - r.left - x0) / cs);
      return i >= 0 && i < R && j >= 0 && j < C ? [i, j] : null;
    };
    const full = (list, k) => (list && list[k] !== undefined ? list[k] : String(k));
    const describe = (i, j) => {
      const v = values[i][j];
      if (o.tip) return o.tip(i, j, v);
      const masked = v === null || v === undefined;
      const main = full(o.rows, i) + " \u2192 " + full(o.cols, j) + ": " +
        (masked ? "masked" : format(v));
      const sub = (o.rowName || "row") + " " + i + ", " + (o.colName || "column") + " " + j;
      return [main, sub];
    };
    function drawHover(cell) {
      const hctx = clear(overlay);
      if (!cell) return;
      const [i, j] = cell;
      hctx.fillStyle = "rgba(255, 196, 0, 0.28)";
      if (showLabels) { // the row's label and the column's, slanted
        hctx.fillRect(0, y0 + i * cs, x0 - 2, cs);
        hctx.save();
        hctx.translate(x0 + (j + 0.5) * cs, y0 - 5);
        hctx.rotate(-SLANT);
        hctx.fillRect(-3, -fs / 2 - 2, colLabel + 4, fs + 4);
        hctx.restore();
      }
      hctx.strokeStyle = "rgba(255, 255, 255, 0.8)";
      hctx.lineWidth = 1;
      if (cs >= 4) {
        hctx.strokeRect(x0 + 0.5, y0 + i * cs + 0.5, C * cs - 1, cs - 1);
        hctx.strokeRect(x0 + j * cs + 0.5, y0 + 0.5, cs - 1, R * cs - 1);
      }
      hctx.lineWidth = 2;
      hctx.strokeStyle = MARK;
      hctx.strokeRect(x0 + j * cs - 1, y0 + i * cs - 1, cs + 2, cs + 2);
    }
    canvas.addEventListener("mousemove", (e) => {
      const cell = cellAt(e);
      drawHover(cell);
      if (!cell) { hideTip(); return; }
      const [main, sub] = describe(cell[0], cell[1]);
      showTip(e.clientX, e.clientY, main, sub);
      if (o.onHover) o.onHover(cell[0], cell[1]);
    });
    canvas.addEventListener("mouseleave", () => { drawHover(null); hideTip(); });
    if (o.onClick) {
      canvas.addEventListener("click", (e) => {
        const cell = cellAt(e);
        if (cell) o.onClick(cell[0], cell[1]);
      });
    }
    box.geometry = g;
    box.canvas = canvas;
    return box;
  }

  /* A legend for a scale: the colour bar, its ends and middle, a name, and the masked
   * colour where o.masked says what it means. */
  function legend(s, name, o) {
    o = o || {};
    const W = o.width || 180;
    const extra = o.masked ? 26 + Math.min(220, 7 * o.masked.length) : 0;
    const canvas = el("canvas", "legend");
    const probe = document.createElement("canvas").getContext("2d");
    probe.font = "11px " + SANS;
    const nameW = Math.ceil(probe.measureText(name).width);
    const ctx = sized(canvas, 12 + W + 14 + nameW + extra + 10, 32);
    for (let x = 0; x < W; x++) {
      ctx.fillStyle = css(s.at(x / (W - 1)));
      ctx.fillRect(8 + x, 2, 1.5, 11);
    }
    ctx.strokeStyle = "#c3c9d3";
    ctx.lineWidth = 1;
    ctx.strokeRect(7.5, 1.5, W + 1, 12);
    ctx.font = "11px " + SANS;
    ctx.fillStyle = INK;
    ctx.textBaseline = "top";
    const ticks = o.ticks || [s.lo, (s.lo + s.hi) / 2, s.hi];
    ticks.forEach((v) => {
      const x = 8 + s.pos(v) * (W - 1);
      ctx.fillRect(x, 13, 1, 4);
      ctx.textAlign = x < 20 ? "left" : x > W ? "right" : "center";
      ctx.fillText(num(+v.toPrecision(3)), x, 18);
    });
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.fillText(name, W + 20, 8);
    if (o.masked) {
      const x = W + 20 + nameW + 16;
      ctx.fillStyle = css(MASKED);
      ctx.fillRect(x, 2, 12, 12);
      ctx.fillStyle = INK;
      ctx.fillText(o.masked, x + 17, 8);
    }
    return canvas;
  }

  // --- tokens -------------------------------------------------------------------------

  /* Token labels in a row: o.sub[i] (a line under each, an ID say), o.special[i],
   * o.masked[i] (drawn grey, as a masked cell), o.colour(i) (a background [r, g, b], the
   * text in an ink that reads on it), o.mark (an index outlined), o.title(i) (the hover
   * text), o.onClick(i). */
  function tokens(labels, o) {
    o = o || {};
    const box = el("div", "tokens");
    labels.forEach((label, i) => {
      const span = el("span", "tok");
      if (o.special && o.special[i]) span.classList.add("special");
      if (o.masked && o.masked[i]) {
        span.classList.add("masked");
      } else if (o.colour) {
        const c = o.colour(i);
        span.classList.add("shaded");
        span.style.background = css(c);
        span.style.color = inkOn(c);
      }
      if (i === o.mark) span.classList.add("marked");
      if (o.onClick) span.classList.add("clickable");
      span.append(document.createTextNode(label));
      if (o.sub) span.append(el("small", "", o.sub[i]));
      if (o.title) span.title = o.title(i);
      if (o.onClick) span.addEventListener("click", () => o.onClick(i));
      box.append(span);
    });
    return box;
  }

  // --- a vector as a colour strip -----------------------------------------------------

  /* values as a row of cells, blue below 0 and red above (to the largest |value|, or
   * o.max); the numbers are written in the cells when there is room. o.width: the
   * strip's width; o.start: the index of the first value; o.label: the tooltip's note. */
  function strip(values, o) {
    o = o || {};
    const n = values.length;
    const target = o.width || 560;
    const cw = clamp(Math.floor(target / Math.max(1, n)), 1, 70);
    const numbers = cw >= 44;
    const h = o.height || (numbers ? 28 : 20);
    let max = o.max || 0;
    if (!max) for (const v of values) if (v !== null && Math.abs(v) > max) max = Math.abs(v);
    const s = scale("signed", max);
    const canvas = el("canvas");
    const ctx = sized(canvas, n * cw + 2, h + 2);
    for (let k = 0; k < n; k++) {
      const v = values[k];
      ctx.fillStyle = v === null ? css(MASKED) : css(s.colour(v));
      ctx.fillRect(1 + k * cw, 1, cw, h);
    }
    if (cw >= 8) {
      ctx.strokeStyle = "rgba(255,255,255,0.7)";
      ctx.beginPath();
      for (let k = 1; k < n; k++) { ctx.moveTo(1 + k * cw + 0.5, 1); ctx.lineTo(1 + k * cw + 0.5, h + 1); }
      ctx.stroke();
    }
    ctx.strokeStyle = "#c3c9d3";
    ctx.strokeRect(0.5, 0.5, n * cw + 1, h + 1);
    if (numbers) {
      ctx.font = "11px " + MONO;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      for (let k = 0; k < n; k++) {
        const v = values[k];
        if (v === null) continue;
        ctx.fillStyle = inkOn(s.colour(v));
        const a = Math.abs(v);
        const text = a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(0) :
          v.toFixed(a >= 100 ? 1 : 3);
        ctx.fillText(text, 1 + (k + 0.5) * cw, 1 + h / 2 + 0.5);
      }
    }
    const start = o.start || 0;
    canvas.addEventListener("mousemove", (e) => {
      const r = canvas.getBoundingClientRect();
      const k = Math.floor((e.clientX - r.left - 1) / cw);
      if (k < 0 || k >= n) { hideTip(); return; }
      showTip(e.clientX, e.clientY, "[" + (start + k) + "] = " + num(values[k]), o.label || "");
    });
    canvas.addEventListener("mouseleave", hideTip);
    canvas.scaleMax = max;
    return canvas;
  }

  // --- probability bars ---------------------------------------------------------------

  /* Horizontal bars, one per item {label, value (0..1), text (the value shown),
   * sub (a note after it), title (the hover text)}. */
  function bars(items) {
    const box = el("div", "bars");
    items.forEach((item, k) => {
      box.append(el("span", "rank", k + 1));
      const what = el("span", "what", item.label);
      if (item.title) what.title = item.title;
      box.append(what);
      const track = el("span", "track");
      const fill = el("span", "fill");
      fill.style.width = (100 * clamp(item.value, 0, 1)).toFixed(2) + "%";
      track.append(fill);
      box.append(track);
      box.append(el("span", "value", item.text !== undefined ? item.text : num(item.value)));
      box.append(el("span", "sub", item.sub || ""));
    });
    return box;
  }

  window.LLM = {
    MONO, SANS, INK, MUTED, FAINT, MARK, MASKED,
    clamp, ramp, css, inkOn, scale,
    group, num, delta, si, visible, short,
    el, sized, clear, showTip, hideTip, tipText,
    cellSize, heatmap, legend, tokens, strip, bars,
  };
})();
