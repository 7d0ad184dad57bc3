"""The arithmetic of a transformer layer, written out by hand, and the adapter interface.

Every function here is the formula itself, in float32 torch operations, so that
each step of ``llmpath walk`` can be compared with the model's own tensors.
An adapter (one small file per architecture) says where a model keeps each weight
and which of these formulas its layer uses.

Shapes are named: ``[token, d_model]`` for the residual stream, ``[head, token,
d_head]`` for queries, keys and values, ``[head, query, key]`` for scores and weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmcli.errors import ModelError

Tensor = Any  # torch.Tensor; torch is imported inside functions only


# --- the formulas ----------------------------------------------------------------------


def f32(t: Tensor) -> Tensor:
    return t.detach().float()


def linear(x: Tensor, module: Any) -> Tensor:
    """``x W^T + b`` for an ``nn.Linear`` (its weight is stored ``[out, in]``)."""
    out = x @ f32(module.weight).T
    if getattr(module, "bias", None) is not None:
        out = out + f32(module.bias)
    return out


def conv1d(x: Tensor, module: Any) -> Tensor:
    """``x W + b`` for GPT-2's ``Conv1D`` (its weight is stored ``[in, out]``)."""
    return x @ f32(module.weight) + f32(module.bias)


def rms_norm(x: Tensor, weight: Tensor, eps: float, *, plus_one: bool = False) -> Tensor:
    """RMSNorm: ``x / sqrt(mean(x^2) + eps) * w`` (Gemma: ``* (1 + w)``), in float32."""
    import torch

    scaled = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    gain = f32(weight)
    return scaled * (1.0 + gain if plus_one else gain)


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    """LayerNorm: ``(x - mean) / sqrt(var + eps) * gain + bias`` (biased variance)."""
    import torch

    mean = x.mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps) * f32(weight) + f32(bias)


def rotate_half(x: Tensor) -> Tensor:
    """``[x1, x2] -> [-x2, x1]``: dimension i is paired with i + d/2."""
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_angles(inv_freq: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
    """cos and sin of ``pos * theta_i``, each ``[token, d_head]`` (the pair's angle twice)."""
    import torch

    angles = positions.float()[:, None] * inv_freq.float()[None, :]
    both = torch.cat((angles, angles), dim=-1)
    return both.cos(), both.sin()


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """RoPE: each pair (i, i + d/2) of ``x`` ``[head, token, d_head]`` turned by its angle."""
    return x * cos + rotate_half(x) * sin


def silu(x: Tensor) -> Tensor:
    import torch

    return x * torch.sigmoid(x)


def gelu(x: Tensor) -> Tensor:
    """GELU with the error function: ``x * Phi(x)``."""
    import torch

    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x: Tensor) -> Tensor:
    """GELU's tanh approximation (GPT-2's ``gelu_new``, Gemma's ``gelu_pytorch_tanh``)."""
    import torch

    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def relu(x: Tensor) -> Tensor:
    return x.clamp(min=0)


ACTIVATIONS: dict[str, tuple[Callable[[Tensor], Tensor], str]] = {
    "silu": (silu, "SiLU: x * sigmoid(x)"),
    "swish": (silu, "SiLU: x * sigmoid(x)"),
    "gelu": (gelu, "GELU: x * Phi(x)"),
    "gelu_new": (gelu_tanh, "GELU (tanh form): 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))"),
    "gelu_pytorch_tanh": (
        gelu_tanh,
        "GELU (tanh form): 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))",
    ),
    "gelu_fast": (gelu_tanh, "GELU (tanh form)"),
    "relu": (relu, "ReLU: max(x, 0)"),
}


def activation(name: str) -> tuple[Callable[[Tensor], Tensor], str]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ModelError(
            f"walk does not know the activation {name!r}; it knows {', '.join(ACTIVATIONS)}"
        ) from None


def repeat_kv(x: Tensor, groups: int) -> Tensor:
    """Grouped-query attention: key/value head g serves query heads g*groups .. +groups-1."""
    return x.repeat_interleave(groups, dim=0) if groups > 1 else x


def attention_mask(n: int, *, causal: bool, window: int | None, device: Any) -> Tensor:
    """True where a query may look at a key: ``[query, key]``."""
    import torch

    allowed = torch.ones(n, n, dtype=torch.bool, device=device)
    q = torch.arange(n, device=device)[:, None]
    k = torch.arange(n, device=device)[None, :]
    if causal:
        allowed &= k <= q
    if window is not None:
        allowed &= (q - k) < window
    return allowed


def attend(
    q: Tensor, k: Tensor, v: Tensor, *, scale: float, allowed: Tensor, softcap: float | None
) -> dict[str, Tensor]:
    """Scaled dot-product attention of every head, by hand.

    ``q`` is ``[head, token, d_head]``; ``k`` and ``v`` are already one per query head.
    Returns ``scores`` (scaled, masked with -inf), ``weights`` (softmax of each row) and
    ``mixed``: ``Y_i = sum_j w_ij v_j`` for each head, ``[head, token, d_head]``.
    """
    import torch

    raw = q @ k.transpose(-1, -2) * scale
    if softcap is not None:
        raw = softcap * torch.tanh(raw / softcap)
    scores = raw.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return {"scores": scores, "weights": weights, "mixed": weights @ v}


# --- what an adapter tells ---------------------------------------------------------------


@dataclass
class Ref:
    """Where the model's own copy of a hand-computed tensor is found, within a layer.

    ``path`` names a submodule of the layer ('' for the layer itself), ``io`` whether its
    input or output is wanted, and ``shape`` turns what was caught into the hand tensor's
    shape (``[token, d_model]`` or ``[head, token, d_head]``).
    """

    path: str
    io: str  # "in" or "out"
    shape: Callable[[Tensor], Tensor] = field(default=lambda t: t[0])
    against: str = ""  # how the check line names it; default: the module path


def heads_of(n_heads: int) -> Callable[[Tensor], Tensor]:
    """``[1, token, heads * d_head] -> [head, token, d_head]``."""

    def shape(t: Tensor) -> Tensor:
        return t[0].reshape(t.shape[1], n_heads, -1).transpose(0, 1)

    return shape


def first(t: Tensor) -> Tensor:
    return t[0]


@dataclass
class Facts:
    """What an architecture does, in words the walk prints."""

    family: str  # "llama", "gemma3", "bert", "gpt2"
    name: str  # "Llama", "Gemma 3", ...
    position: str  # "rotary" or "learned"
    norm: str  # "RMSNorm", "RMSNorm with (1 + w)", "LayerNorm"
    placement: str  # "pre", "sandwich" (before and after), "post"
    mlp: str  # "SwiGLU", "GeGLU", "GELU"
    layer_formula: str
    decoder: bool


class Adapter:
    """One architecture: where each weight lives and which formulas its layer uses.

    Subclasses fill in the facts and the methods below; ``llmcli.core.walk.trace``
    runs them in the order of the layer and compares each result with the model.
    """

    facts: Facts
    model_types: tuple[str, ...] = ()

    def __init__(self, model: Any, config: Any):
        self.model = model
        self.config = config

    # sizes
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int
    d_ff: int
    vocab: int

    @property
    def groups(self) -> int:
        return self.n_heads // self.n_kv_heads

    def layer_module(self, i: int) -> Any:
        raise NotImplementedError

    def embedding_matrix(self) -> Tensor:
        raise NotImplementedError

    def embed(self, ids: Tensor) -> dict[str, Any]:
        """``rows`` (the one-hot rows' lookup), then what the model adds, up to ``x0``."""
        raise NotImplementedError

    def attn_norm(self, i: int, x: Tensor) -> Tensor | None:
        """The norm before attention (pre-norm models); None where it comes after."""
        return None

    def qkv(self, i: int, h: Tensor) -> dict[str, Tensor]:
        """``q`` ``[head, token, d_head]``, ``k``, ``v`` ``[kv_head, token, d_head]``,
        and any per-head norm the model applies to them (``q_normed``, ``k_normed``)."""
        raise NotImplementedError

    # position
    def inv_freq(self, i: int) -> Tensor | None:
        """theta_i of each rotary pair for layer ``i`` (None: no rotary position)."""
        return None

    def rope_theta(self, i: int) -> float | None:
        return None

    def rope_scaling(self, i: int) -> float:
        """The factor the rotary module multiplies cos and sin by (1 for plain RoPE)."""
        return 1.0

    def rotary_reference(self, i: int, q: Tensor, k: Tensor, positions: Tensor) -> tuple:
        """The model's own rotary module and transformers' function applied to q and k."""
        raise NotImplementedError

    def position_matrix(self) -> Tensor | None:
        """Learned absolute position vectors ``[position, d_model]``; None for rotary."""
        return None

    # attention
    def scale(self, i: int) -> float:
        return 1.0 / math.sqrt(self.d_head)

    def scale_words(self, i: int) -> str:
        return f"1/sqrt({self.d_head})"

    def window(self, i: int) -> int | None:
        return None

    def softcap(self, i: int) -> float | None:
        return None

    def project(self, i: int, mixed: Tensor) -> Tensor:
        """The heads side by side ``[token, heads * d_head]`` times W_o."""
        raise NotImplementedError

    def after_attention(self, i: int, x: Tensor, attn_out: Tensor) -> dict[str, Tensor]:
        """The residual adds, the second norm and the MLP, ending with ``out``."""
        raise NotImplementedError

    def refs(self, i: int) -> dict[str, Ref]:
        """The model's own copy of each hand tensor of layer ``i``."""
        raise NotImplementedError

    # the end
    def final_norm_module(self) -> Any | None:
        return None

    def final_norm(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def unembedding(self) -> Tensor | None:
        """The unembedding matrix ``[vocab, d_model]``: the language-model head's weight;
        None for an encoder without one."""
        head = getattr(self.model, "lm_head", None)
        return head.weight if head is not None else None

    def final_softcap(self) -> float | None:
        return None

    def tied(self) -> bool:
        u = self.unembedding()
        if u is None:
            return False
        e = self.embedding_matrix()
        return bool(u.data_ptr() == e.data_ptr() or (u.shape == e.shape and bool((u == e).all())))

    def matrix_shapes(self, i: int) -> dict[str, tuple[int, ...]]:
        """Shapes of the weights the layer multiplies by, as stored, ``[in, out]``."""
        raise NotImplementedError


def config_int(config: Any, *names: str) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise ModelError(f"the model's config has none of {', '.join(names)}")
