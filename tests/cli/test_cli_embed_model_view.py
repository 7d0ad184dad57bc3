"""embed shows what the model sees: Gemma's scaled input rows, a decoder's pooling over the
text's own tokens, and words that are only [UNK]."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from llmcli.core import embed as core
from llmcli.models.loader import load_model
from llmcli.models.resolve import resolve
from llmcli.models.tokenizer import LoadedTokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _loaded(folder):
    resolved = resolve(str(folder))
    return load_model(resolved, device="cpu"), LoadedTokenizer.for_model(resolved)


def test_gemma_input_vectors_are_the_scaled_rows_the_model_feeds_its_first_layer(
    tiny_gemma3_dir,
):  # fmt: skip
    loaded, tok = _loaded(tiny_gemma3_dir)
    words = ["cat", "tractor"]
    vectors, _ = core.input_vectors(loaded, tok, words)
    weight = loaded.model.get_input_embeddings().weight.detach()
    scale = float(torch.tensor(math.sqrt(32), dtype=weight.dtype))
    assert core.input_scale(loaded) == pytest.approx(scale)
    for word, vector in zip(words, vectors):
        ids = tok.hf.encode(word, add_special_tokens=False).ids
        np.testing.assert_allclose(vector, (weight[ids] * scale).mean(0).numpy(), rtol=1e-6)
        # ... which is what enters layer 0: the model's own hidden_states[0]
        out = loaded.model(input_ids=torch.tensor([ids]), output_hidden_states=True)
        np.testing.assert_allclose(vector, out.hidden_states[0][0].mean(0).detach().numpy(),
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
    result = core.embed(words, tok, loaded, kinds=["input"], metric="dot")
    (kind,) = result.kinds
    assert "times 5.657" in kind.how
    assert kind.matrix[0, 0] == pytest.approx(float(vectors[0] @ vectors[0]), rel=1e-5)


def test_neighbors_search_the_scaled_rows(tiny_gemma3_dir):
    loaded, tok = _loaded(tiny_gemma3_dir)
    result = core.embed(["cat", "dog"], tok, loaded, kinds=["input"], metric="dot", k_neighbors=1)
    (best,) = result.neighbors["cat"]
    cat = tok.hf.encode("cat", add_special_tokens=False).ids
    row = loaded.model.get_input_embeddings()(torch.tensor(cat)).mean(0).detach().float()
    weight = loaded.model.get_input_embeddings().weight.detach().float() * core.input_scale(loaded)
    assert best.value == pytest.approx(float((weight @ row).max()), rel=1e-5)


def test_a_decoder_pools_over_the_texts_own_tokens(tiny_gpt2_dir):
    loaded, tok = _loaded(tiny_gpt2_dir)
    text = "<|endoftext|>The cat sat"
    ids = tok.hf.encode(text, add_special_tokens=True).ids
    assert ids[0] in tok.special_ids
    with torch.no_grad():
        hidden = loaded.model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    last = hidden.hidden_states[-1][0]
    (auto,), _ = core.contextual_vectors(loaded, tok, [text])
    np.testing.assert_allclose(auto, last[1:].mean(0).numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(auto, last.mean(0).numpy(), atol=1e-4)  # the special token left out
    (final,), _ = core.contextual_vectors(loaded, tok, [text], pool="last")
    np.testing.assert_allclose(final, last[-1].numpy(), rtol=1e-5, atol=1e-6)
    assert "special ones left out" in core.pool_words(loaded, "auto")


def test_an_encoder_keeps_the_sentence_transformers_pooling(tiny_bert_dir):
    loaded, tok = _loaded(tiny_bert_dir)
    (auto,), _ = core.contextual_vectors(loaded, tok, ["the cat"])
    ids = tok.hf.encode("the cat", add_special_tokens=True).ids
    np.testing.assert_allclose(auto, core.pooled_vectors(loaded, tok, [ids])[0])
    (mean,), _ = core.contextual_vectors(loaded, tok, ["the cat"], pool="mean")
    assert not np.allclose(auto, mean, atol=1e-4)


def test_the_pool_option_and_its_errors(cli, one_error, tiny_gpt2_dir):
    result = cli("embed", "-m", tiny_gpt2_dir, "--kind", "contextual", "--pool", "last",
                 "-f", "json", "cat", "dog")  # fmt: skip
    assert result.code == 0, result.err
    assert json.loads(result.out)["kinds"]["contextual"]["how"].startswith("the last hidden")
    one_error(cli("embed", "-m", tiny_gpt2_dir, "--pool", "max", "cat", "dog"), 2, "pool")


def test_unknown_words_are_flagged(cli, tiny_bert_dir):
    words = ["cat", "\U0001f99c", "\u16a0"]  # a parrot and a rune: both only [UNK]
    rows = cli("embed", "-m", tiny_bert_dir, "--kind", "input", "-f", "jsonl", *words).jsonl()
    assert [r.get("unknown") for r in rows] == [[words[1]], [words[2]], [words[1], words[2]]]
    assert rows[2]["value"] == pytest.approx(1.0)  # why it must be flagged
    doc = json.loads(cli("embed", "-m", tiny_bert_dir, "-f", "json", *words).out)
    assert doc["unknown"] == [False, True, True]
    table = cli("embed", "-m", tiny_bert_dir, "--kind", "input", "-f", "table", *words).out
    assert f"{words[1]} [UNK]" in table and "hold the unknown token [UNK]" in table
    plain = cli("embed", "-m", tiny_bert_dir, "--kind", "input", "-f", "jsonl", "cat", "dog")
    assert all("unknown" not in r for r in plain.jsonl())
