"""Bad input for every command, as one table: what was given, the exit code, the message.

Each row is ``(id, args, stdin, exit code, fragment)``. An error row (exit 1, or 2
for usage) must give exactly one ``Error: ...`` line on stderr holding the fragment,
nothing on stdout, no traceback, and leave nothing behind in the output folder: a
row that writes with ``-o`` into ``{OUT}`` finds that folder as empty afterwards as
before (no half-written file, no temporary ``.NAME.*.part`` file). A row with exit 0
is input that looks odd but is text all the same (whitespace, NUL characters): it
must work, print the fragment on stdout and nothing on stderr.

In the arguments, ``{BPE}``, ``{WP}``, ``{GPT2}`` and ``{BERT}`` stand for the tiny
tokenizer and model folders, ``{F}`` for a folder of prepared input files and
``{OUT}`` for an empty output folder. Every row runs in this process (``cli``), where
loading torch once keeps the table fast; tests/cli/test_cli_errors.py checks the same
one-line errors in a real process.

tests/README.md lists these rows with the messages seen.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# Words the tiny models know, one item a line.
TASK_ROWS = [
    {"input": "cat", "output": "mat"},
    {"input": "blue", "output": "sundress"},
]
LONG = " ".join(["It's a blue sundress.", "The cat sat on the mat."] * 8)  # > 64 tokens
LATE_BAD = b"The cat sat on the mat. " * 20000 + b"\xff"  # 480,000 good bytes, then 0xff


# (id, args, stdin, exit code, fragment of the one message line, or of stdout for exit 0)
ROWS: list[tuple[str, list[str], bytes | None, int, str]] = [
    # --- tokenize
    ("tokenize-empty-argument", ["tokenize", "-m", "{BPE}", ""], None, 1,
     "empty input (argument): there is no text to work on"),
    ("tokenize-whitespace-only-stdin", ["tokenize", "-m", "{BPE}", "-f", "jsonl"], b" \t\n ", 0,
     '"text": "\\t"'),
    ("tokenize-nul-bytes", ["tokenize", "-m", "{BPE}", "-f", "jsonl"], b"a\x00b", 0,
     '"text": "\\u0000", "start": 1, "end": 2, "bytes": "00"'),
    ("tokenize-non-utf8-late-in-a-file-with-o",
     ["tokenize", "-m", "{BPE}", "--file", "{F}/late-bad.txt", "-o", "{OUT}/tokens.jsonl"], None, 1,
     "late-bad.txt is not valid UTF-8: byte 0xff at byte offset 480000"),
    ("tokenize-decode-id-past-the-vocabulary-with-o",
     ["tokenize", "--decode", "-m", "{BPE}", "-o", "{OUT}/text.txt"], b"5 6\n7 99999\n", 1,
     "ID 99999 is outside the vocabulary of tinybpe (0..369)"),
    ("tokenize-decode-negative-id", ["tokenize", "--decode", "-m", "{BPE}", "--", "4", "-2"], None,
     1, "ID -2 is outside the vocabulary of tinybpe"),
    ("tokenize-decode-not-an-integer", ["tokenize", "--decode", "-m", "{BPE}", "1.5"], None, 1,
     "argument: '1.5' is not a token ID (an integer)"),
    ("tokenize-decode-nothing", ["tokenize", "--decode", "-m", "{BPE}", ""], None, 1,
     "no token IDs given"),
    ("tokenize-decode-record-with-a-string-id", ["tokenize", "--decode", "-m", "{BPE}"],
     b'{"index": 0, "id": "5"}\n', 1, "stdin line 1: \"id\" must be an integer, not '5'"),
    ("tokenize-ids-of-two-models", ["tokenize", "-m", "{BPE}", "-m", "{WP}", "-f", "ids", "x"],
     None, 2, "-f ids takes one model; use -f jsonl or tsv to compare"),
    ("tokenize-decode-as-tsv", ["tokenize", "--decode", "-m", "{BPE}", "-f", "tsv", "5"], None, 2,
     "--decode writes text (or -f json)"),
    ("tokenize-output-is-a-folder", ["tokenize", "-m", "{BPE}", "x", "-o", "{OUT}"], None, 2,
     "is a directory"),
    ("tokenize-output-under-a-file", ["tokenize", "-m", "{BPE}", "x", "-o", "{F}/ok.txt/t.jsonl"],
     None, 1, "ok.txt is not a folder"),
    ("tokenize-output-name-too-long", ["tokenize", "-m", "{BPE}", "x", "-o", "{OUT}/" + "n" * 300],
     None, 1, "cannot write {OUT}/" + "n" * 300 + ": File name too long"),
    ("tokenize-output-folder-without-permission",
     ["tokenize", "-m", "{BPE}", "x", "-o", "{F}/locked/t.jsonl"], None, 1, "Permission denied"),
    # --- onehot
    ("onehot-empty-argument", ["onehot", "-m", "{BPE}", ""], None, 1, "empty input (argument)"),
    ("onehot-empty-stdin", ["onehot", "-m", "{BPE}"], b"", 1, "empty input (stdin)"),
    ("onehot-non-utf8-file", ["onehot", "-m", "{BPE}", "--file", "{F}/bad.txt"], None, 1,
     "bad.txt is not valid UTF-8: byte 0xe6 at byte offset 7"),
    ("onehot-negative-id", ["onehot", "-m", "{BPE}", "--ids"], b"5 -3\n", 1,
     "ID -3 is outside the vocabulary of tinybpe (0..369)"),
    ("onehot-id-past-the-vocabulary-npz-with-o",
     ["onehot", "-m", "{BPE}", "--ids", "-o", "{OUT}/v.npz"],
     b"1 2 370\n", 1, "ID 370 is outside the vocabulary of tinybpe (0..369)"),
    ("onehot-malformed-json-lines-npy-with-o",
     ["onehot", "-m", "{BPE}", "-f", "npy", "-o", "{OUT}/v.npy"],
     b'{"index": 0, "id": 5}\n{"index": 1, "id": 6\n', 1, "stdin line 2: malformed JSON"),
    ("onehot-record-with-a-boolean-id", ["onehot", "-m", "{BPE}"], b'{"id": true}\n', 1,
     'stdin line 1: "id" must be an integer, not True'),
    ("onehot-missing-file", ["onehot", "-m", "{BPE}", "--file", "{F}/missing.txt"], None, 1,
     "missing.txt: no such file"),
    ("onehot-unreadable-file", ["onehot", "-m", "{BPE}", "--file", "{F}/secret.txt"], None, 1,
     "secret.txt: Permission denied"),
    ("onehot-unknown-model", ["onehot", "-m", "nosuch", "x"], None, 1, "unknown model 'nosuch'"),
    ("onehot-ids-and-a-text", ["onehot", "-m", "{BPE}", "--ids", "3 4"], None, 2,
     "--ids reads IDs from stdin or --file; a TEXT argument is text"),
    ("onehot-digits-without-ids", ["onehot", "-m", "{BPE}", "-f", "jsonl"], b"1999\n", 0,
     '"token": "1"'),
    # --- embed
    ("embed-unknown-model", ["embed", "-m", "nosuch", "cat", "dog"], None, 1,
     "unknown model 'nosuch'"),
    ("embed-empty-file", ["embed", "-m", "{BERT}", "--file", "{F}/empty.txt"], None, 1,
     "empty input ("),
    ("embed-non-utf8-stdin", ["embed", "-m", "{BERT}"], b"cat\n\xffdog\n", 1,
     "stdin is not valid UTF-8: byte 0xff at byte offset 4"),
    ("embed-whitespace-word", ["embed", "-m", "{BERT}", "  ", "cat"], None, 1, "word 1 is empty"),
    ("embed-nul-in-a-word", ["embed", "-m", "{BERT}", "-f", "jsonl"], b"ca\x00t\ndog\n", 0,
     '"a": "ca\\u0000t", "b": "dog"'),
    ("embed-output-in-a-missing-folder",
     ["embed", "-m", "{BERT}", "cat", "dog", "-o", "{OUT}/no/e.jsonl"], None, 1,
     "folder {OUT}/no does not exist"),
    ("embed-unreadable-file", ["embed", "-m", "{BERT}", "--file", "{F}/secret.txt"], None, 1,
     "Permission denied"),
    # --- attention
    ("attention-layer-out-of-range-with-o",
     ["attention", "-m", "{GPT2}", "-l", "2", "-f", "npz", "-o", "{OUT}/a.npz", "hi"], None, 2,
     "layer 2 is out of range: this model has 2 layers (0..1, or -1 for the last)"),
    ("attention-head-out-of-range", ["attention", "-m", "{GPT2}", "--head", "-3", "x"], None, 2,
     "head -3 is out of range: this model has 2 heads"),
    ("attention-malformed-json-lines", ["attention", "-m", "{GPT2}"], b'{"id": 1, \n', 1,
     "stdin line 1: malformed JSON"),
    ("attention-record-without-id", ["attention", "-m", "{GPT2}"], b'{"token": "a"}\n', 1,
     'stdin line 1: a token record needs an "id"'),
    ("attention-negative-id", ["attention", "-m", "{GPT2}", "--ids"], b"3 -1\n", 1,
     "ID -1 is outside the vocabulary of tinygpt2"),
    ("attention-past-the-context-with-o",
     ["attention", "-m", "{GPT2}", "--file", "{F}/long.txt", "-f", "json", "-o", "{OUT}/a.json"],
     None, 1, "tokens do not fit tinygpt2's context of 64: shorten the text or pass --truncate"),
    ("attention-non-utf8-file", ["attention", "-m", "{GPT2}", "--file", "{F}/bad.txt"], None, 1,
     "bad.txt is not valid UTF-8"),
    ("attention-empty-file", ["attention", "-m", "{GPT2}", "--file", "{F}/empty.txt"], None, 1,
     "empty input ("),
    ("attention-nul-bytes", ["attention", "-m", "{GPT2}", "-f", "jsonl"], b"a\x00b", 0,
     '"tokens": ["a", "Ā", "b"]'),
    ("attention-unknown-model", ["attention", "-m", "nosuch", "x"], None, 1,
     "unknown model 'nosuch'"),
    ("attention-unreadable-file", ["attention", "-m", "{GPT2}", "--file", "{F}/secret.txt"], None,
     1, "Permission denied"),
    # --- walk
    ("walk-layer-out-of-range-with-o",
     ["walk", "-m", "{GPT2}", "--layer", "2", "-o", "{OUT}/w.npz", "hi"], None, 2,
     "--layer 2 is out of range: there are 2 layers (0..1, or -1 for the last)"),
    ("walk-token-out-of-range", ["walk", "-m", "{GPT2}", "--token", "5", "hi"], None, 2,
     "--token 5 is out of range: there are 2 tokens (0..1, or -1 for the last)"),
    ("walk-unknown-step", ["walk", "-m", "{GPT2}", "-s", "lens", "hi"], None, 2,
     "'lens' is not one of 'tokens', 'embed'"),
    ("walk-a-tokenizer-only", ["walk", "-m", "{BPE}", "hi"], None, 1,
     "tinybpe is a tokenizer only, with no weights; walk and the logit lens need the weights "
     "of an architecture they know: Llama (smollm2), Gemma 3 (gemma3-270m), BERT (minilm) and "
     "GPT-2"),
    ("walk-empty-text", ["walk", "-m", "{GPT2}", " "], None, 1, "empty input: there is no text"),
    ("walk-past-the-context-with-o",
     ["walk", "-m", "{GPT2}", "--file", "{F}/long.txt", "-f", "json", "-o", "{OUT}/w.json"],
     None, 1, "tokens do not fit tinygpt2's context of 64: shorten the text"),
    ("walk-html-without-o", ["walk", "-m", "{GPT2}", "-f", "html", "hi"], None, 2,
     "-f html needs -o FILE.html"),
    ("walk-ids-and-a-text", ["walk", "-m", "{GPT2}", "--ids", "3 4"], None, 2,
     "--ids reads IDs from stdin or --file; a TEXT argument is text"),
    ("walk-malformed-records", ["walk", "-m", "{GPT2}"], b'{"id": 1, \n', 1,
     "stdin line 1: malformed JSON"),
    ("walk-id-past-the-vocabulary", ["walk", "-m", "{GPT2}", "--ids"], b"3 99999\n", 1,
     "ID 99999 is outside the vocabulary of tinygpt2"),
    ("next-layers-a-tokenizer-only", ["next", "-m", "{BPE}", "--layers", "hi"], None, 1,
     "tinybpe is a tokenizer only"),
    # --- fewshot
    ("fewshot-task-malformed-json-with-o",
     ["fewshot", "-m", "{GPT2}", "-t", "{F}/task-malformed.jsonl", "-o", "{OUT}/f.jsonl"], None, 1,
     "task-malformed.jsonl, line 2: not valid JSON"),
    ("fewshot-task-blank-lines-only", ["fewshot", "-m", "{GPT2}", "-t", "{F}/task-blank.jsonl"],
     None, 1, "task-blank.jsonl holds no items"),
    ("fewshot-task-tsv-without-a-tab", ["fewshot", "-m", "{GPT2}", "-t", "{F}/task-notab.tsv"],
     None, 1, "task-notab.tsv, line 1: expected input<TAB>output"),
    ("fewshot-task-item-without-output",
     ["fewshot", "-m", "{GPT2}", "-t", "{F}/task-nooutput.jsonl"], None, 1,
     'task-nooutput.jsonl, line 1: "output" is a string or a list of strings'),
    ("fewshot-task-line-not-an-object", ["fewshot", "-m", "{GPT2}", "-t", "{F}/task-array.jsonl"],
     None, 1, "task-array.jsonl, line 1: expected a JSON object"),
    ("fewshot-task-not-utf8", ["fewshot", "-m", "{GPT2}", "-t", "{F}/task-latin1.jsonl"], None, 1,
     "task-latin1.jsonl, line 1: not UTF-8 text"),
    ("fewshot-task-missing-file", ["fewshot", "-m", "{GPT2}", "-t", "{F}/task-missing.jsonl"],
     None, 1, "cannot read {F}/task-missing.jsonl"),
    ("fewshot-eval-more-shots-than-examples",
     ["fewshot", "-m", "{GPT2}", "-t", "{F}/task-two.jsonl", "--eval", "-k", "5"], None, 2,
     "5 shots asked, but task 'task-two' has only 1 example to draw from"),
    ("fewshot-empty-stop", ["fewshot", "-m", "{GPT2}", "-t", "{F}/task-two.jsonl", "--stop", ""],
     None, 2, "--stop needs some text"),
    ("fewshot-no-queries-on-stdin",
     ["fewshot", "-m", "{GPT2}", "-t", "{F}/task-two.jsonl", "--query", "-"], b"\n \n", 2,
     "no queries on stdin: write one per line"),
    ("fewshot-non-utf8-queries",
     ["fewshot", "-m", "{GPT2}", "-t", "{F}/task-two.jsonl", "--query", "-"], b"cat\n\xff\n", 1,
     "stdin is not valid UTF-8: byte 0xff at byte offset 4"),
    ("fewshot-unknown-model", ["fewshot", "-m", "nosuch", "-t", "{F}/task-two.jsonl"], None, 1,
     "unknown model 'nosuch'"),
    # --- next
    ("next-empty-prompt-on-stdin", ["next", "-m", "{GPT2}", "-"], b"", 2,
     "stdin is empty: give a prompt"),
    ("next-non-utf8-stdin", ["next", "-m", "{GPT2}"], b"\xff\n", 1,
     "stdin is not valid UTF-8: byte 0xff at byte offset 0"),
    ("next-encoder-model", ["next", "-m", "{BERT}", "hi"], None, 1,
     "tinybert is an encoder; prompting needs a decoder"),
    ("next-top-zero", ["next", "-m", "{GPT2}", "-k", "0", "hi"], None, 2,
     "Invalid value for '--top' / '-k': 0 is not in the range x>=1"),
    ("next-top-past-the-vocabulary-with-o",
     ["next", "-m", "{GPT2}", "-k", "371", "-o", "{OUT}/n.jsonl", "hi"], None, 2,
     "--top 371 is more than the 370 tokens of tinygpt2"),
    ("next-whitespace-prompt", ["next", "-m", "{GPT2}", "-f", "jsonl", "-k", "1", "   "], None, 0,
     '"rank": 1'),
    ("next-unknown-model", ["next", "-m", "nosuch", "hi"], None, 1, "unknown model 'nosuch'"),
    # --- pull
    ("pull-names-and-all", ["pull", "--all", "gpt2"], None, 2,
     "give model names or --all, not both"),
    ("pull-from-a-folder", ["pull", "gpt2", "--from-file", "{F}"], None, 2, "is a directory"),
    ("pull-file-of-another-model", ["pull", "gpt2", "--from-file", "{F}/ok.txt"], None, 1,
     "ok.txt is not a distribution of gpt2"),
    ("pull-unknown-option", ["pull", "--nope"], None, 2, "No such option: --nope"),
    # --- models
    ("models-unknown-format", ["models", "-f", "xml"], None, 2,
     "'xml' is not one of 'table', 'jsonl', 'json'"),
    ("models-extra-argument", ["models", "gpt2"], None, 2,
     "Got unexpected extra argument(s) (gpt2)"),
    ("models-output-in-a-missing-folder", ["models", "-o", "{OUT}/no/m.json"], None, 1,
     "folder {OUT}/no does not exist"),
    ("models-output-folder-without-permission", ["models", "-o", "{F}/locked/m.json"], None, 1,
     "Permission denied"),
]  # fmt: skip

# Rows that need file modes to be obeyed: root reads and writes whatever the mode.
NEEDS_MODES = {
    "tokenize-output-folder-without-permission", "onehot-unreadable-file",
    "embed-unreadable-file", "attention-unreadable-file",
    "models-output-folder-without-permission",
}  # fmt: skip


def _params() -> list[object]:
    return [pytest.param(*row, id=row[0]) for row in ROWS]


@pytest.fixture(scope="module")
def inputs_folder(tmp_path_factory: pytest.TempPathFactory):
    """``{F}``: the prepared input files."""
    folder = tmp_path_factory.mktemp("bad-input")
    (folder / "ok.txt").write_text("The cat sat.\n", encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "bad.txt").write_bytes("héllo ".encode() + b"\xe6\x97 wor\xffld")
    (folder / "late-bad.txt").write_bytes(LATE_BAD)
    (folder / "long.txt").write_text(LONG, encoding="utf-8")
    (folder / "secret.txt").write_text("hidden", encoding="utf-8")
    (folder / "secret.txt").chmod(0)
    (folder / "locked").mkdir()
    (folder / "locked").chmod(0o500)
    lines = [json.dumps(r) for r in TASK_ROWS]
    (folder / "task-two.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "task-malformed.jsonl").write_text(lines[0] + '\n{"input": "c"\n', encoding="utf-8")
    (folder / "task-blank.jsonl").write_text("\n  \n\n", encoding="utf-8")
    (folder / "task-notab.tsv").write_text("no tab here\n", encoding="utf-8")
    (folder / "task-nooutput.jsonl").write_text('{"input": "cat"}\n', encoding="utf-8")
    (folder / "task-array.jsonl").write_text("[1, 2]\n", encoding="utf-8")
    latin1 = '{"input": "café", "output": "x"}\n'.encode("latin-1")
    (folder / "task-latin1.jsonl").write_bytes(latin1)
    yield folder
    (folder / "locked").chmod(0o700)
    (folder / "secret.txt").chmod(0o600)


def listing(folder: Path) -> list[str]:
    """Every path under ``folder``, hidden ones included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(("case", "args", "stdin", "code", "fragment"), _params())
def test_bad_input(case, args, stdin, code, fragment, inputs_folder, tmp_path, bpe_dir,
                   wordpiece_dir, tiny_gpt2_dir, tiny_bert_dir, cli, one_error,
                   without_root):  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    names = {"BPE": bpe_dir, "WP": wordpiece_dir, "GPT2": tiny_gpt2_dir, "BERT": tiny_bert_dir,
             "F": inputs_folder, "OUT": out}  # fmt: skip

    def fill(text: str) -> str:
        for key, value in names.items():
            text = text.replace("{" + key + "}", str(value))
        return text

    before = listing(inputs_folder)
    # The rows about file modes run as a user other than root (as root, no mode stops it).
    folders = [bpe_dir, wordpiece_dir, tiny_gpt2_dir, tiny_bert_dir, inputs_folder]
    modes = without_root(folders, [out]) if case in NEEDS_MODES else contextlib.nullcontext()
    with modes:
        result = cli(*[fill(a) for a in args], stdin=b"" if stdin is None else stdin)

    assert "Traceback" not in result.err and "Traceback" not in result.out
    if code == 0:
        assert result.code == 0, result.err
        assert result.err == ""
        assert fill(fragment) in result.out
    else:
        one_error(result, code, fill(fragment))
    # Nothing is left behind: no output file, and no temporary file beside it.
    assert listing(out) == []
    assert listing(inputs_folder) == before


# --- a line of 1 MB, read in blocks a tenth of the usual size -------------------------------------

# Starts with a space and ends on a full stop: the pieces of one copy never join the next,
# so the IDs of n copies are the IDs of one, n times (checked below on the library itself).
UNIT = " It's a blue sundress. 日本語 🙂 The cat sat on the mat."
# The line is a tenth of 10 MB, and so are the block, chunk and batch sizes it is read,
# tokenized and written in: it spans as many of them as a 10 MB line does by default.
SCALE = 10


@pytest.fixture(scope="module")
def ten_mb_line(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A file holding one line of 1 MB (a tenth of 10 MB), and how many copies of UNIT
    it holds."""
    copies = 10_000_000 // SCALE // len(UNIT.encode()) + 1
    path = tmp_path_factory.mktemp("long-line") / "line.txt"
    path.write_text(UNIT * copies, encoding="utf-8")
    assert path.stat().st_size >= 10_000_000 // SCALE
    return path, copies


@pytest.fixture
def small_blocks(shrink: Callable[[int], None]) -> None:
    """Text read in blocks, records made in chunks, IDs written in batches and the bulk
    engine's thresholds a tenth of their usual size, in this process."""
    shrink(SCALE)


# ``python -c SMALL_CHUNKS ARGS``: llmpath ARGS, its records made in chunks of a tenth of
# the usual size.
SMALL_CHUNKS = f"""
import sys
from llmcli.core import tokenize
tokenize.RECORD_CHUNK_CHARS //= {SCALE}
from llmcli.cli import main
main(sys.argv[1:])
"""

# Runs a command and reports its peak memory (KiB on Linux) on the last line of stderr.
# The command is started from this small process: a child forked from pytest itself
# would count pytest's memory as its own peak.
PEAK = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[1:])
sys.stderr.write(f"peak {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
sys.exit(code)
"""


def test_a_10_mb_line_is_tokenized_as_it_streams(ten_mb_line, bpe_dir, bpe_ref):
    """Records of the whole line, equal in number to the tokenizers library's, made with
    little memory: the line is tokenized in pieces and written as it goes."""
    path, copies = ten_mb_line
    unit = bpe_ref.encode(UNIT, add_special_tokens=False).ids
    assert bpe_ref.encode(UNIT * 3, add_special_tokens=False).ids == unit * 3
    command = [sys.executable, "-c", SMALL_CHUNKS,
               "tokenize", "-m", bpe_dir, "--file", path, "-f", "jsonl"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", PEAK, *map(str, command)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ))  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    count, tail = 0, b""
    while block := proc.stdout.read(1 << 20):
        count += block.count(b"\n")
        tail = (tail + block)[-4096:]
    err = proc.stderr.read().decode()
    assert proc.wait() == 0, err
    *before, peak = err.splitlines()
    assert before == []
    assert count == len(unit) * copies
    last = json.loads(tail.splitlines()[-1])
    assert last["index"] == count - 1 and last["id"] == unit[-1]
    assert last["end"] == len(UNIT) * copies
    if sys.platform.startswith("linux"):  # ru_maxrss is in KiB there
        # About 40 MB here, 32 MB of it for a one-sentence text; tokenized whole, the
        # line takes 250 MB.
        assert int(peak.split()[1]) < 120 * 1024, peak


def test_the_ids_of_a_10_mb_line(ten_mb_line, bpe_dir, bpe_ref, cli, small_blocks):
    path, copies = ten_mb_line
    unit = " ".join(map(str, bpe_ref.encode(UNIT, add_special_tokens=False).ids))
    result = cli("tokenize", "-m", bpe_dir, "--file", path, "-f", "ids")
    assert result.code == 0 and result.err == ""
    assert result.out == " ".join([unit] * copies) + "\n"


def test_a_10_mb_line_is_past_the_context_unless_truncated(ten_mb_line, tiny_gpt2_dir, bpe_ref,
                                                           cli, small_blocks):  # fmt: skip
    path, copies = ten_mb_line
    tokens = len(bpe_ref.encode(UNIT, add_special_tokens=False).ids) * copies
    args = ["attention", "-m", tiny_gpt2_dir, "--file", path, "-f", "json"]
    result = cli(*args)
    assert result.code == 1 and result.out == ""
    assert result.err == (f"Error: {tokens} tokens do not fit tinygpt2's context of 64: shorten "
                          "the text or pass --truncate\n")  # fmt: skip
    truncated = cli(*args, "--truncate")
    assert truncated.code == 0, truncated.err
    doc = json.loads(truncated.out)
    expected = bpe_ref.encode(UNIT * 10, add_special_tokens=True).ids[:64]
    assert [t["id"] for t in doc["tokens"]] == expected
    assert [(m["layer"], m["head"]) for m in doc["maps"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for m in doc["maps"]:
        rows = m["matrix"]
        assert len(rows) == 64 and all(abs(sum(r) - 1) < 1e-4 for r in rows)
