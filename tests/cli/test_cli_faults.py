"""Faults around a command: a full disk, a refused file, a reader that goes away, a signal.

- stdout on a full disk (``/dev/full``): one ``Error: cannot write to stdout: ...`` line
  and exit 1, never a traceback and never a silent success.
- ``-o FILE`` on a disk that fills up (the writes of ``llmcli.fsutil.atomic_open`` fail
  with ENOSPC, or its fsync does): one line, exit 1, and neither the file nor a
  temporary file is left; a file that was there before is untouched.
- A file or folder the system refuses (EACCES), as root too, where chmod cannot.
- A reader that takes one line and closes the pipe (``| head -1``): every command ends
  quietly, with nothing on stderr, killed by SIGPIPE (-13 as Python reports the
  status; a shell shows 141) or with 0 when all of its output fitted in the pipe
  before the reader closed it.
- SIGINT and SIGTERM while ``-o FILE`` is being written: exit 130 and 143, nothing left;
  nothing either where the interrupt lands just after the temporary file is made.
- SIGTERM during a pull's conversion: exit 143, nothing stored, no work folder left
  (SIGKILL, SIGINT and two pulls at once are in tests/cli/test_cli_pull.py).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from llmcli import fsutil
from llmcli.core import inputs

FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full here")
ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"
TEXT = "It's a blue sundress. 日本語 🙂 The cat sat on the mat.\n"
TASK = [{"input": "cat", "output": "mat"}, {"input": "blue", "output": "sundress"},
        {"input": "The", "output": "cat"}]  # fmt: skip


def default_sigint() -> None:
    """In a child process: SIGINT interrupts, as Ctrl-C does on a terminal.

    A shell starts background jobs with SIGINT ignored, and children inherit that;
    the tests that send SIGINT reset it so that they also hold in a backgrounded run.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def llmpath_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "llmcli", *(str(a) for a in args)]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fault-inputs")
    (folder / "big.txt").write_text(TEXT * 4000, encoding="utf-8")  # 240 KB
    (folder / "long.txt").write_text(TEXT * 6, encoding="utf-8")  # 126 tokens: --truncate
    (folder / "task.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TASK), "utf-8")
    return folder


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10 MB file: long enough to be interrupted while its output is written."""
    path = tmp_path_factory.mktemp("huge") / "huge.txt"
    path.write_text(TEXT * (10_000_000 // len(TEXT.encode())), encoding="utf-8")
    return path


def one_line(err: str, *fragments: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def hidden_and_all(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- stdout on a full disk ----------------------------------------------------------------


@needs_dev_full
@pytest.mark.parametrize(
    "args",
    [
        ["tokenize", "-m", "BPE", "-f", "jsonl", "hi"],
        ["tokenize", "-m", "BPE", "-f", "ids", "hi"],
        ["tokenize", "-m", "BPE", "-f", "table", "hi"],
        ["tokenize", "-m", "BPE", "-f", "json", "--file", "F/big.txt"],
        ["tokenize", "--decode", "-m", "BPE", "5", "6"],
        ["onehot", "-m", "BPE", "-f", "npy", "hi"],
        ["models", "-f", "table"],
        ["fewshot", "--tasks", "-f", "jsonl"],
    ],
    ids=lambda a: " ".join(a),
)
def test_stdout_on_a_full_disk_is_one_error_line(args, bpe_dir, files):
    names = {"BPE": str(bpe_dir)}
    args = [names.get(a, a.replace("F/", f"{files}/")) for a in args]
    with open(FULL, "w") as full:
        proc = subprocess.run(
            llmpath_cmd(*args), stdout=full, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=dict(os.environ), timeout=120,
        )  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    one_line(err, f"Error: cannot write to stdout: {ENOSPC}")


@needs_dev_full
def test_help_on_a_full_disk_is_one_error_line():
    with open(FULL, "w") as full:
        proc = subprocess.run(llmpath_cmd("--help"), stdout=full, stderr=subprocess.PIPE,
                              env=dict(os.environ), timeout=60)  # fmt: skip
    assert proc.returncode == 1
    one_line(proc.stderr.decode(), ENOSPC)


@pytest.fixture
def full_stdout(monkeypatch, capsys):
    """``run(*args)``: ``llmcli.cli.main`` in this process with stdout on /dev/full."""
    from llmcli.cli import main

    opened: list[io.TextIOWrapper] = []

    def run(*args: object) -> tuple[int, str]:
        full = open(FULL, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        opened.append(full)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8"))
        capsys.readouterr()
        captured = sys.stdout
        sys.stdout = full
        try:
            with pytest.raises(SystemExit) as exc:
                main([str(a) for a in args])
        finally:
            sys.stdout = captured
        code = exc.value.code if isinstance(exc.value.code, int) else 0
        return code, capsys.readouterr().err

    yield run
    for full in opened:
        with contextlib.suppress(OSError):
            full.close()


@needs_dev_full
@pytest.mark.parametrize(
    "args",
    [
        ["embed", "-m", "BERT", "-f", "jsonl", "cat", "dog"],
        ["embed", "-m", "BERT", "-f", "npz", "cat", "dog"],
        ["attention", "-m", "GPT2", "-f", "jsonl", "hi"],
        ["attention", "-m", "GPT2", "-f", "npy", "hi"],
        ["fewshot", "-m", "GPT2", "-t", "F/task.jsonl", "-k", "0,1", "--max-new-tokens", "2",
         "-f", "jsonl"],
        ["fewshot", "-m", "GPT2", "-t", "F/task.jsonl", "-k", "0,1", "--show-prompt",
         "-f", "table"],
        ["next", "-m", "GPT2", "-f", "table", "hi"],
        ["next", "-m", "GPT2", "-f", "json", "hi"],
    ],
    ids=lambda a: " ".join(x for x in a if x not in ("-m", "BERT", "GPT2")),
)  # fmt: skip
def test_stdout_on_a_full_disk_for_the_model_commands(args, full_stdout, tiny_gpt2_dir,
                                                     tiny_bert_dir, files):  # fmt: skip
    names = {"GPT2": str(tiny_gpt2_dir), "BERT": str(tiny_bert_dir)}
    code, err = full_stdout(*[names.get(a, a.replace("F/", f"{files}/")) for a in args])
    assert code == 1, err
    one_line(err, f"Error: cannot write to stdout: {ENOSPC}")


# --- -o FILE on a disk that fills up --------------------------------------------------------


class _FillingFile:
    """A file that takes the room its disk has left, then fails with ENOSPC."""

    def __init__(self, fh, disk: DiskFills):
        self._fh = fh
        self._disk = disk

    def write(self, data):
        size = len(data.encode()) if isinstance(data, str) else memoryview(data).nbytes
        if size > self._disk.room:
            self._disk.failed = True
            raise OSError(errno.ENOSPC, ENOSPC)
        self._disk.room -= size
        self._disk.written += size
        return self._fh.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()
        return False

    def __iter__(self):
        return iter(self._fh)

    def __getattr__(self, name):
        return getattr(self._fh, name)


class DiskFills:
    """Stands in for ``os`` inside ``llmcli.fsutil``: the files it opens hold ``room``
    bytes; with ``fsync_fails``, the data is taken but fsync reports ENOSPC (as a
    disk that runs out while flushing, or a network file system, does)."""

    def __init__(self, room: int, fsync_fails: bool = False):
        self.room, self.fsync_fails = room, fsync_fails
        self.written, self.failed, self.opened = 0, False, 0

    def fdopen(self, fd, *args, **kwargs):
        self.opened += 1
        return _FillingFile(os.fdopen(fd, *args, **kwargs), self)

    def fsync(self, fd):
        if self.fsync_fails:
            self.failed = True
            raise OSError(errno.ENOSPC, ENOSPC)
        return os.fsync(fd)

    def __getattr__(self, name):
        return getattr(os, name)


# (id, args, room): ``OUT`` is the target; the room lets some writes in before the disk is full.
OUTPUT_CASES = [
    ("tokenize-jsonl", ["tokenize", "-m", "BPE", "--file", "F/big.txt", "-o", "OUT"], 50_000),
    ("tokenize-ids", ["tokenize", "-m", "BPE", "--file", "F/big.txt", "-f", "ids", "-o", "OUT"],
     100),
    ("tokenize-tsv", ["tokenize", "-m", "BPE", "--file", "F/big.txt", "-f", "tsv", "-o", "OUT"],
     50_000),
    ("tokenize-decode", ["tokenize", "--decode", "-m", "BPE", "5", "6", "-o", "OUT"], 0),
    ("onehot-npy", ["onehot", "-m", "BPE", "-f", "npy", "cat kitten", "-o", "OUT"], 100),
    ("embed-npz", ["embed", "-m", "BERT", "-f", "npz", "cat", "dog", "-o", "OUT"], 100),
    ("embed-csv", ["embed", "-m", "BERT", "-f", "csv", "cat", "dog", "-o", "OUT"], 10),
    ("attention-npz", ["attention", "-m", "GPT2", "-f", "npz", "The cat sat.", "-o", "OUT"], 100),
    ("attention-html", ["attention", "-m", "GPT2", "-f", "html", "The cat sat.", "-o", "OUT"],
     1000),
    ("fewshot-prompts", ["fewshot", "-m", "GPT2", "-t", "F/task.jsonl", "-k", "0,1",
                         "--show-prompt", "-f", "jsonl", "-o", "OUT"], 10),
    ("fewshot-answers", ["fewshot", "-m", "GPT2", "-t", "F/task.jsonl", "-k", "0,1",
                         "--max-new-tokens", "2", "-f", "json", "-o", "OUT"], 10),
    ("next-json", ["next", "-m", "GPT2", "-f", "json", "hi", "-o", "OUT"], 10),
    ("models-jsonl", ["models", "-f", "jsonl", "-o", "OUT"], 10),
]  # fmt: skip


def _fill(args, out: Path, names: dict[str, str], files: Path) -> list[str]:
    return [str(out) if a == "OUT" else names.get(a, a.replace("F/", f"{files}/")) for a in args]


@pytest.fixture
def names(bpe_dir, tiny_gpt2_dir, tiny_bert_dir) -> dict[str, str]:
    return {"BPE": str(bpe_dir), "GPT2": str(tiny_gpt2_dir), "BERT": str(tiny_bert_dir)}


@pytest.mark.parametrize(("args", "room"), [c[1:] for c in OUTPUT_CASES],
                         ids=[c[0] for c in OUTPUT_CASES])  # fmt: skip
def test_output_file_on_a_full_disk_leaves_nothing(args, room, cli, names, files, tmp_path,
                                                   monkeypatch):  # fmt: skip
    out = tmp_path / "result.out"
    disk = DiskFills(room)
    monkeypatch.setattr(fsutil, "os", disk)
    result = cli(*_fill(args, out, names, files), stdin=b"")
    assert disk.opened == 1 and disk.failed, "the output was not written through atomic_open"
    assert result.code == 1, result.err
    one_line(result.err, f"Error: cannot write {out}: {ENOSPC}")
    assert result.out == ""
    assert hidden_and_all(tmp_path) == []


def test_a_partly_written_output_is_removed(cli, names, huge, tmp_path, monkeypatch):
    """The disk fills after 1 MB of records: those records were written, then removed."""
    out = tmp_path / "tokens.jsonl"
    disk = DiskFills(1_000_000)
    monkeypatch.setattr(fsutil, "os", disk)
    result = cli("tokenize", "-m", names["BPE"], "--file", huge, "-o", out)
    assert disk.written > 100_000 and disk.failed
    one_line(result.err, f"cannot write {out}: {ENOSPC}")
    assert hidden_and_all(tmp_path) == []


def test_a_full_disk_keeps_the_file_that_was_there(cli, names, files, tmp_path, monkeypatch):
    out = tmp_path / "tokens.jsonl"
    out.write_text("the earlier result\n")
    monkeypatch.setattr(fsutil, "os", DiskFills(1000))
    result = cli("tokenize", "-m", names["BPE"], "--file", files / "big.txt", "-o", out)
    one_line(result.err, f"cannot write {out}: {ENOSPC}")
    assert out.read_text() == "the earlier result\n"
    assert hidden_and_all(tmp_path) == ["tokens.jsonl"]


@pytest.mark.parametrize("fmt", ["jsonl", "ids"])
def test_a_failing_fsync_leaves_nothing(cli, names, files, tmp_path, monkeypatch, fmt):
    out = tmp_path / f"tokens.{fmt}"
    disk = DiskFills(10**9, fsync_fails=True)
    monkeypatch.setattr(fsutil, "os", disk)
    result = cli("tokenize", "-m", names["BPE"], "--file", files / "big.txt", "-f", fmt, "-o", out)
    assert disk.written > 100_000 and disk.failed
    assert result.code == 1
    one_line(result.err, f"Error: cannot write {out}: {ENOSPC}")
    assert hidden_and_all(tmp_path) == []


# --- what the system refuses, as root too ------------------------------------------------------


def test_an_output_folder_that_refuses_files(cli, names, tmp_path, monkeypatch):
    class Refuses:
        """``os`` for ``llmcli.fsutil``, whose ``open`` is refused."""

        def open(self, *args, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

        def __getattr__(self, name):
            return getattr(os, name)

    monkeypatch.setattr(fsutil, "os", Refuses())
    out = tmp_path / "t.jsonl"
    result = cli("tokenize", "-m", names["BPE"], "hi", "-o", out)
    assert result.code == 1
    one_line(result.err, f"Error: cannot write {out}: Permission denied")
    assert hidden_and_all(tmp_path) == []


@pytest.mark.parametrize("command", ["tokenize", "onehot", "attention", "embed"])
def test_an_input_file_that_cannot_be_read(cli, names, files, monkeypatch, command):
    secret = files / "long.txt"

    def guarded_open(file, *args, **kwargs):
        if Path(file) == secret:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(inputs, "open", guarded_open, raising=False)
    model = names["BERT"] if command == "embed" else names["GPT2"]
    result = cli(command, "-m", model, "--file", secret, stdin=b"")
    assert result.code == 1
    one_line(result.err, f"Error: cannot read {secret}: Permission denied")
    assert result.out == ""


# --- a reader that goes away: | head -1 -------------------------------------------------------

# (id, args, big): a big output cannot fit in the pipe, so it must end by SIGPIPE.
HEAD_CASES = [
    ("tokenize", ["tokenize", "-m", "BPE", "-f", "jsonl", "--file", "F/big.txt"], True),
    ("tokenize-ids", ["tokenize", "-m", "BPE", "-f", "ids", "--file", "F/big.txt"], True),
    ("onehot", ["onehot", "-m", "BPE", "-f", "jsonl", "--file", "F/big.txt"], True),
    ("embed", ["embed", "-m", "BERT", "-f", "jsonl", "cat", "kitten", "tractor"], False),
    ("attention", ["attention", "-m", "GPT2", "-f", "jsonl", "--truncate", "--file", "F/long.txt"],
     True),
    ("fewshot", ["fewshot", "-m", "GPT2", "-t", "F/task.jsonl", "-k", "0,1",
                 "--max-new-tokens", "2", "-f", "jsonl"], False),
    ("next", ["next", "-m", "GPT2", "-f", "jsonl", "-k", "50", "The cat"], False),
    ("models", ["models", "-f", "jsonl"], False),
]  # fmt: skip


@pytest.fixture(scope="module")
def head_runs(bpe_dir, tiny_gpt2_dir, tiny_bert_dir, files, tmp_path_factory):
    """Every command of HEAD_CASES started at once, each read by a reader that takes
    one line and closes the pipe: ``{id: (first line, exit status, stderr)}``."""
    names = {"BPE": str(bpe_dir), "GPT2": str(tiny_gpt2_dir), "BERT": str(tiny_bert_dir)}
    env = {**os.environ, "LLMPATH_HOME": str(tmp_path_factory.mktemp("store")),
           "LLMPATH_OFFLINE": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip
    env.pop("LLMPATH_DEBUG", None)
    procs = {}
    for case, args, _ in HEAD_CASES:
        cmd = llmpath_cmd(*_fill(args, Path("-"), names, files))
        procs[case] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, env=env)  # fmt: skip
    results = {}
    for case, proc in procs.items():
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        results[case] = (first, proc.wait(timeout=300), err)
    return results


@pytest.mark.parametrize(("case", "big"), [(c[0], c[2]) for c in HEAD_CASES],
                         ids=[c[0] for c in HEAD_CASES])  # fmt: skip
def test_head_ends_every_command_quietly(head_runs, case, big):
    first, status, err = head_runs[case]
    assert err == b"", err.decode()
    assert first.endswith(b"\n")
    if case != "tokenize-ids":
        json.loads(first)
    if big:
        assert status == -signal.SIGPIPE
    else:
        assert status in (0, -signal.SIGPIPE)


def test_head_in_a_shell_pipeline_exits_0(bpe_dir, files):
    """What a shell sees: the pipeline's status is head's, and llmpath's is 141."""
    cmd = " ".join(llmpath_cmd("tokenize", "-m", bpe_dir, "--file", files / "big.txt"))
    proc = subprocess.run(
        ["bash", "-c", f"{cmd} | head -1; echo \"status ${{PIPESTATUS[0]}}\""],
        capture_output=True, env=dict(os.environ), timeout=120,
    )  # fmt: skip
    assert proc.stderr == b""
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["index"] == 0
    assert lines[1] == "status 141"


# --- signals while -o FILE is written ------------------------------------------------------------


def wait_for(condition, what: str, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("fmt", ["jsonl", "ids"])
def test_a_signal_while_writing_leaves_nothing(bpe_dir, wordpiece_dir, huge, tmp_path, sig, code,
                                              fmt):  # fmt: skip
    out = tmp_path / f"tokens.{fmt}"
    # -f ids with the byte-level BPE takes the bulk engine, which can finish 10 MB before the
    # signal is sent; the WordPiece tokenizer has none, so the process is still writing.
    folder = wordpiece_dir if fmt == "ids" else bpe_dir
    proc = subprocess.Popen(
        llmpath_cmd("tokenize", "-m", folder, "--file", huge, "-f", fmt, "-o", out),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ), preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        wait_for(lambda: proc.poll() is not None or any(tmp_path.glob(".tokens.*.part")),
                 "the output to be started")  # fmt: skip
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        stdout, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err.decode()
    assert stdout == b"" and err.strip() == b""
    assert hidden_and_all(tmp_path) == []


# An interrupt can land between any two bytecodes, so also just after the temporary file is made
# and before anything is set up to remove it: the file is listed before it exists, and what is
# still listed is removed when the process exits.
INTERRUPT_SCRIPT = """
import os, sys
from pathlib import Path
from llmcli import fsutil

real_open = os.open


class InterruptedOpen:
    def open(self, *args, **kwargs):
        real_open(*args, **kwargs)
        raise KeyboardInterrupt

    def __getattr__(self, name):
        return getattr(os, name)


fsutil.os = InterruptedOpen()
with fsutil.atomic_open(Path(sys.argv[1])) as fh:
    fh.write("never")
"""


def test_an_interrupt_just_after_the_temporary_file_is_made_leaves_nothing(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPT_SCRIPT, folder / "out.txt"],
        capture_output=True, env=dict(os.environ), timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0 and b"KeyboardInterrupt" in proc.stderr, proc.stderr.decode()
    assert hidden_and_all(folder) == []


# --- SIGTERM during a pull ----------------------------------------------------------------------

PULL_SCRIPT = """
import json, os, sys, time
from pathlib import Path
from llmcli.models import convert, registry

data = json.loads(Path(sys.argv[1]).read_text())
data["distributions"] = tuple(registry.Distribution(**d) for d in data["distributions"])
data["members"] = tuple(data["members"])
registry.REGISTRY[data["name"]] = registry.ModelSpec(**data)
marker = Path(sys.argv[2])
copy = convert.copy_hf_folder

def slow_copy(src, out):
    marker.write_text("converting")
    time.sleep(300)
    return copy(src, out)

convert.copy_hf_folder = slow_copy
from llmcli.cli import main
main(sys.argv[3:])
"""


def test_sigterm_during_a_pull_stores_nothing(bpe_dir, tmp_path, store_home):
    prefix = "tinyterm/model/"
    wheel = tmp_path / "tinyterm-0.1.0-py3-none-any.whl"
    tokenizer = (bpe_dir / "tokenizer.json").read_bytes()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(prefix + "tokenizer.json", tokenizer)
        config = (bpe_dir / "tokenizer_config.json").read_bytes()
        zf.writestr(prefix + "tokenizer_config.json", config)
    data = wheel.read_bytes()
    spec = {
        "name": "tinyterm", "kind": "tokenizer", "description": "tiny", "licence": "MIT",
        "source_format": "hf-folder",
        "distributions": [{"requirement": "tinyterm==0.1.0", "filename": wheel.name,
                           "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}],
        "members": [prefix], "pinned_member": "tokenizer.json",
        "source_sha256": hashlib.sha256(tokenizer).hexdigest(), "vocab_size": 370, "context": 64,
    }  # fmt: skip
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "slow_pull.py").write_text(PULL_SCRIPT)
    marker = tmp_path / "converting"
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "slow_pull.py"), str(tmp_path / "spec.json"), str(marker),
         "pull", "tinyterm", "--from-file", str(wheel)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    try:
        wait_for(lambda: marker.exists() or proc.poll() is not None, "the conversion to start")
        assert proc.poll() is None, proc.communicate()
        assert list((store_home / "tmp").glob("tinyterm.*"))  # the pull's work folder
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err.decode()
    assert out == b"" and b"Traceback" not in err
    assert not (store_home / "models" / "tinyterm").exists()
    assert not list(store_home.glob("tmp/tinyterm.*"))
