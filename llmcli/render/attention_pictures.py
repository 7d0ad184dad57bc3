"""The HTML page of ``llmpath attention -f html``: one self-contained page to explore
the maps of a run.

The page is made of package data in ``llmcli/render/assets``: ``page.html``, ``page.css``
and ``components.js`` (shared with the other pages: the document, colour scales,
heatmaps with hover, legends, token labels, the tooltip), and ``attention.html`` (the
body), ``attention.css`` and ``attention.js`` (this page).

Each ``[query, key]`` map is drawn with the query tokens as rows and the key tokens as
columns; in a decoder the future is masked (a token does not see later tokens), so the
cells above the diagonal are grey rather than a weight of 0. The weights travel in a
JSON block (rounded to 4 decimals) that the script draws on canvases, and nothing is
loaded from outside: the file works offline.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

from llmcli.core.attention import AttentionMap, AttentionRun
from llmcli.errors import UsageError
from llmcli.render.attention_words import kind_line, rollout_layers, spans
from llmcli.render.page import HTML_MAX_VALUES, assets, document, script_json
from llmcli.render.tokens import token_label

DIMS = ("layer", "head", "query", "key")
DECIMALS = 4


def html_weight_count(run: AttentionRun) -> int:
    """The number of weights an HTML page of ``run`` holds: the product of its
    ``[layer, head, query, key]`` shape (2 layers x 9 heads of 7 tokens: 882)."""
    layers, heads, queries, keys = run.shape()
    return layers * heads * queries * keys


def check_size(run: AttentionRun) -> None:
    """Refuse, before the model runs, a page too large to open."""
    count = html_weight_count(run)
    if count > HTML_MAX_VALUES:
        layers, heads, queries, keys = run.shape()
        raise UsageError(
            f"an HTML page of [{layers}, {heads}, {queries}, {keys}] would hold {count:,} "
            f"weights (at most {HTML_MAX_VALUES:,}): choose fewer with --layer or --head, "
            "use --aggregate mean, a shorter text, or -f npz"
        )


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
        "HEADING": html.escape(f"Attention of {run.model}"),
        "KIND": html.escape(kind_line(run)),
        "WHAT": html.escape(_what(run)),
        "DIMS": html.escape(dims),
        "DATA": script_json(page_data(run, maps)),
        # One script block: the shared components, then the page that draws with them.
        "JS": assets("components.js", "attention.js"),
    }
    css = assets("page.css", "attention.css")
    return document(f"Attention · {run.model}", css, "attention.html", fields)
