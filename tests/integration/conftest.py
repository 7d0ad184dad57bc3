"""Integration tests run against the real registry models in a real store.

The store is the folder named by ``LLMPATH_TEST_HOME`` if set, else the user's
default store. The four registry models are pulled into it once per session
(a no-op for those already there); a failed pull fails every test loudly.
During the tests downloads are off, so nothing is fetched behind their back.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llmcli.models.tokenizer import LoadedTokenizer

MODELS = ("gpt2", "minilm", "smollm2", "gemma3-270m")
# Left out of every test's environment: they would change what the commands print.
UNSET = ("LLMPATH_DEBUG", "HF_HUB_OFFLINE", "FORCE_COLOR", "NO_COLOR")


def _command() -> list[str]:
    """The installed ``llmpath`` script next to this Python, else ``python -m llmcli``."""
    script = Path(sys.executable).parent / "llmpath"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "llmcli"]


LLMPATH = _command()


def _store_root() -> Path:
    env = os.environ.get("LLMPATH_TEST_HOME")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir("llmpath", appauthor=False))


@pytest.fixture(scope="session")
def real_store() -> Path:
    """The real store, with the four registry models pulled into it."""
    root = _store_root()
    env = {k: v for k, v in os.environ.items() if k not in ("LLMPATH_OFFLINE", "HF_HUB_OFFLINE")}
    env["LLMPATH_HOME"] = str(root)
    proc = subprocess.run(
        [*LLMPATH, "pull", *MODELS],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"'llmpath pull {' '.join(MODELS)}' into {root} failed (exit {proc.returncode}); "
            f"the integration tests need these models.\nstdout:\n{proc.stdout}\n"
            f"stderr:\n{proc.stderr}",
            pytrace=False,
        )
    for name in MODELS:
        if not (root / "models" / name / "llmpath.json").is_file():
            pytest.fail(f"{name} is not in {root} after pulling it", pytrace=False)
    return root


@pytest.fixture(scope="session")
def model_dir(real_store: Path) -> Callable[[str], Path]:
    def folder(name: str) -> Path:
        return real_store / "models" / name

    return folder


# Tokenizers read by ``LoadedTokenizer.from_folder`` during the session, by label,
# folder and the files' identity (a test that changes a tokenizer.json reads it anew).
_TOKENIZERS: dict[tuple[object, ...], LoadedTokenizer] = {}
_read_tokenizer = LoadedTokenizer.from_folder.__func__  # type: ignore[attr-defined]


def _tokenizer_once(cls: type[LoadedTokenizer], label: str, folder: Path) -> LoadedTokenizer:
    def identity(path: Path) -> tuple[int, ...]:
        try:
            s = path.stat()
        except OSError:
            return ()
        return s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns

    key = (label, str(folder), identity(folder / "tokenizer.json"),
           identity(folder / "tokenizer_config.json"))  # fmt: skip
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = _read_tokenizer(cls, label, folder)
    return _TOKENIZERS[key]


@pytest.fixture(scope="session")
def loaded(real_store: Path) -> Callable[[str], LoadedTokenizer]:
    """``loaded(name)``: the model's LoadedTokenizer, read once per session (the one
    the in-process commands get)."""

    def get(name: str) -> LoadedTokenizer:
        return _tokenizer_once(LoadedTokenizer, name, real_store / "models" / name)

    return get


@pytest.fixture(scope="session")
def reference(real_store: Path) -> Callable[[str], Any]:
    """``reference(name)``: the store folder's tokenizer.json loaded directly with
    the ``tokenizers`` library (truncation and padding off), once per session."""
    from tokenizers import Tokenizer

    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            tok = Tokenizer.from_file(str(real_store / "models" / name / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            cache[name] = tok
        return cache[name]

    return get


@pytest.fixture(scope="session")
def stdlib_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 3 MB of real text: Python standard library sources, in a fixed order."""
    import sysconfig

    lib = Path(sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    size = 0
    for path in sorted(lib.glob("*.py")) + sorted(lib.glob("*/*.py")):
        try:
            text = path.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(text)
        size += len(text.encode("utf-8"))
        if size >= 3_000_000:
            break
    assert size >= 3_000_000, f"only {size} bytes of sources found under {lib}"
    out = tmp_path_factory.mktemp("text") / "stdlib.txt"
    out.write_text("".join(parts), encoding="utf-8", newline="")
    return out


@dataclass
class Run:
    """A finished ``llmpath`` run, its output decoded as UTF-8."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def records(self) -> list[dict[str, Any]]:
        """stdout read as JSON Lines."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def _store_env(store: Path) -> dict[str, str]:
    """The environment of every integration test: the real store, no downloads."""
    return {
        "LLMPATH_HOME": str(store),
        "LLMPATH_OFFLINE": "1",
        "COLUMNS": "200",  # tables are not wrapped at 80 columns in a pipe
    }


@pytest.fixture(autouse=True)
def _use_real_store(real_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every integration test (in-process and its subprocesses) uses the real store."""
    for key, value in _store_env(real_store).items():
        monkeypatch.setenv(key, value)
    for key in UNSET:
        monkeypatch.delenv(key, raising=False)
    return real_store


# Weights loaded by ``load_model`` during the session, by folder and options.
_MODELS: dict[tuple[str, str], Any] = {}


@pytest.fixture(autouse=True)
def _load_each_model_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process commands load each model's weights once for the session, for
    each set of options (eager attention, dtype, ...): the load itself is tested in
    tests/unit and by the subprocesses here, which load on their own. No command
    changes a loaded model (the walk's and attention's hooks are removed after use),
    so a command finds it as loaded. A failed load is not kept."""
    from llmcli.models import loader

    load_model = loader.load_model
    defaults = {
        name: p.default
        for name, p in inspect.signature(load_model).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }

    def load(resolved: Any, **kwargs: Any) -> Any:
        options = {**defaults, **kwargs}
        options["device"] = loader.pick_device(options["device"])
        key = (str(resolved.path), repr(sorted(options.items())))
        if key not in _MODELS:
            _MODELS[key] = load_model(resolved, **kwargs)
        return _MODELS[key]

    monkeypatch.setattr(loader, "load_model", load)


@pytest.fixture(autouse=True)
def _read_each_tokenizer_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process commands read each tokenizer once for the session (Gemma's
    tokenizer.json alone takes 3 s to read here): what a command learns of it later
    (its template, engines, each token's bytes) is cached on it, and the same for every
    run. A failed read is not kept; the read itself is tested in tests/unit and by the
    subprocesses here."""
    monkeypatch.setattr(LoadedTokenizer, "from_folder", classmethod(_tokenizer_once))


def _in_process(args: Sequence[str], data: bytes, env: dict[str, str]) -> tuple[int, bytes, bytes]:
    """``llmcli.cli.main(args)`` in this process, with ``env`` as its environment and
    byte streams for stdin, stdout and stderr: (exit code, stdout, stderr)."""
    import io

    from llmcli.cli import main

    saved = (sys.stdin, sys.stdout, sys.stderr, dict(os.environ))
    out, err = io.BytesIO(), io.BytesIO()
    streams = (
        io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"),
        io.TextIOWrapper(out, encoding="utf-8", write_through=True),
        io.TextIOWrapper(err, encoding="utf-8", write_through=True),
    )
    sys.stdin, sys.stdout, sys.stderr = streams
    os.environ.clear()
    os.environ.update(env)
    code: int = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        for stream in streams[1:]:
            with contextlib.suppress(ValueError):  # closed by the command (a pipe shut)
                stream.flush()
        got = out.getvalue() if not out.closed else b"", err.getvalue() if not err.closed else b""
        for stream in streams:
            with contextlib.suppress(ValueError):
                stream.detach()  # the byte buffers stay open, and are not closed by GC
        sys.stdin, sys.stdout, sys.stderr = saved[0], saved[1], saved[2]
        os.environ.clear()
        os.environ.update(saved[3])
    return code, got[0], got[1]


@pytest.fixture(scope="session")
def llmpath(real_store: Path) -> Callable[..., Run]:
    """``llmpath(args, input=b"", check=True)``: run the command line against the real
    store, in this process (stdout a pipe: not a terminal), as ``llmcli.cli.main`` with
    byte streams, which spares each run torch's import; usable from fixtures of any
    scope. (The tests of the process itself, its signals, pipes and imports, are in
    tests/cli, on the tiny models.)"""

    def run(args: Sequence[str], input: str | bytes = b"", check: bool = True) -> Run:
        data = input.encode("utf-8") if isinstance(input, str) else input
        env = {k: v for k, v in os.environ.items() if k not in UNSET}
        env.update(_store_env(real_store))
        code, out, err = _in_process(args, data, env)
        result = Run(list(args), code, out.decode("utf-8"), err.decode("utf-8"))
        if check and result.returncode != 0:
            raise AssertionError(
                f"llmpath {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture(scope="session")
def expected_special(real_store: Path) -> Callable[[str], tuple[int | None, int | None]]:
    """``(bos_id, eos_id)`` read straight from a folder's tokenizer_config.json and
    tokenizer.json: the BOS token (else the CLS token) and EOS token (else SEP), read
    once a model (Gemma's tokenizer.json is 33 MB of JSON)."""

    @functools.cache
    def ids(name: str) -> tuple[int | None, int | None]:
        folder = real_store / "models" / name
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        table = {t["content"]: t["id"] for t in tokenizer.get("added_tokens", [])}
        vocab = tokenizer["model"]["vocab"]

        def lookup(*keys: str) -> int | None:
            for key in keys:
                value = config.get(key)
                if isinstance(value, dict):
                    value = value.get("content")
                if isinstance(value, str):
                    if value in table:
                        return int(table[value])
                    if isinstance(vocab, dict) and value in vocab:
                        return int(vocab[value])
            return None

        return lookup("bos_token", "cls_token"), lookup("eos_token", "sep_token")

    return ids
