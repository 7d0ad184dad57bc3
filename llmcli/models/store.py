"""The model store: ``$LLMPATH_HOME`` (default: the user cache folder).

Layout::

    models/<name>/     a plain Hugging Face folder (tokenizer.json, config.json,
                       model.safetensors, ...) plus llmpath.json, the manifest,
                       which is written last: a folder without it is not a model.
    local/<sha>/       .gguf files given with -m, converted once (same layout)
    tmp/               work folders of pulls in progress (removed when done)
    locks/             one lock file per model, so that two pulls never collide
    verified/<key>.json  when each stored file was last hashed: its stamp (below)

Every use of a stored model first compares the folder with its manifest
(``verify``): a file that is missing, changed or not listed there means the
folder is not what was pulled, and the model is refused. Hashing every file on
every start would cost seconds for the larger models, so each file's size,
modification and change times and inode number are recorded in a stamp when it
is hashed; a file whose four values are unchanged is trusted without reading it.
Writing a file (even one that then gets its old modification time back) moves its
change time, which no program can set back; what keeps all four values (a disk
fault, a clock set back) is found by a full check: ``llmpath models --verify``, or
``llmpath pull NAME``, which hash everything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from llmcli import fsutil
from llmcli.errors import IntegrityError, LlmpathError, ModelError
from llmcli.models.progress import Reporter, SilentReporter

MANIFEST = "llmpath.json"
MANIFEST_FORMAT = 1
STAMPS = "verified"
# File times advance in ticks (a few milliseconds), so a file written just before its
# stat was taken could be written again within the same tick without its times moving.
# A file whose change time is this close to the check is not recorded in the stamp: it
# is hashed again next time.
RACY_NS = 1_000_000_000
_TRUE = {"1", "true", "yes", "on"}
_SHA256 = re.compile(r"[0-9a-f]{64}")


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


# --- integrity: the folder against its manifest -------------------------------------------


def hash_files(folder: Path, reporter: Reporter | None = None) -> dict[str, str]:
    """The sha256 of every file in ``folder``, by path relative to it (for a manifest)."""
    rep = reporter or SilentReporter()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    with rep.step("recording sha256 of the stored files", total) as advance:
        return {p.relative_to(folder).as_posix(): fsutil.sha256_file(p, advance) for p in files}


def stamp_path(key: str) -> Path:
    return home() / STAMPS / f"{key}.json"


def _signature(st: os.stat_result) -> list[int]:
    """What a write to the file would change: size, modification and change times, inode."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _listed(manifest: object) -> dict[str, str] | None:
    """The manifest's ``files`` (relative path -> sha256), or None if absent or malformed."""
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files:
        return None
    for rel, sha in files.items():
        path = PurePosixPath(rel) if isinstance(rel, str) else None
        if (
            path is None
            or path.is_absolute()
            or ".." in path.parts
            or rel == MANIFEST
            or not isinstance(sha, str)
            or not _SHA256.fullmatch(sha)
        ):
            return None
    return files


def has_hashes(folder: Path) -> bool:
    """True when the folder's manifest lists the sha256 of its files."""
    return _listed(read_manifest(folder)) is not None


def _unlisted(folder: Path, listed: dict[str, str]) -> list[str]:
    """Files in the folder that the manifest does not name (hidden files aside)."""
    extra = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(root).relative_to(folder)
        for name in names:
            rel = (base / name).as_posix()
            if not name.startswith(".") and rel != MANIFEST and rel not in listed:
                extra.append(rel)
    return extra


def _read_stamp(key: str, manifest_sha: str) -> dict[str, list[int]]:
    try:
        data = json.loads(stamp_path(key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("manifest") != manifest_sha:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _write_stamp(
    key: str, manifest_sha: str, files: dict[str, list[int]], old: dict[str, list[int]] | None
) -> None:
    """Record the signatures (unless ``old`` holds them already); a store that cannot
    be written only loses the shortcut."""
    if files == old:
        return
    data = json.dumps({"manifest": manifest_sha, "files": files}, indent=1, sort_keys=True)
    with contextlib.suppress(LlmpathError, OSError):
        fsutil.write_bytes_atomic(ensure_parent(stamp_path(key)), data.encode())


def _settled(sig: list[int], since_ns: int) -> bool:
    """True when the file's change time is well before ``since_ns`` (see ``RACY_NS``)."""
    return sig[2] < since_ns - RACY_NS


def verify(
    folder: Path, key: str, *, full: bool = False, reporter: Reporter | None = None
) -> list[str]:
    """How the store folder differs from its manifest, one ``FILE: what`` each; [] if not.

    Files whose signature (size, times, inode) is the one recorded in the stamp of
    ``key`` when they were last hashed are trusted without reading them; the others
    (all of them with ``full``) are hashed. A folder found intact gets its stamp
    refreshed, so that the next check reads nothing. Files the manifest does not
    list count as changes: a loader could pick them up.

    For example ``verify(model_dir("gpt2"), "gpt2")`` gives ``[]`` for an intact
    folder, or ``["tokenizer.json: sha256 differs"]``.
    """
    rep = reporter or SilentReporter()
    try:
        raw = (folder / MANIFEST).read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError):
        return [f"{MANIFEST}: missing or unreadable"]
    listed = _listed(manifest)
    if listed is None:
        return [f"{MANIFEST}: no valid sha256 list of the stored files"]
    manifest_sha = hashlib.sha256(raw).hexdigest()
    old = {} if full else _read_stamp(key, manifest_sha)
    problems = {rel: "not in the manifest" for rel in _unlisted(folder, listed)}
    since = time.time_ns()
    trusted: dict[str, list[int]] = {}
    unread: list[tuple[str, str, list[int]]] = []
    for rel, sha in listed.items():
        try:
            st = os.stat(folder / rel)
        except FileNotFoundError:
            problems[rel] = "missing"
            continue
        except OSError as exc:
            problems[rel] = f"cannot be read ({exc.strerror or exc})"
            continue
        if not stat.S_ISREG(st.st_mode):
            problems[rel] = "not a file"
            continue
        sig = _signature(st)
        if old.get(rel) == sig:
            trusted[rel] = sig
        else:
            unread.append((rel, sha, sig))
    if unread and (full or not problems):
        total = sum(sig[0] for _, _, sig in unread)
        with rep.step(f"checking the stored {key}", total) as advance:
            for rel, sha, sig in unread:
                try:
                    got = fsutil.sha256_file(folder / rel, advance)
                except OSError as exc:
                    problems[rel] = f"cannot be read ({exc.strerror or exc})"
                    continue
                if got != sha:
                    problems[rel] = "sha256 differs"
                elif _settled(sig, since):
                    trusted[rel] = sig
    if problems:
        return [f"{rel}: {what}" for rel, what in sorted(problems.items())]
    _write_stamp(key, manifest_sha, trusted, old)
    return []


def stamp(folder: Path, key: str) -> None:
    """Record the folder's files as hashed now (a pull that has just hashed them all)."""
    try:
        raw = (folder / MANIFEST).read_bytes()
        listed = _listed(json.loads(raw))
    except (OSError, ValueError):
        return
    if listed is None:
        return
    since = time.time_ns()
    files = {}
    for rel in listed:
        with contextlib.suppress(OSError):
            sig = _signature(os.stat(folder / rel))
            if _settled(sig, since):
                files[rel] = sig
    _write_stamp(key, hashlib.sha256(raw).hexdigest(), files, None)


def _source_stamp(path: Path) -> Path:
    where = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogatepass")).hexdigest()
    return stamp_path(f"source-{where[:32]}")


def known_digest(path: Path) -> str | None:
    """The sha256 of a user's file hashed before (a ``-m FILE.gguf``), when its signature
    (size, modification and change times, inode) is still the one recorded then: the
    file is not read again. None when it must be hashed."""
    try:
        data = json.loads(_source_stamp(path).read_text(encoding="utf-8"))
        sig = _signature(os.stat(path))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("path") != str(path.resolve()):
        return None
    digest = data.get("sha256")
    if data.get("signature") != sig or not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        return None
    return digest


def remember_digest(path: Path, digest: str, since_ns: int) -> None:
    """Record ``digest`` as the sha256 of ``path`` (hashed from ``since_ns`` on), unless the
    file changed too recently for its signature to prove it has not changed since."""
    with contextlib.suppress(OSError):
        sig = _signature(os.stat(path))
        if not _settled(sig, since_ns):
            return
        data = json.dumps({"path": str(path.resolve()), "signature": sig, "sha256": digest})
        with contextlib.suppress(LlmpathError, OSError):
            fsutil.write_bytes_atomic(ensure_parent(_source_stamp(path)), data.encode())


def describe(problems: list[str]) -> str:
    """The first problem, and how many more there are."""
    more = f", and {len(problems) - 1} more" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"


def changed_error(name: str, problems: list[str]) -> IntegrityError:
    """The one-line refusal of a registry model whose store folder was changed."""
    return IntegrityError(
        f"the stored {name} was changed since it was pulled ({describe(problems)}); "
        f"run 'llmpath pull {name} --force' to pull it again"
    )
