"""One-hot vectors and the records they are built from: ``llmcli.core.onehot``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from llmcli.core import onehot as core
from llmcli.core.inputs import TextSource
from llmcli.core.tokenize import tokenize
from llmcli.errors import InputError


def rows_for(ids: list[int], vocab: int) -> list[core.OneHot]:
    return [core.OneHot(i, token_id, f"t{token_id}", vocab) for i, token_id in enumerate(ids)]


def test_dense_has_a_single_one_at_each_id():
    rows = rows_for([3, 0, 9, 3], 10)
    matrix = core.dense(rows, 10)
    assert matrix.shape == (4, 10) and matrix.dtype == np.uint8
    assert matrix.sum(axis=1).tolist() == [1, 1, 1, 1]
    assert matrix.argmax(axis=1).tolist() == [3, 0, 9, 3]
    assert core.dense([], 10).shape == (0, 10)


def test_pair_stats_are_sqrt2_and_cosine_0():
    st = core.pair_stats(rows_for([5, 1, 5, 7, 2], 8), 8)
    assert st is not None
    assert (st.tokens, st.pairs) == (4, 6)  # the repeated 5 counts once
    for value in (st.min_distance, st.max_distance):
        assert value == pytest.approx(math.sqrt(2))
    assert st.min_cosine == pytest.approx(0.0) and st.max_cosine == pytest.approx(0.0)


def test_pair_stats_need_two_distinct_tokens():
    assert core.pair_stats(rows_for([4, 4, 4], 6), 6) is None
    assert core.pair_stats([], 6) is None


def test_pair_stats_sample_at_most_pair_sample_tokens():
    st = core.pair_stats(rows_for(list(range(core.PAIR_SAMPLE + 8)), 100), 100)
    assert st is not None
    assert st.tokens == core.PAIR_SAMPLE
    assert st.pairs == core.PAIR_SAMPLE * (core.PAIR_SAMPLE - 1) // 2


def test_onehots_keep_index_id_and_token(bpe, bpe_ref):
    records = tokenize(bpe, "The cat sat.")
    rows = core.onehots(records, bpe.vocab_size)
    assert [r.id for r in rows] == bpe_ref.encode("The cat sat.", add_special_tokens=False).ids
    first = rows[0].to_dict()
    assert first == {
        "index": 0, "id": records[0].id, "token": records[0].token, "hot": records[0].id,
        "vocab_size": bpe.vocab_size,
    }  # fmt: skip


def test_records_from_piped_records_keep_their_ids(bpe):
    text = "The cat sat.\nA kitten."
    piped = "\n".join(json.dumps(r.to_dict()) for r in tokenize(bpe, text)) + "\n"
    records = core.records_from_input(bpe, TextSource("stdin", text=piped))
    assert [r.id for r in records] == [r.id for r in tokenize(bpe, text)]
    assert [r.index for r in records] == list(range(len(records)))
    assert "".join(r.text for r in records) == text


def test_records_of_two_runs_are_numbered_on(bpe):
    runs = [tokenize(bpe, "a cat"), tokenize(bpe, "the mat")]
    piped = "".join(json.dumps(r.to_dict()) + "\n" for run in runs for r in run)
    records = core.records_from_input(bpe, TextSource("stdin", text=piped))
    assert [r.id for r in records] == [r.id for run in runs for r in run]
    assert [r.index for r in records] == list(range(len(records)))


def test_records_from_another_tokenizer_are_refused(bpe, wp):
    # IDs that exist in both vocabularies, but name different tokens.
    records = [r for r in tokenize(bpe, "The cat sat.") if r.id < wp.vocab_size]
    assert records and any(wp.token(r.id) != r.token for r in records)
    piped = "".join(json.dumps(r.to_dict()) + "\n" for r in records)
    with pytest.raises(InputError) as exc:
        core.records_from_input(wp, TextSource("stdin", text=piped))
    message = str(exc.value)
    assert "tinywp" in message and "pass the -m that tokenize used" in message


def test_records_from_ids_and_from_text(bpe, bpe_ref):
    ids = bpe_ref.encode("The cat", add_special_tokens=False).ids
    piped = TextSource("stdin", text=" ".join(map(str, ids)))
    from_ids = core.records_from_input(bpe, piped, ids=True)
    assert [r.id for r in from_ids] == ids
    assert all(r.decoded for r in from_ids)
    # Without ids=True, digits are text.
    digits = core.records_from_input(bpe, piped)
    assert [r.id for r in digits] == bpe_ref.encode(piped.read(), add_special_tokens=False).ids
    from_text = core.records_from_input(bpe, TextSource("stdin", text="The cat"))
    assert [r.id for r in from_text] == ids
    with pytest.raises(InputError, match="outside the vocabulary"):
        core.records_from_input(bpe, TextSource("stdin", text="1 99999"), ids=True)
