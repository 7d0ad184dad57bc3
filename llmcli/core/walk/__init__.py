"""``walk``: one text through the whole transformer, every step by hand and checked.

The steps are written once (``steps.py``) over one small adapter per architecture
(``llama.py``, ``gemma3.py``, ``bert.py``, ``gpt2.py``: where each weight lives and
which norm, position rule, scale and MLP the layer uses), so a new family is one file.

>>> plan = plan_walk(resolved, tok, ids, layer="0", head="0", token=None)  # doctest: +SKIP
>>> result = run_walk(loaded, tok, plan, dims=8, top=5)                    # doctest: +SKIP
>>> result.ok                                                              # doctest: +SKIP
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from llmcli.core.tokenize import records_for_ids
from llmcli.core.walk.base import Adapter
from llmcli.core.walk.bert import BertAdapter
from llmcli.core.walk.gemma3 import Gemma3Adapter
from llmcli.core.walk.gpt2 import GPT2Adapter
from llmcli.core.walk.llama import LlamaAdapter
from llmcli.core.walk.records import TOLERANCE, Check, Step, Walk
from llmcli.core.walk.steps import STEPS
from llmcli.errors import InputError, ModelError, UsageError
from llmcli.models.loader import LoadedModel
from llmcli.models.resolve import ResolvedModel, model_config
from llmcli.models.tokenizer import LoadedTokenizer

__all__ = ["ADAPTERS", "STEPS", "Walk", "WalkPlan", "plan_walk", "run_walk", "logit_lens",
           "lens_of_last"]  # fmt: skip

ADAPTERS: dict[str, type[Adapter]] = {
    a.model_types[0]: a for a in (LlamaAdapter, Gemma3Adapter, BertAdapter, GPT2Adapter)
}
KNOWN = "Llama (smollm2), Gemma 3 (gemma3-270m), BERT (minilm) and GPT-2 (a folder or hub id)"
# The logit lens multiplies [row, d_model] by [d_model, vocab]: this many logits at a time
# at most (64 MB of float32), so a long text stays within bounds.
LENS_CHUNK = 1 << 24


@dataclass
class WalkPlan:
    """What will be walked, checked against the model's config before any weight loads."""

    adapter: type[Adapter]
    ids: list[int]
    layer: int
    head: int
    token: int
    steps: list[str]
    n_layers: int
    n_heads: int


def read_config(resolved: ResolvedModel) -> dict[str, Any]:
    return dict(model_config(resolved))


def adapter_for(resolved: ResolvedModel) -> type[Adapter]:
    """The adapter of a model's architecture, from its config.json (no weights loaded)."""
    if not resolved.has_weights:
        raise ModelError(
            f"{resolved.label} is a tokenizer only, with no weights; walk and the logit lens "
            f"need the weights of an architecture they know: {KNOWN}"
        )
    config = read_config(resolved)
    kind = str(config.get("model_type", ""))
    if kind not in ADAPTERS:
        raise ModelError(
            f"walk and the logit lens do not know the architecture of {resolved.label} "
            f"({kind or 'no model_type'}); they know {KNOWN}"
        )
    return ADAPTERS[kind]


def _index(value: str | int | None, count: int, what: str, default: int) -> int:
    """An index from 0 to count - 1, or a negative one counted from the end."""
    if value is None:
        return default
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"--{what} takes a number, not {value!r}") from None
    if not -count <= index < count:
        raise UsageError(
            f"--{what} {index} is out of range: there are {count} {what}s "
            f"(0..{count - 1}, or -1 for the last)"
        )
    return index % count


def parse_steps(names: list[str] | None) -> list[str]:
    if not names:
        return list(STEPS)
    chosen = []
    for part in (p.strip() for n in names for p in n.split(",")):
        if part not in STEPS:
            raise UsageError(f"unknown step {part!r}; choose from {', '.join(STEPS)}")
        if part not in chosen:
            chosen.append(part)
    return [s for s in STEPS if s in chosen]


def context_limit(config: dict[str, Any]) -> int | None:
    for key in ("max_position_embeddings", "n_positions"):
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def plan_walk(
    resolved: ResolvedModel, ids: list[int], *, layer: str | int | None,
    head: str | int | None, token: str | int | None, steps: list[str] | None = None,
    special_ids: frozenset[int] = frozenset(),
) -> WalkPlan:  # fmt: skip
    """Check the model and the selection from the config alone (no torch, no weights).

    The followed token defaults to the last one that is not in ``special_ids`` (BERT's
    closing ``[SEP]`` is not the text), else the last.
    """
    adapter = adapter_for(resolved)
    config = read_config(resolved)
    if not ids:
        raise InputError("empty input: there are no tokens to walk")
    limit = context_limit(config)
    if limit is not None and len(ids) > limit:
        raise InputError(
            f"{len(ids)} tokens do not fit {resolved.label}'s context of {limit}: shorten the text"
        )
    n_layers = int(config.get("num_hidden_layers") or config.get("n_layer") or 0)
    n_heads = int(config.get("num_attention_heads") or config.get("n_head") or 0)
    if n_layers < 1 or n_heads < 1:
        raise ModelError(f"the config of {resolved.label} gives no layer or head count")
    return WalkPlan(
        adapter=adapter, ids=list(ids),
        layer=_index(layer, n_layers, "layer", 0), head=_index(head, n_heads, "head", 0),
        token=_index(token, len(ids), "token", _last_plain(ids, special_ids)),
        steps=parse_steps(steps),
        n_layers=n_layers, n_heads=n_heads,
    )  # fmt: skip


def _last_plain(ids: list[int], special_ids: frozenset[int]) -> int:
    for index in range(len(ids) - 1, -1, -1):
        if ids[index] not in special_ids:
            return index
    return len(ids) - 1


def logit_lens(
    ad: Adapter, hidden: list[Any], top: int, tolerance: float, reference: Any | None = None
) -> dict[str, Any]:
    """For each residual ``hidden[l]`` ``[token, d_model]``: the final norm (recomputed on
    that residual) and the unembedding, kept as the ``top`` tokens and probabilities
    ``[layer + 1, token, top]``. The last row is checked against ``reference`` (the
    model's own logits) where given.

    Every layer's rows go through the unembedding together, a slice of the vocabulary at a
    time: each slice of the matrix is read once for all rows, and the softmax is carried
    along (the best ``top`` so far and the log of the sum of exponentials), so the logits
    of the whole vocabulary are never held at once.
    """
    import torch

    u = ad.unembedding()
    assert u is not None
    u = u.detach().float()
    cap = ad.final_softcap()
    n_rows, n_tokens = len(hidden), hidden[0].shape[0]
    normed = torch.cat([ad.final_norm(x.float()) for x in hidden])  # [(layer + 1) * token, d]
    vocab = int(u.shape[0])
    last = (n_rows - 1) * n_tokens  # where the last residual's rows start
    ids = np.zeros((n_rows * n_tokens, top), dtype=np.int64)
    probs = np.zeros((n_rows * n_tokens, top), dtype=np.float32)
    delta, scale = 0.0, 1.0
    block = 4096  # rows at a time
    for lo in range(0, normed.shape[0], block):
        rows = normed[lo : lo + block]
        n = rows.shape[0]
        width = max(512, LENS_CHUNK // n)  # vocabulary entries at a time
        best_v = torch.full((n, top), float("-inf"), device=rows.device)
        best_i = torch.zeros((n, top), dtype=torch.long, device=rows.device)
        # float64: a sum over 262,144 exponentials loses digits in float32.
        lse = torch.full((n,), float("-inf"), device=rows.device, dtype=torch.float64)
        mine = max(0, last - lo)  # this block's first row of the last residual
        for v0 in range(0, vocab, width):
            logits = rows @ u[v0 : v0 + width].T
            if cap:
                logits = cap * torch.tanh(logits / cap)
            if reference is not None and mine < n:
                ref = reference[lo + mine - last : lo + n - last, v0 : v0 + width]
                ref = ref.to(logits.device)
                delta = max(delta, float((logits[mine:] - ref).abs().max()))
                scale = max(scale, float(ref.abs().max()))
            k = min(top, logits.shape[1])
            v, i = logits.topk(k, dim=-1)
            both_v, both_i = torch.cat([best_v, v], 1), torch.cat([best_i, i + v0], 1)
            best_v, pick = both_v.topk(top, dim=-1)
            best_i = both_i.gather(1, pick)
            # log sum exp of the slice, in place: its largest logit is v[:, 0].
            top_of_slice = v[:, 0]
            summed = logits.sub_(top_of_slice[:, None]).exp_().sum(dim=-1, dtype=torch.float64)
            lse = torch.logaddexp(lse, top_of_slice.double() + summed.log())
        ids[lo : lo + n] = best_i.cpu().numpy()
        probs[lo : lo + n] = (best_v.double() - lse[:, None]).exp().float().cpu().numpy()
    which = "every token" if n_tokens > 1 else "the token"
    check = Check(f"lens after the last layer, {which}", "the model's own logits", delta,
                  scale, tolerance)  # fmt: skip
    shape = (n_rows, n_tokens, top)
    return {"ids": ids.reshape(shape), "probs": probs.reshape(shape), "check": check}


def _tolerance(loaded: LoadedModel) -> float:
    name = str(loaded.dtype).replace("torch.", "")
    return TOLERANCE.get(name, TOLERANCE["bfloat16"])


def run_walk(
    loaded: LoadedModel, tok: LoadedTokenizer, plan: WalkPlan, *, dims: int = 6, top: int = 5,
    lens: str = "token", added: str = "",
) -> Walk:  # fmt: skip
    """Run the model once with hooks, compute every step by hand, and check each.

    ``added`` says which special tokens were put around the text (``Wrap.summary``).

    ``lens`` is ``"token"`` (the logit lens of the followed token only: what the steps
    show), ``"all"`` (every token: the ``lens_*`` arrays, ``[layer + 1, token, top]``) or
    ``"none"``. The lens multiplies every residual by the unembedding, so "all" costs
    as many unembeddings as there are tokens times layers.
    """
    import torch

    from llmcli.core.walk import steps as S
    from llmcli.core.walk.trace import capture, layer_trace

    config = loaded.model.config
    ad = plan.adapter(loaded.model, config)
    device = loaded.device
    ids = torch.tensor(plan.ids, device=device)
    positions = torch.arange(len(plan.ids), device=device)
    tolerance = _tolerance(loaded)
    if top > ad.vocab:
        raise UsageError(f"--top {top} is more than the {ad.vocab} tokens of {loaded.label}")
    try:
        cap = capture(ad, loaded.model, ids, plan.layer)
    except RuntimeError as exc:
        raise ModelError(f"{loaded.label}: {exc}") from exc
    records = records_for_ids(tok, plan.ids)
    labels = [S.token_label(tok.describe, i) for i in plan.ids]
    with torch.inference_mode():
        embedding = ad.embed(ids)
        hand = None
        deltas = []
        for i in range(ad.n_layers):
            trace = layer_trace(ad, i, cap.inputs[i], positions)
            what = f"layer {i}, every token"
            deltas.append(S.check_tensors(what, "the model's output of the layer",
                                          trace["out"], cap.outputs[i], tolerance))  # fmt: skip
            if i == plan.layer:
                hand = trace
        assert hand is not None
        ctx = S.Context(
            ad=ad, label=loaded.label, labels=labels, ids=ids, positions=positions,
            layer=plan.layer, head=plan.head, token=plan.token, dims=dims, top=top,
            tolerance=tolerance, cap=cap, hand=hand, embedding=embedding,
            layer_deltas=deltas, describe=tok.describe,
        )  # fmt: skip
        arrays = _arrays(ctx, plan)
        decoder = ad.unembedding() is not None
        lens_result = None
        if decoder and lens != "none":
            if lens == "all":
                hidden = [cap.inputs[0], *cap.outputs]
                lens_result = logit_lens(ad, hidden, top, tolerance, cap.logits)
                arrays["lens_ids"] = lens_result["ids"]
                arrays["lens_probs"] = lens_result["probs"]
            else:
                i = plan.token
                hidden = [cap.inputs[0][i : i + 1], *(o[i : i + 1] for o in cap.outputs)]
                assert cap.logits is not None
                lens_result = logit_lens(ad, hidden, top, tolerance, cap.logits[i : i + 1])
                # Indexed by token below: put the one row where the followed token is.
                for key in ("ids", "probs"):
                    full = np.zeros((len(hidden), len(plan.ids), top), lens_result[key].dtype)
                    full[:, i] = lens_result[key][:, 0]
                    lens_result[key] = full
        built: dict[str, Step] = {
            "tokens": S.tokens_step(ctx, records, added),
            "embed": S.embed_step(ctx),
            "position": S.position_step(ctx),
            "norm": S.norm_step(ctx),
            "head": S.head_step(ctx),
            "heads": S.heads_step(ctx),
            "mlp": S.mlp_step(ctx),
            "layers": S.layers_step(ctx, lens_result),
        }
        if decoder:
            normed = ad.final_norm(cap.outputs[-1])
            logits = normed[plan.token] @ ad.unembedding().detach().float().T  # type: ignore[union-attr]
            cap_value = ad.final_softcap()
            if cap_value:
                logits = cap_value * torch.tanh(logits / cap_value)
            built["output"] = S.output_step(ctx, normed, logits)
            best_p, best_ids = torch.softmax(logits, dim=-1).topk(top)
            arrays["next_ids"] = best_ids.cpu().numpy()
            arrays["next_probs"] = best_p.cpu().numpy()
        else:
            from llmcli.core.embed import normalizes, pooled_vectors

            assert cap.last_hidden is not None
            pooled = cap.last_hidden.mean(dim=0)
            norm = normalizes(loaded)
            if norm:
                pooled = torch.nn.functional.normalize(pooled, dim=0)
            reference = torch.from_numpy(pooled_vectors(loaded, tok, [plan.ids])[0])
            built["output"] = S.pool_step(ctx, pooled.cpu(), reference, norm)
            arrays["pooled"] = pooled.cpu().numpy().astype(np.float32)
    steps = [built[name] for name in plan.steps]
    notes = []
    spec = loaded.resolved.spec
    if (spec is not None and spec.quantization) or loaded.resolved.source == "gguf":
        what = f" ({spec.quantization})" if spec is not None and spec.quantization else ""
        notes.append(f"the weights are dequantized 4-bit GGUF weights{what} in float32, "
                     "not the original checkpoint")  # fmt: skip
    return Walk(
        model=loaded.label, family=ad.facts.family, architecture=ad.facts.name,
        kind=loaded.kind, dtype=str(loaded.dtype).replace("torch.", ""),
        device=str(device), tokens=records, layer=plan.layer, head=plan.head,
        token=plan.token, n_layers=ad.n_layers, n_heads=ad.n_heads, steps=steps,
        arrays=arrays, notes=notes,
    )  # fmt: skip


def _arrays(ctx: Any, plan: WalkPlan) -> dict[str, np.ndarray[Any, Any]]:
    """The tensors of ``-f npz``, float32, with named dimensions (see README)."""
    cap, hand = ctx.cap, ctx.hand

    def f(t: Any) -> np.ndarray[Any, Any]:
        return np.ascontiguousarray(t.detach().float().cpu().numpy(), dtype=np.float32)

    import torch

    rotary = "q_rot" in hand
    return {
        "ids": np.asarray(plan.ids, dtype=np.int64),  # [token]
        "embeddings": f(cap.inputs[0]),  # [token, d_model]
        "hidden": f(torch.stack([cap.inputs[0], *cap.outputs])),  # [layer + 1, token, d_model]
        "q": f(hand["q_rot"] if rotary else hand.get("q_normed", hand["q"])),  # [head, token, d]
        "k": f(hand["k_rep"]),  # [head, token, d_head], repeated per query head
        "v": f(hand["v_rep"]),
        "scores": f(hand["scores"]),  # [head, query, key], masked = -inf
        "weights": f(hand["weights"]),  # [head, query, key]
        "mixed": f(hand["mixed"]),  # [head, token, d_head]
        "attn_out": f(hand["attn_out"]),  # [token, d_model]
        "mlp_out": f(hand["mlp_out"]),  # [token, d_model]
        "layer": np.asarray(plan.layer, dtype=np.int64),
        "head": np.asarray(plan.head, dtype=np.int64),
        "token": np.asarray(plan.token, dtype=np.int64),
    }


def lens_of_last(loaded: LoadedModel, ids: list[int], top: int) -> dict[str, Any]:
    """``next --layers``: the logit lens of the last token after every layer.

    Returns ``ids`` and ``probs`` ``[layer + 1, top]`` (row 0: the embeddings; the last
    row: the model's own prediction) and the check of that last row.
    """
    import torch

    from llmcli.core.walk.trace import capture

    plan = plan_walk(loaded.resolved, ids, layer=0, head=0, token=None)
    ad = plan.adapter(loaded.model, loaded.model.config)
    if ad.unembedding() is None:
        raise ModelError(f"{loaded.label} has no language-model head: there is no lens")
    tensor = torch.tensor(ids, device=loaded.device)
    cap = capture(ad, loaded.model, tensor, 0, attentions=False)
    hidden = [cap.inputs[0][-1:], *(o[-1:] for o in cap.outputs)]
    reference = cap.logits[-1:] if cap.logits is not None else None
    with torch.inference_mode():
        lens = logit_lens(ad, hidden, top, _tolerance(loaded), reference)
    return {"ids": lens["ids"][:, 0], "probs": lens["probs"][:, 0], "check": lens["check"],
            "n_layers": ad.n_layers}  # fmt: skip
