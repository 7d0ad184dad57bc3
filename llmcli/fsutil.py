"""Atomic file writes and hashing, shared by the store and the output writers."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from llmcli.errors import OutputError

CHUNK = 1 << 20


def sha256_file(path: Path, progress: Any = None) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks (``progress(n)`` per block)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
            if progress is not None:
                progress(len(block))
    return digest.hexdigest()


# Temporary files not yet renamed into place or removed. Each is listed before it exists, so
# an interrupt at any point (inside the creation, between a context manager's enter and its
# block) leaves nothing behind: what is still listed when the process exits is removed.
_UNFINISHED: set[Path] = set()


@atexit.register
def _remove_unfinished() -> None:
    for path in list(_UNFINISHED):
        with contextlib.suppress(OSError):
            path.unlink()
    _UNFINISHED.clear()


def _create_part(parent: Path, name: str) -> tuple[int, Path]:
    """A new empty file ``.NAME.RANDOM.part`` in ``parent`` (mode 0600, as mkstemp's), open
    for writing; it is listed in ``_UNFINISHED`` from before it is created."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_BINARY", 0)
    while True:
        tmp = parent / f".{name}.{os.urandom(6).hex()}.part"  # not secrets: 4 ms to import
        _UNFINISHED.add(tmp)
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            _UNFINISHED.discard(tmp)  # another file's name: draw again
        except OSError:
            _UNFINISHED.discard(tmp)  # nothing was created
            raise


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    A reader never sees a half-written file: if the block raises, or Ctrl-C or SIGTERM ends
    the process at any point, the target is untouched and the temporary file is removed.
    """
    target = Path(path)
    if target.exists() and not target.is_file() and not target.is_dir():
        # A device or a pipe (/dev/null, /dev/stdout, a FIFO): nothing to replace, and
        # renaming a file over it would destroy it. Write to it as it is.
        try:
            with open(target, mode, **kwargs) as fh:
                yield fh
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        why = f"{parent} is not a folder" if parent.exists() else f"folder {parent} does not exist"
        raise OutputError(f"cannot write {target}: {why}")
    try:
        fd, tmp_path = _create_part(parent, target.name)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # The part was made 0600; give the file the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
        _UNFINISHED.discard(tmp_path)
        _fsync_dir(parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        _UNFINISHED.discard(tmp_path)
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def replace_dir(src: Path, dst: Path) -> None:
    """Move a finished folder into place; an older ``dst`` is removed first."""
    if dst.exists():
        trash = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, trash)
        os.replace(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dst)
    _fsync_dir(dst.parent)
