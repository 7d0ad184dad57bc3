"""The seed example on GPT-2's real tokenizer, in every format and from every input route."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SEED = "It's a blue sundress."
TOKENS = ["It", "'s", "Ġa", "Ġblue", "Ġsund", "ress", "."]
IDS = [1026, 338, 257, 4171, 37437, 601, 13]
TEXTS = ["It", "'s", " a", " blue", " sund", "ress", "."]
OFFSETS = [(0, 2), (2, 4), (4, 6), (6, 11), (11, 16), (16, 20), (20, 21)]
BYTES = ["4974", "2773", "2061", "20626c7565", "2073756e64", "72657373", "2e"]

EXPECTED = [
    {"index": i, "id": IDS[i], "token": TOKENS[i], "text": TEXTS[i], "start": OFFSETS[i][0],
     "end": OFFSETS[i][1], "bytes": BYTES[i], "special": False}
    for i in range(len(IDS))
]  # fmt: skip


def test_seed_records_exact(llmpath):
    run = llmpath(["tokenize", SEED])
    assert run.records() == EXPECTED
    # The default format in a pipe is JSON Lines: one record a line, keys in order.
    lines = run.stdout.splitlines()
    assert len(lines) == 7
    assert lines[0] == (
        '{"index": 0, "id": 1026, "token": "It", "text": "It", "start": 0, "end": 2, '
        '"bytes": "4974", "special": false}'
    )
    assert run.stderr == ""


def test_seed_bytes_and_offsets_agree_with_text():
    for record in EXPECTED:
        assert bytes.fromhex(record["bytes"]).decode("utf-8") == record["text"]
        assert SEED[record["start"] : record["end"]] == record["text"]
    assert "".join(TEXTS) == SEED


def test_seed_explicit_jsonl(llmpath):
    assert llmpath(["tokenize", "-f", "jsonl", "-m", "gpt2", SEED]).records() == EXPECTED


def test_seed_json(llmpath):
    data = json.loads(llmpath(["tokenize", "-f", "json", SEED]).stdout)
    assert data == {
        "model": "gpt2", "vocab_size": 50257, "tokens": EXPECTED,
        "count": 7, "characters": 21, "bytes": 21,
    }  # fmt: skip


def test_seed_tsv(llmpath):
    lines = llmpath(["tokenize", "-f", "tsv", SEED]).stdout.split("\n")
    assert lines[-1] == ""
    assert lines[0].split("\t") == [
        "index", "id", "token", "text", "start", "end", "bytes", "special"
    ]  # fmt: skip
    rows = [line.split("\t") for line in lines[1:-1]]
    assert rows == [
        [str(r["index"]), str(r["id"]), r["token"], r["text"], str(r["start"]), str(r["end"]),
         r["bytes"], "false"]
        for r in EXPECTED
    ]  # fmt: skip


def test_seed_ids(llmpath):
    assert llmpath(["tokenize", "-f", "ids", SEED]).stdout == "1026 338 257 4171 37437 601 13\n"


def test_seed_table(llmpath):
    run = llmpath(["tokenize", "-f", "table", SEED])
    out = run.stdout
    for token, token_id in zip(TOKENS, IDS, strict=True):
        assert token in out
        assert str(token_id) in out
    assert (
        "7 tokens from 21 characters (21 bytes), 3.00 characters a token · gpt2, vocabulary 50,257"
    ) in out
    assert "{" not in out  # a table, not JSON


@pytest.mark.parametrize(
    "route",
    ["argument", "words", "stdin", "dash", "file", "file-dash"],
)
def test_seed_input_routes(llmpath, tmp_path: Path, route: str):
    path = tmp_path / "seed.txt"
    path.write_bytes(SEED.encode("utf-8"))
    args, stdin = {
        "argument": (["tokenize", SEED], b""),
        "words": (["tokenize", *SEED.split(" ")], b""),  # words are joined by one space
        "stdin": (["tokenize"], SEED.encode()),
        "dash": (["tokenize", "-"], SEED.encode()),
        "file": (["tokenize", "--file", str(path)], b""),
        "file-dash": (["tokenize", "--file", "-"], SEED.encode()),
    }[route]
    assert llmpath(args, input=stdin).records() == EXPECTED


def test_seed_trailing_newline_is_a_token(llmpath, tmp_path: Path):
    path = tmp_path / "seed.txt"
    path.write_bytes((SEED + "\n").encode())
    records = llmpath(["tokenize", "--file", str(path)]).records()
    assert records[:7] == EXPECTED
    assert records[7] == {
        "index": 7, "id": 198, "token": "Ċ", "text": "\n", "start": 21, "end": 22,
        "bytes": "0a", "special": False,
    }  # fmt: skip
    assert len(records) == 8


def test_seed_decode(llmpath):
    assert llmpath(["tokenize", "--decode", *map(str, IDS)]).stdout == SEED + "\n"
    assert llmpath(["tokenize", "-d"], input=" ".join(map(str, IDS))).stdout == SEED + "\n"
