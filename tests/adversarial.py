"""Strings that tokenizer engines get wrong when they differ from the reference at all.

Runs of whitespace of every kind, a tab or space before a contraction, CJK, emoji with
joiners and flags, combining marks, control characters, the markers other vocabularies
use (``▁``, ``Ġ``), literal special tokens and their halves, and long runs of one
character. ``strings(n)`` mixes them, the same way every time; the tests compare each
engine with its reference on them, and ``bench/bench_tokenize.py`` times them.
"""

from __future__ import annotations

import random

PIECES = (
    " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u2003", "\u3000", "\u200b",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "\t's", " 's", "\t'll", "don't",
    "日本語", "東京タワー", "한국어", "中文", "🙂", "👩‍💻", "🇫🇷", "🏳️‍🌈", "e\u0301",
    "a\u0308\u0301", "\u200d", "\ufeff", "Ä", "ß", "İ", "ﬁ", "١٢٣", "123", "4567", "3.14",
    "x=f(y)", "<|endoftext|>", "<|endoftext", "|>", "<|im_start|>", "hello", "Hello",
    "HELLO", "world", ".", "...", "!", "?", "--", "—", "\\", '"', "\x00", "\x7f", "\u2028",
    "\U0001f600", "naïve", "café", "Ω", "𝔘𝔫𝔦", "▁", "Ġ", "Ċ", "<0x0A>",
)  # fmt: skip
LONG_RUNS = ("a", " ", "日", "🙂", "\t", "ab ", "\n", "'s")


def strings(n: int = 30_000, seed: int = 7, *, long_every: int = 1000) -> list[str]:
    """``n`` strings of 1 to 12 pieces; every ``long_every``-th one is a 20,000-character
    run of one piece."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        if i % long_every == 0:
            out.append(rnd.choice(LONG_RUNS) * (20_000 // 2))
        else:
            out.append("".join(rnd.choice(PIECES) for _ in range(rnd.randint(1, 12))))
    return out
