"""Subcommands piped into each other, on the real models."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

MODELS = ("gpt2", "minilm", "smollm2", "gemma3-270m")
TEXT = "It's a blue sundress. Naïve café 🤖"
VOCAB = {"gpt2": 50257, "minilm": 30522, "smollm2": 49152, "gemma3-270m": 262144}


@pytest.mark.parametrize("name", MODELS)
def test_tokenize_into_onehot(llmpath, reference, name):
    tokens = llmpath(["tokenize", "-f", "jsonl", "-m", name, TEXT])
    rows = llmpath(["onehot", "-m", name, "-f", "jsonl"], input=tokens.stdout).records()
    records = tokens.records()
    vocab = reference(name).get_vocab_size(with_added_tokens=True)
    assert vocab == VOCAB[name]
    assert len(rows) == len(records) > 0
    for row, record in zip(rows, records, strict=True):
        assert row["hot"] == row["id"] == record["id"]
        assert row["index"] == record["index"]
        assert row["token"] == record["token"]
        assert row["vocab_size"] == vocab
        assert 0 <= row["hot"] < vocab


def test_shell_pipe_with_default_formats(real_store: Path, reference):
    """``llmpath tokenize TEXT | llmpath onehot``: JSON Lines flow without any -f."""
    script = Path(sys.executable).parent / "llmpath"
    exe = (
        shlex.quote(str(script)) if script.is_file() else f"{shlex.quote(sys.executable)} -m llmcli"
    )
    command = f"set -o pipefail; {exe} tokenize {shlex.quote(TEXT)} | {exe} onehot"
    proc = subprocess.run(
        ["bash", "-c", command], capture_output=True, env=dict(os.environ), stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode("utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["hot"] for r in rows] == reference("gpt2").encode(TEXT, add_special_tokens=False).ids
    assert {r["vocab_size"] for r in rows} == {50257}


@pytest.mark.parametrize(
    ("made_by", "read_by"),
    [("gpt2", "smollm2"), ("smollm2", "gpt2"), ("minilm", "gpt2"), ("gemma3-270m", "gpt2")],
)
def test_onehot_with_another_model_is_an_error(llmpath, made_by, read_by):
    tokens = llmpath(["tokenize", "-f", "jsonl", "-m", made_by, TEXT])
    run = llmpath(["onehot", "-m", read_by, "-f", "jsonl"], input=tokens.stdout, check=False)
    assert run.returncode == 1
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in run.stderr
    # Either a token that the other model spells differently, or an ID it does not have.
    assert "-m" in lines[0] or "outside the vocabulary" in lines[0]


MULTILINE = (
    "First line: It's a blue sundress.\n"
    "\n"
    "  indented, with   runs of spaces\t and tabs\n"
    "Windows line\r\n"
    "Naïve café — 東京タワー 🤖👩‍💻 e\u0301\n"
    "\n"
    "\n"
    "<|endoftext|> is one token\n"
    "last line\n"
)


@pytest.mark.parametrize("name", ("gpt2", "smollm2", "gemma3-270m"))
def test_decode_of_ids_round_trips_a_file(llmpath, tmp_path: Path, name):
    path = tmp_path / "text.txt"
    path.write_bytes(MULTILINE.encode("utf-8"))
    ids = llmpath(["tokenize", "-m", name, "-f", "ids", "--no-special", "--file", str(path)]).stdout
    assert ids.count("\n") == MULTILINE.count("\n")
    decoded = llmpath(["tokenize", "-m", name, "--decode"], input=ids)
    assert decoded.stdout.encode("utf-8") == MULTILINE.encode("utf-8")


def test_decode_of_records_round_trips(llmpath):
    tokens = llmpath(["tokenize", "-f", "jsonl", TEXT])
    assert llmpath(["tokenize", "--decode"], input=tokens.stdout).stdout == TEXT + "\n"


def test_onehot_reads_ids(llmpath):
    ids = llmpath(["tokenize", "-f", "ids", TEXT]).stdout
    rows = llmpath(["onehot", "-f", "jsonl", "--ids"], input=ids).records()
    assert " ".join(str(r["hot"]) for r in rows) + "\n" == ids
    # Without --ids the digits are text, as in every command.
    as_text = llmpath(["onehot", "-f", "jsonl"], input=ids).records()
    assert [r["token"] for r in as_text][:2] == ["10", "26"]
