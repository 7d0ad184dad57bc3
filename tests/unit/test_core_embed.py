"""Embedding vectors, their distances and rankings: ``llmcli.core.embed``.

Metrics are checked against plain numpy; one-hot vectors against the tokenizer's
own IDs; input and contextual vectors against tiny models (random weights) read
back straight from their safetensors file and run directly with transformers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from llmcli.core import embed as core
from llmcli.errors import InputError, UsageError
from llmcli.models.resolve import resolve
from llmcli.models.tokenizer import LoadedTokenizer

# Words of one token and of several in the tiny WordPiece vocabulary (checked below).
WP_SINGLE = ["cat", "mat", "kitten", "tractor", "the"]
WP_MULTI = ["catmat", "young cat", "cat cat"]


# --- reference implementations -------------------------------------------------------------


def ref_cosine(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float64)
    out = np.zeros((len(v), len(v)))
    for i in range(len(v)):
        for j in range(len(v)):
            ni, nj = np.linalg.norm(v[i]), np.linalg.norm(v[j])
            out[i, j] = 0.0 if ni == 0 or nj == 0 else float(v[i] @ v[j]) / (ni * nj)
    return out


def ref_euclidean(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float64)
    return np.linalg.norm(v[:, None, :] - v[None, :, :], axis=-1)


def ref_dot(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float64)
    return v @ v.T


REFERENCES = {"cosine": ref_cosine, "euclidean": ref_euclidean, "dot": ref_dot}


def embedding_rows(folder: Path) -> np.ndarray:
    """The input embedding matrix ``[token, dim]`` read straight from model.safetensors."""
    from safetensors.numpy import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    for key in ("embeddings.word_embeddings.weight", "transformer.wte.weight"):
        if key in tensors:
            return tensors[key].astype(np.float64)
    raise AssertionError(f"no input embedding matrix in {sorted(tensors)}")


def direct_contextual(folder: Path, words: list[str], normalize: bool) -> np.ndarray:
    """Each word run alone (no padding) through ``AutoModel``; the mean of its
    last_hidden_state over all its tokens, special ones included."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    ref = Tokenizer.from_file(str(folder / "tokenizer.json"))
    model = AutoModel.from_pretrained(str(folder), use_safetensors=True).eval()
    rows = []
    with torch.no_grad():
        for word in words:
            ids = torch.tensor([ref.encode(word, add_special_tokens=True).ids])
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            vector = hidden[0].mean(dim=0)
            if normalize:
                vector = torch.nn.functional.normalize(vector, p=2, dim=0)
            rows.append(vector.numpy())
    return np.stack(rows)


# --- fixtures -------------------------------------------------------------------------------


def _load(folder: Path):
    from llmcli.models.loader import load_model

    resolved = resolve(str(folder))
    return LoadedTokenizer.for_model(resolved), load_model(resolved, device="cpu")


@pytest.fixture(scope="module")
def bert(tiny_bert_dir):
    """(tokenizer, loaded model) of the tiny BERT encoder."""
    return _load(tiny_bert_dir)


@pytest.fixture(scope="module")
def gpt2(tiny_gpt2_dir):
    """(tokenizer, loaded model) of the tiny GPT-2 decoder."""
    return _load(tiny_gpt2_dir)


# --- pairwise metrics -----------------------------------------------------------------------


@pytest.mark.parametrize("metric", core.METRICS)
def test_pairwise_matches_numpy(metric):
    vectors = np.random.default_rng(7).normal(size=(6, 11)).astype(np.float32)
    matrix = core.pairwise(vectors, metric)
    assert matrix.shape == (6, 6) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix, REFERENCES[metric](vectors), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-6)


def test_cosine_of_a_vector_with_itself_or_a_multiple_is_1():
    base = np.random.default_rng(3).normal(size=(2, 9)).astype(np.float32)
    vectors = np.stack([base[0], base[1], base[0], 2.5 * base[0], -base[0]])
    cos = core.pairwise(vectors, "cosine")
    np.testing.assert_allclose(np.diag(cos), 1.0, atol=1e-6)
    assert cos[0, 2] == pytest.approx(1.0, abs=1e-6)  # the same vector in another row
    assert cos[0, 3] == pytest.approx(1.0, abs=1e-6)  # length does not matter
    assert cos[0, 4] == pytest.approx(-1.0, abs=1e-6)
    assert cos[0, 1] < 0.99
    euc = core.pairwise(vectors, "euclidean")
    assert euc[0, 2] == pytest.approx(0.0, abs=1e-5)
    assert euc[0, 3] == pytest.approx(1.5 * np.linalg.norm(base[0]), rel=1e-5)
    np.testing.assert_array_equal(np.diag(euc), 0.0)


def test_zero_vectors_give_numbers_not_nan():
    vectors = np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    for metric in core.METRICS:
        assert np.isfinite(core.pairwise(vectors, metric)).all(), metric
    cos = core.pairwise(vectors, "cosine")
    np.testing.assert_allclose(cos, ref_cosine(vectors))
    assert cos[1, 1] == pytest.approx(1.0)
    assert cos[0, 0] == 0.0 and cos[0, 2] == 0.0  # a zero vector has no direction
    euc = core.pairwise(vectors, "euclidean")
    assert euc[0, 1] == pytest.approx(5.0) and euc[0, 2] == 0.0
    np.testing.assert_array_equal(core.pairwise(vectors, "dot")[0], [0.0, 0.0, 0.0])


# --- rankings -------------------------------------------------------------------------------


WORDS = ["cat", "kitten", "tractor", "dog"]
# Row 0 is all that a ranking reads.
SIMILAR = np.array(
    [[1.0, 0.8, 0.1, 0.5], [0.8, 1.0, 0.2, 0.4], [0.1, 0.2, 1.0, 0.3], [0.5, 0.4, 0.3, 1.0]],
    dtype=np.float32,
)
DISTANT = np.array(
    [[0.0, 0.3, 2.0, 1.1], [0.3, 0.0, 1.9, 1.0], [2.0, 1.9, 0.0, 1.5], [1.1, 1.0, 1.5, 0.0]],
    dtype=np.float32,
)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_ranking_puts_the_highest_first_for_similarities(metric):
    ranking = core.rank(WORDS, SIMILAR, metric)
    assert [w for w, _ in ranking] == ["cat", "kitten", "dog", "tractor"]
    assert [v for _, v in ranking] == pytest.approx([1.0, 0.8, 0.5, 0.1])


def test_ranking_puts_the_smallest_first_for_distances():
    ranking = core.rank(WORDS, DISTANT, "euclidean")
    assert [w for w, _ in ranking] == ["cat", "kitten", "dog", "tractor"]
    assert [v for _, v in ranking] == pytest.approx([0.0, 0.3, 1.1, 2.0])
    # The same numbers read as similarities give the opposite order.
    assert [w for w, _ in core.rank(WORDS, DISTANT, "cosine")] == [
        "tractor", "dog", "kitten", "cat",
    ]  # fmt: skip


def test_higher_is_nearer():
    assert core.higher_is_nearer("cosine") and core.higher_is_nearer("dot")
    assert not core.higher_is_nearer("euclidean")


# --- checking input -------------------------------------------------------------------------


def test_check_words_strips_and_keeps_phrases():
    assert core.check_words([" cat ", "young cat\r", "kitten"]) == ["cat", "young cat", "kitten"]


@pytest.mark.parametrize(
    ("words", "fragment"),
    [
        (["cat", ""], "word 2 is empty"),
        (["  ", "cat"], "word 1 is empty"),
        (["cat", "kitten", "\t"], "word 3 is empty"),
        (["cat"], "at least two words"),
        ([], "at least two words"),
    ],
)
def test_check_words_errors(words, fragment):
    with pytest.raises(InputError, match=fragment) as exc:
        core.check_words(words)
    assert exc.value.exit_code == 1


def test_unknown_metric_or_kind_is_a_usage_error(wp):
    with pytest.raises(UsageError, match="unknown metric 'manhattan'") as exc:
        core.embed(["cat", "mat"], wp, None, kinds=["onehot"], metric="manhattan")
    assert exc.value.exit_code == 2
    with pytest.raises(UsageError, match="unknown kind 'output'.*onehot, input, contextual"):
        core.embed(["cat", "mat"], wp, None, kinds=["onehot", "output"])


@pytest.mark.parametrize("kind", ["input", "contextual"])
def test_learned_kinds_need_a_model(wp, kind):
    with pytest.raises(UsageError, match=f"--kind {kind} needs a model with weights"):
        core.embed(["cat", "mat"], wp, None, kinds=[kind])
    with pytest.raises(UsageError, match="--neighbors needs a model"):
        core.embed(["cat", "mat"], wp, None, kinds=["onehot"], k_neighbors=3)


def test_a_word_without_tokens_is_an_error(wp):
    with pytest.raises(InputError, match="gives no tokens with tinywp"):
        core.onehot_vectors(wp, ["cat", "\u200b"])  # removed by the BERT normalizer


# --- one-hot vectors ------------------------------------------------------------------------


def test_wordpiece_words_used_here_split_as_expected(wordpiece_ref):
    for word in WP_SINGLE:
        assert len(wordpiece_ref.encode(word, add_special_tokens=False).ids) == 1, word
    for word in WP_MULTI:
        assert len(wordpiece_ref.encode(word, add_special_tokens=False).ids) > 1, word


@pytest.mark.parametrize("which", ["wp", "bpe"])
def test_onehot_vectors_are_the_mean_of_the_tokens_one_hots(which, request):
    tok = request.getfixturevalue(which)
    ref = request.getfixturevalue("wordpiece_ref" if which == "wp" else "bpe_ref")
    words = WP_SINGLE + WP_MULTI
    vectors, tokens = core.onehot_vectors(tok, words)
    assert vectors.shape == (len(words), tok.vocab_size) and vectors.dtype == np.float32
    for row, word, toks in zip(vectors, words, tokens, strict=True):
        encoding = ref.encode(word, add_special_tokens=False)
        expected = np.bincount(encoding.ids, minlength=tok.vocab_size) / len(encoding.ids)
        np.testing.assert_allclose(row, expected, atol=1e-7)
        assert toks == encoding.tokens
        assert row.sum() == pytest.approx(1.0)


def test_a_repeated_token_counts_twice(wp, wordpiece_ref):
    vectors, tokens = core.onehot_vectors(wp, ["cat cat", "cat"])
    cat = wordpiece_ref.token_to_id("cat")
    assert tokens == [["cat", "cat"], ["cat"]]
    assert vectors[0, cat] == pytest.approx(1.0)
    np.testing.assert_array_equal(vectors[0], vectors[1])


def test_distinct_single_tokens_are_all_equally_far_apart(wp):
    result = core.embed(WP_SINGLE, wp, None, kinds=["onehot"], metric="euclidean")
    (onehot,) = result.kinds
    off = onehot.matrix[~np.eye(len(WP_SINGLE), dtype=bool)]
    np.testing.assert_allclose(off, math.sqrt(2), rtol=1e-6)
    cos = core.pairwise(onehot.vectors, "cosine")
    np.testing.assert_array_equal(cos[~np.eye(len(WP_SINGLE), dtype=bool)], 0.0)
    np.testing.assert_allclose(np.diag(cos), 1.0)
    assert result.model_kind == "tokenizer" and result.neighbors == {}


def test_a_phrase_shares_part_of_its_one_hot_with_its_words(wp):
    vectors, _ = core.onehot_vectors(wp, ["young cat", "cat", "young", "mat"])
    cos = core.pairwise(vectors, "cosine")
    # "young cat" is half "young" and half "cat": cosine 1/sqrt(2) with each.
    assert cos[0, 1] == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert cos[0, 2] == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert cos[0, 3] == 0.0


# --- the result and its pairs ---------------------------------------------------------------


def test_pairs_are_every_unordered_pair_of_every_kind(wp):
    result = core.embed(["cat", "mat", "young cat"], wp, None, kinds=["onehot"], metric="dot")
    pairs = result.pairs()
    assert [(p["a"], p["b"]) for p in pairs] == [
        ("cat", "mat"), ("cat", "young cat"), ("mat", "young cat"),
    ]  # fmt: skip
    assert {(p["metric"], p["kind"]) for p in pairs} == {("dot", "onehot")}
    assert [p["value"] for p in pairs] == pytest.approx([0.0, 0.5, 0.0])
    assert set(pairs[0]) == {"a", "b", "metric", "kind", "value"}


# --- tiny models: input vectors -------------------------------------------------------------


def test_tiny_models_load_as_encoder_and_decoder(bert, gpt2):
    assert bert[1].kind == "encoder" and not bert[1].decoder
    assert gpt2[1].kind == "decoder" and gpt2[1].decoder


@pytest.mark.parametrize(
    ("which", "folder"), [("bert", "tiny_bert_dir"), ("gpt2", "tiny_gpt2_dir")]
)
def test_input_vectors_are_means_of_embedding_rows(which, folder, request):
    tok, model = request.getfixturevalue(which)
    path = request.getfixturevalue(folder)
    from tokenizers import Tokenizer

    ref = Tokenizer.from_file(str(path / "tokenizer.json"))
    rows = embedding_rows(path)
    words = ["cat", "young cat", "kitten", "Tractors plough", "catmat"]
    vectors, tokens = core.input_vectors(model, tok, words)
    assert vectors.shape == (len(words), rows.shape[1]) and vectors.dtype == np.float32
    for row, word, toks in zip(vectors, words, tokens, strict=True):
        encoding = ref.encode(word, add_special_tokens=False)  # no [CLS]/[SEP] here
        np.testing.assert_allclose(row, rows[encoding.ids].mean(axis=0), atol=1e-6)
        assert toks == encoding.tokens
    assert any(len(t) > 1 for t in tokens)


# --- tiny models: contextual vectors --------------------------------------------------------

# Words of different token counts, so that a batch needs padding.
CONTEXT_WORDS = ["cat", "the cat sat on the mat", "kitten", "Tractors plough the fields", "mat"]


def test_contextual_vectors_of_an_encoder_are_its_normalized_masked_mean(bert, tiny_bert_dir):
    tok, model = bert
    vectors, tokens = core.contextual_vectors(model, tok, CONTEXT_WORDS)
    expected = direct_contextual(tiny_bert_dir, CONTEXT_WORDS, normalize=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert tokens[0] == ["[CLS]", "cat", "[SEP]"]  # special tokens are pooled too


def test_contextual_vectors_of_a_decoder_are_its_masked_mean(gpt2, tiny_gpt2_dir):
    tok, model = gpt2
    vectors, _ = core.contextual_vectors(model, tok, CONTEXT_WORDS)
    expected = direct_contextual(tiny_gpt2_dir, CONTEXT_WORDS, normalize=False)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    # No modules.json asks for normalizing: the lengths are the model's own.
    assert not np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


def test_contextual_vectors_do_not_depend_on_the_batch(bert, wordpiece_ref):
    """More words than one batch holds, in a different order: the same vectors."""
    tok, model = bert
    vocab = [t for t, _ in sorted(wordpiece_ref.get_vocab().items(), key=lambda kv: kv[1])]
    pool = [t for t in vocab if t.isalpha() and len(t) > 2]
    # Words of different lengths (so padding matters), more of them than one batch holds.
    n = len(pool)
    words = [" ".join(pool[i % n : i % n + 1 + i % 3]) for i in range(core.BATCH + 5)]
    words[3] = "the cat sat on the mat"
    assert len(words) > core.BATCH
    together, _ = core.contextual_vectors(model, tok, words)
    alone, _ = core.contextual_vectors(model, tok, words[::-1])
    np.testing.assert_allclose(together, alone[::-1], atol=1e-5)


# --- tiny models: neighbors and the whole result ------------------------------------------


@pytest.mark.parametrize("which", ["bert", "gpt2"])
def test_a_words_own_token_is_its_nearest_neighbor(which, request):
    tok, model = request.getfixturevalue(which)
    words = ["mat", "Hello"] if which == "gpt2" else ["cat", "kitten", "spring"]
    vectors, tokens = core.input_vectors(model, tok, words)
    assert all(len(t) == 1 for t in tokens)
    for metric, own in (("cosine", 1.0), ("euclidean", 0.0)):
        near = core.neighbors(model, tok, words, vectors, 4, metric)
        assert list(near) == words
        for word, toks in zip(words, tokens, strict=True):
            assert len(near[word]) == 4
            assert near[word][0].token == toks[0], (metric, word, near[word])
            # float32 distances through a matrix product: 0 within a little rounding
            assert near[word][0].value == pytest.approx(own, abs=2e-4)
            values = [n.value for n in near[word]]
            assert values == sorted(values, reverse=metric == "cosine")


def test_neighbors_match_a_brute_force_search(bert, tiny_bert_dir):
    tok, model = bert
    rows = embedding_rows(tiny_bert_dir)
    vectors, _ = core.input_vectors(model, tok, ["young cat", "catmat"])
    near = core.neighbors(model, tok, ["young cat", "catmat"], vectors, 5, "dot")
    for word, query in zip(["young cat", "catmat"], vectors.astype(np.float64), strict=True):
        scores = rows @ query
        best = np.argsort(-scores)[:5]
        assert [n.id for n in near[word]] == best.tolist()
        assert [n.token for n in near[word]] == [tok.token(int(i)) for i in best]
        assert [n.value for n in near[word]] == pytest.approx(scores[best].tolist(), abs=1e-5)


def test_neighbors_need_k_of_at_least_1(bert):
    tok, model = bert
    vectors, _ = core.input_vectors(model, tok, ["cat", "mat"])
    with pytest.raises(UsageError, match="at least 1"):
        core.neighbors(model, tok, ["cat", "mat"], vectors, 0, "cosine")


def test_embed_with_every_kind(gpt2, tiny_gpt2_dir):
    tok, model = gpt2
    words = ["mat", "cat", "young cat"]
    result = core.embed(words, tok, model, kinds=list(core.KINDS), metric="cosine", k_neighbors=2)
    assert result.model == "tinygpt2" and result.model_kind == "decoder"
    assert [kr.kind for kr in result.kinds] == ["onehot", "input", "contextual"]
    onehot, inp, ctx = result.kinds
    assert onehot.vectors.shape == (3, tok.vocab_size)
    assert inp.vectors.shape == ctx.vectors.shape == (3, 32)
    for kr in result.kinds:
        np.testing.assert_allclose(kr.matrix, ref_cosine(kr.vectors), atol=1e-5)
        assert kr.ranking[0] == ("mat", pytest.approx(1.0))
        assert sorted(w for w, _ in kr.ranking) == sorted(words)
    np.testing.assert_allclose(
        ctx.vectors, direct_contextual(tiny_gpt2_dir, words, normalize=False), atol=1e-5
    )
    assert list(result.neighbors) == words
    assert result.neighbors["mat"][0].token == "mat"
    assert len(result.pairs()) == 3 * 3
