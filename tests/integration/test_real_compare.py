"""Several models side by side: each one's records are what its tokenizer.json gives."""

from __future__ import annotations

import json

import pytest

MODELS = ("gpt2", "minilm", "smollm2", "gemma3-270m")
SENTENCE = "It's a blue sundress. Naïve café — 東京で 🤖 coding:\tx  =  f(y)\r\n"
# Long enough that minilm's stored truncation (128 tokens) would cut it if it were on.
TEXT = SENTENCE * 12


def _args(fmt: str) -> list[str]:
    # --no-special: the text's own tokens, to compare with the tokenizers' bare encodings
    # (test_real_special checks the templates).
    models = (a for name in MODELS for a in ("-m", name))
    return ["tokenize", "-f", fmt, "--no-special", *models, TEXT]


@pytest.fixture(scope="module")
def side_by_side(llmpath):
    """The JSON Lines of all four models on TEXT (one run, shared by the tests here)."""
    return llmpath(_args("jsonl")).records()


def test_side_by_side_records_equal_tokenizers(side_by_side, reference):
    records = side_by_side
    assert [r["model"] for r in records] == sorted((r["model"] for r in records), key=MODELS.index)
    for name in MODELS:
        mine = [r for r in records if r["model"] == name]
        encoding = reference(name).encode(TEXT, add_special_tokens=False)
        assert [r["index"] for r in mine] == list(range(len(encoding.ids)))
        assert [r["id"] for r in mine] == encoding.ids
        assert [r["token"] for r in mine] == encoding.tokens
        assert [(r["start"], r["end"]) for r in mine] == [tuple(o) for o in encoding.offsets]
        special = set(reference(name).get_added_tokens_decoder())
        assert [r["special"] for r in mine] == [
            i in special and reference(name).get_added_tokens_decoder()[i].special
            for i in encoding.ids
        ]
    counts = {name: sum(r["model"] == name for r in records) for name in MODELS}
    assert counts["minilm"] > 128
    assert all(count > 128 for count in counts.values())


def test_side_by_side_json(llmpath, reference):
    data = json.loads(llmpath(_args("json")).stdout)
    assert [d["model"] for d in data] == list(MODELS)
    for entry in data:
        hf = reference(entry["model"])
        ids = hf.encode(TEXT, add_special_tokens=False).ids
        assert entry["vocab_size"] == hf.get_vocab_size(with_added_tokens=True)
        assert entry["count"] == len(ids) == len(entry["tokens"])
        assert [t["id"] for t in entry["tokens"]] == ids


def test_side_by_side_table(llmpath):
    text = "It's a blue sundress."
    out = llmpath(["tokenize", "-f", "table", "-m", "gpt2", "-m", "minilm", text]).stdout
    for name, vocab, ids in (("gpt2", "50,257", "1026 338 257"), ("minilm", "30,522", "2009")):
        assert name in out and vocab in out and ids in out
    assert "21 characters, 21 bytes" in out


def test_byte_level_records_rebuild_the_text(side_by_side):
    """For byte-level tokenizers, the records' bytes are exactly the input's UTF-8."""
    records = side_by_side
    for name in ("gpt2", "smollm2", "gemma3-270m"):
        data = b"".join(bytes.fromhex(r["bytes"]) for r in records if r["model"] == name)
        assert data == TEXT.encode("utf-8"), name
