"""``llmpath embed``: every format and input route, on tiny models with weights.

The numbers themselves are checked against numpy and transformers in
``tests/unit/test_core_embed.py``; here the command line must carry the same
numbers through to each format.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from llmcli.core import embed as core
from llmcli.models.loader import load_model
from llmcli.models.resolve import resolve
from llmcli.models.tokenizer import LoadedTokenizer

WORDS = ["cat", "kitten", "young cat"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def expected(tiny_bert_dir):
    """``expected(words, metric)``: the EmbedResult of core for the tiny BERT folder."""
    resolved = resolve(str(tiny_bert_dir))
    tok = LoadedTokenizer.for_model(resolved)
    model = load_model(resolved, device="cpu")

    def get(words=WORDS, metric="cosine", kinds=core.KINDS):
        return core.embed(list(words), tok, model, kinds=list(kinds), metric=metric)

    return get


def by_pair(rows):
    return {(r["kind"], r["a"], r["b"]): r["value"] for r in rows}


def expected_pairs(result):
    return {(p["kind"], p["a"], p["b"]): p["value"] for p in result.pairs()}


# --- formats ------------------------------------------------------------------------------


def test_jsonl_is_the_default_in_a_pipe(cli, tiny_bert_dir, expected):
    result = cli("embed", *WORDS, "-m", tiny_bert_dir)
    assert result.code == 0, result.err
    assert result.err == ""
    rows = result.jsonl()
    assert len(rows) == 3 * 3  # three kinds, three pairs
    assert all(set(r) == {"a", "b", "metric", "kind", "value"} for r in rows)
    assert {r["metric"] for r in rows} == {"cosine"}
    assert [r["kind"] for r in rows[::3]] == ["onehot", "input", "contextual"]
    got = by_pair(rows)
    assert got == pytest.approx(expected_pairs(expected()), abs=1e-6)
    # Different single tokens share nothing as one-hot vectors; a phrase shares its words.
    assert got["onehot", "cat", "kitten"] == 0.0
    assert got["onehot", "cat", "young cat"] == pytest.approx(2**-0.5, abs=1e-6)
    assert got["input", "cat", "kitten"] != 0.0


@pytest.mark.parametrize("metric", ["euclidean", "dot"])
def test_metric_is_carried_to_every_record(cli, tiny_bert_dir, expected, metric):
    result = cli("embed", *WORDS, "-m", tiny_bert_dir, "--metric", metric, "-f", "jsonl")
    assert result.code == 0, result.err
    rows = result.jsonl()
    assert {r["metric"] for r in rows} == {metric}
    assert by_pair(rows) == pytest.approx(expected_pairs(expected(metric=metric)), abs=1e-5)
    if metric == "euclidean":
        assert by_pair(rows)["onehot", "cat", "kitten"] == pytest.approx(2**0.5, abs=1e-6)


def test_kinds_repeated_or_comma_separated(cli, tiny_bert_dir):
    for args in (["-k", "input", "-k", "contextual"], ["--kind", "input,contextual"]):
        result = cli("embed", *WORDS, "-m", tiny_bert_dir, *args)
        assert result.code == 0, result.err
        assert [r["kind"] for r in result.jsonl()] == ["input"] * 3 + ["contextual"] * 3


def test_json_holds_matrices_rankings_tokens_and_neighbors(cli, tiny_bert_dir, expected):
    result = cli("embed", *WORDS, "-m", tiny_bert_dir, "-f", "json", "--neighbors", "3")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    want = expected()
    assert doc["model"] == "tinybert" and doc["model_kind"] == "encoder"
    assert doc["metric"] == "cosine" and doc["words"] == WORDS
    assert list(doc["kinds"]) == ["onehot", "input", "contextual"]
    for kr in want.kinds:
        got = doc["kinds"][kr.kind]
        np.testing.assert_allclose(got["matrix"], kr.matrix, atol=1e-6)
        assert got["tokens"] == kr.tokens
        assert got["dim"] == kr.vectors.shape[1]
        assert [r["word"] for r in got["ranking"]] == [w for w, _ in kr.ranking]
        assert got["ranking"][0] == {"word": "cat", "value": 1.0}
    assert doc["kinds"]["onehot"]["dim"] == doc["kinds"]["onehot"]["dim"] > 32
    assert doc["kinds"]["input"]["dim"] == 32
    assert doc["kinds"]["input"]["tokens"][2] == ["young", "cat"]
    assert doc["kinds"]["contextual"]["tokens"][0] == ["[CLS]", "cat", "[SEP]"]
    assert list(doc["neighbors"]) == WORDS
    for word in ("cat", "kitten"):
        near = doc["neighbors"][word]
        assert len(near) == 3 and set(near[0]) == {"token", "id", "value"}
        assert near[0]["token"] == word and near[0]["value"] == pytest.approx(1.0, abs=1e-5)


def test_csv_has_a_header_and_the_same_pairs(cli, tiny_bert_dir):
    jsonl = cli("embed", *WORDS, "-m", tiny_bert_dir, "-f", "jsonl").jsonl()
    result = cli("embed", *WORDS, "-m", tiny_bert_dir, "-f", "csv")
    assert result.code == 0, result.err
    rows = list(csv.reader(io.StringIO(result.out)))
    assert rows[0] == ["a", "b", "metric", "kind", "value"]
    assert len(rows) == 1 + len(jsonl)
    as_dicts = [
        {"a": a, "b": b, "metric": m, "kind": k, "value": float(v)} for a, b, m, k, v in rows[1:]
    ]
    assert as_dicts == jsonl


def test_csv_quotes_a_phrase_with_a_comma(cli, tiny_bert_dir):
    result = cli("embed", "cat, mat", "kitten", "-m", tiny_bert_dir, "-f", "csv", "-k", "input")
    assert result.code == 0, result.err
    rows = list(csv.reader(io.StringIO(result.out)))
    assert rows[1][:4] == ["cat, mat", "kitten", "cosine", "input"]


def test_table_shows_each_kind_and_the_rankings(cli, tiny_bert_dir, expected):
    result = cli("embed", *WORDS, "-m", tiny_bert_dir, "-f", "table", "-n", "2")
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith("tinybert (encoder) · 3 words · cosine (higher is nearer)")
    for title in ("one-hot · cosine", "input embedding · cosine", "contextual · cosine"):
        assert title in out
    want = expected()
    for kr in want.kinds:
        title = {"onehot": "one-hot", "input": "input embedding", "contextual": "contextual"}
        ranking = " > ".join(f"{w} ({v:.3f})" for w, v in kr.ranking[1:])
        assert f"{title[kr.kind]}: nearest to cat: {ranking}" in out
        assert f"{kr.matrix[0, 1]:.3f}" in out
    assert "mean of the embedding rows: young cat = young + cat" in out
    assert (
        "mean of the last hidden state over all tokens, special ones too, then scaled to "
        "length 1: cat = [CLS] + cat + [SEP]" in out
    )
    assert "cat = [CLS] + cat + [SEP]" in out
    assert "One-hot vectors put every two different words at the same distance" in out
    assert "cat nearest tokens (input embeddings): cat (1.000)" in out


def test_npy_holds_the_learned_vectors(cli, tiny_bert_dir, expected, tmp_path):
    out = tmp_path / "vectors.npy"
    result = cli("embed", *WORDS, "-m", tiny_bert_dir, "-o", out)
    assert result.code == 0, result.err
    assert result.out == ""
    assert "the array holds the input vectors [word, dim]" in result.err
    array = np.load(out)
    assert array.shape == (3, 32) and array.dtype == np.float32
    np.testing.assert_allclose(array, expected().kinds[1].vectors, atol=1e-6)

    single = tmp_path / "contextual.npy"
    result = cli(
        "embed", *WORDS, "-m", tiny_bert_dir, "-k", "contextual", "-f", "npy", "-o", single
    )
    assert result.code == 0 and result.err == ""  # one kind: nothing to say
    contextual = np.load(single)
    np.testing.assert_allclose(contextual, expected().kinds[2].vectors, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(contextual, axis=1), 1.0, atol=1e-5)


def test_npz_holds_every_kind_and_the_words(cli, tiny_bert_dir, expected, tmp_path):
    out = tmp_path / "vectors.npz"
    result = cli("embed", *WORDS, "-m", tiny_bert_dir, "-o", out)
    assert result.code == 0, result.err
    with np.load(out) as data:
        assert sorted(data.files) == ["contextual", "input", "onehot", "words"]
        assert data["words"].tolist() == WORDS
        for kr in expected().kinds:
            np.testing.assert_allclose(data[kr.kind], kr.vectors, atol=1e-6)
        assert data["onehot"].sum(axis=1) == pytest.approx([1.0, 1.0, 1.0])


def test_npz_format_given_explicitly(cli, tiny_bert_dir, tmp_path):
    out = tmp_path / "vectors.bin"
    result = cli("embed", *WORDS, "-m", tiny_bert_dir, "-f", "npz", "-k", "onehot", "-o", out)
    assert result.code == 0, result.err
    with np.load(out) as data:
        assert sorted(data.files) == ["onehot", "words"]


def test_jsonl_to_a_file(cli, tiny_bert_dir, tmp_path):
    out = tmp_path / "pairs.jsonl"
    result = cli("embed", *WORDS, "-m", tiny_bert_dir, "-k", "input", "-o", out)
    assert result.code == 0 and result.out == ""
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["a"], r["b"]) for r in rows] == [
        ("cat", "kitten"), ("cat", "young cat"), ("kitten", "young cat"),
    ]  # fmt: skip


def _matplotlib():
    try:
        import matplotlib.image
    except ImportError as exc:  # pragma: no cover
        pytest.fail(f"matplotlib is a dependency of 'llmpath embed -f png' and is missing: {exc}")
    return matplotlib.image


@pytest.mark.parametrize("folder", ["tiny_bert_dir", "tiny_gpt2_dir"])
def test_png_is_a_real_picture(cli, request, tmp_path, folder):
    image = _matplotlib()
    out = tmp_path / "embed.png"
    result = cli("embed", *WORDS, "kitten", "-m", request.getfixturevalue(folder), "-o", out)
    assert result.code == 0, result.err
    assert result.out == ""
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC
    pixels = image.imread(out)
    height, width = pixels.shape[:2]
    assert height > 300 and width > 300
    assert pixels.std() > 0.05  # something is drawn on it


def test_png_of_one_kind_with_euclidean(cli, tiny_gpt2_dir, tmp_path):
    image = _matplotlib()
    one, three = tmp_path / "one.png", tmp_path / "three.png"
    args = ("embed", "cat", "mat", "-m", tiny_gpt2_dir, "--metric", "euclidean", "-f", "png")
    assert cli(*args, "-k", "input", "-o", one).code == 0
    assert cli(*args, "-o", three).code == 0
    # One row of plots for one kind, three rows for three.
    assert image.imread(three).shape[0] > 2 * image.imread(one).shape[0]


def test_png_needs_an_output_file(cli, tiny_bert_dir, one_error):
    one_error(cli("embed", *WORDS, "-m", tiny_bert_dir, "-f", "png"), 2, "-f png needs -o FILE.png")


# --- input routes ---------------------------------------------------------------------------


def words_of(result):
    assert result.code == 0, result.err
    return json.loads(result.out)["words"]


def test_words_from_a_file(cli, tiny_bert_dir, tmp_path):
    path = tmp_path / "words.txt"
    path.write_bytes(b"cat\r\n\n  young cat  \nkitten")  # CRLF, a blank line, no final newline
    result = cli("embed", "--file", path, "-m", tiny_bert_dir, "-f", "json", "-k", "onehot")
    assert words_of(result) == ["cat", "young cat", "kitten"]


def test_words_from_stdin_lines(cli, tiny_bert_dir):
    result = cli("embed", "-m", tiny_bert_dir, "-f", "json", stdin=b"cat\nkitten\nyoung cat\n")
    assert words_of(result) == WORDS


@pytest.mark.parametrize("args", [["-"], ["--file", "-"]])
def test_dash_reads_stdin(cli, tiny_bert_dir, args):
    result = cli("embed", *args, "-m", tiny_bert_dir, "-f", "json", stdin=b"cat\nkitten\n")
    assert words_of(result) == ["cat", "kitten"]


def test_arguments_win_over_stdin(cli, tiny_bert_dir):
    result = cli("embed", "mat", "cat", "-m", tiny_bert_dir, "-f", "json", stdin=b"kitten\nthe\n")
    assert words_of(result) == ["mat", "cat"]


@pytest.mark.parametrize("stdin", [b"", b"\n\n  \n"])
def test_no_words_compares_cat_kitten_tractor(cli, tiny_bert_dir, stdin):
    result = cli("embed", "-m", tiny_bert_dir, "-f", "json", stdin=stdin)
    doc = json.loads(result.out)
    assert doc["words"] == ["cat", "kitten", "tractor"] == list(core.DEFAULT_WORDS)
    assert doc["kinds"]["onehot"]["matrix"][0] == [1.0, 0.0, 0.0]


def test_unicode_words(cli, tiny_bert_dir):
    result = cli("embed", "café", "日本語", "-m", tiny_bert_dir, "-f", "json", "-k", "onehot")
    assert words_of(result) == ["café", "日本語"]


def test_a_tokenizer_only_folder_gives_onehot(cli, bpe_dir, bpe_ref):
    result = cli("embed", "cat", "mat", "Hello", "-m", bpe_dir, "-k", "onehot", "-f", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["model_kind"] == "tokenizer"
    assert doc["kinds"]["onehot"]["tokens"] == [
        bpe_ref.encode(w, add_special_tokens=False).tokens for w in ("cat", "mat", "Hello")
    ]
    assert doc["kinds"]["onehot"]["dim"] == bpe_ref.get_vocab_size()


def test_a_decoder_folder(cli, tiny_gpt2_dir):
    result = cli("embed", *WORDS, "-m", tiny_gpt2_dir, "-f", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["model"] == "tinygpt2" and doc["model_kind"] == "decoder"
    assert doc["kinds"]["input"]["dim"] == doc["kinds"]["contextual"]["dim"] == 32


def test_through_a_real_pipe(run_llmpath, bpe_dir):
    result = run_llmpath("embed", "-m", bpe_dir, "-k", "onehot", stdin=b"mat\nHello\n")
    assert result.code == 0, result.err
    assert result.jsonl() == [
        {"a": "mat", "b": "Hello", "metric": "cosine", "kind": "onehot", "value": 0.0}
    ]


# --- bad input ------------------------------------------------------------------------------


def test_an_empty_word(cli, tiny_bert_dir, one_error):
    one_error(cli("embed", "cat", "", "-m", tiny_bert_dir), 1, "word 2 is empty")
    one_error(cli("embed", "cat", "   ", "kitten", "-m", tiny_bert_dir), 1, "word 2 is empty")


def test_a_single_word(cli, tiny_bert_dir, tmp_path, one_error):
    one_error(cli("embed", "cat", "-m", tiny_bert_dir), 1, "at least two words")
    one_error(cli("embed", "-m", tiny_bert_dir, stdin=b"cat\n\n"), 1, "at least two words")
    path = tmp_path / "one.txt"
    path.write_text("kitten\n", encoding="utf-8")
    one_error(cli("embed", "--file", path, "-m", tiny_bert_dir), 1, "at least two words")


def test_a_word_without_tokens(cli, tiny_bert_dir, one_error):
    one_error(cli("embed", "cat", "\u200b", "-m", tiny_bert_dir), 1, "gives no tokens")


def test_unknown_metric(cli, tiny_bert_dir, one_error):
    line = one_error(cli("embed", "cat", "mat", "-m", tiny_bert_dir, "--metric", "cos"), 2)
    assert "--metric" in line and "'cos'" in line
    assert all(name in line for name in ("cosine", "euclidean", "dot"))


@pytest.mark.parametrize("kind", ["output", "input,", "onehot,nope"])
def test_unknown_kind(cli, tiny_bert_dir, one_error, kind):
    line = one_error(cli("embed", "cat", "mat", "-m", tiny_bert_dir, "-k", kind), 2)
    assert "unknown kind" in line and "onehot, input, contextual" in line


def test_unknown_format(cli, tiny_bert_dir):
    result = cli("embed", "cat", "mat", "-m", tiny_bert_dir, "-f", "xml")
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("Error: ") and "Traceback" not in result.err


def test_negative_neighbors(cli, tiny_bert_dir):
    result = cli("embed", "cat", "mat", "-m", tiny_bert_dir, "-n", "-1")
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("Error: ") and "Traceback" not in result.err


@pytest.mark.parametrize("args", [[], ["-k", "input"], ["-k", "onehot", "-n", "2"]])
def test_a_folder_without_weights(cli, bpe_dir, one_error, args):
    one_error(cli("embed", "cat", "mat", "-m", bpe_dir, *args), 1, "tinybpe", "no weights")


def test_words_and_file_together(cli, tiny_bert_dir, tmp_path, one_error):
    path = tmp_path / "w.txt"
    path.write_text("cat\nmat\n", encoding="utf-8")
    one_error(cli("embed", "cat", "--file", path, "-m", tiny_bert_dir), 2, "not both")


def test_a_missing_file(cli, tiny_bert_dir, tmp_path, one_error):
    one_error(cli("embed", "--file", tmp_path / "nope.txt", "-m", tiny_bert_dir), 1, "no such file")


def test_an_unknown_model(cli, tmp_path, one_error):
    one_error(cli("embed", "cat", "mat", "-m", tmp_path / "nowhere"), 1, "unknown model")


def test_a_failed_run_leaves_no_output_file(cli, bpe_dir, tmp_path, one_error):
    out = tmp_path / "v.npz"
    one_error(cli("embed", "cat", "mat", "-m", bpe_dir, "-o", out), 1, "no weights")
    assert not out.exists()
