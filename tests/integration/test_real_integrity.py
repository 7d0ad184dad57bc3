"""A copy of the real gpt2 store folder, changed by one byte: refused, and reported.

The copy lives in a temporary store; the real store is only read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LLMPATH = [sys.executable, "-m", "llmcli"]
UNSET = ("LLMPATH_DEBUG", "HF_HUB_OFFLINE", "FORCE_COLOR", "NO_COLOR")
REFUSAL = (
    "Error: the stored gpt2 was changed since it was pulled (tokenizer.json: sha256 differs); "
    "run 'llmpath pull gpt2 --force' to pull it again"
)
PROBE = """
import sys
from llmcli.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
sys.stderr.write("CODE=%s HEAVY=%s\\n" % (code, ",".join(heavy)))
"""


@pytest.fixture
def copy_store(tmp_path: Path, model_dir) -> Path:
    """A temporary store holding a copy of the real gpt2 folder."""
    home = tmp_path / "store"
    shutil.copytree(model_dir("gpt2"), home / "models" / "gpt2")
    return home


def run(home: Path, *args: str, python: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update({"LLMPATH_HOME": str(home), "LLMPATH_OFFLINE": "1", "COLUMNS": "200"})
    cmd = [sys.executable, "-c", PROBE, *args] if python else [*LLMPATH, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        old = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([old[0] ^ 0x01]))


def test_a_changed_gpt2_is_refused_and_reported(copy_store: Path, reference, model_dir):
    expected = " ".join(map(str, reference("gpt2").encode("hi").ids))
    ok = run(copy_store, "tokenize", "-m", "gpt2", "-f", "ids", "hi")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, expected + "\n", "")

    tokenizer = copy_store / "models" / "gpt2" / "tokenizer.json"
    # A byte inside the vocabulary: the file stays valid JSON and loads, with other tokens.
    offset = tokenizer.read_bytes().index(b'"hello"') + 2
    flip_byte(tokenizer, offset)

    refused = run(copy_store, "tokenize", "-m", "gpt2", "hi")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.splitlines() == [REFUSAL]
    # The refusal comes before any model library is loaded.
    probe = run(copy_store, "tokenize", "-m", "gpt2", "hi", python=True)
    assert probe.stderr.splitlines() == [REFUSAL, "CODE=1 HEAVY="]

    verify = run(copy_store, "models", "--verify", "-f", "jsonl")
    assert verify.returncode == 1
    assert verify.stderr.splitlines() == [REFUSAL]
    rows = {r["name"]: r for r in map(json.loads, verify.stdout.splitlines())}
    assert (rows["gpt2"]["integrity"], rows["gpt2"]["changes"]) == (
        "changed", ["tokenizer.json: sha256 differs"],
    )  # fmt: skip
    assert all(rows[n]["integrity"] is None for n in ("minilm", "smollm2", "gemma3-270m"))

    pull = run(copy_store, "pull", "gpt2")
    assert pull.returncode == 1
    assert pull.stderr.startswith(
        "Error: the stored gpt2 was changed since it was pulled (tokenizer.json: sha256 differs) "
        "and downloads are off"
    )

    # Put the byte back: the folder is as pulled again.
    flip_byte(tokenizer, offset)
    assert tokenizer.read_bytes() == (model_dir("gpt2") / "tokenizer.json").read_bytes()
    again = run(copy_store, "tokenize", "-m", "gpt2", "-f", "ids", "hi")
    assert (again.returncode, again.stdout) == (0, expected + "\n")
    verify = run(copy_store, "models", "--verify", "-f", "jsonl")
    assert verify.returncode == 0
    assert json.loads(verify.stdout.splitlines()[0])["integrity"] == "ok"


def test_the_real_store_is_as_pulled(real_store: Path):
    verify = run(real_store, "models", "--verify", "-f", "jsonl")
    assert verify.returncode == 0, verify.stderr
    rows = [json.loads(line) for line in verify.stdout.splitlines()]
    assert {r["name"]: r["integrity"] for r in rows} == {
        "gpt2": "ok", "minilm": "ok", "smollm2": "ok", "gemma3-270m": "ok",
    }  # fmt: skip
