"""The model store: ``$LLMPATH_HOME`` (default: the user cache folder).

Layout::

    models/<name>/     a plain Hugging Face folder (tokenizer.json, config.json,
                       model.safetensors, ...) plus llmpath.json, the manifest,
                       which is written last: a folder without it is not a model.
    local/<sha>/       .gguf files given with -m, converted once
    tmp/               work folders of pulls in progress (removed when done)
    locks/             one lock file per model, so that two pulls never collide
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmcli.errors import ModelError

MANIFEST = "llmpath.json"
MANIFEST_FORMAT = 1
_TRUE = {"1", "true", "yes", "on"}


def home() -> Path:
    """The store's root folder (created on demand, not here)."""
    env = os.environ.get("LLMPATH_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("llmpath", appauthor=False))


def offline() -> bool:
    """True when ``LLMPATH_OFFLINE`` or ``HF_HUB_OFFLINE`` asks for no downloads."""
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE
        for var in ("LLMPATH_OFFLINE", "HF_HUB_OFFLINE")
    )


def models_dir() -> Path:
    return home() / "models"


def model_dir(name: str) -> Path:
    return models_dir() / name


def local_dir(key: str) -> Path:
    return home() / "local" / key


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a store folder, or None if the folder is not complete."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None


def is_installed(name: str) -> bool:
    return read_manifest(model_dir(name)) is not None


def folder_size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                total += path.stat().st_size
    return total


def _ensure(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the store folder {path}: {exc.strerror or exc}") from exc
    return path


@contextlib.contextmanager
def locked(key: str, on_wait: Any = None) -> Iterator[None]:
    """Hold the store's lock for ``key`` (a model name); waits for another holder."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(_ensure(home() / "locks") / f"{key}.lock"))
    try:
        lock.acquire(timeout=0.2)
    except Timeout:
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def clean_stale(key: str) -> None:
    """Remove work folders of earlier, interrupted pulls of ``key`` (lock held)."""
    tmp = home() / "tmp"
    if tmp.is_dir():
        for path in tmp.glob(f"{key}.*"):
            shutil.rmtree(path, ignore_errors=True)
    for parent in (models_dir(), home() / "local"):
        if parent.is_dir():
            for path in parent.glob(f".{key}.old-*"):
                shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def workdir(key: str) -> Iterator[Path]:
    """A fresh work folder inside the store (same file system, so renames are atomic)."""
    path = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=_ensure(home() / "tmp")))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def ensure_parent(path: Path) -> Path:
    _ensure(path.parent)
    return path
