"""Gemma 3: scaled embeddings, ``(1 + w)`` RMSNorm before and after each sub-layer,
q/k norm, sliding-window and global layers with their own RoPE bases, GeGLU.

``h = x + post_attn_norm(attn(in_norm(x))); x' = h + post_ff_norm(mlp(pre_ff_norm(h)))``.
"""

from __future__ import annotations

import math
from typing import Any

from llmcli.core.walk.base import Facts, Ref, Tensor, f32, first, rms_norm
from llmcli.core.walk.llama import LlamaAdapter, rotary_reference


class Gemma3Adapter(LlamaAdapter):
    model_types = ("gemma3_text",)
    facts = Facts(
        family="gemma3", name="Gemma 3", position="rotary", norm="RMSNorm with (1 + w)",
        placement="sandwich", mlp="GeGLU",
        layer_formula="h = x + norm(attn(norm(x)));  x' = h + norm(mlp(norm(h)))", decoder=True,
    )  # fmt: skip
    act_name = "hidden_activation"

    def embed(self, ids: Tensor) -> dict[str, Any]:
        import torch

        weight = self.embedding_matrix()
        rows = f32(weight)[ids]
        # The model multiplies by sqrt(d_model), the factor cast to the weight's dtype.
        scale = float(torch.tensor(math.sqrt(self.d_model), dtype=weight.dtype))
        return {"rows": rows, "scale": scale, "x0": rows * scale}

    def _norm(self, module: Any, x: Tensor) -> Tensor:
        return rms_norm(x, module.weight, float(module.eps), plus_one=True)

    def layer_type(self, i: int) -> str:
        types = getattr(self.config, "layer_types", None)
        return str(types[i]) if types else "full_attention"

    def qkv(self, i: int, h: Tensor) -> dict[str, Tensor]:
        out = super().qkv(i, h)
        a = self.layer_module(i).self_attn
        out["q_normed"] = self._norm(a.q_norm, out["q"])
        out["k_normed"] = self._norm(a.k_norm, out["k"])
        return out

    def inv_freq(self, i: int) -> Tensor:
        return getattr(self.base.rotary_emb, f"{self.layer_type(i)}_inv_freq")

    def rope_theta(self, i: int) -> float | None:
        params = (getattr(self.config, "rope_parameters", None) or {}).get(self.layer_type(i))
        return float(params["rope_theta"]) if params else None

    def rope_scaling(self, i: int) -> float:
        return float(getattr(self.base.rotary_emb, f"{self.layer_type(i)}_attention_scaling", 1))

    def rotary_reference(self, i: int, q: Tensor, k: Tensor, positions: Tensor) -> tuple:
        return rotary_reference(self.base, self.layer_module(i).self_attn, q, k, positions,
                                self.layer_type(i))  # fmt: skip

    def scale(self, i: int) -> float:
        return float(self.config.query_pre_attn_scalar) ** -0.5

    def scale_words(self, i: int) -> str:
        return f"query_pre_attn_scalar^-1/2 = {self.config.query_pre_attn_scalar}^-1/2"

    def window(self, i: int) -> int | None:
        if self.layer_type(i) == "sliding_attention":
            return int(self.config.sliding_window)
        return None

    def softcap(self, i: int) -> float | None:
        cap = getattr(self.config, "attn_logit_softcapping", None)
        return float(cap) if cap else None

    def final_softcap(self) -> float | None:
        cap = getattr(self.config, "final_logit_softcapping", None)
        return float(cap) if cap else None

    def after_attention(self, i: int, x: Tensor, attn_out: Tensor) -> dict[str, Tensor]:
        layer = self.layer_module(i)
        post = self._norm(layer.post_attention_layernorm, attn_out)
        mid = x + post
        ln2 = self._norm(layer.pre_feedforward_layernorm, mid)
        out = {"attn_post": post, "resid_mid": mid, "ln2": ln2, **self.mlp(layer.mlp, ln2)}
        out["mlp_post"] = self._norm(layer.post_feedforward_layernorm, out["mlp_out"])
        out["out"] = mid + out["mlp_post"]
        return out

    def refs(self, i: int) -> dict[str, Ref]:
        refs = super().refs(i)
        refs.update({
            "q_normed": Ref("self_attn.q_norm", "out", first),
            "k_normed": Ref("self_attn.k_norm", "out", first),
            "attn_post": Ref("post_attention_layernorm", "out"),
            "resid_mid": Ref("pre_feedforward_layernorm", "in"),
            "ln2": Ref("pre_feedforward_layernorm", "out"),
            "mlp_post": Ref("post_feedforward_layernorm", "out"),
        })  # fmt: skip
        return refs
