"""Llama (SmolLM2): RMSNorm before each sub-layer, RoPE, grouped-query attention, SwiGLU.

``h = x + attn(rms(x)); x' = h + mlp(rms(h))`` with ``mlp(x) = down(silu(gate(x)) * up(x))``.
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
    linear,
    rms_norm,
)


def rotary_reference(model: Any, attn: Any, q: Tensor, k: Tensor, positions: Tensor,
                     *extra: Any) -> tuple[Tensor, Tensor]:  # fmt: skip
    """q and k turned by the model's own rotary module and transformers' own function."""
    import sys

    fn = sys.modules[type(attn).__module__].apply_rotary_pos_emb
    cos, sin = model.rotary_emb(q[None], positions[None], *extra)
    q_rot, k_rot = fn(q[None], k[None], cos, sin)
    return q_rot[0], k_rot[0]


class LlamaAdapter(Adapter):
    model_types = ("llama",)
    facts = Facts(
        family="llama", name="Llama", position="rotary", norm="RMSNorm", placement="pre",
        mlp="SwiGLU", layer_formula="h = x + attn(rms(x));  x' = h + mlp(rms(h))", decoder=True,
    )  # fmt: skip
    act_name = "hidden_act"

    def __init__(self, model: Any, config: Any):
        super().__init__(model, config)
        self.base = model.model
        c = config
        self.n_layers = config_int(c, "num_hidden_layers")
        self.n_heads = config_int(c, "num_attention_heads")
        self.n_kv_heads = getattr(c, "num_key_value_heads", None) or self.n_heads
        self.d_model = config_int(c, "hidden_size")
        self.d_head = getattr(c, "head_dim", None) or self.d_model // self.n_heads
        self.d_ff = config_int(c, "intermediate_size")
        self.vocab = config_int(c, "vocab_size")
        self.act, self.act_words = activation(str(getattr(c, self.act_name)))

    def layer_module(self, i: int) -> Any:
        return self.base.layers[i]

    def embedding_matrix(self) -> Tensor:
        return self.base.embed_tokens.weight

    def embed(self, ids: Tensor) -> dict[str, Any]:
        rows = f32(self.embedding_matrix())[ids]
        return {"rows": rows, "x0": rows}

    def _norm(self, module: Any, x: Tensor) -> Tensor:
        return rms_norm(x, module.weight, float(module.variance_epsilon))

    def attn_norm(self, i: int, x: Tensor) -> Tensor:
        return self._norm(self.layer_module(i).input_layernorm, x)

    def qkv(self, i: int, h: Tensor) -> dict[str, Tensor]:
        a = self.layer_module(i).self_attn
        t = h.shape[0]
        q = linear(h, a.q_proj).reshape(t, self.n_heads, self.d_head).transpose(0, 1)
        k = linear(h, a.k_proj).reshape(t, self.n_kv_heads, self.d_head).transpose(0, 1)
        v = linear(h, a.v_proj).reshape(t, self.n_kv_heads, self.d_head).transpose(0, 1)
        return {"q": q, "k": k, "v": v}

    def inv_freq(self, i: int) -> Tensor:
        return self.base.rotary_emb.inv_freq

    def rope_theta(self, i: int) -> float | None:
        params = getattr(self.config, "rope_parameters", None) or {}
        theta = params.get("rope_theta", getattr(self.config, "rope_theta", None))
        return float(theta) if theta is not None else None

    def rope_scaling(self, i: int) -> float:
        return float(getattr(self.base.rotary_emb, "attention_scaling", 1.0))

    def rotary_reference(self, i: int, q: Tensor, k: Tensor, positions: Tensor) -> tuple:
        return rotary_reference(self.base, self.layer_module(i).self_attn, q, k, positions)

    def project(self, i: int, mixed: Tensor) -> Tensor:
        joined = mixed.transpose(0, 1).reshape(mixed.shape[1], -1)
        return linear(joined, self.layer_module(i).self_attn.o_proj)

    def mlp(self, module: Any, x: Tensor) -> dict[str, Tensor]:
        gate = linear(x, module.gate_proj)
        up = linear(x, module.up_proj)
        hidden = self.act(gate) * up
        return {"mlp_pre": gate, "mlp_up": up, "mlp_act": hidden,
                "mlp_out": linear(hidden, module.down_proj)}  # fmt: skip

    def after_attention(self, i: int, x: Tensor, attn_out: Tensor) -> dict[str, Tensor]:
        layer = self.layer_module(i)
        mid = x + attn_out
        ln2 = self._norm(layer.post_attention_layernorm, mid)
        out = {"resid_mid": mid, "ln2": ln2, **self.mlp(layer.mlp, ln2)}
        out["out"] = mid + out["mlp_out"]
        return out

    def refs(self, i: int) -> dict[str, Ref]:
        return {
            "ln1": Ref("input_layernorm", "out"),
            "q": Ref("self_attn.q_proj", "out", heads_of(self.n_heads)),
            "k": Ref("self_attn.k_proj", "out", heads_of(self.n_kv_heads)),
            "v": Ref("self_attn.v_proj", "out", heads_of(self.n_kv_heads)),
            "mixed": Ref("self_attn.o_proj", "in", heads_of(self.n_heads)),
            "attn_out": Ref("self_attn.o_proj", "out"),
            "resid_mid": Ref("post_attention_layernorm", "in"),
            "ln2": Ref("post_attention_layernorm", "out"),
            "mlp_act": Ref("mlp.down_proj", "in"),
            "mlp_out": Ref("mlp", "out"),
            "out": Ref("", "out", first, "output of the layer"),
        }

    def final_norm_module(self) -> Any:
        return self.base.norm

    def final_norm(self, x: Tensor) -> Tensor:
        return self._norm(self.base.norm, x)

    def matrix_shapes(self, i: int) -> dict[str, tuple[int, ...]]:
        d, dh = self.d_model, self.d_head
        return {
            "W_q": (d, self.n_heads * dh), "W_k": (d, self.n_kv_heads * dh),
            "W_v": (d, self.n_kv_heads * dh), "W_o": (self.n_heads * dh, d),
            "W_gate": (d, self.d_ff), "W_up": (d, self.d_ff), "W_down": (self.d_ff, d),
        }  # fmt: skip
