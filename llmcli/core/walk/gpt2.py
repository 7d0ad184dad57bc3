"""GPT-2: learned positions, LayerNorm before each sub-layer, GELU (tanh form).

``x0 = wte[id] + wpe[pos]``; ``h = x + attn(LN(x)); x' = h + mlp(LN(h))``. Its
``Conv1D`` layers store the weight ``[in, out]``: ``c_attn`` makes q, k and v at once.
"""

from __future__ import annotations

from typing import Any

from llmcli.core.walk.base import (
    Adapter,
    Facts,
    Ref,
    Tensor,
    activation,
    config_int,
    conv1d,
    f32,
    first,
    heads_of,
    layer_norm,
)


def _third(n_heads: int, part: int) -> Any:
    """The q, k or v third of ``c_attn``'s output, as ``[head, token, d_head]``."""
    shape = heads_of(n_heads)

    def pick(t: Tensor) -> Tensor:
        width = t.shape[-1] // 3
        return shape(t[..., part * width : (part + 1) * width])

    return pick


class GPT2Adapter(Adapter):
    model_types = ("gpt2",)
    facts = Facts(
        family="gpt2", name="GPT-2", position="learned", norm="LayerNorm", placement="pre",
        mlp="GELU", layer_formula="h = x + attn(LN(x));  x' = h + mlp(LN(h))", decoder=True,
    )  # fmt: skip

    def __init__(self, model: Any, config: Any):
        super().__init__(model, config)
        self.base = model.transformer
        c = config
        self.n_layers = config_int(c, "n_layer", "num_hidden_layers")
        self.n_heads = self.n_kv_heads = config_int(c, "n_head", "num_attention_heads")
        self.d_model = config_int(c, "n_embd", "hidden_size")
        self.d_head = self.d_model // self.n_heads
        self.d_ff = getattr(c, "n_inner", None) or 4 * self.d_model
        self.vocab = config_int(c, "vocab_size")
        self.act, self.act_words = activation(str(c.activation_function))

    def layer_module(self, i: int) -> Any:
        return self.base.h[i]

    def embedding_matrix(self) -> Tensor:
        return self.base.wte.weight

    def position_matrix(self) -> Tensor:
        return self.base.wpe.weight

    def embed(self, ids: Tensor) -> dict[str, Any]:
        rows = f32(self.embedding_matrix())[ids]
        pos = f32(self.position_matrix())[: ids.shape[0]]
        return {"rows": rows, "pos": pos, "x0": rows + pos}

    def _ln(self, module: Any, x: Tensor) -> Tensor:
        return layer_norm(x, module.weight, module.bias, float(module.eps))

    def attn_norm(self, i: int, x: Tensor) -> Tensor:
        return self._ln(self.layer_module(i).ln_1, x)

    def qkv(self, i: int, h: Tensor) -> dict[str, Tensor]:
        both = conv1d(h, self.layer_module(i).attn.c_attn)
        t = h.shape[0]
        q, k, v = (p.reshape(t, self.n_heads, self.d_head).transpose(0, 1)
                   for p in both.split(self.d_model, dim=-1))  # fmt: skip
        return {"q": q, "k": k, "v": v}

    def scale(self, i: int) -> float:
        scale = self.d_head**-0.5 if getattr(self.config, "scale_attn_weights", True) else 1.0
        if getattr(self.config, "scale_attn_by_inverse_layer_idx", False):
            scale /= float(i + 1)
        return scale

    def scale_words(self, i: int) -> str:
        words = f"1/sqrt({self.d_head})"
        if getattr(self.config, "scale_attn_by_inverse_layer_idx", False):
            words += f" / {i + 1}"
        return words

    def project(self, i: int, mixed: Tensor) -> Tensor:
        joined = mixed.transpose(0, 1).reshape(mixed.shape[1], -1)
        return conv1d(joined, self.layer_module(i).attn.c_proj)

    def after_attention(self, i: int, x: Tensor, attn_out: Tensor) -> dict[str, Tensor]:
        layer = self.layer_module(i)
        mid = x + attn_out
        ln2 = self._ln(layer.ln_2, mid)
        pre = conv1d(ln2, layer.mlp.c_fc)
        hidden = self.act(pre)
        mlp_out = conv1d(hidden, layer.mlp.c_proj)
        return {"resid_mid": mid, "ln2": ln2, "mlp_pre": pre, "mlp_act": hidden,
                "mlp_out": mlp_out, "out": mid + mlp_out}  # fmt: skip

    def refs(self, i: int) -> dict[str, Ref]:
        return {
            "ln1": Ref("ln_1", "out"),
            "q": Ref("attn.c_attn", "out", _third(self.n_heads, 0)),
            "k": Ref("attn.c_attn", "out", _third(self.n_heads, 1)),
            "v": Ref("attn.c_attn", "out", _third(self.n_heads, 2)),
            "mixed": Ref("attn.c_proj", "in", heads_of(self.n_heads)),
            "attn_out": Ref("attn.c_proj", "out"),
            "resid_mid": Ref("ln_2", "in"),
            "ln2": Ref("ln_2", "out"),
            "mlp_act": Ref("mlp.c_proj", "in"),
            "mlp_out": Ref("mlp", "out"),
            "out": Ref("", "out", first, "output of the layer"),
        }

    def final_norm_module(self) -> Any:
        return self.base.ln_f

    def final_norm(self, x: Tensor) -> Tensor:
        return self._ln(self.base.ln_f, x)

    def matrix_shapes(self, i: int) -> dict[str, tuple[int, ...]]:
        d = self.d_model
        return {"W_q": (d, d), "W_k": (d, d), "W_v": (d, d), "W_o": (d, d),
                "W_fc": (d, self.d_ff), "W_proj": (self.d_ff, d)}  # fmt: skip
