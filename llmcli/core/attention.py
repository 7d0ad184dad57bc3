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


def check_memory(run: AttentionRun, available: int | None = None) -> None:
    """Refuse, with one line, a run whose attention weights cannot fit in memory.

    transformers hands back every layer's weights at once (``output_attentions``): layers
    x heads x tokens² float32 values, whatever ``--layer`` and ``--head`` keep. 8,192
    tokens of SmolLM2 are 72 GB of them. ``available``: bytes free (default: the
    system's ``MemAvailable``; no check where it is not known).
    """
    need = 4 * run.n_layers * run.n_heads * run.n_tokens**2
    free = available if available is not None else _available_memory()
    if free is not None and need > free:
        raise InputError(
            f"the attention weights of {run.n_tokens:,} tokens take about {need / 2**30:.1f} GiB "
            f"({run.n_layers} layers x {run.n_heads} heads x {run.n_tokens:,}²), and "
            f"{free / 2**30:.1f} GiB is free: give fewer tokens"
        )


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

    The weights are those of ``output_attentions=True`` under eager attention. As
    each layer is turned into numpy its tensor is released, so the layers are not
    held twice.
    """
    import torch

    ids = torch.tensor([[r.id for r in run.tokens]], device=model.device)
    with torch.inference_mode():
        out = model.model(input_ids=ids, attention_mask=torch.ones_like(ids),
                          output_attentions=True, use_cache=False)  # fmt: skip
    attentions = list(out.attentions)
    del out
    if any(a is None for a in attentions):
        raise UsageError(
            f"{model.label} returned no attention weights (load it with eager attention)"
        )
    rollout: np.ndarray[Any, np.dtype[np.float64]] | None = None
    eye = np.eye(run.n_tokens)
    for layer in range(len(attentions)):
        tensor = attentions[layer]
        attentions[layer] = None
        if layer not in run.layers:
            continue
        weights = tensor[0].float().cpu().numpy()[run.heads]  # [head, query, key]
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
