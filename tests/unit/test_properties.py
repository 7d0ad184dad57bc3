"""Properties on arbitrary text, on the tiny tokenizer and the tiny GPT-2 (hypothesis).

Already proven elsewhere, and not repeated here: decoding the IDs of any text gives
the text back through ``LoadedTokenizer`` (tests/unit/test_core_tokenize.py
``test_decode_inverts_encode``), and the same on the real tokenizers, one-hot rows
included (tests/integration/test_real_properties.py). Here:

- one-hot vectors of the tokens of any text agree with the IDs, by ``llmcli.core``
  and through the ``tokenize | onehot`` pipeline;
- ``tokenize -f ids | tokenize --decode`` gives any text back, line for line;
- attention rows are probability distributions over the keys for any short text, and
  a decoder's upper triangle (the future) is exactly 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llmcli.core import attention as core_attention
from llmcli.core import onehot as core_onehot
from llmcli.core import tokenize as core_tokenize
from llmcli.models.loader import load_model
from llmcli.models.resolve import model_config, resolve
from llmcli.models.tokenizer import LoadedTokenizer

PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Any text but lone surrogates (which are not UTF-8), with more of the tokenizer's hard
# cases than chance gives: runs of spaces, line breaks, joiners, emoji, NUL.
PIECES = [" ", "  ", "\t", "\r\n", "\u00a0", "\u200d", "a", "é", "e\u0301", "東", "🤖", "'s",
          ".", "\x00", "\ufeff", "<|endoftext|>"]  # fmt: skip
TEXT = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=60),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=20).map("".join),
)


@PROPERTY
@given(text=TEXT)
def test_onehot_of_the_tokens_agrees_with_the_ids(bpe, bpe_ref, text):
    records = core_tokenize.tokenize(bpe, text)
    ids = [r.id for r in records]
    assert ids == bpe_ref.encode(text, add_special_tokens=False).ids
    rows = core_onehot.onehots(records, bpe.vocab_size)
    assert [row.to_dict()["hot"] for row in rows] == ids
    assert [row.to_dict()["vocab_size"] for row in rows] == [bpe.vocab_size] * len(ids)
    matrix = core_onehot.dense(rows, bpe.vocab_size)
    assert matrix.shape == (len(ids), bpe.vocab_size)
    assert matrix.sum(axis=1).tolist() == [1] * len(ids)
    assert matrix.argmax(axis=1).tolist() == ids
    stats = core_onehot.pair_stats(rows, bpe.vocab_size)
    if len(set(ids)) < 2:
        assert stats is None
    else:
        assert stats is not None
        assert stats.min_distance == pytest.approx(math.sqrt(2))
        assert stats.max_distance == pytest.approx(math.sqrt(2))
        assert stats.max_cosine == pytest.approx(0.0)


@PROPERTY
@given(text=TEXT)
def test_the_tokenize_onehot_pipeline_keeps_the_ids(cli, bpe_dir, bpe_ref, text):
    tokens = cli("tokenize", "-m", bpe_dir, "-f", "jsonl", stdin=text.encode())
    assert tokens.code == 0, tokens.err
    ids = [r["id"] for r in tokens.jsonl()]
    assert ids == bpe_ref.encode(text, add_special_tokens=False).ids
    vectors = cli("onehot", "-m", bpe_dir, "-f", "jsonl", stdin=tokens.out.encode())
    assert vectors.code == 0, vectors.err
    rows = vectors.jsonl()
    assert [r["hot"] for r in rows] == [r["id"] for r in rows] == ids
    assert [r["index"] for r in rows] == list(range(len(ids)))


@PROPERTY
@given(text=TEXT)
def test_ids_decode_back_to_every_line(cli, bpe_dir, text):
    # A text of line breaks alone gives blank lines of IDs, which --decode refuses
    # as empty input (tests/cli/test_cli_errors.py "empty ids").
    assume(text.strip("\n"))
    lines = cli("tokenize", "-m", bpe_dir, "-f", "ids", stdin=text.encode())
    assert lines.code == 0, lines.err
    assert len(lines.out.splitlines()) == len(text.removesuffix("\n").split("\n"))
    decoded = cli("tokenize", "--decode", "-m", bpe_dir, stdin=lines.out.encode())
    assert decoded.code == 0, decoded.err
    assert decoded.out == (text if text.endswith("\n") else text + "\n")


@pytest.fixture(scope="module")
def tiny_models(tiny_gpt2_dir, tiny_bert_dir):
    out = {}
    for name, folder in (("gpt2", tiny_gpt2_dir), ("bert", tiny_bert_dir)):
        resolved = resolve(str(folder))
        out[name] = (load_model(resolved, device="cpu", attention="eager"),
                     LoadedTokenizer.for_model(resolved))  # fmt: skip
    return out


def _maps(tiny_models, name: str, text: str, aggregate: str) -> np.ndarray:
    model, tok = tiny_models[name]
    ids = list(tok.hf.encode(text, add_special_tokens=True).ids)
    config = model_config(model.resolved)
    ids = core_attention.prepare_ids(ids, config, model.label, truncate=True)
    run = core_attention.plan(config, model.label, tok, ids, layers=None, heads=None,
                              aggregate=aggregate)  # fmt: skip
    got = np.stack([m.matrix for m in core_attention.maps(model, run)])
    assert got.shape[1:] == (len(ids), len(ids))
    return got


@settings(PROPERTY, max_examples=25)
@given(text=TEXT.filter(str.strip), aggregate=st.sampled_from(["none", "mean", "rollout"]))
def test_attention_rows_sum_to_one_and_a_decoder_never_looks_ahead(tiny_models, text, aggregate):
    got = _maps(tiny_models, "gpt2", text, aggregate)
    assert (got >= 0).all()
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, atol=1e-5)
    future = np.triu(np.ones(got.shape[1:], dtype=bool), k=1)
    assert (got[:, future] == 0).all()
    # The first token can only attend to itself.
    np.testing.assert_allclose(got[:, 0, 0], 1.0, atol=1e-6)


@settings(PROPERTY, max_examples=15)
@given(text=TEXT.filter(str.strip))
def test_encoder_attention_rows_sum_to_one(tiny_models, text):
    got = _maps(tiny_models, "bert", text, "none")
    assert (got >= 0).all()
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, atol=1e-5)
