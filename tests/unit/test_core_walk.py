"""The hand-computed walk of ``llmcli.core.walk`` on the four tiny models.

Every step is computed by hand from the weights and checked against the model's own
tensors; here the walk is run on random-weight Llama (grouped-query attention),
Gemma 3 (sliding-window and full layers, ``1 + w`` norms), BERT and GPT-2 models, and
its results are compared once more with transformers called directly. Each kind of
check is also made to fail, by tampering with the formula it checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmcli.core import embed as core_embed
from llmcli.core import walk as core
from llmcli.core.walk import bert, gemma3, gpt2, llama, steps, trace
from llmcli.core.walk.records import Check, Walk
from llmcli.errors import InputError, ModelError, UsageError
from llmcli.models import loader
from llmcli.models.loader import LoadedModel, load_model
from llmcli.models.resolve import ResolvedModel, resolve
from llmcli.models.tokenizer import LoadedTokenizer

TINY = ("llama", "gemma3", "bert", "gpt2")
DECODERS = ("llama", "gemma3", "gpt2")
ADAPTER = {
    "llama": llama.LlamaAdapter, "gemma3": gemma3.Gemma3Adapter, "bert": bert.BertAdapter,
    "gpt2": gpt2.GPT2Adapter,
}  # fmt: skip
LAYERS = {"llama": 2, "gemma3": 3, "bert": 2, "gpt2": 2}
HEADS = {"llama": 4, "gemma3": 2, "bert": 2, "gpt2": 2}
# ~10 tokens on the byte-level BPE (10) and WordPiece (11, [CLS] and [SEP] included).
LONG = "The cat sat on the mat. A kitten"
WINDOW = 4  # tiny Gemma 3's sliding window
TOP = 5
EPS = 1e-3  # what a tampered formula adds
TIGHT = 1e-5  # the tiny models must match this closely, relative to each check's scale


@dataclass
class Tiny:
    resolved: ResolvedModel
    loaded: LoadedModel
    tok: LoadedTokenizer

    def ids(self, text: str) -> list[int]:
        """``"long"``: LONG with the tokenizer's special tokens; ``"one"``: its first token."""
        ids = list(self.tok.hf.encode(LONG).ids)
        return ids[:1] if text == "one" else ids


@pytest.fixture(scope="module")
def tiny(
    tiny_llama_dir: Path, tiny_gemma3_dir: Path, tiny_bert_dir: Path, tiny_gpt2_dir: Path,
    one_torch_thread: None,
) -> dict[str, Tiny]:  # fmt: skip
    out = {}
    folders = {"llama": tiny_llama_dir, "gemma3": tiny_gemma3_dir, "bert": tiny_bert_dir,
               "gpt2": tiny_gpt2_dir}  # fmt: skip
    for name, folder in folders.items():
        resolved = resolve(str(folder))
        model = load_model(resolved, device="cpu", attention="eager")
        out[name] = Tiny(resolved, model, LoadedTokenizer.for_model(resolved))
    return out


WalkOf = Callable[..., Walk]


@pytest.fixture(scope="module")
def walk(tiny: dict[str, Tiny]) -> WalkOf:
    """``walk(name, text="long", layer=0, head=0, token=-1, lens="token")``, each walk
    run once for the module ("one": the first token of the text alone)."""
    cache: dict[tuple[Any, ...], Walk] = {}

    def get(name: str, text: str = "long", layer: int = 0, head: int = 0, token: int = -1,
            lens: str = "token") -> Walk:  # fmt: skip
        key = (name, text, layer, head, token, lens)
        if key not in cache:
            cache[key] = fresh_walk(tiny[name], text, layer, head, token, lens)
        return cache[key]

    return get


def fresh_walk(t: Tiny, text: str = "long", layer: int = 0, head: int = 0, token: int = -1,
               lens: str = "token", steps: list[str] | None = None) -> Walk:  # fmt: skip
    plan = core.plan_walk(t.resolved, t.ids(text), layer=layer, head=head, token=token,
                          steps=steps)  # fmt: skip
    return core.run_walk(t.loaded, t.tok, plan, dims=8, top=TOP, lens=lens)


def direct(t: Tiny, ids: list[int], **kwargs: Any) -> Any:
    """The model called straight through transformers, on one sequence."""
    import torch

    with torch.inference_mode():
        return t.loaded.model(input_ids=torch.tensor([ids]), **kwargs)


def all_checks(w: Walk) -> list[tuple[str, Check]]:
    return [(s.name, c) for s in w.steps for c in s.checks]


# --- every check passes ----------------------------------------------------------------


def _cases() -> Iterator[tuple[str, int, int, str, int]]:
    for name in TINY:
        layers = [*range(LAYERS[name]), -1]
        heads = [0, 1, -1] if HEADS[name] > 2 else [0, -1]
        for layer in layers:
            for head in heads:
                for text, token in (("one", 0), ("one", -1), ("long", 0), ("long", 4),
                                    ("long", -1)):  # fmt: skip
                    yield name, layer, head, text, token


@pytest.mark.parametrize(("name", "layer", "head", "text", "token"), list(_cases()))
def test_every_check_passes_within_1e_5(walk, tiny, name, layer, head, text, token):
    w = walk(name, text, layer, head, token)
    n_tokens = len(tiny[name].ids(text))
    assert w.ok, w.failures()
    assert (w.layer, w.head, w.token) == (
        layer % LAYERS[name], head % HEADS[name], token % n_tokens,
    )  # fmt: skip
    assert [s.name for s in w.steps] == list(core.STEPS)
    assert (w.n_layers, w.n_heads) == (LAYERS[name], HEADS[name])
    assert w.kind == ("encoder" if name == "bert" else "decoder")
    assert w.family == name and w.dtype == "float32"
    checks = all_checks(w)
    assert len(checks) >= 15
    for step, c in checks:
        assert c.max_abs_diff <= TIGHT * c.scale, (step, c)
    whats = [(step, c.what) for step, c in checks]
    layer_checks = [what for step, what in whats if step == "layers" and "layer" in what]
    assert len(layer_checks) >= LAYERS[name]  # every layer is checked, not only the opened one
    if name in DECODERS:
        assert any(named(("layers", "lens after the last layer"), x) for x in whats)
        assert any(named(("output", "next tokens"), x) for x in whats)
    else:
        assert whats[-1] == ("output", "pooled vector")


def test_a_walk_of_some_steps_keeps_those_in_order(tiny):
    w = fresh_walk(tiny["llama"], steps=["output,head", "embed", "head"])
    assert [s.name for s in w.steps] == ["embed", "head", "output"]
    assert w.ok


def test_lens_none_leaves_out_the_lens(tiny):
    w = fresh_walk(tiny["gpt2"], lens="none")
    assert w.ok
    assert "lens_ids" not in w.arrays and "lens_probs" not in w.arrays
    assert not any("lens" in c.what for _, c in all_checks(w))
    assert len(w.steps[core.STEPS.index("layers")].tables[0].columns) == 4


def test_top_past_the_vocabulary_is_a_usage_error(tiny):
    t = tiny["gpt2"]
    plan = core.plan_walk(t.resolved, t.ids("long"), layer=0, head=0, token=None)
    vocab = t.loaded.model.config.vocab_size
    with pytest.raises(UsageError, match=f"--top {vocab + 1} is more than the {vocab}"):
        core.run_walk(t.loaded, t.tok, plan, top=vocab + 1)


# --- attention: rows, masks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "layer"), [(n, i) for n in TINY for i in range(LAYERS[n])]
)  # fmt: skip
def test_weights_rows_sum_to_1_and_the_mask_is_exactly_0(walk, tiny, name, layer):
    w = walk(name, "long", layer)
    weights, scores = w.arrays["weights"], w.arrays["scores"]
    t = len(tiny[name].ids("long"))
    assert weights.shape == scores.shape == (HEADS[name], t, t)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    q, k = np.indices((t, t))
    if name == "bert":  # an encoder: no mask at all
        assert np.isfinite(scores).all()
        assert (weights > 0).all()
        return
    allowed = k <= q
    if name == "gemma3" and layer < 2:  # the sliding-window layers
        allowed &= q - k < WINDOW
    assert (weights[:, ~allowed] == 0).all()
    assert np.isneginf(scores[:, ~allowed]).all()
    assert (weights[:, allowed] > 0).all()
    assert np.isfinite(scores[:, allowed]).all()


@pytest.mark.parametrize(("layer", "sliding"), [(0, True), (1, True), (2, False)])
def test_gemma3_sliding_layers_cut_the_window_and_the_full_layer_is_causal(
    walk, tiny, layer, sliding
):
    """The window really masks the 10-token text: the model itself (not only the walk)
    gives 0 to keys WINDOW or more tokens back on the sliding layers, not on the full one."""
    t = tiny["gemma3"]
    ids = t.ids("long")
    n = len(ids)
    assert n >= 2 * WINDOW
    w = walk("gemma3", "long", layer)
    model = direct(t, ids, output_attentions=True).attentions[layer][0].float().numpy()
    q, k = np.indices((n, n))
    far = (q - k >= WINDOW) & (k <= q)
    assert far.sum() > 10
    for weights in (w.arrays["weights"], model):
        assert (weights[:, k > q] == 0).all()
        if sliding:
            assert (weights[:, far] == 0).all()
        else:
            assert (weights[:, far] > 0).all()
    head = w.steps[core.STEPS.index("head")]
    assert head.facts.get("window") == (WINDOW if sliding else None)
    np.testing.assert_allclose(w.arrays["weights"], model, atol=1e-6)


# --- the arrays ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", TINY)
def test_arrays_have_the_documented_shapes_and_dtypes(walk, tiny, name):
    w = walk(name, "long", -1, -1, 2, lens="all")
    t = tiny[name].ids("long")
    n, layers, heads = len(t), LAYERS[name], HEADS[name]
    config = tiny[name].loaded.model.config
    d = config.hidden_size
    d_head = getattr(config, "head_dim", None) or d // heads
    a = w.arrays
    expected = {
        "ids": (n,), "embeddings": (n, d), "hidden": (layers + 1, n, d),
        "q": (heads, n, d_head), "k": (heads, n, d_head), "v": (heads, n, d_head),
        "mixed": (heads, n, d_head), "scores": (heads, n, n), "weights": (heads, n, n),
        "attn_out": (n, d), "mlp_out": (n, d), "layer": (), "head": (), "token": (),
    }  # fmt: skip
    if name == "bert":
        expected["pooled"] = (d,)
    else:
        expected.update({"lens_ids": (layers + 1, n, TOP), "lens_probs": (layers + 1, n, TOP),
                         "next_ids": (TOP,), "next_probs": (TOP,)})  # fmt: skip
    assert {key: a[key].shape for key in a} == expected
    for key, value in a.items():
        integer = key in ("ids", "layer", "head", "token", "lens_ids", "next_ids")
        assert value.dtype == (np.int64 if integer else np.float32), key
    assert a["ids"].tolist() == t
    assert (int(a["layer"]), int(a["head"]), int(a["token"])) == (layers - 1, heads - 1, 2)
    np.testing.assert_array_equal(a["embeddings"], a["hidden"][0])
    if name != "bert":
        assert (a["lens_probs"] > 0).all() and (a["lens_probs"] <= 1).all()
        assert (np.diff(a["lens_probs"], axis=-1) <= 0).all()  # best first
        np.testing.assert_array_equal(a["next_ids"], a["lens_ids"][-1, 2])
        np.testing.assert_allclose(a["next_probs"], a["lens_probs"][-1, 2], atol=1e-6)


@pytest.mark.parametrize("name", DECODERS)
def test_lens_token_follows_one_token_and_leaves_the_arrays_out(walk, tiny, name):
    """The default lens is of the followed token only: the steps show it, as they show
    that token's row of the lens of every token; the arrays leave it out."""
    w = walk(name, "long", 0, 0, 3)
    everything = walk(name, "long", 0, 0, 3, lens="all")
    assert "lens_ids" not in w.arrays and "lens_probs" not in w.arrays
    layers = core.STEPS.index("layers")
    rows = w.steps[layers].tables[0].rows
    assert rows == everything.steps[layers].tables[0].rows
    top = everything.arrays["lens_ids"][:, 3, 0]
    assert [r[-2] for r in rows] == [steps.token_label(tiny[name].tok.describe, int(i))
                                     for i in top[1:]]  # fmt: skip
    np.testing.assert_allclose([r[-1] for r in rows],
                               everything.arrays["lens_probs"][1:, 3, 0], atol=1e-4)  # fmt: skip


def test_llama_keys_and_values_are_shared_by_the_query_heads_of_a_group(walk):
    """4 query heads on 2 key/value heads: heads 0 and 1 read KV head 0, 2 and 3 KV head 1."""
    a = walk("llama", "long", 1, 0).arrays
    for name in ("k", "v"):
        np.testing.assert_array_equal(a[name][0], a[name][1])
        np.testing.assert_array_equal(a[name][2], a[name][3])
        assert not np.allclose(a[name][0], a[name][2])
    assert not np.allclose(a["q"][0], a["q"][1])  # the queries are their own
    head = walk("llama", "long", 1, 3).steps[core.STEPS.index("head")]
    assert head.facts["kv_head"] == 1


def test_gemma3_one_kv_head_serves_both_query_heads(walk):
    a = walk("gemma3").arrays
    np.testing.assert_array_equal(a["k"][0], a["k"][1])
    np.testing.assert_array_equal(a["v"][0], a["v"][1])


@pytest.mark.parametrize(("name", "layer"), [(n, i) for n in TINY for i in range(LAYERS[n])])
def test_v_equals_the_models_own_projection_repeated_per_query_head(walk, tiny, name, layer):
    """Caught with a hook of this test's own on the value projection."""
    import torch

    t = tiny[name]
    ids = t.ids("long")
    config = t.loaded.model.config
    heads = HEADS[name]
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    block = ADAPTER[name](t.loaded.model, config).layer_module(layer)
    path = {"bert": "attention.self.value", "gpt2": "attn.c_attn"}.get(name, "self_attn.v_proj")
    caught: list[torch.Tensor] = []
    handle = block.get_submodule(path).register_forward_hook(
        lambda m, args, out: caught.append(out.detach())
    )
    try:
        direct(t, ids)
    finally:
        handle.remove()
    v = caught[0][0]  # [token, kv_heads * d_head]
    if name == "gpt2":  # c_attn makes q, k and v side by side
        v = v[:, 2 * v.shape[-1] // 3 :]
    v = v.reshape(len(ids), kv_heads, -1).transpose(0, 1)
    expected = v.repeat_interleave(heads // kv_heads, dim=0).numpy()
    np.testing.assert_allclose(walk(name, "long", layer).arrays["v"], expected, atol=1e-6)


# --- the residual stream and the logit lens -----------------------------------------------


@pytest.mark.parametrize("name", TINY)
def test_hidden_is_transformers_hidden_states_but_the_last_row_is_not_normed(walk, tiny, name):
    t = tiny[name]
    ids = t.ids("long")
    hidden = walk(name, "long").arrays["hidden"]
    states = [h[0].float().numpy() for h in direct(t, ids, output_hidden_states=True)
              .hidden_states]  # fmt: skip
    assert len(states) == len(hidden) == LAYERS[name] + 1
    for row in range(LAYERS[name]):
        np.testing.assert_allclose(hidden[row], states[row], atol=1e-5, rtol=1e-5)
    if name == "bert":  # no final norm: transformers' last state is the last residual
        np.testing.assert_allclose(hidden[-1], states[-1], atol=1e-5, rtol=1e-5)
        return
    import torch

    assert not np.allclose(hidden[-1], states[-1], atol=1e-2)
    norm = ADAPTER[name](t.loaded.model, t.loaded.model.config).final_norm_module()
    with torch.inference_mode():
        normed = norm(torch.from_numpy(hidden[-1])).float().numpy()
    np.testing.assert_allclose(normed, states[-1], atol=1e-5, rtol=1e-5)


def _unembed_top(t: Tiny, name: str, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """The model's own final norm module and lm_head on ``x`` ``[token, d_model]``:
    the top-k of the softmax (the tiny models have no logit soft-cap)."""
    import torch

    norm = ADAPTER[name](t.loaded.model, t.loaded.model.config).final_norm_module()
    assert norm is not None
    with torch.inference_mode():
        logits = t.loaded.model.lm_head(norm(torch.as_tensor(x)))
        p, i = torch.softmax(logits.float(), dim=-1).topk(TOP, dim=-1)
    return i.numpy(), p.numpy()


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("text", ["one", "long"])
def test_logit_lens_ends_with_the_models_own_prediction(walk, tiny, name, text):
    import torch

    t = tiny[name]
    ids = t.ids(text)
    w = walk(name, text, lens="all")
    logits = direct(t, ids).logits[0].float()
    p, i = torch.softmax(logits, dim=-1).topk(TOP, dim=-1)
    lens_ids, lens_probs = w.arrays["lens_ids"], w.arrays["lens_probs"]
    np.testing.assert_array_equal(lens_ids[-1], i.numpy())
    np.testing.assert_allclose(lens_probs[-1], p.numpy(), atol=1e-6, rtol=1e-5)
    np.testing.assert_array_equal(w.arrays["next_ids"], i[-1].numpy())
    np.testing.assert_allclose(w.arrays["next_probs"], p[-1].numpy(), atol=1e-6, rtol=1e-5)
    first_ids, first_probs = _unembed_top(t, name, w.arrays["embeddings"])
    np.testing.assert_array_equal(lens_ids[0], first_ids)
    np.testing.assert_allclose(lens_probs[0], first_probs, atol=1e-6, rtol=1e-5)
    for row in range(1, LAYERS[name]):  # the middle rows: the lens of each hidden state
        row_ids, row_probs = _unembed_top(t, name, w.arrays["hidden"][row])
        np.testing.assert_array_equal(lens_ids[row], row_ids)
        np.testing.assert_allclose(lens_probs[row], row_probs, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", DECODERS)
def test_lens_of_last_follows_the_last_token(walk, tiny, name):
    import torch

    t = tiny[name]
    ids = t.ids("long")
    lens = core.lens_of_last(t.loaded, ids, TOP)
    assert lens["n_layers"] == LAYERS[name]
    assert lens["ids"].shape == lens["probs"].shape == (LAYERS[name] + 1, TOP)
    assert lens["ids"].dtype == np.int64 and lens["probs"].dtype == np.float32
    assert lens["check"].ok and lens["check"].max_abs_diff <= TIGHT * lens["check"].scale
    p, i = torch.softmax(direct(t, ids).logits[0, -1].float(), dim=-1).topk(TOP)
    np.testing.assert_array_equal(lens["ids"][-1], i.numpy())
    np.testing.assert_allclose(lens["probs"][-1], p.numpy(), atol=1e-6, rtol=1e-5)
    everything = walk(name, "long", lens="all").arrays
    np.testing.assert_array_equal(lens["ids"], everything["lens_ids"][:, -1])
    np.testing.assert_allclose(lens["probs"], everything["lens_probs"][:, -1], atol=1e-6)


@pytest.mark.parametrize("per_chunk", [1, 3, 4])
def test_the_lens_in_chunks_of_tokens_is_the_lens_at_once(walk, tiny, monkeypatch, per_chunk):
    """A long text's lens is computed a few tokens at a time: the same numbers."""
    t = tiny["gemma3"]
    whole = walk("gemma3", "long", lens="all")
    monkeypatch.setattr(core, "LENS_CHUNK", per_chunk * t.loaded.model.config.vocab_size)
    chunked = fresh_walk(t, lens="all")
    assert chunked.ok, chunked.failures()
    np.testing.assert_array_equal(chunked.arrays["lens_ids"], whole.arrays["lens_ids"])
    np.testing.assert_allclose(chunked.arrays["lens_probs"], whole.arrays["lens_probs"],
                               atol=1e-6)  # fmt: skip
    lens = [c for c in chunked.steps[core.STEPS.index("layers")].checks if "lens" in c.what]
    assert len(lens) == 1 and lens[0].max_abs_diff <= TIGHT * lens[0].scale


def test_lens_of_last_of_an_encoder_is_a_model_error(tiny):
    t = tiny["bert"]
    with pytest.raises(ModelError, match="no language-model head"):
        core.lens_of_last(t.loaded, t.ids("long"), TOP)


# --- rotary positions -----------------------------------------------------------------------


def _rotated_q(t: Tiny, name: str, layer: int, ids: list[int]) -> np.ndarray:
    """q of ``layer`` turned by transformers' own ``apply_rotary_pos_emb``, from the
    model's q_proj (and Gemma's q_norm) caught by this test's own hook."""
    import torch
    from transformers.models.gemma3 import modeling_gemma3
    from transformers.models.llama import modeling_llama

    model = t.loaded.model
    attn = model.model.layers[layer].self_attn
    caught: list[torch.Tensor] = []
    handle = attn.q_proj.register_forward_hook(lambda m, args, out: caught.append(out.detach()))
    try:
        direct(t, ids)
    finally:
        handle.remove()
    n, d_head = len(ids), attn.head_dim
    q = caught[0].view(1, n, -1, d_head).transpose(1, 2)  # [1, head, token, d_head]
    positions = torch.arange(n)[None]
    with torch.inference_mode():
        if name == "gemma3":
            q = attn.q_norm(q)
            kind = model.config.layer_types[layer]
            cos, sin = model.model.rotary_emb(q, positions, kind)
            fn = modeling_gemma3.apply_rotary_pos_emb
        else:
            cos, sin = model.model.rotary_emb(q, positions)
            fn = modeling_llama.apply_rotary_pos_emb
        rotated, _ = fn(q, q, cos, sin)
    return rotated[0].float().numpy()


@pytest.mark.parametrize(
    ("name", "layer", "theta"),
    [("llama", 0, 1e4), ("llama", 1, 1e4), ("gemma3", 0, 1e4), ("gemma3", 1, 1e4),
     ("gemma3", 2, 1e6)],
)  # fmt: skip
@pytest.mark.parametrize("token", [0, -1])
def test_rotary_step_matches_transformers_and_keeps_scores_under_shifts(
    walk, tiny, name, layer, theta, token
):
    w = walk(name, "long", layer, 1, token)
    position = w.steps[core.STEPS.index("position")]
    assert position.facts["kind"] == "rotary"
    assert position.facts["theta"] == theta
    q_check, k_check, shift_check = position.checks
    assert (q_check.what, k_check.what) == ("q rotated", "k rotated")
    assert "shifted" in shift_check.what
    for c in position.checks:
        assert c.ok and c.max_abs_diff <= TIGHT * c.scale, c
    shifts = position.tables[1].rows
    assert [r[0] for r in shifts] == [0, *steps.SHIFTS]
    assert max(abs(r[3] - shifts[0][3]) for r in shifts) <= TIGHT * shift_check.scale
    expected = _rotated_q(tiny[name], name, layer, tiny[name].ids("long"))
    np.testing.assert_allclose(w.arrays["q"], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_learned_positions_have_no_rotary_checks(walk, name):
    position = walk(name).steps[core.STEPS.index("position")]
    assert position.facts["kind"] == "learned absolute"
    assert position.checks == []


# --- bert's pooled vector -----------------------------------------------------------------


@pytest.mark.parametrize("text", ["one", "long"])
def test_bert_pooled_equals_pooled_vectors_and_is_unit_length(walk, tiny, text):
    t = tiny["bert"]
    w = walk("bert", text)
    pooled = w.arrays["pooled"]
    expected = core_embed.pooled_vectors(t.loaded, t.tok, [t.ids(text)])[0]
    np.testing.assert_allclose(pooled, expected, atol=1e-6)
    assert abs(float(np.linalg.norm(pooled)) - 1.0) < 1e-6
    output = w.steps[core.STEPS.index("output")]
    assert output.facts == {"pooling": "mean", "normalized": True}
    assert [c.what for c in output.checks] == ["pooled vector"]
    assert "next_ids" not in w.arrays and "lens_ids" not in w.arrays
    hidden = direct(t, t.ids(text)).last_hidden_state[0].float().numpy().mean(axis=0)
    np.testing.assert_allclose(pooled, hidden / np.linalg.norm(hidden), atol=1e-6)


# --- a tampered formula is caught ---------------------------------------------------------
# Each tamper breaks one formula of the walk by EPS (or changes what it does) and names
# the (step, fragment of the check's name) pairs that must then fail; ``exact``: and no
# other check. The last test below makes sure that every check a walk makes is named.

Patch = Callable[[pytest.MonkeyPatch, Any], None]
Change = Callable[[Any, Any], dict[str, Any]]


def bump(t: Any, eps: float = EPS) -> Any:
    """``t`` plus ``eps`` on every other feature: not a constant, which a LayerNorm after
    it would take away again."""
    import torch

    if not isinstance(t, torch.Tensor):
        return t + eps
    return t + eps * (torch.arange(t.shape[-1], device=t.device) % 2)


def plus(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return bump(fn(*args, **kwargs))

    return wrapped


def replace(target: Any, attr: str, make: Callable[[Any], Any]) -> Patch:
    """Put ``make(the original)`` in place of ``target.attr`` (target None: the adapter)."""

    def patch(mp: pytest.MonkeyPatch, adapter: Any) -> None:
        obj = adapter if target is None else target
        mp.setattr(obj, attr, make(getattr(obj, attr)))

    return patch


def bumped(target: Any, attr: str) -> Patch:
    """``target.attr`` (a formula returning a tensor) with EPS added to its result."""
    return replace(target, attr, plus)


def bumped_key(method: str, key: str, layers: tuple[int, ...] | None = None) -> Patch:
    """The adapter's ``method`` (returning a dict) with EPS added to ``out[key]``, in
    ``layers`` only where given (the layer is the method's first argument)."""

    def make(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(self: Any, *args: Any) -> Any:
            out = fn(self, *args)
            if layers is None or args[0] in layers:
                assert key in out, (method, key)
                out = {**out, key: bump(out[key])}
            return out

        return wrapped

    return replace(None, method, make)


def attention(change: Change) -> Patch:
    """The by-hand attention with ``change(its result, the allowed cells)`` merged in."""

    def make(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(q: Any, k: Any, v: Any, *, allowed: Any, **kwargs: Any) -> Any:
            out = real(q, k, v, allowed=allowed, **kwargs)
            return {**out, **change(out, allowed)}

        return wrapped

    return replace(trace, "attend", make)


def _without_plus_one(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(x: Any, weight: Any, eps: float, *, plus_one: bool = False) -> Any:
        return fn(x, weight, eps, plus_one=False)

    return wrapped


def _bad_activation(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(name: str) -> Any:
        act, words = fn(name)
        return plus(act), words

    return wrapped


def _cos_off(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        cos, sin = fn(*args)
        return cos + EPS, sin

    return wrapped


def _squared_positions(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Angles of pos^2 / 10: the score of q and k then depends on where they are."""

    def wrapped(inv: Any, positions: Any) -> Any:
        return fn(inv, positions.float() ** 2 / 10)

    return wrapped


def _negated(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(self: Any) -> Any:
        return -fn(self)

    return wrapped


@dataclass
class Tamper:
    id: str
    models: tuple[str, ...]
    patch: Patch
    fails: list[tuple[str, str]]
    exact: bool = False


NOT_BERT = DECODERS
ROTARY = ("llama", "gemma3")
LENS = ("layers", "lens after the last layer")
TAMPERS = [
    Tamper("embedding rows", TINY, bumped_key("embed", "rows"), [("embed", "one-hot row @ E")],
           exact=True),
    Tamper("embedding x0", TINY, bumped_key("embed", "x0"), [("embed", "x0, every token")]),
    Tamper("rms_norm", ("llama",), bumped(llama, "rms_norm"),
           [("norm", "norm(x)"), ("mlp", "norm(h)"), ("output", "final norm"), LENS]),
    Tamper("norm without 1 + w", ("gemma3",), replace(gemma3, "rms_norm", _without_plus_one),
           [("norm", "norm(x)"), ("head", "q norm"), ("head", "k norm"),
            ("heads", "post-attention norm"), ("mlp", "norm(h)"), ("mlp", "post-MLP norm")]),
    Tamper("layer_norm", ("bert",), bumped(bert, "layer_norm"),
           [("embed", "x0, every token"), ("norm", "LN(x + attn(x))"),
            ("mlp", "a = LN(x + attn)")]),
    Tamper("layer_norm", ("gpt2",), bumped(gpt2, "layer_norm"),
           [("norm", "norm(x)"), ("mlp", "norm(h)"), ("output", "final norm")]),
    Tamper("q", TINY, bumped_key("qkv", "q"), [("head", "q = x W_q")]),
    Tamper("k", TINY, bumped_key("qkv", "k"), [("head", "k = x W_k")]),
    Tamper("v", TINY, bumped_key("qkv", "v"), [("head", "v = x W_v")]),
    Tamper("q norm", ("gemma3",), bumped_key("qkv", "q_normed"), [("head", "q norm")]),
    Tamper("k norm", ("gemma3",), bumped_key("qkv", "k_normed"), [("head", "k norm")]),
    Tamper("rotation", ROTARY, replace(trace, "rope_angles", _cos_off),
           [("position", "q rotated"), ("position", "k rotated")]),
    Tamper("score under shifts", ROTARY, replace(steps, "rope_angles", _squared_positions),
           [("position", "shifted")], exact=True),
    Tamper("weights", TINY, attention(lambda out, allowed: {"weights": out["weights"] + EPS}),
           [("head", "softmax"), ("head", "sum of each row")]),
    Tamper("a masked weight", DECODERS,
           attention(lambda out, allowed: {"weights": out["weights"] + 1e-7 * ~allowed}),
           [("head", "masked")], exact=True),
    Tamper("rows summing past 1", TINY,  # 5e-5 a cell is within the tolerance, not 10 of them
           attention(lambda out, allowed: {"weights": out["weights"] + 5e-5 * allowed}),
           [("head", "sum of each row")], exact=True),
    Tamper("mixed", TINY, attention(lambda out, allowed: {"mixed": out["mixed"] + EPS}),
           [("head", "Y = weights @ v"), ("heads", "concat(Y) W_o")]),
    Tamper("W_o", TINY, bumped(None, "project"),
           [("heads", "concat(Y) W_o"), ("layers", "layer 0, every token")]),
    Tamper("attn_post", ("gemma3",), bumped_key("after_attention", "attn_post"),
           [("heads", "post-attention norm")], exact=True),
    Tamper("resid_mid", NOT_BERT, bumped_key("after_attention", "resid_mid"),
           [("mlp", "h = x + attention")], exact=True),
    Tamper("ln2", NOT_BERT, bumped_key("after_attention", "ln2"), [("mlp", "norm(h)")],
           exact=True),
    Tamper("ln2", ("bert",), bumped_key("after_attention", "ln2"),
           [("norm", "LN(x + attn(x))"), ("mlp", "a = LN(x + attn)")], exact=True),
    Tamper("mlp_act", TINY, bumped_key("after_attention", "mlp_act"),
           [("mlp", "the MLP's hidden units")], exact=True),
    Tamper("mlp_out", TINY, bumped_key("after_attention", "mlp_out"), [("mlp", "MLP output")],
           exact=True),
    Tamper("mlp_post", ("gemma3",), bumped_key("after_attention", "mlp_post"),
           [("mlp", "post-MLP norm")], exact=True),
    Tamper("activation", ROTARY, replace(llama, "activation", _bad_activation),
           [("mlp", "the MLP's hidden units")]),
    Tamper("activation", ("bert",), replace(bert, "activation", _bad_activation),
           [("mlp", "the MLP's hidden units")]),
    Tamper("activation", ("gpt2",), replace(gpt2, "activation", _bad_activation),
           [("mlp", "the MLP's hidden units")]),
    Tamper("the opened layer's output", TINY, bumped_key("after_attention", "out", (0,)),
           [("mlp", "x' = layer 0's output"), ("layers", "layer 0, every token")], exact=True),
    Tamper("the other layers", ("llama", "bert", "gpt2"),
           bumped_key("after_attention", "out", (1,)), [("layers", "layer 1, every token")],
           exact=True),
    Tamper("the other layers", ("gemma3",), bumped_key("after_attention", "out", (1, 2)),
           [("layers", "layer 1, every token"), ("layers", "layer 2, every token")],
           exact=True),
    Tamper("final norm", DECODERS, bumped(None, "final_norm"),
           [LENS, ("output", "final norm"), ("output", "logits of token 9")]),
    Tamper("unembedding", DECODERS, replace(None, "unembedding", _negated),
           [LENS, ("output", "logits of token 9"), ("output", "log-probabilities"),
            ("output", "next tokens")]),
    Tamper("pooled reference", ("bert",), bumped(core_embed, "pooled_vectors"),
           [("output", "pooled vector")], exact=True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tamper", "name"),
    [pytest.param(t, n, id=f"{t.id}-{n}") for t in TAMPERS for n in t.models],
)
def test_a_tampered_formula_is_caught(tiny, monkeypatch, tamper, name):
    assert fresh_walk(tiny[name]).ok
    with monkeypatch.context() as mp:
        tamper.patch(mp, ADAPTER[name])
        w = fresh_walk(tiny[name])
    failed = [(s.name, c.what) for s, c in w.failures()]
    assert not w.ok
    assert not all(s.ok for s in w.steps)
    for expected in tamper.fails:
        assert any(named(expected, f) for f in failed), (expected, failed)
    if tamper.exact:
        assert all(any(named(e, f) for e in tamper.fails) for f in failed), failed
    assert fresh_walk(tiny[name]).ok  # the patch is gone


def named(expected: tuple[str, str], check: tuple[str, str]) -> bool:
    """Whether the (step, check) pair is the one ``expected`` names by a fragment."""
    return check[0] == expected[0] and expected[1] in check[1]


def test_every_kind_of_check_is_made_to_fail_by_some_tamper(walk):
    """No check that cannot fail: each one a walk makes is named by a tamper above."""
    made = {(name, e) for t in TAMPERS for name in t.models for e in t.fails}
    for name in TINY:
        for step, c in all_checks(walk(name, "long", 0, 0, -1)):
            if name == "bert" and named(("head", "masked"), (step, c.what)):
                # An encoder masks no cell: the check is over none (see the mask test).
                assert c.max_abs_diff == 0.0
                continue
            assert any(m == name and named(e, (step, c.what)) for m, e in made), (name, step, c)


# --- plan_walk: errors before any weights load ------------------------------------------


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("plan_walk loaded weights")

    monkeypatch.setattr(loader, "load_model", refuse)
    monkeypatch.setattr(loader.LoadedModel, "__init__", refuse)


@pytest.mark.parametrize(
    ("name", "field", "value", "message"),
    [
        ("llama", "layer", 2, "--layer 2 is out of range: there are 2 layers (0..1"),
        ("llama", "layer", -3, "--layer -3 is out of range: there are 2 layers (0..1"),
        ("gemma3", "layer", 3, "--layer 3 is out of range: there are 3 layers (0..2"),
        ("llama", "head", 4, "--head 4 is out of range: there are 4 heads (0..3"),
        ("gpt2", "head", -3, "--head -3 is out of range: there are 2 heads (0..1"),
        ("bert", "token", 11, "--token 11 is out of range: there are 11 tokens (0..10"),
        ("gpt2", "token", -11, "--token -11 is out of range: there are 10 tokens (0..9"),
        ("gpt2", "layer", "x", "--layer takes a number, not 'x'"),
    ],
)
def test_plan_rejects_a_selection_out_of_range(tiny, no_loading, name, field, value, message):
    t = tiny[name]
    selection: dict[str, Any] = {"layer": 0, "head": 0, "token": None, field: value}
    with pytest.raises(UsageError) as exc:
        core.plan_walk(t.resolved, t.ids("long"), **selection)
    assert message in str(exc.value)


def test_plan_takes_negative_indices_and_defaults(tiny, no_loading):
    t = tiny["llama"]
    ids = t.ids("long")
    plan = core.plan_walk(t.resolved, ids, layer=-1, head="-2", token="-10")
    assert (plan.layer, plan.head, plan.token) == (1, 2, 0)
    plan = core.plan_walk(t.resolved, ids, layer=None, head=None, token=None)
    assert (plan.layer, plan.head, plan.token) == (0, 0, len(ids) - 1)
    assert plan.steps == list(core.STEPS)
    assert plan.adapter is llama.LlamaAdapter and (plan.n_layers, plan.n_heads) == (2, 4)
    assert core.plan_walk(tiny["gemma3"].resolved, ids, layer=0, head=0, token=0).adapter \
        is gemma3.Gemma3Adapter  # fmt: skip


def test_plan_follows_the_last_plain_token_by_default(tiny, no_loading):
    """BERT's closing [SEP] is not the text: the default is the token before it."""
    t = tiny["bert"]
    ids = t.ids("long")
    special = t.tok.special_ids
    assert ids[-1] in special and ids[-2] not in special
    plan = core.plan_walk(t.resolved, ids, layer=0, head=0, token=None, special_ids=special)
    assert plan.token == len(ids) - 2
    assert core.plan_walk(t.resolved, ids, layer=0, head=0, token=-1,
                          special_ids=special).token == len(ids) - 1  # fmt: skip
    only = [ids[0], ids[-1]]  # [CLS] [SEP]: nothing plain, the last
    assert core.plan_walk(t.resolved, only, layer=0, head=0, token=None,
                          special_ids=special).token == 1  # fmt: skip


def test_plan_rejects_an_unknown_step(tiny, no_loading):
    t = tiny["gpt2"]
    with pytest.raises(UsageError, match="unknown step 'nope'; choose from tokens, embed"):
        core.plan_walk(t.resolved, t.ids("long"), layer=0, head=0, token=0,
                       steps=["embed,nope"])  # fmt: skip


def test_plan_rejects_no_tokens(tiny, no_loading):
    with pytest.raises(InputError, match="empty input"):
        core.plan_walk(tiny["gpt2"].resolved, [], layer=0, head=0, token=None)


@pytest.mark.parametrize("name", TINY)
def test_plan_rejects_a_text_past_the_context(tiny, no_loading, name):
    t = tiny[name]
    ids = (t.ids("long") * 10)[:65]
    with pytest.raises(InputError, match="65 tokens do not fit .*context of 64"):
        core.plan_walk(t.resolved, ids, layer=0, head=0, token=None)
    assert core.plan_walk(t.resolved, ids[:64], layer=0, head=0, token=None).token == 63


def test_plan_rejects_a_tokenizer_only_folder(bpe_dir, no_loading):
    with pytest.raises(ModelError) as exc:
        core.plan_walk(resolve(str(bpe_dir)), [1, 2], layer=0, head=0, token=None)
    message = str(exc.value)
    assert "tokenizer only" in message
    for known in ("Llama", "Gemma 3", "BERT", "GPT-2", "smollm2", "gemma3-270m", "minilm"):
        assert known in message


def test_plan_rejects_an_unknown_architecture(tmp_path, no_loading):
    folder = tmp_path / "mistralish"
    folder.mkdir()
    config = {"model_type": "mistral", "architectures": ["MistralForCausalLM"],
              "num_hidden_layers": 2, "num_attention_heads": 2}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"not really weights")
    with pytest.raises(ModelError) as exc:
        core.plan_walk(resolve(str(folder)), [1, 2], layer=0, head=0, token=None)
    message = str(exc.value)
    assert "do not know the architecture" in message and "(mistral)" in message
    assert "Llama" in message and "GPT-2" in message
