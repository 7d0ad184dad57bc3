/* The attention page of `llmpath attention -f html`: a layer's and head's map at a time,
 * or all the heads of a layer side by side, and the text shaded by where one token looks.
 *
 * It reads the JSON block #attention-data (see llmcli/render/attention_pictures.py) and
 * draws with the shared components of components.js (window.LLM), which the page's
 * script block holds before this one.
 */
(() => {
"use strict";
const L = window.LLM;
const D = JSON.parse(document.getElementById("attention-data").textContent);
const $ = (id) => document.getElementById(id);
const N = D.tokens.length;
const CAUSAL = D.kind === "decoder";
const FULL = D.labels.map((s) => L.short(s, 60));
const SCALES = {
  sqrt: { name: "weight (\u221a scale)", ticks: () => [0, 0.01, 0.05, 0.1, 0.25, 0.5, 1] },
  linear: { name: "weight", ticks: () => [0, 0.25, 0.5, 0.75, 1] },
  max: { name: "weight (to the largest)", ticks: (top) => [0, top / 2, top] },
};

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
// The colour scale of map n: by the square root, by the weight, or to the map's largest.
function scaleOf(n) {
  if (state.scale === "max") return L.scale("weights", largest[n]);
  return L.scale("weights", 1, { sqrt: state.scale === "sqrt" });
}
// Map n with the cells a decoder's token does not see as null: drawn grey.
const values = (n) =>
  D.maps[n].matrix.map((row, i) => row.map((w, j) => (masked(i, j) ? null : w)));

function describe(n, i, j) {
  const w = D.maps[n].matrix[i][j];
  const main = FULL[i] + " \u2192 " + FULL[j] + ": " + w.toFixed(D.decimals);
  let sub = "query " + i + " \u2192 key " + j + " \u00b7 " + title(n);
  if (masked(i, j)) sub += " \u00b7 masked: a decoder token does not see later tokens";
  return [main, sub];
}

function drawHeat(n) {
  const cs = Math.max(1, Math.min(44, Math.floor(640 / N)));
  const heat = L.heatmap({
    values: values(n), rows: D.labels, cols: D.labels, scale: scaleOf(n), cell: cs,
    numbers: cs >= 30, rowName: "query", colName: "key", tip: (i, j) => describe(n, i, j),
    onHover: (i) => {
      if (!state.pinned && state.query !== i) { state.query = i; drawStrip(); }
    },
    onClick: (i) => {
      state.pinned = !(state.pinned && state.query === i);
      state.query = i;
      drawStrip();
      save();
    },
  });
  $("heat").replaceChildren(heat);
}

function drawStrip() {
  const n = current();
  const q = state.query;
  const row = D.maps[n].matrix[q];
  const s = scaleOf(n);
  $("strip-title").textContent = "Where token " + q + " (" + FULL[q] + ") looks, in " + title(n);
  $("strip").replaceChildren(L.tokens(D.labels, {
    masked: D.labels.map((_, j) => masked(q, j)),
    colour: (j) => s.colour(row[j]),
    mark: q,
    title: (j) => describe(n, q, j).join("\n"),
    onClick: (j) => {
      state.query = j;
      state.pinned = true;
      drawStrip();
      save();
    },
  }));
}

function drawAll() {
  const cs = Math.max(1, Math.min(24, Math.floor(200 / N)));
  const figures = layers[state.layer].maps.map((n, k) => {
    const fig = L.el("figure", "mini" + (k === state.head ? " current" : ""));
    fig.append(L.el("figcaption", "", title(n)));
    fig.append(L.heatmap({ values: values(n), scale: scaleOf(n), labels: false, cell: cs,
      numbers: false, tip: (i, j) => describe(n, i, j) }));
    fig.addEventListener("click", () => { state.head = k; state.view = "one"; update(); });
    return fig;
  });
  $("multiples").replaceChildren(...figures);
}

function drawLegend() {
  const top = largest[current()];
  const kind = SCALES[state.scale];
  $("legend").replaceChildren(L.legend(scaleOf(current()), kind.name, {
    width: 300, ticks: kind.ticks(top), masked: CAUSAL ? "masked: a later token" : "",
  }));
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
  if (Object.keys(SCALES).includes(p.get("scale"))) state.scale = p.get("scale");
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
  L.hideTip();
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
