"""What the store holds, for ``llmpath models`` and ``llmpath pull``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from llmcli.errors import UsageError
from llmcli.models import registry, store
from llmcli.models.registry import ModelSpec


@dataclass(frozen=True)
class ModelRow:
    name: str
    kind: str
    shape: str  # "layers x heads"
    layers: int
    heads: int
    vocab_size: int
    download_size: int
    stored_size: int | None
    licence: str
    installed: bool
    path: str
    description: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def list_models() -> list[ModelRow]:
    rows = []
    for spec in registry.REGISTRY.values():
        folder = store.model_dir(spec.name)
        installed = store.is_installed(spec.name)
        rows.append(
            ModelRow(
                name=spec.name,
                kind=spec.kind,
                shape=spec.shape,
                layers=spec.layers,
                heads=spec.heads,
                vocab_size=spec.vocab_size,
                download_size=spec.download_size,
                stored_size=store.folder_size(folder) if installed else None,
                licence=spec.licence,
                installed=installed,
                path=str(folder),
                description=spec.description,
            )  # fmt: skip
        )
    return rows


def specs_to_pull(names: list[str], all_models: bool, from_files: list[Path]) -> list[ModelSpec]:
    """The registry entries a pull is about: named, all, or those the files belong to."""
    if all_models:
        if names:
            raise UsageError("give model names or --all, not both")
        return list(registry.REGISTRY.values())
    if names:
        return [registry.get(n) for n in dict.fromkeys(names)]
    if from_files:
        owners = {
            spec.name: spec
            for path in from_files
            for spec in registry.REGISTRY.values()
            if path.name in {d.filename for d in spec.distributions}
        }
        if owners:
            return list(owners.values())
    raise UsageError(f"name the models to pull ({', '.join(registry.REGISTRY)}) or use --all")
