"""``llmcli.core.walk`` on the real models: smollm2 (Llama), gemma3-270m, minilm (BERT).

Every step is computed by hand and checked by the walk itself against the model's own
tensors (1e-4 relative in float32); here the walk's results are compared once more
with the model called directly (its logits), with ``llmpath next``'s distribution and
with ``llmpath embed --kind contextual``'s vector. Each real model is loaded once for
the module, and each walk is run once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmcli.core import walk as core
from llmcli.core.embed import contextual_vectors
from llmcli.core.lm import LanguageModel
from llmcli.core.walk.records import Walk
from llmcli.models import loader
from llmcli.models.loader import LoadedModel
from llmcli.models.resolve import ResolvedModel, resolve
from llmcli.models.tokenizer import LoadedTokenizer

TEXT = "The cat sat on the mat."
MINILM_TEXT = "The cat sat."
TOP = 5
DECODERS = ("smollm2", "gemma3-270m")
SHAPE = {"smollm2": (30, 9), "gemma3-270m": (18, 4), "minilm": (6, 12)}  # layers, heads
GEMMA_SLIDING, GEMMA_FULL = 4, 5  # gemma3-270m's layer_types: every sixth layer is full


@dataclass
class Real:
    resolved: ResolvedModel
    loaded: LoadedModel
    tok: LoadedTokenizer

    def ids(self) -> list[int]:
        text = MINILM_TEXT if self.resolved.label == "minilm" else TEXT
        return list(self.tok.hf.encode(text, add_special_tokens=True).ids)


@pytest.fixture(scope="module")
def real(real_store: Path) -> Callable[[str], Real]:
    """``real(name)``: the model loaded by llmpath (eager attention, CPU), once."""
    cache: dict[str, Real] = {}

    def get(name: str) -> Real:
        if name not in cache:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("LLMPATH_HOME", str(real_store))
                mp.setenv("LLMPATH_OFFLINE", "1")
                resolved = resolve(name)
                loaded = loader.load_model(resolved, device="cpu", attention="eager")
            cache[name] = Real(resolved, loaded, LoadedTokenizer.for_model(resolved))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def walked(real: Callable[[str], Real]) -> Callable[..., Walk]:
    """``walked(name, layer=0, head=0, token=-1, lens="token")``, each walk run once."""
    cache: dict[tuple[Any, ...], Walk] = {}

    def get(name: str, layer: int = 0, head: int = 0, token: int = -1,
            lens: str = "token") -> Walk:  # fmt: skip
        key = (name, layer, head, token, lens)
        if key not in cache:
            r = real(name)
            plan = core.plan_walk(r.resolved, r.ids(), layer=layer, head=head, token=token)
            cache[key] = core.run_walk(r.loaded, r.tok, plan, top=TOP, lens=lens)
        return cache[key]

    return get


def direct_logits(r: Real) -> Any:
    """``[token, vocab]``: the model called straight through transformers."""
    import torch

    with torch.inference_mode():
        return r.loaded.model(input_ids=torch.tensor([r.ids()])).logits[0].float()


CASES = [
    ("smollm2", 0, 0, 0), ("smollm2", 0, 0, -1), ("smollm2", 14, 4, 3), ("smollm2", -1, -1, -1),
    ("gemma3-270m", GEMMA_FULL, 2, -1), ("gemma3-270m", GEMMA_FULL, 2, 0),
    ("gemma3-270m", GEMMA_SLIDING, 2, -1), ("gemma3-270m", 0, 0, 2),
    ("gemma3-270m", -1, -1, -1),
    ("minilm", 0, 0, 0), ("minilm", 0, 0, -1), ("minilm", 3, 7, 2), ("minilm", -1, -1, -1),
]  # fmt: skip


@pytest.mark.parametrize(("name", "layer", "head", "token"), CASES)
def test_every_check_passes(walked, real, name, layer, head, token):
    w = walked(name, layer, head, token)
    assert w.ok, w.failures()
    for step in w.steps:
        for check in step.checks:
            assert check.ok and check.tolerance <= 1e-4, (step.name, check)
    layers, heads = SHAPE[name]
    n = len(real(name).ids())
    assert (w.n_layers, w.n_heads) == (layers, heads)
    assert (w.layer, w.head, w.token) == (layer % layers, head % heads, token % n)
    assert w.dtype == "float32" and w.kind == ("encoder" if name == "minilm" else "decoder")
    assert [s.name for s in w.steps] == list(core.STEPS)
    layer_checks = [c for c in w.steps[core.STEPS.index("layers")].checks
                    if c.what.startswith("layer ")]  # fmt: skip
    assert len(layer_checks) == layers


@pytest.mark.parametrize(("name", "layer", "head", "token"), CASES)
def test_rows_sum_to_1_and_the_masked_triangle_is_exactly_0(walked, real, name, layer, head,
                                                            token):  # fmt: skip
    w = walked(name, layer, head, token)
    weights, scores = w.arrays["weights"], w.arrays["scores"]
    n = len(real(name).ids())
    assert weights.shape == scores.shape == (SHAPE[name][1], n, n)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    future = np.triu(np.ones((n, n), dtype=bool), k=1)
    if name == "minilm":  # an encoder: nothing masked
        assert np.isfinite(scores).all() and (weights > 0).all()
    else:
        assert (weights[:, future] == 0).all()
        assert np.isneginf(scores[:, future]).all()
        assert np.isfinite(scores[:, ~future]).all()
        np.testing.assert_array_equal(weights[:, 0, 0], 1.0)


def test_gemma3_sliding_and_full_layers(walked, real):
    """A short text fits gemma3-270m's window of 512: its sliding layers mask like its
    full ones here, but each turns positions with its own RoPE base."""
    sliding = walked("gemma3-270m", GEMMA_SLIDING, 2)
    full = walked("gemma3-270m", GEMMA_FULL, 2)
    config = real("gemma3-270m").loaded.model.config
    assert config.layer_types[GEMMA_SLIDING] == "sliding_attention"
    assert config.layer_types[GEMMA_FULL] == "full_attention"
    head = core.STEPS.index("head")
    position = core.STEPS.index("position")
    assert sliding.steps[head].facts["window"] == 512
    assert "window" not in full.steps[head].facts
    assert sliding.steps[position].facts["theta"] == 10_000
    assert full.steps[position].facts["theta"] == 1_000_000
    assert sliding.steps[head].facts["kv_head"] == full.steps[head].facts["kv_head"] == 0
    k = full.arrays["k"]  # one key/value head serves all four query heads
    for h in range(1, 4):
        np.testing.assert_array_equal(k[h], k[0])


@pytest.mark.parametrize("name", DECODERS)
def test_the_lens_ends_with_the_models_own_logits(walked, real, name):
    import torch

    w = walked(name, lens="all")
    assert w.ok, w.failures()
    r = real(name)
    n = len(r.ids())
    layers = SHAPE[name][0]
    lens_ids, lens_probs = w.arrays["lens_ids"], w.arrays["lens_probs"]
    assert lens_ids.shape == lens_probs.shape == (layers + 1, n, TOP)
    p, i = torch.softmax(direct_logits(r), dim=-1).topk(TOP, dim=-1)
    np.testing.assert_array_equal(lens_ids[-1], i.numpy())
    # The same logits up to float32 rounding (the unembedding is done in vocabulary slices,
    # summed in another order): within the walk's 1e-4.
    np.testing.assert_allclose(lens_probs[-1], p.numpy(), atol=1e-4)
    np.testing.assert_array_equal(w.arrays["next_ids"], i[-1].numpy())
    lens = core.lens_of_last(r.loaded, r.ids(), TOP)
    assert lens["check"].ok
    np.testing.assert_array_equal(lens["ids"], lens_ids[:, -1])
    np.testing.assert_allclose(lens["probs"], lens_probs[:, -1], atol=1e-5)


@pytest.mark.parametrize("name", DECODERS)
def test_next_top_k_is_what_llmpath_next_prints(walked, real, name):
    import torch

    r = real(name)
    w = walked(name)
    logprobs = LanguageModel(r.loaded, r.tok).next_distribution(r.ids())
    values, ids = torch.topk(logprobs, TOP)
    np.testing.assert_array_equal(w.arrays["next_ids"], ids.numpy())
    np.testing.assert_allclose(w.arrays["next_probs"], values.exp().numpy(), atol=1e-5)
    rows = w.steps[core.STEPS.index("output")].tables[0].rows
    assert [row[3] for row in rows] == ids.tolist()


def test_minilm_pooled_is_embeds_contextual_vector(walked, real):
    r = real("minilm")
    w = walked("minilm")
    pooled = w.arrays["pooled"]
    vectors, tokens = contextual_vectors(r.loaded, r.tok, [MINILM_TEXT])
    assert tokens[0] == [r.tok.token(i) for i in r.ids()]
    assert tokens[0][0] == "[CLS]" and tokens[0][-1] == "[SEP]"
    assert pooled.shape == (384,)
    np.testing.assert_allclose(pooled, vectors[0], atol=1e-5)
    assert abs(float(np.linalg.norm(pooled)) - 1.0) < 1e-5
    assert "lens_ids" not in w.arrays and "next_ids" not in w.arrays
