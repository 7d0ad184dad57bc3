"""Attention maps as pictures: one self-contained HTML page, or a PNG grid of heatmaps.

Both draw each ``[query, key]`` map with the query tokens as rows and the key
tokens as columns. In a decoder the future is masked: a token does not see later
tokens, so the cells above the diagonal are drawn grey rather than as a weight of 0.

The HTML page needs no network: its style and script are inline, and the weights
travel in a JSON block (rounded to 4 decimals) that the script draws on canvases.
"""

from __future__ import annotations

import html
import json
import math
import re
import warnings
from collections.abc import Sequence
from typing import IO, Any

import numpy as np

from llmcli.core.attention import AttentionMap, AttentionRun
from llmcli.core.tokenize import TokenRecord
from llmcli.errors import UsageError
from llmcli.render.attention import kind_line, rollout_layers, spans
from llmcli.render.tokens import shown_text

DIMS = ("layer", "head", "query", "key")
DECIMALS = 4
# A page with more weights than this is refused by the command line (about 7 bytes each).
HTML_MAX_VALUES = 20_000_000
# A PNG draws at most this many maps (all of a 6 x 12 or 18 x 4 model), at most this many
# side by side, and scales down past about this many pixels.
PNG_MAX_PANELS = 72
PNG_MAX_COLUMNS = 12
PNG_MAX_PIXELS = 40_000_000
MASKED = "#d4d4d4"  # the colour of a masked cell: a later token a decoder does not see
# Fonts tried in turn for token labels in the PNG; only those installed are asked for.
LABEL_FONTS = [
    "DejaVu Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans",
    "WenQuanYi Zen Hei",
    "Noto Sans Symbols 2",
]


# --- sizes ---------------------------------------------------------------------------------


def html_cost(run: AttentionRun) -> int:
    """The number of weights an HTML page of ``run`` holds: the product of its
    ``[layer, head, query, key]`` shape (2 layers x 9 heads of 7 tokens: 882)."""
    layers, heads, queries, keys = run.shape()
    return layers * heads * queries * keys


def check_size(run: AttentionRun, fmt: str) -> None:
    """Refuse, before the model runs, a page or picture too large to be of use."""
    if fmt == "html":
        cost = html_cost(run)
        if cost > HTML_MAX_VALUES:
            raise UsageError(
                f"an HTML page of {_shape_words(run)} would hold {cost:,} weights "
                f"(at most {HTML_MAX_VALUES:,}): choose fewer with --layer or --head, "
                "use --aggregate mean, a shorter text, or -f npz"
            )
    elif fmt == "png":
        layers, heads, _, _ = run.shape()
        _check_panels(layers * heads, f"{layers} layers x {heads} heads")


def _check_panels(count: int, what: str) -> None:
    if count > PNG_MAX_PANELS:
        raise UsageError(
            f"-f png draws at most {PNG_MAX_PANELS} maps and this run has {count} ({what}): "
            "choose layers with --layer (e.g. -l 3) or heads with --head, or use -f html"
        )


def _shape_words(run: AttentionRun) -> str:
    layers, heads, queries, keys = run.shape()
    return f"[{layers}, {heads}, {queries}, {keys}]"


def token_label(record: TokenRecord) -> str:
    """How a token is labelled: its text with spaces and newlines made visible."""
    return shown_text(record) or record.token


def _title(amap: AttentionMap, run: AttentionRun) -> str:
    if amap.layer == "rollout":
        return f"attention rollout of {rollout_layers(run)}"
    if isinstance(amap.head, str):
        return f"layer {amap.layer} · {amap.head} of heads"
    return f"layer {amap.layer} · head {amap.head}"


def _what(run: AttentionRun) -> str:
    """What the maps are, in a sentence."""
    heads = f"heads {spans(run.heads)}" if len(run.heads) > 1 else f"head {run.heads[0]}"
    layers = f"layers {spans(run.layers)}" if len(run.layers) > 1 else f"layer {run.layers[0]}"
    if run.aggregate == "mean":
        return f"Each map is the mean over {heads} of a layer; {layers}."
    if run.aggregate == "max":
        return f"Each map is the largest weight over {heads} of a layer; {layers}."
    if run.aggregate == "rollout":
        return (
            "Attention rollout (Abnar & Zuidema 2020): each layer's mean over heads, with "
            f"the residual connection added, multiplied through {rollout_layers(run)}: how much "
            "each token's last state draws on each input token."
        )
    return f"Maps of {layers}, {heads}."


# --- the HTML page -------------------------------------------------------------------------


def page_data(run: AttentionRun, maps: Sequence[AttentionMap]) -> dict[str, Any]:
    """What the page embeds: the run, the tokens and every map, rounded to 4 decimals
    (core has checked that every weight is a number)."""
    return {
        "model": run.model,
        "kind": run.kind,
        "n_layers": run.n_layers,
        "n_heads": run.n_heads,
        "aggregate": run.aggregate,
        "layers": run.layers,
        "rollout_of": rollout_layers(run),
        "dims": list(DIMS),
        "shape": list(run.shape()),
        "decimals": DECIMALS,
        "tokens": [r.to_dict() for r in run.tokens],
        "labels": [token_label(r) for r in run.tokens],
        "maps": [
            {
                "layer": m.layer,
                "head": m.head,
                "matrix": np.round(np.asarray(m.matrix, dtype=np.float64), DECIMALS).tolist(),
            }
            for m in maps
        ],
    }


def script_json(obj: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` only occur inside JSON strings, where ``\\u003c`` and
    the like mean the same: no text can close the block or open a tag.

    >>> script_json({"t": "</script><b>&"})
    '{"t":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in (
        ("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
        ("\u2028", "\\u2028"), ("\u2029", "\\u2029"),
    ):  # fmt: skip
        text = text.replace(char, escaped)
    return text


def html_page(run: AttentionRun, maps: Sequence[AttentionMap]) -> str:
    """One HTML page, with no outside resources, to explore the maps of ``run``.

    A layer and a head are chosen with select boxes (or the arrow keys); the map is
    a heatmap, rows the query tokens and columns the key tokens, and hovering a
    cell shows ``query → key: weight``. All the heads of a layer can be shown side
    by side, and the tokens of the text shaded by where one query token looks.
    """
    maps = list(maps)
    layers, heads, queries, keys = run.shape()
    count = len(maps) * run.n_tokens * run.n_tokens
    dims = (
        f"Weights are [{', '.join(DIMS)}]: this page holds {layers} × {heads} × {queries} × "
        f"{keys} ({count:,} weights, rounded to {DECIMALS} decimals). Each row is a query "
        "token; "
        + (
            "a weight is the largest any head gives, so a row need not sum to 1."
            if run.aggregate == "max"
            else "its weights over the key tokens sum to 1."
        )
    )
    fields = {
        "TITLE": html.escape(f"Attention · {run.model}"),
        "H1": html.escape(f"Attention of {run.model}"),
        "KIND": html.escape(kind_line(run)),
        "WHAT": html.escape(_what(run)),
        "DIMS": html.escape(dims),
        "CSS": CSS,
        "DATA": script_json(page_data(run, maps)),
        "JS": SCRIPT,
    }
    return re.sub(r"@@(\w+)@@", lambda m: fields[m.group(1)], PAGE)


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@@TITLE@@</title>
<style>@@CSS@@</style>
</head>
<body>
<header>
<h1>@@H1@@</h1>
<p>@@KIND@@</p>
<p>@@WHAT@@</p>
<p>@@DIMS@@</p>
</header>
<noscript><p class="warn">This page draws the maps with JavaScript. Without it, the weights
are in the JSON block of the page's source.</p></noscript>
<div id="controls">
<label>Layer <select id="layer"></select></label>
<label>Head <select id="head"></select></label>
<label>Show <select id="view">
<option value="one">this head</option>
<option value="all">all heads of this layer</option>
</select></label>
<label>Colour <select id="scale">
<option value="sqrt">&#8730;weight (small weights show)</option>
<option value="linear">weight, 0 to 1</option>
<option value="max">weight, 0 to the map&#8217;s largest</option>
</select></label>
<span class="hint">&#8592; &#8594; head &#183; &#8593; &#8595; layer &#183;
hover a cell for its weight</span>
</div>
<section id="one">
<h2 id="one-title"></h2>
<div class="scroll"><div class="stack"><canvas id="heat"></canvas><canvas id="overlay">
</canvas></div></div>
</section>
<section id="all" hidden>
<h2 id="all-title"></h2>
<p class="hint">Click a map to open it.</p>
<div id="multiples"></div>
</section>
<div id="legend"><canvas id="legend-bar"></canvas></div>
<section id="sentence">
<h2 id="strip-title"></h2>
<p class="hint">Each key token is shaded by the weight the query token (outlined) gives it.
Hover a row of the heatmap to follow another token, or click a cell or a token to keep it.</p>
<div id="strip"></div>
</section>
<div id="tip" hidden><div id="tip-main"></div><div id="tip-sub"></div></div>
<script type="application/json" id="attention-data">@@DATA@@</script>
<script>@@JS@@</script>
</body>
</html>
"""

CSS = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #d9dde5;
  --accent: #2f6a9c; --mono: ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono",
  monospace; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; padding: 18px 28px 40px; color: var(--ink); background: #fbfbfd;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
h1 { font-size: 20px; margin: 0 0 6px; }
h2 { font-size: 15px; margin: 14px 0 8px; }
header p { margin: 2px 0; color: var(--muted); max-width: 72em; }
.warn { color: #9a3412; }
#controls { display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: center;
  margin: 14px 0 4px; padding: 9px 12px; background: #fff; border: 1px solid var(--line);
  border-radius: 8px; position: sticky; top: 0; z-index: 2; }
#controls label { display: flex; gap: 6px; align-items: center; color: var(--muted); }
select { font: inherit; padding: 2px 4px; }
.hint { color: var(--muted); font-size: 12px; margin: 2px 0 6px; }
.scroll { overflow: auto; max-width: 100%; }
.stack { position: relative; display: inline-block; line-height: 0; }
#overlay { position: absolute; left: 0; top: 0; pointer-events: none; }
#multiples { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; padding: 6px; background: #fff; border: 1px solid var(--line);
  border-radius: 6px; cursor: pointer; line-height: 0; }
figure.current { border-color: var(--accent); box-shadow: 0 0 0 2px var(--accent); }
figcaption { font-size: 12px; line-height: 1.4; color: var(--muted); margin-bottom: 4px; }
#legend { margin: 8px 0; }
#strip { display: flex; flex-wrap: wrap; gap: 3px; font-family: var(--mono); font-size: 14px; }
.tok { padding: 2px 5px; border-radius: 4px; cursor: pointer; white-space: pre;
  border: 1px solid rgba(0, 0, 0, 0.12); }
.tok.masked { background: #d4d4d4; color: #6b6b6b; }
.tok.query { outline: 2px solid #e4572e; outline-offset: 1px; }
#tip { position: fixed; z-index: 10; pointer-events: none; background: #1d2330; color: #fff;
  padding: 6px 9px; border-radius: 6px; font-size: 13px; max-width: 480px;
  box-shadow: 0 4px 14px rgba(0, 0, 0, 0.25); }
#tip-main { font-family: var(--mono); white-space: pre-wrap; overflow-wrap: anywhere; }
#tip-sub { color: #b9c2d3; font-size: 12px; margin-top: 2px; }
"""

# Token text only ever reaches the page through textContent, Option() and canvas
# fillText: never as HTML.
SCRIPT = r"""
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
"""


# --- the PNG grid --------------------------------------------------------------------------


def _layout(maps: Sequence[AttentionMap]) -> tuple[int, list[list[AttentionMap | None]]]:
    """Rows of panels: a layer a row (wrapped past PNG_MAX_COLUMNS heads); or, for one
    layer, or one map a layer (an aggregate), the maps in a squarish grid."""
    groups: dict[str, list[AttentionMap]] = {}
    for amap in maps:
        groups.setdefault(str(amap.layer), []).append(amap)
    widest = max(len(g) for g in groups.values())
    rows: list[list[AttentionMap | None]] = []
    if widest == 1 or len(groups) == 1:
        cols = min(len(maps), 6, math.ceil(math.sqrt(len(maps))))
        flat = list(maps)
        for start in range(0, len(flat), cols):
            rows.append(list(flat[start : start + cols]))
    else:
        cols = min(widest, PNG_MAX_COLUMNS)
        for group in groups.values():
            for start in range(0, len(group), cols):
                rows.append(list(group[start : start + cols]))
    for row in rows:
        row.extend([None] * (cols - len(row)))
    return cols, rows


def _png_labels(run: AttentionRun) -> list[str]:
    labels = [token_label(r) for r in run.tokens]
    return [s if len(s) <= 12 else s[:11] + "…" for s in labels]


def _text_inches(texts: Sequence[str], family: list[str], size: float) -> float:
    """The width of the widest of ``texts`` in inches, as matplotlib would set it."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(family=family, size=size)
    measure = TextToPath()
    widest = max(measure.get_text_width_height_descent(s, prop, ismath=False)[0] for s in texts)
    return widest / 72 * 1.05


def png_grid(run: AttentionRun, maps: Sequence[AttentionMap], fh: IO[bytes]) -> None:
    """A grid of heatmaps, one per map (a row per layer), with a shared colour bar.

    Rows are query tokens and columns key tokens; the colour is the square root of
    the weight so that small weights still show; a decoder's masked cells are grey.
    """
    maps = list(maps)
    if not maps:
        raise UsageError("there are no attention maps to draw")
    layer_count = len({str(m.layer) for m in maps})
    _check_panels(len(maps), f"{layer_count} layers x {len(maps) // layer_count} heads")

    import matplotlib
    from matplotlib import colors, font_manager
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = run.n_tokens
    cols, rows = _layout(maps)
    panel = min(9.0, max(2.4, 0.13 * t + 1.2))  # inches a map
    font = min(10.0, max(5.0, 10.5 - 0.12 * (t - 7)))  # points, for token labels
    step = max(1, math.ceil(t / 70))  # past 70 tokens, label every step-th
    labels = _png_labels(run)
    ticks = list(range(0, t, step))
    queries = [f"{labels[i]} {i}" for i in ticks]
    keys = [f"{i} {labels[i]}" for i in ticks]
    installed = {f.name for f in font_manager.fontManager.ttflist}
    family = [f for f in LABEL_FONTS if f in installed] or ["sans-serif"]
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad=MASKED)
    norm = colors.PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)
    future = np.triu(np.ones((t, t), dtype=bool), k=1) if run.kind == "decoder" else None

    # The layout, in inches from the top left. In a tall grid only the lowest map of a
    # column has key labels, and only the first column has query labels.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        y_room = _text_inches(queries, family, font) + 0.12
        x_room = _text_inches(keys, family, font) + 0.12

    def labelled(r: int, c: int) -> bool:
        below = rows[r + 1][c] if r + 1 < len(rows) else None
        return len(rows) <= 3 or below is None

    left, top, gap, title_h = 0.2 + y_room, 0.8, 0.14, 0.28
    places: list[tuple[AttentionMap, float, float, bool, bool]] = []
    y = top
    for r, row in enumerate(rows):
        y += title_h
        for c, amap in enumerate(row):
            if amap is not None:
                places.append((amap, left + c * (panel + gap), y, c == 0, labelled(r, c)))
        has_keys = any(amap is not None and labelled(r, c) for c, amap in enumerate(row))
        y += panel + (x_room if has_keys else 0.05) + 0.18
    bar_x = left + cols * panel + (cols - 1) * gap + 0.3
    width, height = bar_x + 1.3, y + 0.05
    dpi = max(50, min(100, int(math.sqrt(PNG_MAX_PIXELS / (width * height)))))
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)

    def box(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
        """A rectangle given in inches from the top left, as figure fractions."""
        return (x / width, 1 - (y + h) / height, w / width, h / height)

    image = None
    with warnings.catch_warnings():
        # A token in a script no installed font has is drawn as a box.
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        for amap, x, y, first, bottom in places:
            ax = fig.add_axes(box(x, y, panel, panel))
            matrix = np.asarray(amap.matrix, dtype=np.float64)
            data = np.ma.masked_array(matrix, mask=future) if future is not None else matrix
            image = ax.imshow(data, cmap=cmap, norm=norm, interpolation="nearest")
            ax.set_title(_title(amap, run), fontsize=10, parse_math=False)
            if bottom:
                ax.set_xticks(ticks, keys, rotation=90, fontsize=font, family=family,
                              parse_math=False)  # fmt: skip
            else:
                ax.set_xticks([])
            if first:
                ax.set_yticks(ticks, queries, fontsize=font, family=family, parse_math=False)
            else:
                ax.set_yticks([])
            ax.tick_params(length=2, pad=2)
        area = height - top - title_h - x_room  # from the first map's top to the last's foot
        span = min(area, max(panel, 6.0))
        bar_top = top + title_h + (area - span) / 2
        assert image is not None
        bar = fig.colorbar(image, cax=fig.add_axes(box(bar_x, bar_top, 0.18, span)))
        bar.set_ticks([0, 0.01, 0.05, 0.1, 0.25, 0.5, 1])
        bar.set_label("attention weight (√ colour scale)")
        how = (
            "decoder: masked (causal) attention, grey = a later token it does not see"
            if run.kind == "decoder"
            else "encoder: each token attends in both directions"
        )
        fig.text(
            0.5, 1 - 0.15 / height,
            f"{run.model}: attention, {how}\n{run.n_layers} layers x {run.n_heads} heads; "
            f"[layer, head, query, key] = {list(run.shape())}; rows: query, columns: key",
            ha="center", va="top", fontsize=11, parse_math=False,
        )  # fmt: skip
        fig.savefig(fh, format="png")
