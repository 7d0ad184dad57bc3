"""The self-contained HTML page of ``llmpath walk``: every step of a walk, drawn.

The page is made of package data in ``llmcli/render/assets``: ``page.html``, ``page.css``
and ``components.js`` (shared with the other pages: the document, colour scales,
heatmaps, token labels, vector strips, probability bars), and ``walk.html`` (the body,
with ``/*__NAME__*/`` placeholders), ``walk.css`` and ``walk.js`` (this page). The walk travels in a
JSON block that no text can break out of (``script_json``), and nothing is loaded from
outside, so the file works offline.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from llmcli.core.tokenize import TokenRecord
from llmcli.core.walk import WalkPlan
from llmcli.core.walk.records import Walk
from llmcli.errors import UsageError
from llmcli.render.page import HTML_MAX_VALUES, asset, assets, document, script_json
from llmcli.render.tokens import token_label

Describe = Callable[[int], tuple[str, str, str, bool]]

DECIMALS = 4  # attention scores and weights, and probabilities
VECTOR_DECIMALS = 6


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it: NaN and infinities as None, numpy as Python."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def grid(array: Any, decimals: int = DECIMALS) -> list[Any]:
    """A float array as nested lists, rounded, with -inf (a masked score) and NaN as None."""
    a = np.round(np.asarray(array, dtype=np.float64), decimals)
    finite = np.isfinite(a)
    if finite.all():
        return list(a.tolist())
    out = a.astype(object)
    out[~finite] = None
    return list(out.tolist())


def vocab_label(describe: Describe, token_id: int) -> str:
    """How a vocabulary entry is shown: as a token of the text would be (``·blue``)."""
    token, text, hexbytes, special = describe(token_id)
    return token_label(TokenRecord(0, token_id, token, text, 0, 0, hexbytes, special))


def page_data(walk: Walk, describe: Describe) -> dict[str, Any]:
    """What the page embeds: the walk's header and steps, and from its arrays the
    attention of the opened layer (every head), the logit lens and the next tokens
    (decoders) or the pooled vector (encoders). Vocabulary IDs are named with
    ``describe`` (the tokenizer's ``describe``: token, text, hex bytes, special)."""
    arrays = walk.arrays
    data: dict[str, Any] = {
        "header": plain(walk.header()),
        "labels": [token_label(r) for r in walk.tokens],
        "ok": walk.ok,
        "decimals": DECIMALS,
        "steps": [plain(step.to_dict()) for step in walk.steps],
    }
    if "weights" in arrays and "scores" in arrays:
        data["attention"] = {
            "layer": walk.layer,
            "head": walk.head,
            "dims": ["head", "query", "key"],
            "scores": grid(arrays["scores"]),  # masked: None
            "weights": grid(arrays["weights"]),
        }
    ids: set[int] = set()
    if "lens_ids" in arrays and "lens_probs" in arrays:
        lens_ids = np.asarray(arrays["lens_ids"], dtype=np.int64)
        data["lens"] = {
            "dims": ["layer + 1", "token", "top"],
            "ids": lens_ids.tolist(),
            "probs": grid(arrays["lens_probs"]),
        }
        ids.update(int(i) for i in np.unique(lens_ids))
    if "next_ids" in arrays and "next_probs" in arrays:
        next_ids = [int(i) for i in np.asarray(arrays["next_ids"]).ravel()]
        data["next"] = {"token": walk.token, "ids": next_ids,
                        "probs": grid(np.asarray(arrays["next_probs"]).ravel())}  # fmt: skip
        ids.update(next_ids)
    if "pooled" in arrays:
        data["pooled"] = grid(np.asarray(arrays["pooled"]).ravel(), VECTOR_DECIMALS)
    vocab = {}
    for token_id in sorted(ids):
        token, _, _, special = describe(token_id)
        vocab[str(token_id)] = {"label": vocab_label(describe, token_id), "token": token,
                                "special": special}  # fmt: skip
    data["vocab"] = vocab
    return data


def html_page(walk: Walk, describe: Describe) -> str:
    """One HTML page, with no outside resources, of every step of ``walk``.

    ``walk`` is best run with ``lens="all"``: the logit-lens grid needs every token.
    """
    fields = {
        "COMPONENTS": asset("components.js"),
        "JS": asset("walk.js"),
        "DATA": script_json(page_data(walk, describe)),
    }
    return document(f"walk · {walk.model}", assets("page.css", "walk.css"), "walk.html", fields)


def check_size(plan: WalkPlan) -> None:
    """Refuse, before the model runs, a page too large to open: it holds the scores and
    weights of every head of the opened layer, ``2 x head x token x token`` numbers."""
    n = len(plan.ids)
    cost = 2 * plan.n_heads * n * n
    if cost > HTML_MAX_VALUES:
        raise UsageError(
            f"a walk page of {n} tokens would hold {cost:,} attention numbers (at most "
            f"{HTML_MAX_VALUES:,}): use a shorter text, or -f npz"
        )
