"""BERT (all-MiniLM-L6-v2): learned positions and token types, post-norm LayerNorm, GELU.

The embedding is ``LN(word + position + token_type)``; each layer is
``a = LN(x + attn(x)); x' = LN(a + W2 gelu(W1 a))``; nothing is masked but padding.
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
    f32,
    first,
    heads_of,
    layer_norm,
    linear,
)
from llmcli.errors import ModelError


class BertAdapter(Adapter):
    model_types = ("bert",)
    facts = Facts(
        family="bert", name="BERT", position="learned", norm="LayerNorm", placement="post",
        mlp="GELU", layer_formula="a = LN(x + attn(x));  x' = LN(a + mlp(a))", decoder=False,
    )  # fmt: skip

    def __init__(self, model: Any, config: Any):
        super().__init__(model, config)
        self.base = model
        c = config
        kind = getattr(c, "position_embedding_type", "absolute")
        if kind not in (None, "absolute"):
            raise ModelError(f"walk knows BERT with absolute positions, not {kind!r}")
        self.n_layers = config_int(c, "num_hidden_layers")
        self.n_heads = self.n_kv_heads = config_int(c, "num_attention_heads")
        self.d_model = config_int(c, "hidden_size")
        self.d_head = self.d_model // self.n_heads
        self.d_ff = config_int(c, "intermediate_size")
        self.vocab = config_int(c, "vocab_size")
        self.act, self.act_words = activation(str(c.hidden_act))

    def layer_module(self, i: int) -> Any:
        return self.base.encoder.layer[i]

    def embedding_matrix(self) -> Tensor:
        return self.base.embeddings.word_embeddings.weight

    def position_matrix(self) -> Tensor:
        return self.base.embeddings.position_embeddings.weight

    def embed(self, ids: Tensor) -> dict[str, Any]:
        e = self.base.embeddings
        rows = f32(self.embedding_matrix())[ids]
        pos = f32(self.position_matrix())[: ids.shape[0]]
        types = f32(e.token_type_embeddings.weight)[0].expand_as(rows)  # every token: type 0
        total = rows + pos + types
        x0 = layer_norm(total, e.LayerNorm.weight, e.LayerNorm.bias, float(e.LayerNorm.eps))
        return {"rows": rows, "pos": pos, "type": types, "sum": total, "x0": x0,
                "ln": e.LayerNorm}  # fmt: skip

    def qkv(self, i: int, h: Tensor) -> dict[str, Tensor]:
        a = self.layer_module(i).attention.self
        t = h.shape[0]

        def split(m: Any) -> Tensor:
            return linear(h, m).reshape(t, self.n_heads, self.d_head).transpose(0, 1)

        return {"q": split(a.query), "k": split(a.key), "v": split(a.value)}

    def project(self, i: int, mixed: Tensor) -> Tensor:
        joined = mixed.transpose(0, 1).reshape(mixed.shape[1], -1)
        return linear(joined, self.layer_module(i).attention.output.dense)

    def after_attention(self, i: int, x: Tensor, attn_out: Tensor) -> dict[str, Tensor]:
        layer = self.layer_module(i)
        ln_a = layer.attention.output.LayerNorm
        mid = x + attn_out
        a = layer_norm(mid, ln_a.weight, ln_a.bias, float(ln_a.eps))
        pre = linear(a, layer.intermediate.dense)
        hidden = self.act(pre)
        mlp_out = linear(hidden, layer.output.dense)
        ln_o = layer.output.LayerNorm
        end = a + mlp_out
        out = layer_norm(end, ln_o.weight, ln_o.bias, float(ln_o.eps))
        return {"resid_mid": mid, "ln2": a, "mlp_pre": pre, "mlp_act": hidden,
                "mlp_out": mlp_out, "resid_post": end, "out": out}  # fmt: skip

    def refs(self, i: int) -> dict[str, Ref]:
        return {
            "q": Ref("attention.self.query", "out", heads_of(self.n_heads)),
            "k": Ref("attention.self.key", "out", heads_of(self.n_heads)),
            "v": Ref("attention.self.value", "out", heads_of(self.n_heads)),
            "mixed": Ref("attention.output.dense", "in", heads_of(self.n_heads)),
            "attn_out": Ref("attention.output.dense", "out"),
            "ln2": Ref("attention.output.LayerNorm", "out"),
            "mlp_act": Ref("output.dense", "in"),
            "mlp_out": Ref("output.dense", "out"),
            "out": Ref("", "out", first, "output of the layer"),
        }

    def matrix_shapes(self, i: int) -> dict[str, tuple[int, ...]]:
        d = self.d_model
        return {"W_q": (d, d), "W_k": (d, d), "W_v": (d, d), "W_o": (d, d),
                "W_1": (d, self.d_ff), "W_2": (self.d_ff, d)}  # fmt: skip
