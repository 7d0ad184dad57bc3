"""``llmpath attention``: formats, input routes and errors, on tiny models with weights.

The maps themselves are checked against transformers in
``tests/unit/test_core_attention.py``; here the command line must carry the same
numbers, for the tokens it was given, through to each format.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from llmcli.core import attention as core
from llmcli.core.attention import SEED
from llmcli.models.loader import load_model
from llmcli.models.resolve import model_config, resolve
from llmcli.models.tokenizer import LoadedTokenizer

SENTENCE = "The cat sat on the mat."
# Far more than the tiny models' 64 positions.
LONG = " ".join(
    ["It's a blue sundress.", "The cat sat on the mat.", "Tractors plough the fields."] * 6
)


@pytest.fixture(scope="module")
def expected(tiny_gpt2_dir, tiny_bert_dir):
    """``expected(ids, model="gpt2", aggregate="none")``: ``[layer, head, query, key]``
    from core for the tiny folder, and ``ids(text, model, special=True)``."""
    loaded = {}
    for name, folder in (("gpt2", tiny_gpt2_dir), ("bert", tiny_bert_dir)):
        resolved = resolve(str(folder))
        loaded[name] = (
            load_model(resolved, device="cpu", attention="eager"),
            LoadedTokenizer.for_model(resolved),
        )

    def maps(ids, model="gpt2", aggregate="none", layers=None, heads=None):
        m, tok = loaded[model]
        run = core.plan(model_config(m.resolved), m.label, tok, list(ids), layers=layers,
                        heads=heads, aggregate=aggregate)  # fmt: skip
        return np.stack([a.matrix for a in core.maps(m, run)]).reshape(run.shape())

    def ids(text, model="gpt2", special=True):
        return list(loaded[model][1].hf.encode(text, add_special_tokens=special).ids)

    maps.ids = ids
    maps.tok = {name: tok for name, (_, tok) in loaded.items()}
    return maps


def as_array(rows):
    """JSON Lines records (one per layer and head) as ``[layer, head, query, key]``."""
    layers = sorted({r["layer"] for r in rows}, key=str)
    heads = sorted({r["head"] for r in rows}, key=str)
    out = np.zeros((len(layers), len(heads), len(rows[0]["tokens"]), len(rows[0]["tokens"])))
    for r in rows:
        out[layers.index(r["layer"]), heads.index(r["head"])] = r["matrix"]
    return out


# --- formats ------------------------------------------------------------------------------


def test_jsonl_is_the_default_in_a_pipe(cli, tiny_gpt2_dir, expected, bpe_ref):
    result = cli("attention", SENTENCE, "-m", tiny_gpt2_dir)
    assert result.code == 0, result.err
    assert result.err == ""
    rows = result.jsonl()
    assert [(r["layer"], r["head"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    keys = {"model", "layer", "head", "layers", "heads", "tokens", "matrix"}
    assert all(set(r) == keys for r in rows)
    assert [(r["layers"], r["heads"]) for r in rows] == [([0], [0]), ([0], [1]), ([1], [0]),
                                                         ([1], [1])]  # fmt: skip
    assert all(r["tokens"] == bpe_ref.encode(SENTENCE).tokens for r in rows)
    assert {r["model"] for r in rows} == {"tinygpt2"}
    want = expected(expected.ids(SENTENCE))
    np.testing.assert_allclose(as_array(rows), want, atol=1e-6)


def test_jsonl_of_chosen_layers_heads_and_aggregates(cli, tiny_gpt2_dir, expected):
    ids = expected.ids(SENTENCE)
    rows = cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "-l", "-1", "--head", "0").jsonl()
    assert [(r["layer"], r["head"]) for r in rows] == [(1, 0)]
    np.testing.assert_allclose(rows[0]["matrix"], expected(ids)[1, 0], atol=1e-6)

    rows = cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "-a", "mean").jsonl()
    assert [(r["layer"], r["head"]) for r in rows] == [(0, "mean"), (1, "mean")]
    np.testing.assert_allclose(as_array(rows), expected(ids).mean(axis=1, keepdims=True), atol=1e-6)

    rows = cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "--aggregate", "rollout").jsonl()
    assert [(r["layer"], r["head"]) for r in rows] == [("rollout", "rollout")]
    np.testing.assert_allclose(
        rows[0]["matrix"], expected(ids, aggregate="rollout")[0, 0], atol=1e-6
    )


def test_json(cli, tiny_bert_dir, expected):
    result = cli("attention", SENTENCE, "-m", tiny_bert_dir, "-f", "json", "-l", "0")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    ids = expected.ids(SENTENCE, "bert")
    assert doc["model"] == "tinybert"
    assert doc["kind"] == "encoder"
    assert doc["dims"] == ["layer", "head", "query", "key"]
    assert [t["id"] for t in doc["tokens"]] == ids
    assert doc["tokens"][0]["token"] == "[CLS]" and doc["tokens"][-1]["token"] == "[SEP]"
    assert [(m["layer"], m["head"]) for m in doc["maps"]] == [(0, 0), (0, 1)]
    assert all(set(m) == {"layer", "head", "layers", "heads", "matrix"} for m in doc["maps"])
    got = np.array([m["matrix"] for m in doc["maps"]])
    np.testing.assert_allclose(got, expected(ids, "bert")[0], atol=1e-6)


def test_npy(cli, tiny_gpt2_dir, expected, tmp_path):
    path = tmp_path / "maps.npy"
    result = cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "-f", "npy", "-o", path)
    assert result.code == 0, result.err
    assert result.out == ""
    array = np.load(path)
    assert array.dtype == np.float32
    want = expected(expected.ids(SENTENCE))
    assert array.shape == want.shape == (2, 2, len(want[0, 0]), len(want[0, 0]))
    np.testing.assert_array_equal(array, want)


def test_npz_holds_attention_ids_and_tokens(cli, tiny_gpt2_dir, expected, bpe_ref, tmp_path):
    path = tmp_path / "maps.npz"  # the format follows the suffix
    result = cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "-o", path)
    assert result.code == 0, result.err
    with np.load(path) as npz:
        assert {"attention", "ids", "tokens"} <= set(npz.files)
        attention, ids, tokens = npz["attention"], npz["ids"], npz["tokens"]
        assert list(npz["dims"]) == ["layer", "head", "query", "key"]
        assert list(npz["layers"]) == [0, 1] and list(npz["heads"]) == [0, 1]
    encoding = bpe_ref.encode(SENTENCE)
    assert ids.tolist() == encoding.ids
    assert tokens.tolist() == encoding.tokens
    assert attention.dtype == np.float32
    np.testing.assert_array_equal(attention, expected(encoding.ids))


def test_npz_in_float16(cli, tiny_gpt2_dir, expected, tmp_path):
    path = tmp_path / "half.npz"
    result = cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "-f", "npz", "-o", path,
                 "--precision", "float16", "-l", "1")  # fmt: skip
    assert result.code == 0, result.err
    with np.load(path) as npz:
        attention = npz["attention"]
        assert list(npz["layers"]) == [1]
    assert attention.dtype == np.float16
    want = expected(expected.ids(SENTENCE), layers="1")
    assert attention.shape == want.shape == (1, 2, *want.shape[2:])
    np.testing.assert_allclose(attention.astype(np.float32), want, atol=1e-3)


@pytest.mark.parametrize(
    ("aggregate", "shape", "layers", "heads"),
    [
        ("mean", (2, 1), [0, 1], [0, 1]),
        ("max", (2, 1), [0, 1], [0, 1]),
        ("rollout", (1, 1), [0, 1], [0, 1]),
    ],
)
def test_npz_of_aggregates(cli, tiny_bert_dir, expected, tmp_path, aggregate, shape, layers, heads):
    path = tmp_path / "agg.npz"
    result = cli("attention", SENTENCE, "-m", tiny_bert_dir, "-a", aggregate, "-o", path)
    assert result.code == 0, result.err
    ids = expected.ids(SENTENCE, "bert")
    with np.load(path) as npz:
        assert npz["attention"].shape == (*shape, len(ids), len(ids))
        assert list(npz["layers"]) == layers and list(npz["heads"]) == heads
        np.testing.assert_array_equal(npz["attention"], expected(ids, "bert", aggregate))


def test_rollout_of_chosen_layers_names_them(cli, tiny_bert_dir, expected, tmp_path):
    path = tmp_path / "roll.npz"
    args = ("attention", SENTENCE, "-m", tiny_bert_dir, "-a", "rollout", "-l", "1")
    assert cli(*args, "-o", path).code == 0
    with np.load(path) as npz:
        assert list(npz["layers"]) == [1] and list(npz["heads"]) == [0, 1]
    (row,) = cli(*args, "-f", "jsonl").jsonl()
    assert row["layers"] == [1] and row["heads"] == [0, 1]
    table = cli(*args, "-f", "table")
    assert "attention rollout of layer 1 of 0-1" in table.out
    page = tmp_path / "roll.html"
    assert cli(*args, "-o", page).code == 0
    text = page.read_text(encoding="utf-8")
    assert "layer 1 of 0-1" in text and "all layers" not in text


def test_top_is_kept_in_jsonl_and_json(cli, tiny_gpt2_dir):
    rows = cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "-l", "0", "--head", "0", "--top", "2",
               "-f", "jsonl").jsonl()  # fmt: skip
    (row,) = rows
    assert len(row["top"]) == len(row["tokens"])
    for i, best in enumerate(row["top"]):
        order = sorted(range(len(row["matrix"][i])), key=lambda j: -row["matrix"][i][j])
        assert [j for j, _ in best] == [j for j in order[:2] if row["matrix"][i][j] > 0]
    doc = json.loads(cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "-l", "0", "--head", "0",
                         "--top", "2", "-f", "json").out)  # fmt: skip
    assert doc["maps"][0]["top"] == row["top"]


def test_a_bad_layer_is_reported_before_the_weights_load(cli, one_error, tiny_gpt2_dir,
                                                          monkeypatch):  # fmt: skip
    import llmcli.models.loader as loader

    monkeypatch.setattr(loader, "load_model", lambda *a, **k: pytest.fail("weights loaded"))
    one_error(cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "-l", "7"), 2, "layer 7")
    one_error(cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "--head", "9"), 2, "head 9")


def test_table_shows_the_last_layer_and_says_so(cli, tiny_gpt2_dir, bpe_ref):
    result = cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "-f", "table")
    assert result.code == 0, result.err
    out = result.out
    assert "tinygpt2 is a decoder: masked (causal) attention" in out
    assert "2 layers x 2 heads" in out
    assert "showing layer 1 of 0-1; choose with --layer" in out
    assert "layer 1 · head 0" in out and "layer 1 · head 1" in out
    assert "layer 0 ·" not in out
    first = bpe_ref.encode(SENTENCE).tokens[0]
    # The first token of a decoder sees only itself: 100 percent, the rest blank.
    assert re.search(rf"^ 0 {re.escape(first)}\s+100\s{{3}}", out, re.MULTILINE)
    assert "its weights sum to 100" in out


def test_table_of_a_chosen_layer_and_head(cli, tiny_bert_dir):
    result = cli("attention", SENTENCE, "-m", tiny_bert_dir, "-f", "table", "-l", "0",
                 "--head", "1")  # fmt: skip
    assert result.code == 0, result.err
    assert "tinybert is an encoder: each token attends in both directions" in result.out
    assert [m.group(0) for m in re.finditer(r"layer \d · head \d", result.out)] == [
        "layer 0 · head 1"
    ]
    assert "showing layer" not in result.out
    assert re.search(r"^ 0 \[CLS\]", result.out, re.MULTILINE)


def test_table_of_the_max_over_heads_does_not_claim_rows_sum_to_100(cli, tiny_gpt2_dir):
    result = cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "-f", "table", "-a", "max")
    assert result.code == 0, result.err
    assert "layer 0 · head max" in result.out and "layer 1 · head max" in result.out
    assert "sum to 100" not in result.out
    assert "the largest over the heads" in result.out


def test_help_names_the_array_dimensions(cli):
    result = cli("attention", "--help")
    assert result.code == 0
    text = " ".join(result.out.replace("│", " ").split())
    assert "[layer, head, query, key]" in text
    assert "It's a blue sundress." in text
    for option in ("--layer", "--head", "--aggregate", "--top", "--truncate", "--no-special",
                   "--precision"):  # fmt: skip
        assert option in result.out


def test_table_too_wide_for_the_terminal(cli, tiny_gpt2_dir, one_error):
    # 64 tokens need 14 + 3 * 64 + 3 columns; the tests' terminal has 200.
    result = cli("attention", "-m", tiny_gpt2_dir, "-f", "table", "--ids",
                 stdin=" ".join(["5"] * 64).encode())  # fmt: skip
    one_error(result, 2, "64 tokens do not fit a terminal 200 columns wide", "-f html")


def test_top_lists_the_keys_each_token_attends_to_most(cli, tiny_gpt2_dir, expected, bpe_ref):
    result = cli("attention", SENTENCE, "-m", tiny_gpt2_dir, "-f", "table", "--top", "2")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    tokens = bpe_ref.encode(SENTENCE).tokens
    want = expected(expected.ids(SENTENCE))
    headers = [i for i, line in enumerate(lines) if line.startswith("layer ")]
    # Every layer and head, each followed by one line per query token.
    assert [lines[i] for i in headers] == [f"layer {a} · head {b}" for a in (0, 1) for b in (0, 1)]
    for n, i in enumerate(headers):
        rows = lines[i + 1 : i + 1 + len(tokens)]
        for q, row in enumerate(rows):
            assert row.split()[0] == str(q)
            listed = row.split("→")[1].split(", ")
            best = core.top_k(want[n // 2, n % 2], 2)[q]
            assert len(listed) == len(best) == min(2, q + 1)
            assert [float(x.split()[-1]) for x in listed] == [round(w, 2) for _, w in best]
        assert rows[0].endswith(" 1.00")  # the first token: only itself


# --- input routes --------------------------------------------------------------------------


def _matrices(result):
    assert result.code == 0, result.err
    rows = result.jsonl()
    return rows[0]["tokens"], as_array(rows)


def test_input_routes_give_the_same_maps(cli, tiny_gpt2_dir, expected, tmp_path):
    want = expected(expected.ids(SENTENCE))
    path = tmp_path / "text.txt"
    path.write_text(SENTENCE, encoding="utf-8")
    m = ("-m", tiny_gpt2_dir)
    routes = {
        "argument": cli("attention", *m, SENTENCE),
        "words": cli("attention", *m, *SENTENCE.split(" ")),
        "file": cli("attention", *m, "--file", path),
        "stdin": cli("attention", *m, stdin=SENTENCE.encode()),
        "dash": cli("attention", *m, "-", stdin=SENTENCE.encode()),
        "file dash": cli("attention", *m, "--file", "-", stdin=SENTENCE.encode()),
    }
    for route, result in routes.items():
        _, got = _matrices(result)
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=route)


def test_no_input_uses_the_seed_sentence(cli, tiny_gpt2_dir, expected, bpe_ref):
    tokens, got = _matrices(cli("attention", "-m", tiny_gpt2_dir, stdin=b""))
    assert tokens == bpe_ref.encode(SEED).tokens
    np.testing.assert_allclose(got, expected(expected.ids(SEED)), atol=1e-6)


def test_token_records_from_tokenize(cli, tiny_gpt2_dir, expected):
    records = cli("tokenize", SENTENCE, "-m", tiny_gpt2_dir, "-f", "jsonl")
    assert records.code == 0, records.err
    from_records = cli("attention", "-m", tiny_gpt2_dir, stdin=records.out.encode())
    from_text = cli("attention", "-m", tiny_gpt2_dir, SENTENCE)
    assert _matrices(from_records)[0] == _matrices(from_text)[0]
    np.testing.assert_array_equal(_matrices(from_records)[1], _matrices(from_text)[1])
    np.testing.assert_allclose(
        _matrices(from_records)[1], expected(expected.ids(SENTENCE)), atol=1e-6
    )


def test_token_records_are_used_as_given(cli, tiny_bert_dir, expected):
    # tokenize --no-special adds no [CLS]/[SEP]; attention adds none to records it is given.
    records = cli("tokenize", SENTENCE, "-m", tiny_bert_dir, "-f", "jsonl", "--no-special")
    assert records.code == 0, records.err
    ids = [r["id"] for r in records.jsonl()]
    tokens, got = _matrices(cli("attention", "-m", tiny_bert_dir, stdin=records.out.encode()))
    assert ids == expected.ids(SENTENCE, "bert", special=False)
    assert tokens == [r["token"] for r in records.jsonl()]
    assert "[CLS]" not in tokens
    np.testing.assert_allclose(got, expected(ids, "bert"), atol=1e-6)
    # The same as the text without special tokens.
    plain_tokens, plain = _matrices(cli("attention", "-m", tiny_bert_dir, "--no-special", SENTENCE))
    assert plain_tokens == tokens
    np.testing.assert_array_equal(plain, got)


def test_ids_are_used_as_given_with_ids(cli, tiny_gpt2_dir, expected, tmp_path):
    tok = expected.tok["gpt2"]
    ids = [7, 200, 7, 12]
    path = tmp_path / "ids.txt"
    path.write_bytes(b"7 200\n7 12\n")
    for result in (
        cli("attention", "-m", tiny_gpt2_dir, "--ids", stdin=b"7 200\n7 12\n"),
        cli("attention", "-m", tiny_gpt2_dir, "--ids", "--file", path),
    ):
        tokens, got = _matrices(result)
        assert tokens == [tok.token(i) for i in ids]
        np.testing.assert_allclose(got, expected(ids), atol=1e-6)


def test_a_text_of_digits_is_text(cli, tiny_gpt2_dir, expected, bpe_ref):
    for result in (
        cli("attention", "-m", tiny_gpt2_dir, "1999 2024"),
        cli("attention", "-m", tiny_gpt2_dir, stdin=b"1999 2024"),
        cli("attention", "-m", tiny_gpt2_dir, '{"id": 3}'),
    ):
        tokens, got = _matrices(result)
        text = "1999 2024" if "{" not in tokens[0] else '{"id": 3}'
        assert tokens == bpe_ref.encode(text).tokens


def test_special_tokens_by_default_and_no_special(cli, tiny_bert_dir):
    tokens, _ = _matrices(cli("attention", "-m", tiny_bert_dir, SENTENCE))
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    plain, _ = _matrices(cli("attention", "-m", tiny_bert_dir, "--no-special", SENTENCE))
    assert plain == tokens[1:-1]


# --- the model's context --------------------------------------------------------------------


def test_longer_than_the_context(cli, tiny_gpt2_dir, expected, one_error):
    ids = expected.ids(LONG)
    assert len(ids) > 64
    one_error(cli("attention", "-m", tiny_gpt2_dir, LONG), 1,
              f"{len(ids)} tokens do not fit tinygpt2's context of 64", "--truncate")  # fmt: skip
    tokens, got = _matrices(cli("attention", "-m", tiny_gpt2_dir, "--truncate", LONG))
    assert len(tokens) == 64
    np.testing.assert_allclose(got, expected(ids[:64]), atol=1e-6)


def test_records_longer_than_the_context(cli, tiny_bert_dir, expected, one_error):
    stdin = ("5 " * 70).encode()
    one_error(cli("attention", "-m", tiny_bert_dir, "--ids", stdin=stdin), 1, "70 tokens",
              "context of 64")  # fmt: skip
    tokens, _ = _matrices(cli("attention", "-m", tiny_bert_dir, "--truncate", "--ids",
                              stdin=stdin))  # fmt: skip
    assert len(tokens) == 64


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "stdin", "code", "fragments"),
    [
        (["-l", "2"], None, 2, ["layer 2 is out of range", "2 layers", "0..1", "-1 for the last"]),
        (["-l", "-3"], None, 2, ["layer -3 is out of range", "0..1"]),
        (["-l", "0-5"], None, 2, ["layer 5 is out of range"]),
        (["--head", "2"], None, 2, ["head 2 is out of range", "2 heads", "0..1"]),
        (["-l", "x"], None, 2, ["--layer 'x'", "0,3 or 2-5"]),
        (["--head", "1..2"], None, 2, ["--head '1..2'"]),
        (["-l", ","], None, 2, ["--layer ','"]),
        (["-l", "1-0"], None, 2, ["from low to high"]),
        (["-a", "sum"], None, 2, ["'sum' is not one of 'none', 'mean', 'max', 'rollout'"]),
        (["--precision", "float64"], None, 2, ["'float64' is not one of 'float32', 'float16'"]),
        (["-f", "xml"], None, 2, ["'xml'"]),
        (["--top", "-1", "-f", "table"], None, 2, ["--top"]),
        (["   "], None, 1, ["empty input"]),
        ([], b"\n  \n", 1, ["empty input"]),
        (["-"], b"", 1, ["empty input"]),
        (["--ids"], b"1 99999", 1, ["ID 99999 is outside the vocabulary of tinygpt2"]),
        (["x", "--file", "F"], None, 2, ["not both"]),
        (["--file", "missing.txt"], None, 1, ["cannot read", "no such file"]),
    ],
)
def test_bad_input_is_one_error_line(cli, tiny_gpt2_dir, one_error, tmp_path, args, stdin,
                                     code, fragments):  # fmt: skip
    (tmp_path / "F").write_text(SENTENCE, encoding="utf-8")
    args = [str(tmp_path / a) if a in ("F", "missing.txt") else a for a in args]
    result = cli("attention", "-m", tiny_gpt2_dir, *args, stdin=b"" if stdin is None else stdin)
    one_error(result, code, *fragments)


def test_a_model_without_weights(cli, bpe_dir, one_error):
    one_error(cli("attention", "-m", bpe_dir, SENTENCE), 1, "is a tokenizer only, with no weights")


def test_a_registry_model_not_in_the_store(cli, one_error):
    one_error(cli("attention", SENTENCE), 1, "smollm2 is not in the store")


def test_nothing_written_on_error(cli, tiny_gpt2_dir, one_error, tmp_path):
    path = tmp_path / "maps.npz"
    one_error(cli("attention", "-m", tiny_gpt2_dir, "-l", "7", "-o", path, SENTENCE), 2, "layer 7")
    assert not path.exists()
