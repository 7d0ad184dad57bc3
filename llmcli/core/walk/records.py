"""What a walk returns: one ``Step`` per stage, each with its numbers and its checks."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from llmcli.core.tokenize import TokenRecord

# A hand-computed tensor passes when max |hand - model| <= TOLERANCE * max(1, max |model|):
# float32 carries about 7 digits, and a residual stream can hold values in the tens of
# thousands (SmolLM2's first token), where 1e-4 absolute is below one float32 step.
TOLERANCE = {"float32": 1e-4, "float16": 2e-2, "bfloat16": 5e-2}


@dataclass
class Check:
    """One hand-computed tensor against the model's own."""

    what: str  # "q = x W_q"
    against: str  # "self_attn.q_proj's output"
    max_abs_diff: float
    scale: float  # max |model value|, at least 1
    tolerance: float  # relative to scale

    @property
    def ok(self) -> bool:
        return math.isfinite(self.max_abs_diff) and self.max_abs_diff <= self.tolerance * self.scale

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class MatMul:
    """A matrix multiplication the step is: ``[a, b] @ [b, c]`` costs 2abc FLOPs."""

    what: str
    left: tuple[int, ...]
    right: tuple[int, ...]
    times: int = 1  # done this many times (once per head, say)

    @property
    def flops(self) -> int:
        a = math.prod(self.left[:-1])
        return 2 * a * self.left[-1] * self.right[-1] * self.times

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "left": list(self.left), "right": list(self.right),
                "times": self.times, "flops": self.flops}  # fmt: skip


@dataclass
class Vector:
    """The first entries of a vector, with what it is."""

    label: str
    values: list[float]
    size: int  # the full length
    norm: float | None = None


@dataclass
class Matrix:
    """A small matrix to show: ``rows`` x ``cols`` labels, and its kind of values."""

    title: str
    rows: list[str]
    cols: list[str]
    values: list[list[float | None]]  # None: masked (-inf before the softmax)
    kind: str  # "weights" (0..1), "scores", "similarity" (-1..1)


@dataclass
class Rows:
    """A small table: column names and rows of plain values."""

    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Step:
    name: str
    title: str
    explain: list[str]
    shapes: dict[str, list[int]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    matmuls: list[MatMul] = field(default_factory=list)
    vectors: list[Vector] = field(default_factory=list)
    matrices: list[Matrix] = field(default_factory=list)
    tables: list[Rows] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "title": self.title,
            "explain": self.explain,
            "shapes": self.shapes,
            "facts": self.facts,
            "matmuls": [m.to_dict() for m in self.matmuls],
            "vectors": [asdict(v) for v in self.vectors],
            "matrices": [asdict(m) for m in self.matrices],
            "tables": [asdict(t) for t in self.tables],
            "checks": [c.to_dict() for c in self.checks],
            "ok": self.ok,
        }


@dataclass
class Walk:
    """A whole walk: the model, the selection, the steps and the tensors for ``-f npz``."""

    model: str
    family: str  # "llama", "gemma3", "bert", "gpt2"
    architecture: str  # "Llama", ...
    kind: str  # "decoder" or "encoder"
    dtype: str
    device: str
    tokens: list[TokenRecord]
    layer: int
    head: int
    token: int
    n_layers: int
    n_heads: int
    steps: list[Step]
    arrays: dict[str, np.ndarray[Any, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def failures(self) -> list[tuple[Step, Check]]:
        return [(s, c) for s in self.steps for c in s.checks if not c.ok]

    def header(self) -> dict[str, Any]:
        return {
            "model": self.model, "architecture": self.architecture, "kind": self.kind,
            "dtype": self.dtype, "device": self.device, "layer": self.layer, "head": self.head,
            "token": self.token, "n_layers": self.n_layers, "n_heads": self.n_heads,
            "tokens": [t.to_dict() for t in self.tokens], "notes": self.notes,
        }  # fmt: skip
