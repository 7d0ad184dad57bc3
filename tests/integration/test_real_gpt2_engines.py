"""GPT-2's two engines: tiktoken on the ranks file and the converted tokenizer.json agree."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

# GPT-2's pre-tokenizer regex and end-of-text token, as tiktoken publishes them.
GPT2_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

VARIED = (
    "def f(x):\n    return x ** 2  # square\n\n\tif x != 0:\r\n\t\tpass\r\n"
    "Naïve café, Ελληνικά, русский, 東京タワー, 한국어, عربى, हिन्दी.\n"
    "Emoji: 🤖👩‍💻🏳️‍🌈 ✓ — “quotes” … and e\u0301 combining.\n"
    "Runs:   three spaces,\t\ttabs,\n\n\n  \n blank-ish lines, trailing   \n"
    "Numbers 3.14159 1,000,000 2026-11-29 0x1F; contractions: it's we'll they're I'd.\n"
    '<|endoftext|> and HTML <b>bold</b> &amp; {"json": [1, 2, 3]}\r\n'
    "\u00a0no-break\u2003em\u3000ideographic spaces\u200bzero-width\ufeffbom\n"
)


@pytest.fixture(scope="session")
def tiktoken_gpt2(model_dir):
    """tiktoken's Encoding built straight from the store's gpt2.tiktoken."""
    import tiktoken

    ranks = {}
    for line in (model_dir("gpt2") / "gpt2.tiktoken").read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    assert len(ranks) == 50256
    return tiktoken.Encoding(
        name="gpt2-test",
        pat_str=GPT2_PAT,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
    )


@pytest.fixture(scope="session")
def gpt2_whole(reference, stdlib_text: Path) -> list[int]:
    """IDs of the whole real text by the converted tokenizer.json."""
    text = stdlib_text.read_bytes().decode("utf-8")
    return reference("gpt2").encode(text, add_special_tokens=False).ids


def test_engines_agree_on_varied_text(tiktoken_gpt2, reference):
    from_ranks = tiktoken_gpt2.encode(VARIED, allowed_special="all")
    from_json = reference("gpt2").encode(VARIED, add_special_tokens=False).ids
    assert from_ranks == from_json
    assert 50256 in from_ranks
    assert tiktoken_gpt2.decode_bytes(from_ranks) == VARIED.encode("utf-8")


def test_engines_agree_line_by_line_on_varied_text(tiktoken_gpt2, reference):
    lines = VARIED.split("\n")
    from_json = [e.ids for e in reference("gpt2").encode_batch(lines, add_special_tokens=False)]
    assert tiktoken_gpt2.encode_batch(lines, allowed_special="all") == from_json


def test_engines_agree_on_megabytes_of_real_text(tiktoken_gpt2, gpt2_whole, stdlib_text):
    text = stdlib_text.read_bytes().decode("utf-8")
    assert len(text) >= 3_000_000
    assert tiktoken_gpt2.encode_ordinary(text) == gpt2_whole


def test_loaded_tokenizer_has_the_same_engine(loaded, tiktoken_gpt2):
    """llmpath's gpt2 carries a tiktoken engine that gives the same IDs."""
    engine = loaded("gpt2").tiktoken
    assert engine is not None
    lines = VARIED.split("\n")
    got = engine.encode_batch(lines, allowed_special="all")
    assert got == tiktoken_gpt2.encode_batch(lines, allowed_special="all")


def test_ids_of_varied_file_equal_tiktoken_per_line(llmpath, tiktoken_gpt2, tmp_path: Path):
    path = tmp_path / "varied.txt"
    path.write_bytes(VARIED.encode("utf-8"))
    out = llmpath(["tokenize", "-f", "ids", "--file", str(path)]).stdout
    lines = VARIED.split("\n")[:-1]  # the text ends with a line break
    per_line = tiktoken_gpt2.encode_batch(lines, allowed_special="all")
    expected = [" ".join(map(str, ids)) for ids in per_line]
    assert out.split("\n") == [*expected, ""]


def test_ids_of_real_file_equal_tiktoken_per_line(llmpath, tiktoken_gpt2, stdlib_text: Path,
                                                  shrink, tmp_path: Path):  # fmt: skip
    """300 KB of real text in ID batches of 26 KB (a tenth of 3 MB in batches of 256 KB)."""
    shrink(10)
    text = stdlib_text.read_bytes().decode("utf-8")
    text = text[: text.rindex("\n", 0, 300_000) + 1]
    path = tmp_path / "real.txt"
    path.write_bytes(text.encode("utf-8"))
    out = llmpath(["tokenize", "-f", "ids", "--file", str(path)]).stdout
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    expected = tiktoken_gpt2.encode_batch(lines, allowed_special="all")
    got = out.split("\n")
    assert got.pop() == ""
    assert len(got) == len(lines) > 5_000
    assert got == [" ".join(map(str, ids)) for ids in expected]


def test_jsonl_and_ids_routes_agree(llmpath, tiktoken_gpt2):
    """The record route (tokenizer.json) and the ID route (tiktoken) give the same IDs."""
    line = VARIED.replace("\n", " ")
    records = llmpath(["tokenize", "-f", "jsonl", line]).records()
    ids = llmpath(["tokenize", "-f", "ids", line]).stdout.split()
    assert [r["id"] for r in records] == [int(i) for i in ids]
    assert [r["id"] for r in records] == tiktoken_gpt2.encode(line, allowed_special="all")
