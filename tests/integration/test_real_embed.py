"""``llmpath embed`` on the real models: minilm's own pooling, decoders, neighbours.

Expected values come from outside llmpath: the input embedding rows are read
straight from each folder's model.safetensors, and minilm's sentence vectors are
computed directly with transformers (AutoTokenizer + AutoModel, the attention-mask
mean of last_hidden_state, then L2-normalized), as sentence-transformers does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

DEFAULT_WORDS = ["cat", "kitten", "tractor"]
PHRASES = ["cat", "a young cat asleep on the mat", "tractor", "The quick brown fox", "kittens"]


def embedding_rows(folder: Path, ids: list[int]) -> np.ndarray:
    """Rows ``ids`` of the input embedding matrix, read from model.safetensors."""
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "np") as f:
        keys = f.keys()
        names = [k for k in keys if k.endswith(("word_embeddings.weight", "embed_tokens.weight"))]
        assert len(names) == 1, names
        table = f.get_slice(names[0])
        return np.stack([table[i : i + 1][0] for i in ids]).astype(np.float64)


def mean_rows(folder: Path, reference: Any, words: list[str]) -> tuple[np.ndarray, list[list[str]]]:
    vectors, tokens = [], []
    for word in words:
        encoding = reference.encode(word, add_special_tokens=False)
        vectors.append(embedding_rows(folder, encoding.ids).mean(axis=0))
        tokens.append(encoding.tokens)
    return np.stack(vectors), tokens


def cosines(v: np.ndarray) -> np.ndarray:
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    return unit @ unit.T


_DIRECT: dict[Path, Any] = {}


def direct_sentence_vectors(folder: Path, words: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2's sentence embedding, written out with transformers alone."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    if folder not in _DIRECT:  # loaded once
        _DIRECT[folder] = (
            AutoTokenizer.from_pretrained(str(folder)),
            AutoModel.from_pretrained(str(folder)).eval(),
        )
    tokenizer, model = _DIRECT[folder]
    batch = tokenizer(words, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state  # [word, token, dim]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()


@pytest.fixture(scope="module")
def defaults(llmpath) -> dict[str, Any]:
    """``llmpath embed -n 5 -f json`` with nothing on stdin: minilm, cat / kitten / tractor."""
    return json.loads(llmpath(["embed", "-n", "5", "-f", "json"], input=b"").stdout)


@pytest.fixture(scope="module")
def minilm(real_store):
    """minilm's tokenizer and weights, loaded by llmpath once for this module."""
    from llmcli.models.loader import load_model
    from llmcli.models.resolve import resolve
    from llmcli.models.tokenizer import LoadedTokenizer

    resolved = resolve("minilm")
    return LoadedTokenizer.for_model(resolved), load_model(resolved, device="cpu")


# --- minilm, the default ----------------------------------------------------------------------


def test_defaults_show_three_kinds_of_cat_kitten_tractor(defaults):
    assert defaults["model"] == "minilm" and defaults["model_kind"] == "encoder"
    assert defaults["metric"] == "cosine" and defaults["words"] == DEFAULT_WORDS
    kinds = defaults["kinds"]
    assert list(kinds) == ["onehot", "input", "contextual"]
    assert [kinds[k]["dim"] for k in kinds] == [30522, 384, 384]
    onehot = np.array(kinds["onehot"]["matrix"])
    np.testing.assert_array_equal(onehot, np.eye(3))  # every pair equally far: cosine 0
    for kind in ("input", "contextual"):
        m = kinds[kind]["matrix"]
        assert m[0][1] > m[0][2] and m[1][0] > m[1][2], (kind, m)
        assert [r["word"] for r in kinds[kind]["ranking"]] == DEFAULT_WORDS
    assert kinds["input"]["tokens"] == [["cat"], ["kitten"], ["tractor"]]
    assert kinds["contextual"]["tokens"][0] == ["[CLS]", "cat", "[SEP]"]


def test_defaults_input_matrix_is_from_the_embedding_rows(defaults, model_dir, reference):
    vectors, tokens = mean_rows(model_dir("minilm"), reference("minilm"), DEFAULT_WORDS)
    assert tokens == defaults["kinds"]["input"]["tokens"]
    np.testing.assert_allclose(defaults["kinds"]["input"]["matrix"], cosines(vectors), atol=2e-6)


def test_defaults_contextual_matrix_is_sentence_transformers_pooling(defaults, model_dir):
    direct = direct_sentence_vectors(model_dir("minilm"), DEFAULT_WORDS)
    np.testing.assert_allclose(
        defaults["kinds"]["contextual"]["matrix"], direct @ direct.T, atol=1e-5
    )


def test_contextual_vectors_equal_a_direct_transformers_computation(minilm, model_dir):
    from llmcli.core import embed as core

    tok, model = minilm
    vectors, tokens = core.contextual_vectors(model, tok, PHRASES)
    direct = direct_sentence_vectors(model_dir("minilm"), PHRASES)
    np.testing.assert_allclose(vectors, direct, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert tokens[1][0] == "[CLS]" and tokens[1][-1] == "[SEP]" and len(tokens[1]) == 9


def test_input_vectors_of_phrases_are_means_of_rows(minilm, model_dir, reference):
    from llmcli.core import embed as core

    tok, model = minilm
    vectors, tokens = core.input_vectors(model, tok, PHRASES)
    expected, expected_tokens = mean_rows(model_dir("minilm"), reference("minilm"), PHRASES)
    assert tokens == expected_tokens
    np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_neighbors_of_cat_include_cats(defaults):
    near = defaults["neighbors"]["cat"]
    tokens = [n["token"] for n in near]
    assert len(near) == 5
    assert tokens[0] == "cat" and near[0]["value"] == pytest.approx(1.0, abs=1e-5)
    assert "cats" in tokens, tokens
    values = [n["value"] for n in near]
    assert values == sorted(values, reverse=True)
    assert set(defaults["neighbors"]) == set(DEFAULT_WORDS)


# --- decoders ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["smollm2", "gemma3-270m"])
def test_a_decoders_input_embeddings_and_hidden_states(name, llmpath, model_dir, reference):
    words = [*DEFAULT_WORDS, "a young cat"]
    doc = json.loads(
        llmpath(["embed", *words, "-m", name, "-k", "input,contextual", "-f", "json"]).stdout
    )
    folder = model_dir(name)
    hidden = json.loads((folder / "config.json").read_text(encoding="utf-8"))["hidden_size"]
    assert doc["model"] == name and doc["model_kind"] == "decoder"
    assert list(doc["kinds"]) == ["input", "contextual"]
    assert doc["kinds"]["input"]["dim"] == doc["kinds"]["contextual"]["dim"] == hidden

    vectors, tokens = mean_rows(folder, reference(name), words)
    assert doc["kinds"]["input"]["tokens"] == tokens
    np.testing.assert_allclose(doc["kinds"]["input"]["matrix"], cosines(vectors), atol=2e-6)

    contextual = doc["kinds"]["contextual"]
    assert contextual["tokens"] == [reference(name).encode(w).tokens for w in words]
    matrix = np.array(contextual["matrix"])
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-6)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-6)
    assert np.all(np.abs(matrix) <= 1.0 + 1e-6)


# --- a model without weights ------------------------------------------------------------------


def test_gpt2_has_no_weights(llmpath):
    result = llmpath(["embed", "-m", "gpt2"], check=False)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("Error: gpt2 is a tokenizer only, with no weights")


def test_gpt2_still_gives_one_hot_vectors(llmpath, reference):
    doc = json.loads(llmpath(["embed", "-m", "gpt2", "-k", "onehot", "-f", "json"]).stdout)
    onehot = doc["kinds"]["onehot"]
    assert onehot["dim"] == 50257 and doc["model_kind"] == "tokenizer"
    encodings = [reference("gpt2").encode(w, add_special_tokens=False) for w in DEFAULT_WORDS]
    assert onehot["tokens"] == [e.tokens for e in encodings]
    expected = np.stack([np.bincount(e.ids, minlength=50257) / len(e.ids) for e in encodings])
    np.testing.assert_allclose(onehot["matrix"], cosines(expected), atol=1e-6)
