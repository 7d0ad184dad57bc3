"""One forward pass with hooks, and the same layer computed by hand beside it.

``capture`` runs the model once (eager attention, so that the attention weights
exist) with hooks that keep the residual stream entering and leaving every layer
and, for the opened layer, the output (or input) of each submodule the adapter
names. ``layer_trace`` computes a layer from its input with the formulas of
``llmcli.core.walk.base``; the walk compares the two, tensor by tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmcli.core.walk.base import (
    Adapter,
    Tensor,
    attend,
    attention_mask,
    repeat_kv,
    rope_angles,
    rotate,
)


def layer_trace(ad: Adapter, i: int, x: Tensor, positions: Tensor) -> dict[str, Tensor]:
    """Every intermediate of layer ``i`` on input ``x`` ``[token, d_model]``, by hand.

    Names follow the place in the block: ``ln1``, ``q``/``k``/``v`` (before rotation),
    ``q_rot``/``k_rot``, ``k_rep``/``v_rep`` (one per query head), ``scores``,
    ``weights``, ``mixed``, ``attn_out``, ``resid_mid``, ``ln2``, ``mlp_act``,
    ``mlp_out``, ``out``.
    """
    t: dict[str, Tensor] = {"x": x}
    h = ad.attn_norm(i, x)
    if h is not None:
        t["ln1"] = h
    else:
        h = x
    t.update(ad.qkv(i, h))
    q = t.get("q_normed", t["q"])
    k = t.get("k_normed", t["k"])
    inv = ad.inv_freq(i)
    if inv is not None:
        cos, sin = rope_angles(inv, positions)
        scaling = ad.rope_scaling(i)
        cos, sin = cos * scaling, sin * scaling
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        t["q_rot"], t["k_rot"] = q, k
    t["k_rep"] = repeat_kv(k, ad.groups)
    t["v_rep"] = repeat_kv(t["v"], ad.groups)
    allowed = attention_mask(x.shape[0], causal=ad.facts.decoder, window=ad.window(i),
                             device=x.device)  # fmt: skip
    t["allowed"] = allowed
    t.update(attend(q, t["k_rep"], t["v_rep"], scale=ad.scale(i), allowed=allowed,
                    softcap=ad.softcap(i)))  # fmt: skip
    t["attn_out"] = ad.project(i, t["mixed"])
    t.update(ad.after_attention(i, x, t["attn_out"]))
    return t


@dataclass
class Captured:
    """What the model itself computed."""

    inputs: list[Tensor]  # the residual entering each layer, [token, d_model], float32
    outputs: list[Tensor]  # leaving each layer
    sub: dict[tuple[str, str], Tensor] = field(default_factory=dict)  # opened layer's modules
    final_normed: Tensor | None = None  # [token, d_model]
    attentions: list[Tensor] = field(default_factory=list)  # [head, query, key] per layer
    logits: Tensor | None = None  # [token, vocab] (decoders)
    last_hidden: Tensor | None = None  # [token, d_model] (encoders)


def _first_tensor(value: Any) -> Tensor:
    import torch

    while isinstance(value, (tuple, list)):
        value = value[0]
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected a tensor, got {type(value).__name__}")
    return value


def capture(ad: Adapter, model: Any, ids: Tensor, layer: int, *, attentions: bool = True
            ) -> Captured:  # fmt: skip
    """Run the model once on ``ids`` ``[token]`` and keep what the walk checks against."""
    import torch

    inputs: list[Tensor | None] = [None] * ad.n_layers
    outputs: list[Tensor | None] = [None] * ad.n_layers
    sub: dict[tuple[str, str], Tensor] = {}
    caught: dict[str, Tensor] = {}
    handles = []

    def keep_in(store: Any, key: Any) -> Any:
        def hook(module: Any, args: Any, kwargs: Any) -> None:
            value = args[0] if args else next(iter(kwargs.values()))
            store[key] = value.detach().float()

        return hook

    def keep_out(store: Any, key: Any) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            store[key] = _first_tensor(output).detach().float()

        return hook

    try:
        for i in range(ad.n_layers):
            m = ad.layer_module(i)
            handles.append(m.register_forward_pre_hook(keep_in(inputs, i), with_kwargs=True))
            handles.append(m.register_forward_hook(keep_out(outputs, i)))
        opened = ad.layer_module(layer)
        for ref in ad.refs(layer).values():
            key = (ref.path, ref.io)
            if key in sub or (ref.path == "" and ref.io == "out"):
                continue
            mod = opened.get_submodule(ref.path) if ref.path else opened
            sub[key] = None
            if ref.io == "in":
                handles.append(mod.register_forward_pre_hook(keep_in(sub, key), with_kwargs=True))
            else:
                handles.append(mod.register_forward_hook(keep_out(sub, key)))
        norm = ad.final_norm_module()
        if norm is not None:
            handles.append(norm.register_forward_hook(keep_out(caught, "final")))
        batch = ids[None]
        with torch.inference_mode():
            out = model(input_ids=batch, attention_mask=torch.ones_like(batch),
                        output_attentions=attentions, use_cache=False)  # fmt: skip
    finally:
        for handle in handles:
            handle.remove()
    weights = list(getattr(out, "attentions", None) or [])
    if attentions and (len(weights) != ad.n_layers or any(a is None for a in weights)):
        raise RuntimeError("the model returned no attention weights (eager attention needed)")
    sub[("", "out")] = outputs[layer]
    logits = getattr(out, "logits", None)
    last = getattr(out, "last_hidden_state", None)
    return Captured(
        inputs=[t[0] for t in inputs],  # type: ignore[index]
        outputs=[t[0] for t in outputs],  # type: ignore[index]
        sub=sub,
        final_normed=caught["final"][0] if "final" in caught else None,
        attentions=[a[0].float() for a in weights],
        logits=logits[0].float() if logits is not None else None,
        last_hidden=last[0].float() if last is not None else None,
    )
