"""What every page shares: its asset files (package data in ``assets/``), how a page
is put together from them, the JSON block its data travels in, and the largest page
the command line writes.

The assets shared by the pages are ``page.html`` (the document around a page's body),
``page.css`` (the colours, and the style of what the components draw) and
``components.js`` (colour scales, heatmaps with hover, legends, token labels, vector
strips, probability bars, the tooltip: ``window.LLM``); each page adds its own body
(``NAME.html``), style (``NAME.css``) and script (``NAME.js``).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

# A page with more numbers than this is refused by the command line (about 7 bytes each).
HTML_MAX_VALUES = 20_000_000
# What a script or style asset must never hold: it would close the tag the page puts it in.
CLOSERS = re.compile(r"</(script|style)", re.IGNORECASE)
# Where a skeleton is filled in: /*__NAME__*/, a comment in a style or script.
PLACEHOLDER = re.compile(r"/\*__([A-Z]+)__\*/")


@cache
def asset(name: str) -> str:
    """The text of one file of ``llmcli/render/assets`` (read once)."""
    text = (resources.files("llmcli.render") / "assets" / name).read_text(encoding="utf-8")
    if not name.endswith(".html") and CLOSERS.search(text):
        raise RuntimeError(f"the page asset {name} holds a closing tag")
    return text


def assets(*names: str) -> str:
    """The assets ``names`` one after another, as one style or script block holds them."""
    return "\n".join(asset(name) for name in names)


def fill(skeleton: str, fields: Mapping[str, str]) -> str:
    """``skeleton`` with each ``/*__NAME__*/`` replaced by ``fields[NAME]``, in one pass:
    what is filled in is never searched again."""
    return PLACEHOLDER.sub(lambda m: fields[m.group(1)], skeleton)


def document(title: str, css: str, body: str, fields: Mapping[str, str]) -> str:
    """A whole page: ``page.html`` around the body asset ``body`` filled with ``fields``,
    with the title ``title`` (plain text, escaped here) and the style ``css``."""
    inside = fill(asset(body), fields).rstrip("\n")
    return fill(asset("page.html"), {"TITLE": html.escape(title), "CSS": css, "BODY": inside})


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
