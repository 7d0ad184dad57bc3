"""Attention maps in ``llmcli.core.attention``.

Selections and top-k lists are checked on plain values; the aggregates on a stand-in
model whose attention weights are written out here, with the rollout worked out by
hand; the maps themselves against the tiny models (random weights) run directly with
transformers under eager attention.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from llmcli.core import attention as core
from llmcli.core.inputs import model_input
from llmcli.core.tokenize import records_for_ids
from llmcli.errors import InputError, UsageError
from llmcli.models.loader import LoadedModel, load_model
from llmcli.models.resolve import model_config, resolve
from llmcli.models.tokenizer import LoadedTokenizer

SENTENCE = "The cat sat on the mat."

# --- parse_selection --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, [0, 1, 2, 3, 4, 5]),
        ("", [0, 1, 2, 3, 4, 5]),
        ("all", [0, 1, 2, 3, 4, 5]),
        ("3", [3]),
        ("0", [0]),
        ("0,3", [0, 3]),
        ("3,0", [0, 3]),
        ("2-5", [2, 3, 4, 5]),
        ("2-2", [2]),
        ("-1", [5]),
        ("-6", [0]),
        ("-3--1", [3, 4, 5]),
        ("1--2", [1, 2, 3, 4]),
        ("0,2-3,-1", [0, 2, 3, 5]),
        ("1,1,0-2", [0, 1, 2]),  # repeats are kept once
        (" 0 , 4 ", [0, 4]),
        ("0,", [0]),
    ],
)
def test_parse_selection(spec, expected):
    assert core.parse_selection(spec, 6, "layer") == expected


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("6", "layer 6"),
        ("-7", "layer -7"),
        ("0,9", "layer 9"),
        ("4-6", "layer 6"),
        ("-9-2", "layer -9"),
    ],
)
def test_parse_selection_out_of_range_says_the_valid_range(spec, shown):
    with pytest.raises(UsageError) as exc:
        core.parse_selection(spec, 6, "layer")
    message = str(exc.value)
    assert f"{shown} is out of range" in message
    assert "6 layers" in message
    assert "0..5" in message
    assert "-1 for the last" in message


def test_parse_selection_names_heads():
    with pytest.raises(UsageError) as exc:
        core.parse_selection("2", 2, "head")
    assert "head 2 is out of range: this model has 2 heads (0..1" in str(exc.value)


@pytest.mark.parametrize("spec", ["x", "1.5", "1-", "a-b", "--1", "1-2-3", "0;1", "one"])
def test_parse_selection_bad_syntax(spec):
    with pytest.raises(UsageError) as exc:
        core.parse_selection(spec, 6, "head")
    assert str(exc.value).startswith(f"--head {spec!r}: use numbers, lists and ranges")


def test_parse_selection_range_must_go_up():
    with pytest.raises(UsageError, match="from low to high"):
        core.parse_selection("4-2", 6, "layer")


@pytest.mark.parametrize("spec", [",", " , ,"])
def test_parse_selection_of_nothing_is_an_error(spec):
    with pytest.raises(UsageError, match="--layer"):
        core.parse_selection(spec, 6, "layer")


# --- top_k ---------------------------------------------------------------------------------


def test_top_k_lists_the_largest_weights_of_each_row():
    matrix = np.array(
        [
            [1.0, 0.0, 0.0, 0.0],
            [0.3, 0.7, 0.0, 0.0],
            [0.2, 0.5, 0.3, 0.0],
            [0.1, 0.4, 0.1, 0.4],  # ties: the earlier key first
        ],
        dtype=np.float32,
    )
    got = core.top_k(matrix, 2)
    assert [[j for j, _ in row] for row in got] == [[0], [1, 0], [1, 2], [1, 3]]
    assert [[w for _, w in row] for row in got] == [
        [1.0],  # zero weights (the masked future) are not listed
        pytest.approx([0.7, 0.3]),
        pytest.approx([0.5, 0.3]),
        pytest.approx([0.4, 0.4]),
    ]
    assert all(isinstance(j, int) and isinstance(w, float) for row in got for j, w in row)


def test_top_k_larger_than_the_row_lists_every_nonzero_key():
    matrix = np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32)
    assert core.top_k(matrix, 5) == [[(1, 0.75), (0, 0.25)], [(0, 0.5), (1, 0.5)]]


@pytest.mark.parametrize("k", [0, -1])
def test_top_k_needs_at_least_one(k):
    with pytest.raises(UsageError, match="at least 1"):
        core.top_k(np.eye(2), k)


# --- the aggregates, on weights written out by hand ---------------------------------------
# Two tokens, two layers of two heads each; layer 0 looks both ways, so the order
# of the layers in the rollout matters.

HAND = [
    [[[0.6, 0.4], [0.5, 0.5]], [[0.2, 0.8], [0.1, 0.9]]],  # layer 0: heads 0, 1
    [[[1.0, 0.0], [0.8, 0.2]], [[1.0, 0.0], [0.6, 0.4]]],  # layer 1
]


class _HandModel:
    """Stands in for a transformers model: returns the weights above as its attentions."""

    def __init__(self, weights):
        import torch

        self.config = SimpleNamespace(
            num_hidden_layers=len(weights), num_attention_heads=len(weights[0]),
            max_position_embeddings=8,
        )  # fmt: skip
        self.attentions = tuple(torch.tensor([layer], dtype=torch.float32) for layer in weights)

    def __call__(self, **kwargs):
        assert kwargs["output_attentions"] is True
        assert kwargs["input_ids"].shape == (1, 2)
        return SimpleNamespace(attentions=self.attentions)


@pytest.fixture(scope="module")
def bpe_tok(bpe_dir):
    return LoadedTokenizer.from_folder("tinybpe", bpe_dir)


@pytest.fixture
def hand(bpe_tok):
    import torch

    model = LoadedModel("hand", _HandModel(HAND), torch.device("cpu"), torch.float32, False, None)

    def maps(aggregate, layers=None, heads=None):
        config = {"num_hidden_layers": len(HAND), "num_attention_heads": len(HAND[0])}
        run = core.plan(config, "hand", bpe_tok, [5, 6], layers=layers, heads=heads,
                        aggregate=aggregate)  # fmt: skip
        return run, list(core.maps(model, run))

    return maps


def test_rollout_by_hand(hand):
    # Layer 0: mean over heads [[.4, .6], [.3, .7]]; with the residual .5 A + .5 I:
    # [[.7, .3], [.15, .85]]. Layer 1: mean [[1, 0], [.7, .3]] -> [[1, 0], [.35, .65]].
    # R = A1 @ A0: row 0 is [.7, .3]; row 1 is .35 * [.7, .3] + .65 * [.15, .85].
    run, maps = hand("rollout")
    assert [(m.layer, m.head) for m in maps] == [("rollout", "rollout")]
    assert maps[0].matrix.dtype == np.float32
    np.testing.assert_allclose(maps[0].matrix, [[0.7, 0.3], [0.3425, 0.6575]], atol=1e-7)
    assert run.shape() == (1, 1, 2, 2)


def test_rollout_of_chosen_layers_and_heads_by_hand(hand):
    # Layer 1 alone: [[1, 0], [.35, .65]].
    np.testing.assert_allclose(hand("rollout", layers="1")[1][0].matrix, [[1, 0], [0.35, 0.65]])
    # Head 1 alone: layer 0 -> [[.6, .4], [.05, .95]], layer 1 -> [[1, 0], [.3, .7]];
    # R: row 0 [.6, .4]; row 1 .3 * [.6, .4] + .7 * [.05, .95] = [.215, .785].
    np.testing.assert_allclose(
        hand("rollout", heads="1")[1][0].matrix, [[0.6, 0.4], [0.215, 0.785]], atol=1e-7
    )


def test_mean_and_max_over_heads_by_hand(hand):
    _, mean = hand("mean")
    assert [(m.layer, m.head) for m in mean] == [(0, "mean"), (1, "mean")]
    np.testing.assert_allclose(mean[0].matrix, [[0.4, 0.6], [0.3, 0.7]], atol=1e-7)
    np.testing.assert_allclose(mean[1].matrix, [[1, 0], [0.7, 0.3]], atol=1e-7)
    _, top = hand("max")
    assert [(m.layer, m.head) for m in top] == [(0, "max"), (1, "max")]
    np.testing.assert_allclose(top[0].matrix, [[0.6, 0.8], [0.5, 0.9]], atol=1e-7)
    np.testing.assert_allclose(top[1].matrix, [[1, 0], [0.8, 0.4]], atol=1e-7)
    # Over the chosen heads only.
    _, one = hand("mean", layers="-1", heads="0")
    assert [(m.layer, m.head) for m in one] == [(1, "mean")]
    np.testing.assert_allclose(one[0].matrix, HAND[1][0], atol=1e-7)


def test_none_gives_each_chosen_head(hand):
    run, maps = hand("none", layers="1", heads="0,1")
    assert [(m.layer, m.head) for m in maps] == [(1, 0), (1, 1)]
    np.testing.assert_allclose(np.stack([m.matrix for m in maps]), HAND[1], atol=1e-7)
    assert run.shape() == (1, 2, 2, 2)


def test_an_unknown_aggregate_is_a_usage_error(hand):
    with pytest.raises(UsageError, match="none, mean, max, rollout"):
        hand("sum")


# --- the tiny models against transformers ------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_gpt2_dir, tiny_bert_dir):
    """``tiny[name]``: (LoadedModel under eager attention, LoadedTokenizer, folder)."""
    out = {}
    for name, folder in (("gpt2", tiny_gpt2_dir), ("bert", tiny_bert_dir)):
        resolved = resolve(str(folder))
        model = load_model(resolved, device="cpu", attention="eager")
        out[name] = (model, LoadedTokenizer.for_model(resolved), folder)
    return out


def direct_attentions(folder, decoder: bool, ids: list[int]) -> np.ndarray:
    """``[layer, head, query, key]`` from ``output_attentions=True``, loaded and run
    straight with transformers under eager attention."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    cls = AutoModelForCausalLM if decoder else AutoModel
    model = cls.from_pretrained(str(folder), attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_attentions=True)
    return np.stack([a[0].numpy() for a in out.attentions])


def core_maps(tiny, name, ids, aggregate="none", layers=None, heads=None):
    model, tok, _ = tiny[name]
    run = core.plan(model_config(model.resolved), model.label, tok, ids, layers=layers,
                    heads=heads, aggregate=aggregate)  # fmt: skip
    return run, list(core.maps(model, run))


def stacked(run, maps) -> np.ndarray:
    return np.stack([m.matrix for m in maps]).reshape(run.shape())


@pytest.fixture(scope="module")
def sentence_ids(tiny):
    """The sentence as each tiny model's tokenizer encodes it, special tokens included."""
    return {
        name: model_input(
            tok, [SENTENCE], None, ids=False, wrap=tok.wrap(special=True), default=SENTENCE
        ).ids
        for name, (_, tok, _) in tiny.items()
    }


@pytest.mark.parametrize(("name", "decoder"), [("gpt2", True), ("bert", False)])
def test_maps_equal_transformers_output_attentions(tiny, sentence_ids, name, decoder):
    ids = sentence_ids[name]
    model, _, folder = tiny[name]
    assert model.decoder is decoder
    assert model.model.config._attn_implementation == "eager"
    run, maps = core_maps(tiny, name, ids)
    assert [(m.layer, m.head) for m in maps] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    got = stacked(run, maps)
    expected = direct_attentions(folder, decoder, ids)
    assert got.shape == expected.shape == (2, 2, len(ids), len(ids))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["gpt2", "bert"])
def test_every_row_sums_to_one(tiny, sentence_ids, name):
    for aggregate in ("none", "mean", "rollout"):  # a max over heads need not
        run, maps = core_maps(tiny, name, sentence_ids[name], aggregate)
        got = stacked(run, maps)
        np.testing.assert_allclose(got.sum(axis=-1), 1.0, atol=1e-5)
        assert (got >= 0).all()


def test_a_decoder_sees_no_future(tiny, sentence_ids):
    for aggregate in core.AGGREGATES:
        run, maps = core_maps(tiny, "gpt2", sentence_ids["gpt2"], aggregate)
        assert run.kind == "decoder"
        got = stacked(run, maps)
        upper = np.triu(np.ones(got.shape[-2:], dtype=bool), k=1)
        assert (got[..., upper] == 0).all()  # exactly 0, not merely small
        assert (got[..., ~upper] > 0).all()
        assert (got[..., 0, 0] == 1).all()  # the first token sees only itself


def test_an_encoder_looks_both_ways(tiny, sentence_ids):
    run, maps = core_maps(tiny, "bert", sentence_ids["bert"])
    assert run.kind == "encoder"
    got = stacked(run, maps)
    upper = np.triu(np.ones(got.shape[-2:], dtype=bool), k=1)
    assert (got[..., upper] > 0).all()
    assert (got[..., 0, 0] < 1).all()


@pytest.mark.parametrize(
    ("aggregate", "layers", "heads", "shape"),
    [
        ("none", None, None, (2, 2)),
        ("none", "-1", None, (1, 2)),
        ("none", None, "1", (2, 1)),
        ("none", "0,1", "0-1", (2, 2)),
        ("mean", None, None, (2, 1)),
        ("max", "1", None, (1, 1)),
        ("rollout", None, None, (1, 1)),
        ("rollout", "0", "0", (1, 1)),
    ],
)
def test_shapes_are_layer_head_query_key(tiny, sentence_ids, aggregate, layers, heads, shape):
    ids = sentence_ids["gpt2"]
    run, maps = core_maps(tiny, "gpt2", ids, aggregate, layers, heads)
    t = len(ids)
    assert run.shape() == (*shape, t, t)
    assert len(maps) == shape[0] * shape[1]
    assert all(m.matrix.shape == (t, t) for m in maps)


def test_aggregates_equal_numpy_over_the_heads(tiny, sentence_ids):
    ids = sentence_ids["bert"]
    _, maps = core_maps(tiny, "bert", ids)
    full = np.stack([m.matrix for m in maps]).reshape(2, 2, len(ids), len(ids))
    _, mean = core_maps(tiny, "bert", ids, "mean")
    np.testing.assert_allclose(np.stack([m.matrix for m in mean]), full.mean(axis=1), atol=1e-7)
    _, top = core_maps(tiny, "bert", ids, "max")
    np.testing.assert_array_equal(np.stack([m.matrix for m in top]), full.max(axis=1))
    _, picked = core_maps(tiny, "bert", ids, "none", "1", "0")
    np.testing.assert_array_equal(picked[0].matrix, full[1, 0])


@pytest.mark.parametrize("name", ["gpt2", "bert"])
def test_rollout_equals_numpy_over_the_layers(tiny, sentence_ids, name):
    ids = sentence_ids[name]
    _, maps = core_maps(tiny, name, ids)
    full = np.stack([m.matrix for m in maps]).reshape(2, 2, len(ids), len(ids))
    expected = np.eye(len(ids))
    for layer in full.astype(np.float64):
        mixed = 0.5 * layer.mean(axis=0) + 0.5 * np.eye(len(ids))
        mixed = mixed / mixed.sum(axis=1, keepdims=True)
        expected = mixed @ expected  # R = A_L ... A_1
    _, rollout = core_maps(tiny, name, ids, "rollout")
    np.testing.assert_allclose(rollout[0].matrix, expected, atol=1e-6)
    # Not the product the other way round (the layers do not commute here).
    a0, a1 = (
        0.5 * layer.mean(axis=0) + 0.5 * np.eye(len(ids)) for layer in full.astype(np.float64)
    )
    assert not np.allclose(a0 @ a1, expected, atol=1e-6)


# --- input and context ---------------------------------------------------------------------


def input_ids(tok, text, file, *, special=True, ids=False):
    return model_input(
        tok, text, file, ids=ids, wrap=tok.wrap(special=special), default=SENTENCE
    ).ids


def test_input_ids_from_text_with_and_without_special_tokens(tiny):
    _, tok, folder = tiny["bert"]
    from tokenizers import Tokenizer

    ref = Tokenizer.from_file(str(folder / "tokenizer.json"))
    with_special = input_ids(tok, ["a", "blue", "cat"], None, special=True)
    assert with_special == ref.encode("a blue cat", add_special_tokens=True).ids
    assert [tok.token(i) for i in (with_special[0], with_special[-1])] == ["[CLS]", "[SEP]"]
    plain = input_ids(tok, ["a blue cat"], None, special=False)
    assert plain == with_special[1:-1]


def test_a_text_argument_is_always_text(tiny, bpe_ref, tmp_path):
    _, tok, _ = tiny["gpt2"]
    assert input_ids(tok, ["7 3", "12"], None) == bpe_ref.encode("7 3 12").ids
    records = '{"index": 0, "id": 9}\n{"index": 1, "id": 4}\n'
    assert input_ids(tok, [records], None) == bpe_ref.encode(records).ids
    path = tmp_path / "records.jsonl"
    path.write_text(records, encoding="utf-8")
    assert input_ids(tok, None, path) == [9, 4]  # a file of records: their IDs
    path.write_text("7 3\n12\n", encoding="utf-8")
    assert input_ids(tok, None, path) == bpe_ref.encode("7 3\n12\n").ids  # text, unless...
    assert input_ids(tok, None, path, ids=True) == [7, 3, 12]  # ... --ids


def test_input_ids_errors(tiny, tmp_path):
    _, tok, _ = tiny["gpt2"]
    with pytest.raises(InputError, match="empty input"):
        input_ids(tok, [" \n "], None)
    path = tmp_path / "ids.txt"
    path.write_text(f"1 {tok.vocab_size}\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"ID {tok.vocab_size} is outside the vocabulary"):
        input_ids(tok, None, path, ids=True)
    path.write_text(SENTENCE, encoding="utf-8")
    with pytest.raises(UsageError, match="not both"):
        input_ids(tok, ["cat"], path)
    with pytest.raises(UsageError, match="a TEXT argument is text"):
        input_ids(tok, ["1 2"], None, ids=True)


def test_input_ids_from_a_file(tiny, bpe_ref, tmp_path):
    _, tok, _ = tiny["gpt2"]
    path = tmp_path / "text.txt"
    path.write_text(SENTENCE, encoding="utf-8")
    assert input_ids(tok, None, path) == bpe_ref.encode(SENTENCE).ids


def test_the_context_size_and_truncation(tiny):
    model, _, _ = tiny["gpt2"]
    config = model_config(model.resolved)
    assert core.context_size(config) == 64
    assert core.context_size(model_config(tiny["bert"][0].resolved)) == 64

    def prepare(ids, truncate):
        return core.prepare_ids(ids, config, model.label, truncate=truncate)

    ids = list(range(1, 71))
    with pytest.raises(InputError) as exc:
        prepare(ids, False)
    assert "70 tokens do not fit" in str(exc.value)
    assert "context of 64" in str(exc.value)
    assert "--truncate" in str(exc.value)
    assert prepare(ids, True) == ids[:64]
    assert prepare(ids[:64], False) == ids[:64]
    with pytest.raises(InputError, match="empty input"):
        prepare([], True)


def test_plan_describes_the_run_from_the_config(tiny, sentence_ids):
    model, tok, _ = tiny["bert"]
    ids = sentence_ids["bert"]
    config = model_config(model.resolved)
    run = core.plan(config, model.label, tok, ids, layers="-1", heads=None, aggregate="none")
    assert (run.kind, run.n_layers, run.n_heads) == ("encoder", 2, 2)
    assert (run.layers, run.heads) == ([1], [0, 1])
    assert [r.id for r in run.tokens] == ids
    assert run.tokens == records_for_ids(tok, ids)
    assert run.model == model.label


def test_weights_that_cannot_fit_are_refused_before_the_run():
    from llmcli.core.attention import AttentionRun, check_memory
    from llmcli.core.tokenize import TokenRecord

    tokens = [TokenRecord(i, 1, "a", "a", i, i + 1, "61", False) for i in range(1000)]
    run = AttentionRun("tiny", "decoder", tokens, [0, 1], [0], n_layers=30, n_heads=9,
                       aggregate="none")  # fmt: skip
    need = 4 * (9 + 2 * 1) * 1000**2  # one layer's 9 heads while it runs, 2 x 1 kept
    check_memory(run, available=need)
    with pytest.raises(InputError, match=r"1,000 tokens take about 42 MiB \(2 layers x 1 heads"):
        check_memory(run, available=need - 1)
