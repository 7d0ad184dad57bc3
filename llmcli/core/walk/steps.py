"""The steps of a walk, in the order a token goes through the model.

Each function turns the hand computation and the model's own tensors into one
``Step``: what it means, its shapes and matrix multiplications, a few numbers, and
the checks of the hand result against the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmcli.core.walk.base import Adapter, Tensor, rope_angles, rotate
from llmcli.core.walk.records import Check, MatMul, Matrix, Rows, Step, Vector
from llmcli.core.walk.trace import Captured

STEPS = ("tokens", "embed", "position", "norm", "head", "heads", "mlp", "layers", "output")
# A matrix of scores or weights is shown whole up to this many tokens, else one row.
SMALL = 16
SHIFTS = (1, 10, 100)


@dataclass
class Context:
    """What every step reads: the adapter, the selection, and both computations."""

    ad: Adapter
    label: str
    labels: list[str]  # a short label per token
    ids: Tensor  # [token]
    positions: Tensor  # [token]
    layer: int
    head: int
    token: int
    dims: int
    top: int
    tolerance: float
    cap: Captured
    hand: dict[str, Tensor]  # the opened layer, by hand
    embedding: dict[str, Any]  # the embedding, by hand
    layer_deltas: list[Check]
    describe: Callable[[int], tuple[str, str, str, bool]]  # tokenizer's describe


def first(v: Tensor, n: int) -> list[float]:
    return [round(float(x), 6) for x in v[:n].tolist()]


def vec(label: str, v: Tensor, n: int) -> Vector:
    return Vector(label, first(v, n), int(v.shape[-1]), round(float(v.norm()), 6))


def check(ctx: Context, what: str, against: str, hand: Tensor, ref: Tensor) -> Check:
    return check_tensors(what, against, hand, ref, ctx.tolerance)


def check_tensors(what: str, against: str, hand: Tensor, ref: Tensor, tolerance: float) -> Check:
    """max |hand - ref| (a -inf on both sides, a masked score, counts as equal)."""
    hand, ref = hand.float(), ref.float().to(hand.device)
    if hand.shape != ref.shape:
        raise RuntimeError(f"{what}: shape {tuple(hand.shape)} against {tuple(ref.shape)}")
    finite = hand.isfinite() & ref.isfinite()
    same_inf = (hand == ref) & ~finite  # -inf on both sides (a masked score) counts as equal
    diff = (hand - ref).abs().masked_fill(same_inf, 0.0)
    if not bool((finite | same_inf).all()):
        delta = float("inf")
    else:
        delta = float(diff.max()) if diff.numel() else 0.0
    scale = max(1.0, float(ref.masked_fill(~finite, 0).abs().max()) if ref.numel() else 1.0)
    return Check(what, against, delta, scale, tolerance)


def ref_check(ctx: Context, name: str, what: str) -> Check:
    ref = ctx.ad.refs(ctx.layer)[name]
    caught = ctx.cap.sub[(ref.path, ref.io)]
    where = ref.against or f"{ref.path} {'input' if ref.io == 'in' else 'output'}"
    return check(ctx, what, f"the model's {where}", ctx.hand[name], ref.shape(caught))


def token_label(describe: Callable[[int], tuple[str, str, str, bool]], token_id: int) -> str:
    token, text, _, _ = describe(token_id)
    return text or token


# --- 1. tokens ----------------------------------------------------------------------------


def tokens_step(ctx: Context, records: list[Any], added: str = "") -> Step:
    """``added``: which special tokens were put around the text, and by what."""
    rows = [[r.index, r.token, r.id, r.text] for r in records]
    special = [r.token for r in records if r.special]
    if not added:
        added = "special tokens: " + (", ".join(special) if special else "none")
    return Step(
        "tokens", "text -> tokens -> IDs",
        [f"The text is cut into {len(records)} tokens; each is a row number (ID) in a "
         f"vocabulary of {ctx.ad.vocab:,}.", added[:1].upper() + added[1:] + "."],
        shapes={"ids": [len(records)]},
        facts={"vocab": ctx.ad.vocab, "tokens": len(records), "followed": ctx.token},
        tables=[Rows("tokens", ["index", "token", "id", "text"], rows)],
    )  # fmt: skip


# --- 2. one-hot -> embedding --------------------------------------------------------------


def embed_step(ctx: Context) -> Step:
    import torch

    ad, e, i = ctx.ad, ctx.embedding, ctx.token
    weight = ad.embedding_matrix()
    vocab, d = int(weight.shape[0]), int(weight.shape[1])
    token_id = int(ctx.ids[i])
    onehot = torch.zeros(1, vocab, device=weight.device)
    onehot[0, token_id] = 1.0
    product = onehot @ weight.detach().float()  # the one-hot row times E: row token_id
    n = ctx.dims
    explain = [
        f"The one-hot vector of ID {token_id} is {vocab:,} zeros and a single 1; times the "
        f"embedding matrix E [{vocab:,}, {d}] it picks row {token_id}: a lookup.",
    ]
    vectors = [vec(f"E[{token_id}]  ({ctx.labels[i]!r})", e["rows"][i], n)]
    facts: dict[str, Any] = {"id": token_id, "d_model": d}
    if "scale" in e:
        explain.append(f"{ctx.ad.facts.name} multiplies each row by sqrt(d_model) = "
                       f"sqrt({d}) = {e['scale']:.4f} (in the weight's dtype).")  # fmt: skip
        facts["scale"] = e["scale"]
        vectors.append(vec("x0 = E[id] * sqrt(d)", e["x0"][i], n))
    if "pos" in e:
        vectors.append(vec(f"P[{i}]  (position {i})", e["pos"][i], n))
        if "type" in e:
            explain.append("BERT adds the learned vector of the token's position and of its "
                           "token type (0: the first sentence), then a LayerNorm.")  # fmt: skip
            vectors.append(vec("T[0]  (token type 0)", e["type"][i], n))
            vectors.append(vec("sum = E[id] + P[pos] + T[0]", e["sum"][i], n))
            vectors.append(vec("x0 = LayerNorm(sum)", e["x0"][i], n))
        else:
            explain.append("GPT-2 adds the learned vector of the token's position.")
            vectors.append(vec("x0 = E[id] + P[pos]", e["x0"][i], n))
    checks = [
        check(ctx, "one-hot row @ E", "the row E[id]", product[0], e["rows"][i]),
        check(ctx, "x0, every token", "the model's input to layer 0", e["x0"], ctx.cap.inputs[0]),
    ]
    return Step(
        "embed", "one-hot -> embedding", explain,
        shapes={"onehot": [1, vocab], "E": [vocab, d], "x0": [len(ctx.labels), d]},
        facts=facts, matmuls=[MatMul("one-hot @ E", (1, vocab), (vocab, d))],
        vectors=vectors, checks=checks,
    )  # fmt: skip


# --- 3. position --------------------------------------------------------------------------


def sinusoidal(pos: int, d: int, n: int) -> list[float]:
    """The original Transformer's encoding: sin(pos / 10000^(2i/d)), cos(...) interleaved."""
    out = []
    for j in range(min(n, d)):
        angle = pos / (10000 ** (2 * (j // 2) / d))
        out.append(round(math.sin(angle) if j % 2 == 0 else math.cos(angle), 6))
    return out


def position_step(ctx: Context) -> Step:
    ad, i = ctx.ad, ctx.token
    sine = Vector(f"sinusoidal PE[{i}] (compare)",
                  sinusoidal(i, ad.d_model, ctx.dims), ad.d_model)  # fmt: skip
    if ad.inv_freq(ctx.layer) is None:
        return _learned_positions(ctx, sine)
    return _rotary_positions(ctx, sine)


def _learned_positions(ctx: Context, sine: Vector) -> Step:
    import torch

    ad, i = ctx.ad, ctx.token
    matrix = ad.position_matrix()
    assert matrix is not None
    n_pos = min(len(ctx.labels), 8)
    p = matrix.detach().float()[:n_pos]
    unit = torch.nn.functional.normalize(p, dim=-1)
    sims = (unit @ unit.T).tolist()
    names = [str(k) for k in range(n_pos)]
    return Step(
        "position", "position: learned absolute vectors",
        [f"{ad.facts.name} learned one vector per position (P [{matrix.shape[0]}, "
         f"{matrix.shape[1]}]); it is added to the token's embedding, so the same word at "
         "another place enters the layers as another vector.",
         "Nearby positions have similar vectors (the cosines below)."],
        shapes={"P": list(matrix.shape)},
        facts={"positions": int(matrix.shape[0]), "kind": "learned absolute"},
        vectors=[vec(f"P[{i}]", matrix.detach().float()[i], ctx.dims), sine],
        matrices=[Matrix("cosine of position vectors", names, names,
                         [[round(v, 4) for v in row] for row in sims], "similarity")],
    )  # fmt: skip


def _rotary_positions(ctx: Context, sine: Vector) -> Step:
    import torch

    ad, i, layer, h = ctx.ad, ctx.token, ctx.layer, ctx.head
    inv = ad.inv_freq(layer)
    assert inv is not None
    inv = inv.float()
    half = inv.shape[0]
    pairs = sorted({0, 1, half // 4, half // 2, half - 1})
    theta = ad.rope_theta(layer)
    rows = [[p, f"{p} & {p + half}", float(inv[p]), 2 * math.pi / float(inv[p]),
             round(float(inv[p]) * i, 4)] for p in pairs]  # fmt: skip
    q = ctx.hand["q_normed"] if "q_normed" in ctx.hand else ctx.hand["q"]
    k = ctx.hand["k_normed"] if "k_normed" in ctx.hand else ctx.hand["k"]
    kv = h // ad.groups
    j = max(0, i - 1)
    qv, kvec = q[h, i], k[kv, j]
    scaling = ad.rope_scaling(layer)

    def score_at(pq: int, pk: int) -> float:
        cos, sin = rope_angles(inv, torch.tensor([pq, pk], device=inv.device))
        cos, sin = cos * scaling, sin * scaling
        rq = rotate(qv[None], cos[:1], sin[:1])[0]
        rk = rotate(kvec[None], cos[1:], sin[1:])[0]
        return float(rq @ rk)

    base = score_at(i, j)
    shifted = [[s, i + s, j + s, round(score_at(i + s, j + s), 6)] for s in SHIFTS]
    worst = max(abs(r[3] - base) for r in shifted)
    size = max(1.0, float(qv.norm() * kvec.norm()))
    q_rot_ref, k_rot_ref = ad.rotary_reference(layer, q, k, ctx.positions)
    where = f"layer {layer}" + (f" ({ad.layer_type(layer)})" if hasattr(ad, "layer_type") else "")
    return Step(
        "position", "position: rotary (RoPE)",
        [f"{ad.facts.name} adds nothing for position. Instead q and k of each head are "
         "rotated: dimension pair (p, p + d/2) turns by the angle pos * theta_p, fast for the "
         "first pairs, slow for the last.",
         "So q . k depends only on how far apart two tokens are: the same q and k moved "
         "together give the same score."],
        shapes={"q": [ad.n_heads, len(ctx.labels), ad.d_head]},
        facts={"kind": "rotary", "theta": theta, "pairs": half, "where": where,
               "scaling": scaling},  # fmt: skip
        vectors=[vec(f"q[{i}] head {h}, unrotated", qv, ctx.dims),
                 vec(f"q[{i}] turned to pos {i}", ctx.hand["q_rot"][h, i], ctx.dims),
                 sine],  # fmt: skip
        tables=[
            Rows(f"rotation per pair (theta base {theta:g})" if theta else "rotation per pair",
                 ["pair", "dims", "theta_p", "wavelength (tokens)", f"angle at pos {i}"], rows),
            Rows(f"score of q[{i}] . k[{j}] at shifted places (distance {i - j})",
                 ["shift", "query pos", "key pos", "score"],
                 [[0, i, j, round(base, 6)], *shifted]),
        ],
        checks=[
            check(ctx, "q rotated", "transformers' rotary embedding of the model",
                  ctx.hand["q_rot"], q_rot_ref),
            check(ctx, "k rotated", "transformers' rotary embedding of the model",
                  ctx.hand["k_rot"], k_rot_ref),
            Check("the score with both shifted", "the score unshifted",
                  worst, size, ctx.tolerance),
        ],
    )  # fmt: skip


# --- 4. norm ------------------------------------------------------------------------------


def norm_step(ctx: Context) -> Step:
    ad, i, hand = ctx.ad, ctx.token, ctx.hand
    facts: dict[str, Any] = {"norm": ad.facts.norm, "placement": ad.facts.placement}
    if ad.facts.placement == "post":
        before, after, name = hand["resid_mid"][i], hand["ln2"][i], "ln2"
        what = "LN(x + attn(x))"
        explain = [f"{ad.facts.name} normalizes after each sub-layer (post-norm): the "
                   "attention output is added to x and that sum is normalized (the numbers "
                   "come from steps 5-6)."]  # fmt: skip
    else:
        before, after, name = hand["x"][i], hand["ln1"][i], "ln1"
        what = "norm(x)"
        where = "before each sub-layer" if ad.facts.placement == "pre" else \
            "before and after each sub-layer"  # fmt: skip
        explain = [f"{ad.facts.name} normalizes {where}: the residual stream x is left as "
                   "it is, and attention reads a normalized copy."]  # fmt: skip
    if ad.facts.norm.startswith("RMSNorm"):
        rms = float(before.pow(2).mean().sqrt())
        facts["rms"] = round(rms, 6)
        plus = "(1 + w)" if "1 + w" in ad.facts.norm else "w"
        explain.append(f"RMSNorm: x / sqrt(mean(x^2) + eps) * {plus}; no mean is taken "
                       "away and there is no bias.")  # fmt: skip
    else:
        facts["mean"] = round(float(before.mean()), 6)
        facts["std"] = round(float(before.var(unbiased=False).sqrt()), 6)
        explain.append("LayerNorm: (x - mean) / sqrt(var + eps) * gain + bias.")
    module = _norm_module(ad, ctx.layer)
    vectors = [vec(f"before, token {i}", before, ctx.dims), vec(f"after, token {i}", after,
                                                                   ctx.dims)]  # fmt: skip
    if module is not None:
        gain = module.weight.detach().float()
        if "1 + w" in ad.facts.norm:
            vectors.append(vec("gain 1 + w", 1.0 + gain, ctx.dims))
        else:
            vectors.append(vec("gain w", gain, ctx.dims))
        if getattr(module, "bias", None) is not None:
            vectors.append(vec("bias", module.bias.detach().float(), ctx.dims))
        facts["eps"] = float(getattr(module, "eps", getattr(module, "variance_epsilon", 0.0)))
    return Step("norm", f"norm: {ad.facts.norm}", explain,
                shapes={"x": [len(ctx.labels), ad.d_model]}, facts=facts, vectors=vectors,
                checks=[ref_check(ctx, name, what)])  # fmt: skip


def _norm_module(ad: Adapter, layer: int) -> Any:
    m = ad.layer_module(layer)
    for path in ("input_layernorm", "ln_1", "attention.output.LayerNorm"):
        try:
            return m.get_submodule(path)
        except AttributeError:
            continue
    return None


# --- 5. one head --------------------------------------------------------------------------


def _matrix(ctx: Context, title: str, m: Tensor, kind: str) -> Matrix:
    """The whole ``[query, key]`` matrix up to SMALL tokens; past that, the followed
    token's row over SMALL keys around it (the last ones up to it in a decoder), each
    label then prefixed with its index."""
    t = len(ctx.labels)
    if t <= SMALL:
        rows, cols = list(range(t)), list(range(t))
        names = ctx.labels
    else:
        lo = ctx.token - SMALL + 1 if ctx.ad.facts.decoder else ctx.token - SMALL // 2
        lo = max(0, min(lo, t - SMALL))
        rows, cols = [ctx.token], list(range(lo, lo + SMALL))
        names = [f"{j}:{label}" for j, label in enumerate(ctx.labels)]
    values = [[None if not math.isfinite(float(m[r, c])) else round(float(m[r, c]), 4)
               for c in cols] for r in rows]  # fmt: skip
    return Matrix(title, [names[r] for r in rows], [names[c] for c in cols], values, kind)


def head_step(ctx: Context) -> Step:
    import torch

    ad, hand, h, i, n = ctx.ad, ctx.hand, ctx.head, ctx.token, ctx.dims
    t, d, dh = len(ctx.labels), ad.d_model, ad.d_head
    kv = h // ad.groups
    rotary = "q_rot" in hand
    q = hand["q_rot"] if rotary else hand["q"]
    k = hand["k_rep"]
    v = hand["v_rep"]
    explain = [
        "Each token asks a question (q = x W_q), offers a key (k = x W_k) and a value "
        "(v = x W_v). The score of token i for token j is q_i . k_j times "
        f"{ad.scale_words(ctx.layer)} = {ad.scale(ctx.layer):.6g}.",
    ]
    facts: dict[str, Any] = {"layer": ctx.layer, "head": h, "scale": ad.scale(ctx.layer),
                             "token": i}  # fmt: skip
    if ad.groups > 1:
        explain.append(
            f"Grouped-query attention: {ad.n_heads} query heads share {ad.n_kv_heads} "
            f"key/value head{'s' if ad.n_kv_heads > 1 else ''}; head {h} uses key/value head "
            f"{kv}, with heads {kv * ad.groups}-{kv * ad.groups + ad.groups - 1}."
        )
        facts["kv_head"] = kv
    if "q_normed" in hand:
        explain.append("Gemma normalizes each head's q and k (RMSNorm over d_head) before "
                       "the rotation.")  # fmt: skip
    mask_words = "causal: a token sees itself and earlier tokens" if ad.facts.decoder else \
        "none: every token sees every token"  # fmt: skip
    window = ad.window(ctx.layer)
    if window is not None:
        mask_words += f", and only the last {window} (a sliding-window layer)"
        facts["window"] = window
    explain.append(f"Mask: {mask_words}. A softmax turns each row of scores into weights "
                   "that sum to 1; the output is Y_i = sum_j w_ij v_j.")  # fmt: skip
    weights = hand["weights"][h]
    row = weights[i]
    terms: list[list[Any]] = [[j, ctx.labels[j], round(float(row[j]), 6), first(v[h, j], min(n, 4))]
             for j in range(t) if float(row[j]) > 0]  # fmt: skip
    terms.sort(key=lambda r: -float(r[2]))
    allowed = hand["allowed"]
    # [head, masked cells] of both computations: a mask leaves exactly 0 there.
    masked = torch.cat([hand["weights"][:, ~allowed], ctx.cap.attentions[ctx.layer][:, ~allowed]])
    sums = (hand["weights"].sum(-1) - 1).abs().max()
    cap = ctx.cap
    checks = [
        ref_check(ctx, "q", "q = x W_q"),
        ref_check(ctx, "k", "k = x W_k"),
        ref_check(ctx, "v", "v = x W_v"),
    ]
    if "q_normed" in hand:
        checks += [ref_check(ctx, "q_normed", "q norm"), ref_check(ctx, "k_normed", "k norm")]
    checks += [
        check(ctx, "weights = softmax(scores), every head",
              "the model's attention weights (eager, output_attentions)",
              hand["weights"], cap.attentions[ctx.layer]),
    ]  # fmt: skip
    if masked.numel():
        checks.append(Check("weights of the masked cells, by hand and the model's", "0",
                            float(masked.abs().max()), 1.0, 0.0))  # fmt: skip
    checks += [
        Check("the sum of each row of weights", "1", float(sums), 1.0, ctx.tolerance),
        ref_check(ctx, "mixed", "Y = weights @ v, every head"),
    ]  # fmt: skip
    return Step(
        "head", f"one head of self-attention: layer {ctx.layer}, head {h}", explain,
        shapes={"q": [ad.n_heads, t, dh], "k": [ad.n_kv_heads, t, dh],
                "v": [ad.n_kv_heads, t, dh], "scores": [ad.n_heads, t, t],
                "weights": [ad.n_heads, t, t], "mixed": [ad.n_heads, t, dh]},
        facts=facts,
        matmuls=[MatMul("q = x W_q (one head)", (t, d), (d, dh)),
                 MatMul("k = x W_k", (t, d), (d, dh)), MatMul("v = x W_v", (t, d), (d, dh)),
                 MatMul("scores = q k^T", (t, dh), (dh, t)),
                 MatMul("Y = weights v", (t, t), (t, dh))],
        vectors=[vec(f"q[{i}]" + (" (rotated)" if rotary else ""), q[h, i], n),
                 vec(f"k[{i}]" + (" (rotated)" if rotary else ""), k[h, i], n),
                 vec(f"v[{i}]", v[h, i], n),
                 vec(f"Y[{i}] = sum_j w_{i}j v_j", hand["mixed"][h, i], n)],
        matrices=[_matrix(ctx, "scores (scaled, masked)", hand["scores"][h], "scores"),
                  _matrix(ctx, "weights (softmax of each row)", weights, "weights")],
        tables=[Rows(f"Y[{i}] as a weighted sum: the terms w_{i}j v_j",
                     ["j", "token", "w_ij", "v_j (first dims)"], terms)],
        checks=checks,
    )  # fmt: skip


# --- 6. all heads -------------------------------------------------------------------------


def heads_step(ctx: Context) -> Step:
    ad, hand, i = ctx.ad, ctx.hand, ctx.token
    t, d, hd = len(ctx.labels), ad.d_model, ad.n_heads * ad.d_head
    explain = [
        f"The {ad.n_heads} heads run side by side: their outputs are put next to each "
        f"other ([{t}, {hd}]) and W_o mixes them back into the residual width {d}."
    ]
    checks = [ref_check(ctx, "attn_out", "attention output = concat(Y) W_o")]
    vectors = [vec(f"attention output, token {i}", hand["attn_out"][i], ctx.dims)]
    if "attn_post" in hand:
        explain.append("Gemma normalizes the attention output again before the add.")
        checks.append(ref_check(ctx, "attn_post", "post-attention norm"))
        vectors.append(vec("after the post-attention norm", hand["attn_post"][i], ctx.dims))
    return Step("heads", "all heads: concatenate, then W_o", explain,
                shapes={"concat": [t, hd], "W_o": [hd, d], "attn_out": [t, d]},
                matmuls=[MatMul("concat(Y) @ W_o", (t, hd), (hd, d))],
                vectors=vectors, checks=checks)  # fmt: skip


# --- 7. add & norm, MLP, add --------------------------------------------------------------


def mlp_step(ctx: Context) -> Step:
    ad, hand, i, n = ctx.ad, ctx.hand, ctx.token, ctx.dims
    t, d, ff = len(ctx.labels), ad.d_model, ad.d_ff
    glu = "mlp_up" in hand
    act_words = getattr(ad, "act_words", "")
    if glu:
        gate = hand["mlp_pre"]
        explain_mlp = (f"{ad.facts.mlp}: down(act(gate(x)) * up(x)) with act = {act_words}; "
                       f"{ff} hidden units.")  # fmt: skip
        active = gate > 0
        matmuls = [MatMul("gate = x W_gate", (t, d), (d, ff)), MatMul("up = x W_up", (t, d),
                   (d, ff)), MatMul("down", (t, ff), (ff, d))]  # fmt: skip
    else:
        explain_mlp = f"MLP: W2 act(W1 x) with act = {act_words}; {ff} hidden units."
        active = hand["mlp_pre"] > 0
        matmuls = [MatMul("W1 x", (t, d), (d, ff)), MatMul("W2 h", (t, ff), (ff, d))]
    share_token = float(active[i].float().mean())
    share_all = float(active.float().mean())
    if ad.facts.placement == "post":
        explain = [
            "Add & norm: a = LN(x + attention) (step 4); then the MLP works on each "
            "token alone; then add & norm again: x' = LN(a + mlp(a)).",
            explain_mlp,
        ]
        checks = [ref_check(ctx, "ln2", "a = LN(x + attn)")]
    else:
        explain = [
            "Add: h = x + attention (the residual connection keeps x); norm; the MLP "
            "works on each token alone; add again: x' = h + mlp.",
            explain_mlp,
        ]
        checks = [ref_check(ctx, "resid_mid", "h = x + attention"),
                  ref_check(ctx, "ln2", "norm(h)")]  # fmt: skip
    checks += [ref_check(ctx, "mlp_act", "the MLP's hidden units"),
               ref_check(ctx, "mlp_out", "MLP output")]  # fmt: skip
    vectors = [vec(f"h, token {i}", hand["resid_mid"][i], n),
               vec(f"MLP output, token {i}", hand["mlp_out"][i], n)]  # fmt: skip
    if "mlp_post" in hand:
        explain.append("Gemma normalizes the MLP output before the add too.")
        checks.append(ref_check(ctx, "mlp_post", "post-MLP norm"))
    checks.append(ref_check(ctx, "out", f"x' = layer {ctx.layer}'s output"))
    vectors.append(vec(f"x' (layer {ctx.layer}'s output), token {i}", hand["out"][i], n))
    return Step(
        "mlp", "add & norm, MLP, add", explain,
        shapes={"h": [t, d], "hidden": [t, ff], "out": [t, d]},
        facts={"hidden_units": ff, "active_share_token": round(share_token, 4),
               "active_share_all": round(share_all, 4),
               "active_means": "gate > 0" if glu else "W1 x > 0"},
        matmuls=matmuls, vectors=vectors, checks=checks,
    )  # fmt: skip


# --- 8. the other layers ------------------------------------------------------------------


def layers_step(ctx: Context, lens: dict[str, Any] | None) -> Step:
    ad, i, cap = ctx.ad, ctx.token, ctx.cap
    rows = []
    for layer in range(ad.n_layers):
        x_in, x_out = cap.inputs[layer][i], cap.outputs[layer][i]
        change = float((x_out - x_in).norm() / x_in.norm().clamp(min=1e-12))
        row: list[Any] = [layer, round(float(x_out.norm()), 3), round(change, 4),
                          ctx.layer_deltas[layer].max_abs_diff]  # fmt: skip
        if lens is not None:
            top_id = int(lens["ids"][layer + 1][i][0])
            row += [
                token_label(ctx.describe, top_id),
                round(float(lens["probs"][layer + 1][i][0]), 4),
            ]
        rows.append(row)
    columns = ["layer", "|x'|", "change |x' - x| / |x|", "max |Δ| by hand"]
    explain = [
        f"Every layer adds to the residual stream; here is the followed token {i} "
        f"({ctx.labels[i]!r}) after each of the {ad.n_layers} layers, each layer "
        "computed by hand from its input and checked."
    ]
    checks = list(ctx.layer_deltas)
    if lens is not None:
        columns += ["lens top-1", "p"]
        explain.append(
            "Logit lens: the model's final norm (its statistics recomputed on that "
            "layer's residual) and the unembedding applied after each layer: what it "
            "would predict if it stopped there. The last row is its prediction."
        )
        checks.append(lens["check"])
    return Step("layers", "the other layers, and the logit lens", explain,
                shapes={"hidden": [ad.n_layers + 1, len(ctx.labels), ad.d_model]},
                tables=[Rows("layers", columns, rows)], checks=checks)  # fmt: skip


# --- 9. output ----------------------------------------------------------------------------


def output_step(ctx: Context, normed: Tensor, logits: Tensor) -> Step:
    import torch

    ad, i, cap = ctx.ad, ctx.token, ctx.cap
    u = ad.unembedding()
    assert u is not None and cap.logits is not None and cap.final_normed is not None
    logprobs = torch.log_softmax(logits, dim=-1)
    values, ids = torch.topk(logprobs, ctx.top)
    rows = []
    for rank, (lp, tid) in enumerate(zip(values.tolist(), ids.tolist()), 1):
        token, text, _, _ = ctx.describe(int(tid))
        rows.append([rank, text, token, int(tid), round(math.exp(lp), 6), round(lp, 6)])
    vocab, d = int(u.shape[0]), int(u.shape[1])
    explain = [
        f"The last residual of token {i} goes through the final norm, then the "
        f"unembedding U [{vocab:,}, {d}] gives one score (logit) per vocabulary entry; "
        "a softmax makes them probabilities of the next token."
    ]
    if ad.tied():
        explain.append("The unembedding is the embedding matrix E of step 2 (tied weights): "
                       "the model scores each token by how much the last vector points "
                       "along that token's own row.")  # fmt: skip
    cap_words = ad.final_softcap()
    if cap_words:
        explain.append(f"The logits are soft-capped: {cap_words} * tanh(logit / {cap_words}).")
    model_lp = torch.log_softmax(cap.logits[i], dim=-1)
    model_top = torch.topk(model_lp, ctx.top).indices
    same = float((model_top.cpu() != ids.cpu()).sum())
    checks = [
        check(ctx, "final norm, every token", "the model's final norm output",
              normed, cap.final_normed),
        check(ctx, f"logits of token {i}", "the model's logits", logits, cap.logits[i]),
        check(ctx, "log-probabilities", "log_softmax of the model's logits", logprobs, model_lp),
        Check(f"top-{ctx.top} next tokens", "the model's own top-k (IDs that differ)", same,
              1.0, 0.0),
    ]  # fmt: skip
    return Step(
        "output", "final norm -> unembedding -> softmax -> next token", explain,
        shapes={"U": [vocab, d], "logits": [vocab]},
        facts={"tied": ad.tied(), "top": ctx.top},
        matmuls=[MatMul("x U^T (one token)", (1, d), (d, vocab))],
        vectors=[vec(f"final norm of token {i}", normed[i], ctx.dims)],
        tables=[Rows("next token", ["rank", "text", "token", "id", "p", "log p"], rows)],
        checks=checks,
    )  # fmt: skip


def pool_step(ctx: Context, pooled: Tensor, reference: Tensor, normalized: bool) -> Step:
    ad, cap = ctx.ad, ctx.cap
    assert cap.last_hidden is not None
    how = "mean over all tokens (special ones too), then scaled to length 1" if normalized \
        else "mean over all tokens"  # fmt: skip
    return Step(
        "output", "pooling: one vector for the text",
        [f"{ad.facts.name} here is an encoder with no language-model head: the text's vector "
         f"is the {how}, as sentence-transformers pools it; `llmpath embed --kind "
         "contextual` compares these vectors."],
        shapes={"last_hidden": [len(ctx.labels), ad.d_model], "pooled": [ad.d_model]},
        facts={"pooling": "mean", "normalized": normalized},
        vectors=[vec("pooled", pooled, ctx.dims)],
        checks=[check(ctx, "pooled vector", "llmpath embed --kind contextual", pooled,
                      reference)],
    )  # fmt: skip
