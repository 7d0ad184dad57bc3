(() => {
"use strict";
const D = JSON.parse(document.getElementById("attention-data").textContent);
const $ = (id) => document.getElementById(id);
const N = D.tokens.length;
const CAUSAL = D.kind === "decoder";
const MONO = 'ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace';
const SANS = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const MASKED = [212, 212, 212];
const VIRIDIS = ["#440154", "#48186a", "#472d7b", "#424086", "#3b528b", "#33638d", "#2c728e",
  "#26828e", "#21918c", "#1fa088", "#28ae80", "#3fbc73", "#5ec962", "#84d44b", "#addc30",
  "#d8e219", "#fde725"].map((h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16)));
const FULL = D.labels.map((s) => (s.length > 60 ? s.slice(0, 59) + "\u2026" : s));
const SHORT = D.labels.map((s) => (s.length > 18 ? s.slice(0, 17) + "\u2026" : s));
const SLANT = Math.PI / 3; // key labels rise at 60 degrees

// The maps grouped by layer, in order: [{label, maps: [index into D.maps]}].
const layers = [];
D.maps.forEach((m, n) => {
  let group = layers.find((g) => g.label === m.layer);
  if (!group) { group = { label: m.layer, maps: [] }; layers.push(group); }
  group.maps.push(n);
});
const largest = D.maps.map((m) => {
  let top = 0;
  for (const row of m.matrix) for (const w of row) if (w > top) top = w;
  return top;
});
const state = { layer: 0, head: 0, view: "one", scale: "sqrt", query: N - 1, pinned: false };
let G = null; // the geometry of the heatmap drawn now

const current = () => layers[state.layer].maps[state.head];
const masked = (i, j) => CAUSAL && j > i;
const layerName = (l) => (l === "rollout" ? "rollout (" + D.rollout_of + ")" : String(l));
function headName(h) {
  if (h === "rollout") return "mean (rollout)";
  return typeof h === "string" ? h + " of heads" : String(h);
}
function title(n) {
  const m = D.maps[n];
  if (m.layer === "rollout") return "attention rollout of " + D.rollout_of;
  return "layer " + m.layer + " \u00b7 " + headName(m.head).replace(/^(\d+)$/, "head $1");
}
function scaled(w, n) {
  if (state.scale === "sqrt") return Math.sqrt(Math.max(0, w));
  if (state.scale === "max") return largest[n] > 0 ? w / largest[n] : 0;
  return w;
}
function colour(t) {
  t = Math.min(1, Math.max(0, t));
  const x = t * (VIRIDIS.length - 1);
  const k = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - k;
  return VIRIDIS[k].map((a, c) => Math.round(a + (VIRIDIS[k + 1][c] - a) * f));
}
const css = (c) => "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")";
const ink = (t) => (t > 0.62 ? "#000" : "#fff");

function describe(n, i, j) {
  const w = D.maps[n].matrix[i][j];
  const main = FULL[i] + " \u2192 " + FULL[j] + ": " + w.toFixed(D.decimals);
  let sub = "query " + i + " \u2192 key " + j + " \u00b7 " + title(n);
  if (masked(i, j)) sub += " \u00b7 masked: a decoder token does not see later tokens";
  return [main, sub];
}

function showTip(x, y, n, i, j) {
  const [main, sub] = describe(n, i, j);
  const tip = $("tip");
  $("tip-main").textContent = main;
  $("tip-sub").textContent = sub;
  tip.hidden = false;
  const r = tip.getBoundingClientRect();
  const left = x + 16 + r.width > window.innerWidth ? x - 12 - r.width : x + 16;
  const top = y + 18 + r.height > window.innerHeight ? y - 12 - r.height : y + 18;
  tip.style.left = Math.max(4, left) + "px";
  tip.style.top = Math.max(4, top) + "px";
}
const hideTip = () => { $("tip").hidden = true; };

function sized(canvas, w, h) {
  const r = window.devicePixelRatio || 1;
  canvas.width = Math.ceil(w * r);
  canvas.height = Math.ceil(h * r);
  canvas.style.width = w + "px";
  canvas.style.height = h + "px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(r, 0, 0, r, 0, 0);
  return ctx;
}

// One pixel per cell, drawn scaled up without smoothing.
function image(n) {
  const canvas = document.createElement("canvas");
  canvas.width = N;
  canvas.height = N;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(N, N);
  const m = D.maps[n].matrix;
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      const c = masked(i, j) ? MASKED : colour(scaled(m[i][j], n));
      const p = 4 * (i * N + j);
      img.data[p] = c[0]; img.data[p + 1] = c[1]; img.data[p + 2] = c[2]; img.data[p + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

function geometry() {
  const cs = Math.max(1, Math.min(44, Math.floor(640 / N)));
  const across = cs * Math.sin(SLANT); // the room between two slanted key labels
  const fs = Math.max(9, Math.min(13, Math.floor(across) - 2));
  const step = Math.max(1, Math.ceil((fs + 2) / across));
  const ctx = $("heat").getContext("2d");
  ctx.font = fs + "px " + MONO;
  let lw = 0;
  for (let i = 0; i < N; i += step) lw = Math.max(lw, ctx.measureText(SHORT[i]).width);
  const iw = ctx.measureText(String(N - 1)).width;
  const label = lw + iw + 8;
  const x0 = Math.ceil(Math.max(label + 12, 70));
  const y0 = Math.ceil(label * Math.sin(SLANT) + fs + 12);
  const w = Math.ceil(x0 + N * cs + label * Math.cos(SLANT) + 12);
  return { cs, fs, step, iw, label, x0, y0, w, h: Math.ceil(y0 + N * cs + 8) };
}

function cellAt(g, x, y) {
  const i = Math.floor((y - g.y0) / g.cs);
  const j = Math.floor((x - g.x0) / g.cs);
  return i >= 0 && i < N && j >= 0 && j < N ? [i, j] : null;
}

function drawHeat(n) {
  const g = (G = geometry());
  const ctx = sized($("heat"), g.w, g.h);
  sized($("overlay"), g.w, g.h);
  const side = N * g.cs;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(image(n), g.x0, g.y0, side, side);
  const m = D.maps[n].matrix;
  if (g.cs >= 12) {
    ctx.strokeStyle = "rgba(255,255,255,0.35)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let k = 1; k < N; k++) {
      ctx.moveTo(g.x0 + k * g.cs + 0.5, g.y0); ctx.lineTo(g.x0 + k * g.cs + 0.5, g.y0 + side);
      ctx.moveTo(g.x0, g.y0 + k * g.cs + 0.5); ctx.lineTo(g.x0 + side, g.y0 + k * g.cs + 0.5);
    }
    ctx.stroke();
  }
  if (g.cs >= 30) { // the weights, two decimals, in the cells
    ctx.font = Math.min(12, Math.floor(g.cs / 3.2)) + "px " + SANS;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < N; j++) {
        if (masked(i, j)) continue;
        const w = m[i][j];
        const text = w >= 0.995 ? "1" : w >= 0.005 ? w.toFixed(2).slice(1) : w > 0 ? "\u00b7" : "0";
        ctx.fillStyle = ink(scaled(w, n));
        ctx.fillText(text, g.x0 + (j + 0.5) * g.cs, g.y0 + (i + 0.5) * g.cs);
      }
    }
  }
  ctx.font = g.fs + "px " + MONO;
  ctx.textBaseline = "middle";
  for (let i = 0; i < N; i += g.step) { // query labels, left of the rows
    const y = g.y0 + (i + 0.5) * g.cs;
    ctx.textAlign = "right";
    ctx.fillStyle = "#8a93a3";
    ctx.fillText(String(i), g.x0 - 6, y);
    ctx.fillStyle = "#1d2330";
    ctx.fillText(SHORT[i], g.x0 - 12 - g.iw, y);
  }
  for (let j = 0; j < N; j += g.step) { // key labels, slanted above the columns
    ctx.save();
    ctx.translate(g.x0 + (j + 0.5) * g.cs, g.y0 - 6);
    ctx.rotate(-SLANT);
    ctx.textAlign = "left";
    ctx.fillStyle = "#8a93a3";
    ctx.fillText(String(j), 0, 0);
    ctx.fillStyle = "#1d2330";
    ctx.fillText(SHORT[j], g.iw + 6, 0);
    ctx.restore();
  }
  ctx.font = "italic 12px " + SANS;
  ctx.fillStyle = "#5b6475";
  ctx.textAlign = "left";
  ctx.fillText("key \u2192", 4, g.y0 - 24);
  ctx.fillText("query \u2193", 4, g.y0 - 8);
}

function drawOverlay(cell) {
  const g = G;
  const ctx = $("overlay").getContext("2d");
  const r = window.devicePixelRatio || 1;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, $("overlay").width, $("overlay").height);
  ctx.setTransform(r, 0, 0, r, 0, 0);
  if (!cell) return;
  const [i, j] = cell;
  const side = N * g.cs;
  ctx.fillStyle = "rgba(255, 196, 0, 0.35)";
  ctx.fillRect(0, g.y0 + i * g.cs, g.x0 - 2, g.cs);
  ctx.save();
  ctx.translate(g.x0 + (j + 0.5) * g.cs, g.y0 - 6);
  ctx.rotate(-SLANT);
  ctx.fillRect(-3, -g.fs / 2 - 2, g.label + 4, g.fs + 4);
  ctx.restore();
  ctx.strokeStyle = "rgba(255, 255, 255, 0.7)";
  ctx.lineWidth = 1;
  ctx.strokeRect(g.x0 + 0.5, g.y0 + i * g.cs + 0.5, side - 1, g.cs - 1);
  ctx.strokeRect(g.x0 + j * g.cs + 0.5, g.y0 + 0.5, g.cs - 1, side - 1);
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#e4572e";
  ctx.strokeRect(g.x0 + j * g.cs - 1, g.y0 + i * g.cs - 1, g.cs + 2, g.cs + 2);
}

function drawStrip() {
  const n = current();
  const q = state.query;
  const row = D.maps[n].matrix[q];
  $("strip-title").textContent = "Where token " + q + " (" + FULL[q] + ") looks, in " + title(n);
  const strip = $("strip");
  strip.replaceChildren();
  for (let j = 0; j < N; j++) {
    const span = document.createElement("span");
    span.className = "tok" + (masked(q, j) ? " masked" : "") + (j === q ? " query" : "");
    span.textContent = D.labels[j];
    if (!masked(q, j)) {
      const t = scaled(row[j], n);
      span.style.background = css(colour(t));
      span.style.color = ink(t);
    }
    span.title = describe(n, q, j).join("\n");
    span.addEventListener("click", () => {
      state.query = j;
      state.pinned = true;
      drawStrip();
      save();
    });
    strip.append(span);
  }
}

function drawAll() {
  const box = $("multiples");
  box.replaceChildren();
  const cs = Math.max(1, Math.min(24, Math.floor(200 / N)));
  const side = N * cs;
  layers[state.layer].maps.forEach((n, k) => {
    const fig = document.createElement("figure");
    if (k === state.head) fig.className = "current";
    const cap = document.createElement("figcaption");
    cap.textContent = title(n);
    const canvas = document.createElement("canvas");
    const ctx = sized(canvas, side, side);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(image(n), 0, 0, side, side);
    canvas.addEventListener("mousemove", (e) => {
      const r = canvas.getBoundingClientRect();
      const cell = cellAt({ x0: 0, y0: 0, cs }, e.clientX - r.left, e.clientY - r.top);
      if (cell) showTip(e.clientX, e.clientY, n, cell[0], cell[1]); else hideTip();
    });
    canvas.addEventListener("mouseleave", hideTip);
    fig.addEventListener("click", () => { state.head = k; state.view = "one"; update(); });
    fig.append(cap, canvas);
    box.append(fig);
  });
}

function drawLegend() {
  const W = 300;
  const extra = CAUSAL ? 190 : 0;
  const ctx = sized($("legend-bar"), W + 30 + extra + 150, 36);
  for (let x = 0; x < W; x++) {
    ctx.fillStyle = css(colour(x / (W - 1)));
    ctx.fillRect(10 + x, 2, 1.5, 12);
  }
  const top = largest[current()];
  let ticks = [0, 0.25, 0.5, 0.75, 1];
  let where = (v) => v;
  if (state.scale === "sqrt") { ticks = [0, 0.01, 0.05, 0.1, 0.25, 0.5, 1]; where = Math.sqrt; }
  if (state.scale === "max") { ticks = [0, top / 2, top]; where = (v) => (top > 0 ? v / top : 0); }
  ctx.font = "11px " + SANS;
  ctx.fillStyle = "#1d2330";
  ctx.strokeStyle = "#1d2330";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const v of ticks) {
    const x = 10 + where(v) * (W - 1);
    ctx.fillRect(x, 14, 1, 4);
    ctx.fillText(v === 0 || v === 1 ? String(v) : String(+v.toFixed(3)), x, 20);
  }
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  const name = { sqrt: "weight (\u221a scale)", linear: "weight", max: "weight (to the largest)" };
  ctx.fillText(name[state.scale], W + 20, 8);
  if (CAUSAL) {
    const x = W + 20 + 150;
    ctx.fillStyle = css(MASKED);
    ctx.fillRect(x, 2, 12, 12);
    ctx.fillStyle = "#1d2330";
    ctx.fillText("masked: a later token", x + 18, 8);
  }
}

function save() {
  const p = new URLSearchParams();
  p.set("layer", String(layers[state.layer].label));
  p.set("head", String(D.maps[current()].head));
  p.set("view", state.view);
  p.set("scale", state.scale);
  if (state.pinned) p.set("query", String(state.query));
  try { history.replaceState(null, "", "#" + p.toString()); } catch (e) { /* a sandboxed page */ }
}

function load() {
  const p = new URLSearchParams(location.hash.slice(1));
  const l = layers.findIndex((g) => String(g.label) === p.get("layer"));
  if (l >= 0) state.layer = l;
  const h = layers[state.layer].maps.findIndex((n) => String(D.maps[n].head) === p.get("head"));
  if (h >= 0) state.head = h;
  if (["one", "all"].includes(p.get("view"))) state.view = p.get("view");
  if (["sqrt", "linear", "max"].includes(p.get("scale"))) state.scale = p.get("scale");
  const q = Number.parseInt(p.get("query"), 10);
  if (q >= 0 && q < N) { state.query = q; state.pinned = true; }
}

function update() {
  const group = layers[state.layer];
  state.head = Math.min(state.head, group.maps.length - 1);
  const several = group.maps.length > 1;
  if (!several) state.view = "one";
  $("layer").value = String(state.layer);
  const options = group.maps.map((n, k) => new Option(headName(D.maps[n].head), String(k)));
  $("head").replaceChildren(...options);
  $("head").value = String(state.head);
  $("view").value = state.view;
  $("view").querySelector('option[value="all"]').disabled = !several;
  $("scale").value = state.scale;
  $("one").hidden = state.view !== "one";
  $("all").hidden = state.view !== "all";
  $("sentence").hidden = state.view !== "one";
  hideTip();
  if (state.view === "one") {
    $("one-title").textContent = title(current());
    drawHeat(current());
    drawStrip();
  } else {
    $("all-title").textContent = "All heads of layer " + group.label;
    drawAll();
  }
  drawLegend();
  save();
}

if (!D.maps.length || !N) { $("one-title").textContent = "There are no maps to show."; return; }
layers.forEach((g, k) => $("layer").add(new Option(layerName(g.label), String(k))));
$("layer").addEventListener("change", (e) => { state.layer = +e.target.value; update(); });
$("head").addEventListener("change", (e) => { state.head = +e.target.value; update(); });
$("view").addEventListener("change", (e) => { state.view = e.target.value; update(); });
$("scale").addEventListener("change", (e) => { state.scale = e.target.value; update(); });
const heat = $("heat");
heat.addEventListener("mousemove", (e) => {
  const r = heat.getBoundingClientRect();
  const cell = cellAt(G, e.clientX - r.left, e.clientY - r.top);
  drawOverlay(cell);
  if (!cell) { hideTip(); return; }
  showTip(e.clientX, e.clientY, current(), cell[0], cell[1]);
  if (!state.pinned && state.query !== cell[0]) { state.query = cell[0]; drawStrip(); }
});
heat.addEventListener("mouseleave", () => { drawOverlay(null); hideTip(); });
heat.addEventListener("click", (e) => {
  const r = heat.getBoundingClientRect();
  const cell = cellAt(G, e.clientX - r.left, e.clientY - r.top);
  if (!cell) return;
  state.pinned = !(state.pinned && state.query === cell[0]);
  state.query = cell[0];
  drawStrip();
  save();
});
document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLSelectElement || e.altKey || e.ctrlKey || e.metaKey) return;
  const heads = layers[state.layer].maps.length;
  if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
    state.head = (state.head + (e.key === "ArrowRight" ? 1 : heads - 1)) % heads;
  } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    state.layer = (state.layer + (e.key === "ArrowDown" ? 1 : layers.length - 1)) % layers.length;
  } else {
    return;
  }
  e.preventDefault();
  update();
});
load();
update();
})();
