"""``llmpath onehot``: from text, from piped token records, in every format."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

TEXT = "The cat sat on the mat."


def ids(ref, text: str) -> list[int]:
    return ref.encode(text, add_special_tokens=False).ids


def test_jsonl_from_text(cli, bpe_dir, bpe_ref):
    result = cli("onehot", TEXT, "-m", bpe_dir)
    assert result.code == 0 and result.err == ""
    rows = result.jsonl()
    expected = ids(bpe_ref, TEXT)
    assert [r["id"] for r in rows] == expected
    assert [r["hot"] for r in rows] == expected
    assert {r["vocab_size"] for r in rows} == {bpe_ref.get_vocab_size()}
    assert [r["token"] for r in rows] == [bpe_ref.id_to_token(i) for i in expected]
    assert [r["index"] for r in rows] == list(range(len(rows)))


def test_records_piped_from_tokenize(cli, bpe_dir, bpe_ref):
    records = cli("tokenize", "-f", "jsonl", TEXT, "-m", bpe_dir).out
    result = cli("onehot", "-m", bpe_dir, "-f", "jsonl", stdin=records.encode())
    assert result.code == 0, result.err
    assert [r["id"] for r in result.jsonl()] == ids(bpe_ref, TEXT)


def test_records_through_a_real_pipe(run_llmpath, bpe_dir, bpe_ref):
    records = run_llmpath("tokenize", "-f", "jsonl", TEXT, "-m", bpe_dir)
    assert records.code == 0, records.err
    result = run_llmpath("onehot", "-m", bpe_dir, stdin=records.out_bytes)
    assert result.code == 0, result.err
    assert [r["hot"] for r in result.jsonl()] == ids(bpe_ref, TEXT)


def test_ids_on_stdin_need_ids(cli, bpe_dir, bpe_ref):
    token_ids = ids(bpe_ref, "a cat")
    piped = " ".join(map(str, token_ids)).encode()
    result = cli("onehot", "-m", bpe_dir, "--ids", stdin=piped)
    assert [r["id"] for r in result.jsonl()] == token_ids
    # Without --ids, digits on stdin are text, as they are in every command.
    as_text = cli("onehot", "-m", bpe_dir, stdin=piped)
    assert [r["id"] for r in as_text.jsonl()] == ids(bpe_ref, piped.decode())
    assert cli("onehot", "1 2", "-m", bpe_dir, "--ids").code == 2


def test_records_of_another_model_are_an_error(
    cli, bpe_dir, wordpiece_dir, wordpiece_ref, one_error
):
    wp_vocab = wordpiece_ref.get_vocab_size()
    records = [r for r in cli("tokenize", TEXT, "-m", bpe_dir).jsonl() if r["id"] < wp_vocab]
    assert any(wordpiece_ref.id_to_token(r["id"]) != r["token"] for r in records)
    piped = "".join(json.dumps(r) + "\n" for r in records)
    result = cli("onehot", "-m", wordpiece_dir, stdin=piped.encode())
    one_error(result, 1, "tinywp", "pass the -m that tokenize used")


def test_table_shows_the_distances_computed_from_the_vectors(cli, bpe_dir, bpe_ref):
    result = cli("onehot", TEXT, "-m", bpe_dir, "-f", "table")
    assert result.code == 0
    vocab = bpe_ref.get_vocab_size()
    expected = ids(bpe_ref, TEXT)
    distinct = len(set(expected))
    out = " ".join(result.out.split())  # the line may wrap
    assert f"{len(expected)} vectors of length {vocab:,} (tinybpe), one 1 each." in out
    assert (
        f"Every pair of the {distinct} distinct tokens ({distinct * (distinct - 1) // 2} pairs)"
        in out
    )
    assert f"distance {math.sqrt(2):.4f} (√2 = 1.4142), cosine 0.0000" in out
    first = expected[0]
    assert f"[0 ×{first:,} 1 0 ×{vocab - first - 1:,}]" in out


def test_table_with_one_distinct_token(cli, bpe_dir, bpe_ref):
    token_id = ids(bpe_ref, " cat")[0]
    piped = f"{token_id} {token_id}".encode()
    result = cli("onehot", "-m", bpe_dir, "--ids", "-f", "table", stdin=piped)
    assert result.out.count("[0 ×") == 2
    assert "Only one distinct token" in result.out


def test_dense_window(cli, bpe_dir, bpe_ref):
    result = cli("onehot", "cat", "-m", bpe_dir, "-f", "table", "--dense")
    token_id = ids(bpe_ref, "cat")[0]
    assert "window around the 1" in result.out
    assert f"{token_id - 6}:" in result.out and f":{token_id + 6}" in result.out


def test_json_has_vectors_and_pairs(cli, bpe_dir, bpe_ref):
    data = json.loads(cli("onehot", TEXT, "-m", bpe_dir, "-f", "json").out)
    assert data["model"] == "tinybpe"
    assert data["vocab_size"] == bpe_ref.get_vocab_size()
    assert [v["hot"] for v in data["vectors"]] == ids(bpe_ref, TEXT)
    pairs = data["pairs"]
    assert pairs["min_distance"] == pytest.approx(math.sqrt(2))
    assert pairs["max_distance"] == pytest.approx(math.sqrt(2))
    assert pairs["max_cosine"] == pytest.approx(0.0)


def test_npy_file(cli, bpe_dir, bpe_ref, tmp_path):
    out = tmp_path / "v.npy"
    result = cli("onehot", TEXT, "-m", bpe_dir, "-f", "npy", "-o", out)
    assert result.code == 0 and result.out == ""
    matrix = np.load(out)
    expected = ids(bpe_ref, TEXT)
    assert matrix.shape == (len(expected), bpe_ref.get_vocab_size())
    assert matrix.dtype == np.uint8
    assert matrix.sum(axis=1).tolist() == [1] * len(expected)
    assert matrix.argmax(axis=1).tolist() == expected


def test_npz_file_by_suffix(cli, bpe_dir, bpe_ref, tmp_path):
    out = tmp_path / "v.npz"
    assert cli("onehot", TEXT, "-m", bpe_dir, "-o", out, "--bos", "--eos").code == 0
    eot = bpe_ref.token_to_id("<|endoftext|>")
    expected = [eot, *ids(bpe_ref, TEXT), eot]
    with np.load(out) as data:
        assert sorted(data.files) == ["ids", "onehot", "tokens"]
        assert data["ids"].tolist() == expected
        assert data["tokens"].tolist() == [bpe_ref.id_to_token(i) for i in expected]
        assert data["onehot"].argmax(axis=1).tolist() == expected
        assert data["onehot"].dtype == np.uint8


def test_npy_to_a_pipe(run_llmpath, bpe_dir, bpe_ref):
    result = run_llmpath("onehot", "a cat", "-m", bpe_dir, "-f", "npy")
    assert result.code == 0, result.err
    matrix = np.load(io.BytesIO(result.out_bytes))
    assert matrix.argmax(axis=1).tolist() == ids(bpe_ref, "a cat")
