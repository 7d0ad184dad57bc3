"""What every page shares: its asset files (package data in ``assets/``) and the JSON
block its data travels in."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

# What a script or style asset must never hold: it would close the tag the page puts it in.
CLOSERS = re.compile(r"</(script|style)", re.IGNORECASE)


@cache
def asset(name: str) -> str:
    """The text of one file of ``llmcli/render/assets`` (read once)."""
    text = (resources.files("llmcli.render") / "assets" / name).read_text(encoding="utf-8")
    if not name.endswith(".html") and CLOSERS.search(text):
        raise RuntimeError(f"the page asset {name} holds a closing tag")
    return text


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
