"""Attention: how each token mixes in the tokens it finds relevant.

In every layer, each head computes for each token (the query) a weight for every
token it may look at (the keys); the weights of a row sum to 1. A decoder masks
the future: a token sees only itself and earlier tokens, so the upper triangle
is 0. An encoder looks both ways.

Arrays are ``[layer, head, query, key]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmcli.core.numbers import require_finite
from llmcli.core.tokenize import TokenRecord, records_for_ids
from llmcli.errors import InputError, UsageError
from llmcli.models.loader import LoadedModel
from llmcli.models.tokenizer import LoadedTokenizer

AGGREGATES = ("none", "mean", "max", "rollout")
SEED = "It's a blue sundress."


def parse_selection(spec: str | None, count: int, what: str) -> list[int]:
    """``"0,3"``, ``"2-5"``, ``"-1"`` (the last), or None for all, as sorted indices.

    >>> parse_selection("0,2-3,-1", 6, "layer")
    [0, 2, 3, 5]
    """
    if spec is None or spec.strip() in ("", "all"):
        return list(range(count))
    chosen: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        bounds = _range(part)
        if bounds is None:
            raise UsageError(f"--{what} {spec!r}: use numbers, lists and ranges like 0,3 or 2-5")
        lo, hi = (b + count if b < 0 else b for b in bounds)
        for value, given in ((lo, bounds[0]), (hi, bounds[1])):
            if not 0 <= value < count:
                raise UsageError(
                    f"{what} {given} is out of range: this model has {count} {what}s "
                    f"(0..{count - 1}, or -1 for the last)"
                )
        if lo > hi:
            raise UsageError(f"--{what} {part}: a range goes from low to high")
        chosen.update(range(lo, hi + 1))
    if not chosen:
        raise UsageError(f"--{what} {spec!r} chooses no {what}: use numbers like 0,3 or 2-5")
    return sorted(chosen)


def _range(part: str) -> tuple[int, int] | None:
    """``"3"`` -> (3, 3); ``"-1"`` -> (-1, -1); ``"2-5"`` -> (2, 5); ``"-3--1"``."""
    try:
        value = int(part)
        return value, value
    except ValueError:
        pass
    cut = part.find("-", 1)
    if cut < 0:
        return None
    try:
        return int(part[:cut]), int(part[cut + 1 :])
    except ValueError:
        return None


@dataclass
class AttentionMap:
    """One ``[query, key]`` matrix: a head of a layer, or an aggregate of several."""

    layer: int | str  # a layer index, or "rollout"
    head: int | str  # a head index, or "mean" / "max" / "rollout"
    matrix: np.ndarray[Any, np.dtype[np.float32]]


@dataclass
class AttentionRun:
    """What was run: the model, its kind, the tokens and the selection."""

    model: str
    kind: str  # "decoder" (masked, causal) or "encoder" (both directions)
    tokens: list[TokenRecord]
    layers: list[int]
    heads: list[int]
    n_layers: int
    n_heads: int
    aggregate: str

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def shape(self) -> tuple[int, int, int, int]:
        """The ``[layer, head, query, key]`` shape of the maps this run gives."""
        t = self.n_tokens
        if self.aggregate == "rollout":
            return (1, 1, t, t)
        heads = 1 if self.aggregate in ("mean", "max") else len(self.heads)
        return (len(self.layers), heads, t, t)


def _attention_modules(hf_model: Any, n_layers: int) -> tuple[int, list[Any]] | None:
    """The model's attention modules, one a layer, and where their weights are in their
    output: what transformers itself hooks to collect ``output_attentions``
    (``_can_record_outputs["attentions"]``). None where it names none, or not one a layer."""
    spec = (getattr(hf_model, "_can_record_outputs", None) or {}).get("attentions")
    if spec is None:
        return None
    target = getattr(spec, "target_class", spec)
    index = getattr(spec, "index", 1)
    part = getattr(spec, "layer_name", None)
    if not isinstance(target, type):
        return None
    found = [m for name, m in hf_model.named_modules()
             if isinstance(m, target) and (part is None or part in name)]  # fmt: skip
    return (index, found) if len(found) == n_layers else None


def _heads(tensor: Any, heads: list[int]) -> Any:
    """The ``[head, query, key]`` tensor of the selected heads (numpy comes later, a layer
    at a time, once the forward pass has given its memory back)."""
    return tensor[0, heads]


def _keeper(kept: dict[int, Any], layer: int, index: int, heads: list[int]) -> Any:
    """A forward hook that keeps the selected heads of a layer's attention weights."""

    def hook(module: Any, args: Any, output: Any) -> None:
        weights = output[index] if isinstance(output, tuple) and len(output) > index else None
        kept[layer] = None if weights is None else _heads(weights, heads)

    return hook


def check_memory(run: AttentionRun, available: int | None = None) -> None:
    """Refuse, with one line, a run whose attention weights cannot fit in memory.

    A layer's weights (heads x tokens² float32 values) live while it runs, and the
    selected layers' selected heads are kept (``maps``): 8,192 tokens of SmolLM2 take
    2.3 GiB a layer, and all 30 layers x 9 heads of them 67.5 GiB. ``available``: bytes
    free (default: the system's ``MemAvailable``; no check where it is not known).
    """
    kept_heads = len(run.heads) * len(run.layers)
    need = 4 * (run.n_heads + kept_heads) * run.n_tokens**2
    free = available if available is not None else _available_memory()
    if free is not None and need > free:
        raise InputError(
            f"the attention weights of {run.n_tokens:,} tokens take about {_size(need)} "
            f"({len(run.layers)} layers x {len(run.heads)} heads kept, and one layer's "
            f"{run.n_heads} heads while it runs, each {run.n_tokens:,}²), and "
            f"{_size(free)} is free: give fewer tokens, layers or heads"
        )


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def _available_memory() -> int | None:
    """Bytes of memory free for a new allocation (Linux's ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def context_size(config: dict[str, Any]) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def prepare_ids(ids: list[int], config: dict[str, Any], label: str, *, truncate: bool) -> list[int]:
    """Check the IDs fit the model's context; ``truncate`` keeps the first ones that do."""
    if not ids:
        raise InputError("empty input: there are no tokens to attend to")
    limit = context_size(config)
    if limit is not None and len(ids) > limit:
        if not truncate:
            raise InputError(
                f"{len(ids)} tokens do not fit {label}'s context of {limit}: "
                "shorten the text or pass --truncate"
            )
        ids = ids[:limit]
    return ids


def plan(
    config: dict[str, Any], label: str, tok: LoadedTokenizer, ids: list[int], *,
    layers: str | None, heads: str | None, aggregate: str,
) -> AttentionRun:  # fmt: skip
    """Check the selection against the model's config (``model_config``) and describe the
    run, before any weight loads: a bad ``--layer`` costs nothing."""
    if aggregate not in AGGREGATES:
        raise UsageError(f"unknown aggregate {aggregate!r}; choose from {', '.join(AGGREGATES)}")
    n_layers = int(config.get("num_hidden_layers") or config.get("n_layer") or 0)
    n_heads = int(config.get("num_attention_heads") or config.get("n_head") or 0)
    if n_layers < 1 or n_heads < 1:
        raise UsageError(f"the config of {label} gives no layer or head count")
    architectures = config.get("architectures") or []
    decoder = any(str(a).endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
    return AttentionRun(
        model=label,
        kind="decoder" if decoder else "encoder",
        tokens=records_for_ids(tok, ids),
        layers=parse_selection(layers, n_layers, "layer"),
        heads=parse_selection(heads, n_heads, "head"),
        n_layers=n_layers,
        n_heads=n_heads,
        aggregate=aggregate,
    )


def maps(model: LoadedModel, run: AttentionRun) -> Iterator[AttentionMap]:
    """The attention maps of the run, a layer at a time (``[query, key]`` each).

    The weights are those the model's attention modules give under eager attention (what
    ``output_attentions=True`` collects). Forward hooks on the selected layers' modules
    keep only the selected heads, as each layer runs: a layer's full weights live only
    while it runs, so a long text costs one layer's weights, not every layer's. A model
    whose attention modules transformers does not name falls back to
    ``output_attentions=True``.
    """
    import torch

    ids = torch.tensor([[r.id for r in run.tokens]], device=model.device)
    modules = _attention_modules(model.model, run.n_layers)
    kept: dict[int, Any] = {}
    with torch.inference_mode():
        if modules is None:
            out = model.model(input_ids=ids, attention_mask=torch.ones_like(ids),
                              output_attentions=True, use_cache=False)  # fmt: skip
            attentions = list(out.attentions)
            del out
            for layer in run.layers:
                tensor = attentions[layer]
                kept[layer] = None if tensor is None else _heads(tensor, run.heads)
            del attentions
        else:
            index, found = modules
            handles = [
                found[layer].register_forward_hook(_keeper(kept, layer, index, run.heads))
                for layer in run.layers
            ]
            try:
                model.model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)
            finally:
                for handle in handles:
                    handle.remove()
    if any(kept.get(layer) is None for layer in run.layers):
        raise UsageError(
            f"{model.label} returned no attention weights (load it with eager attention)"
        )
    attentions = [kept.get(layer) for layer in range(run.n_layers)]
    rollout: np.ndarray[Any, np.dtype[np.float64]] | None = None
    eye = np.eye(run.n_tokens)
    for layer in range(len(attentions)):
        tensor = attentions[layer]
        attentions[layer] = kept[layer] = None
        if tensor is None:
            continue
        weights = tensor.float().cpu().numpy()  # [head, query, key], the selected heads
        del tensor
        require_finite(weights, f"the attention weights of layer {layer}", model.label)
        if run.aggregate == "none":
            for head, matrix in zip(run.heads, weights):
                yield AttentionMap(layer, head, matrix)
        elif run.aggregate == "mean":
            yield AttentionMap(layer, "mean", weights.mean(axis=0))
        elif run.aggregate == "max":
            yield AttentionMap(layer, "max", weights.max(axis=0))
        else:
            # Abnar & Zuidema (2020): add the residual connection (0.5 A + 0.5 I),
            # renormalise the rows, and multiply the layers together.
            mixed = 0.5 * weights.mean(axis=0).astype(np.float64) + 0.5 * eye
            mixed /= mixed.sum(axis=-1, keepdims=True)
            rollout = mixed if rollout is None else mixed @ rollout
    if run.aggregate == "rollout" and rollout is not None:
        yield AttentionMap("rollout", "rollout", rollout.astype(np.float32))


def top_k(matrix: np.ndarray[Any, Any], k: int) -> list[list[tuple[int, float]]]:
    """For each query row, the ``k`` keys with the largest weights (index, weight)."""
    if k < 1:
        raise UsageError("--top takes a number of at least 1")
    out = []
    for row in matrix:
        order = np.argsort(-row, kind="stable")[:k]
        out.append([(int(j), float(row[j])) for j in order if row[j] > 0])
    return out
