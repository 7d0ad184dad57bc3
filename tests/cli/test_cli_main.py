"""The command line as a whole: version, help, heavy imports, and ``llmpath models``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import llmcli

NAMES = ["gpt2", "minilm", "smollm2", "gemma3-270m"]
COMMANDS = ["tokenize", "onehot", "pull", "models"]


def test_version_with_python_m(run_llmpath):
    result = run_llmpath("--version")
    assert (result.code, result.out, result.err) == (0, f"llmpath {llmcli.__version__}\n", "")


def test_help_lists_the_commands(cli):
    result = cli("--help")
    assert result.code == 0
    for command in COMMANDS:
        assert command in result.out
    bare = cli()
    assert bare.code == 0 and bare.out == result.out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(cli, command):
    result = cli(command, "-h")
    assert result.code == 0 and "Usage: llmpath " + command in result.out


HEAVY = ("torch", "transformers")
PROBE = """
import sys
from llmcli.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
sys.stderr.write("CODE=%s HEAVY=%s\\n" % (code, ",".join(heavy)))
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["tokenize", "--help"], ["tokenize", "It's a blue sundress.", "-m", "BPE"],
     ["tokenize", "-f", "ids", "a cat", "-m", "BPE"], ["models", "-f", "json"]],
    ids=["help", "tokenize-help", "tokenize", "tokenize-ids", "models"],
)  # fmt: skip
def test_no_torch_or_transformers_import(args, bpe_dir):
    args = [str(bpe_dir) if a == "BPE" else a for a in args]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True, text=True, env=dict(os.environ), timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == "CODE=0 HEAVY=", proc.stderr
    assert proc.stdout


def test_a_command_imports_only_its_own_module(bpe_dir):
    probe = (
        "import sys\nfrom llmcli.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('llmcli.cli.')))"
    )
    proc = subprocess.run([sys.executable, "-c", probe, "tokenize", "-f", "ids", "a cat", "-m",
                           str(bpe_dir)], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "['llmcli.cli.options', 'llmcli.cli.tokenize']"
    assert lines[0].split() == [str(i) for i in __import__("tokenizers").Tokenizer.from_file(
        str(bpe_dir / "tokenizer.json")).encode("a cat", add_special_tokens=False).ids]  # fmt: skip


def test_help_is_plain_text_in_a_pipe_and_rich_on_a_terminal():
    import pty

    piped = subprocess.run([sys.executable, "-m", "llmcli", "--help"], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert piped.returncode == 0
    assert piped.stdout.startswith("Usage: llmpath [OPTIONS] COMMAND [ARGS]...")
    assert "╭" not in piped.stdout and "\x1b[" not in piped.stdout
    assert all(name in piped.stdout for name in COMMANDS)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "llmcli", "--help"], stdout=follower,
                            stderr=follower, env=dict(os.environ, COLUMNS="100"))  # fmt: skip
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    text = out.decode("utf-8", errors="replace")
    assert "╭" in text and "Usage:" in text and all(name in text for name in COMMANDS)


def test_models_json_in_an_empty_store(cli, store_home):
    result = cli("models", "-f", "json")
    assert result.code == 0 and result.err == ""
    rows = json.loads(result.out)
    assert [r["name"] for r in rows] == NAMES
    assert all(r["installed"] is False and r["stored_size"] is None for r in rows)
    assert [r["path"] for r in rows] == [str(store_home / "models" / n) for n in NAMES]
    gpt2 = rows[0]
    assert (gpt2["kind"], gpt2["vocab_size"], gpt2["licence"]) == ("tokenizer", 50257, "MIT")


def test_models_jsonl_and_table(cli):
    rows = cli("models").jsonl()  # jsonl in a pipe
    assert [r["name"] for r in rows] == NAMES
    table = cli("models", "-f", "table")
    assert table.code == 0
    for name in NAMES:
        assert name in table.out
    assert "50,257" in table.out and "262,144" in table.out


def test_models_output_file(cli, tmp_path):
    out = tmp_path / "models.json"
    assert cli("models", "-o", out).code == 0
    assert [r["name"] for r in json.loads(out.read_text())] == NAMES
