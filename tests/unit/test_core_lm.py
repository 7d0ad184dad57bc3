"""``llmcli.core.lm`` on the tiny GPT-2 (random weights), against direct computations.

Every expected value here comes from the model run plainly by transformers on the whole
sequence (no cache, no padding, no batching), so the cache reuse, the left padding and
the batching of ``LanguageModel`` are all checked by it.
"""

from __future__ import annotations

import math

import pytest
import torch

from llmcli.core import packing
from llmcli.core.lm import ChoiceScore, LanguageModel, Request, top_tokens
from llmcli.errors import InputError, ModelError
from llmcli.models.loader import load_model
from llmcli.models.resolve import resolve
from llmcli.models.tokenizer import LoadedTokenizer

TOL = 1e-5


# The tiny model runs on one thread (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lm(tiny_gpt2_dir):
    resolved = resolve(str(tiny_gpt2_dir))
    loaded = load_model(resolved, device="cpu")
    return LanguageModel(loaded, LoadedTokenizer.for_model(resolved), batch_size=8)


def one_at_a_time(lm: LanguageModel) -> LanguageModel:
    return LanguageModel(lm.loaded, lm.tok, batch_size=1)


def full_logprobs(lm: LanguageModel, ids: list[int]) -> torch.Tensor:
    """[position, vocab] log-probabilities of the next token, from one plain forward pass."""
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0].float()
    return torch.log_softmax(logits, dim=-1)


def direct_score(
    lm: LanguageModel, context: list[int], cont: list[int]
) -> tuple[list[float], bool]:
    lp = full_logprobs(lm, context + cont)
    rows = [lp[len(context) - 1 + j] for j in range(len(cont))]
    values = [float(row[t]) for row, t in zip(rows, cont)]
    greedy = all(int(row.argmax()) == t for row, t in zip(rows, cont))
    return values, greedy


def naive_greedy(lm: LanguageModel, prompt: list[int], max_new_tokens: int) -> list[int]:
    """Argmax over the whole sequence's logits at every step, without a cache."""
    out: list[int] = []
    for _ in range(max_new_tokens):
        token = int(full_logprobs(lm, prompt + out)[-1].argmax())
        if token in lm.eos_ids:
            break
        out.append(token)
    return out


def request(lm: LanguageModel, context: str, choices: list[str]) -> Request:
    conts = []
    ctx: list[int] = []
    for choice in choices:
        ctx, cont = lm.split_pair(context, choice)
        conts.append(cont)
    return Request(ctx, conts, [c.strip() for c in choices], choices)


def assert_close(got: list[float], expected: list[float]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert abs(a - b) < TOL, (got, expected)


# --- tokens ----------------------------------------------------------------------------


def test_encode_and_decode_round_trip(lm):
    text = "The cat sat on the mat."
    ids = lm.encode(text)
    assert ids == list(lm.tok.hf.encode(text, add_special_tokens=False).ids)
    assert lm.decode(ids) == text
    assert lm.decode(lm.encode("naïve café")) == "naïve café"


def test_decode_of_half_a_character_shows_a_replacement(lm):
    ids = lm.encode("日本語")
    pieces = [lm.decode([i]) for i in ids]
    assert "\ufffd" in "".join(pieces)  # some token holds part of a character
    assert lm.decode(ids) == "日本語"


@pytest.mark.parametrize(
    ("context", "continuation"),
    [
        ("The cat sat on the", " mat."),
        ("The cat sat on the ", "mat."),
        ("The cat sat on the   ", "mat."),
        ("A kitten is a young", " cat; a tractor is not."),
        ("Hello world!\n", "Second line here."),
        ("Tractors plough the fields in", " spring."),
    ],
)
def test_split_pair_is_lm_evals_encode_pair(lm, context, continuation):
    ctx, cont = lm.split_pair(context, continuation)
    moved = context.rstrip()
    spaces = context[len(moved) :]
    assert ctx == lm.encode(moved)
    assert cont == lm.encode(moved + spaces + continuation)[len(ctx) :]
    assert cont  # something to score
    assert lm.decode(ctx) + lm.decode(cont) == context + continuation


def test_split_pair_moves_trailing_spaces_onto_the_continuation(lm):
    spaced = lm.split_pair("The cat sat on the ", "mat.")
    plain = lm.split_pair("The cat sat on the", " mat.")
    assert spaced == plain
    assert lm.decode(spaced[1]) == " mat."


def test_split_pair_of_an_empty_context_starts_with_the_prefix_token(lm):
    eot = lm.tok.hf.token_to_id("<|endoftext|>")
    assert lm.prefix_id() == eot
    ctx, cont = lm.split_pair("", "The cat")
    assert ctx == [eot]
    assert cont == lm.encode("The cat")
    ctx, cont = lm.split_pair("  ", "cat")
    assert ctx == [eot]
    assert cont == lm.encode("  cat")


def test_split_pair_of_an_empty_continuation(lm):
    with pytest.raises(InputError, match="gives no tokens to score"):
        lm.split_pair("The cat", "")


# --- scoring ---------------------------------------------------------------------------


def test_score_equals_the_full_sequence_log_softmax(lm):
    req = request(lm, "The cat sat on the", [" mat.", " mat", " fields in spring.", " cat"])
    lengths = [len(c) for c in req.continuations]
    assert 1 in lengths and max(lengths) >= 3  # single- and multi-token continuations
    (scores,) = lm.score([req])
    assert len(scores) == 4
    for score, cont, choice, text in zip(scores, req.continuations, req.choices, req.texts):
        expected, greedy = direct_score(lm, req.context, cont)
        assert isinstance(score, ChoiceScore)
        assert score.tokens == cont
        assert score.choice == choice
        assert score.continuation == text
        assert_close(score.token_logprobs, expected)
        assert abs(score.logprob - math.fsum(expected)) < TOL
        assert score.per_char == pytest.approx(score.logprob / len(choice))
        assert score.per_token == pytest.approx(score.logprob / len(cont))
        assert score.greedy is greedy


def test_greedy_flag_is_true_for_the_models_own_choice(lm):
    context = lm.encode("Hello world!")
    top = naive_greedy(lm, context, 3)
    assert len(top) == 3
    (scores,) = lm.score([Request(context, [top, top[:1], [top[0], (top[1] + 1) % 300]])])
    assert [s.greedy for s in scores] == [True, True, False]


def test_batched_scoring_equals_one_at_a_time(lm):
    requests = [
        request(lm, "The cat sat on the", [" mat.", " fields"]),
        request(lm, "A", [" kitten", " tractor is not.", " cat"]),
        request(lm, "Hello world!\nSecond line", [" here.", "!"]),
        request(lm, "It's a blue", [" sundress.", " cat", " mat", " spring"]),
        request(lm, "naïve café, crème brûlée and", [" 日本語.", " cat."]),
        request(lm, "", ["The cat sat.", "Tractors"]),
    ]
    widths = {len(r.context) for r in requests}
    assert len(widths) >= 4  # prompts of different lengths: left padding is at work
    batched = lm.score(requests)
    single = one_at_a_time(lm).score(requests)
    assert len(batched) == len(single) == len(requests)
    for req, got, alone in zip(requests, batched, single):
        assert [s.tokens for s in got] == req.continuations
        for a, b in zip(got, alone):
            assert_close(a.token_logprobs, b.token_logprobs)
            assert a.greedy == b.greedy
            expected, _ = direct_score(lm, req.context, a.tokens)
            assert_close(a.token_logprobs, expected)


def test_score_reports_each_batch(lm):
    small = LanguageModel(lm.loaded, lm.tok, batch_size=2)
    requests = [request(lm, "The cat", [" sat", " mat"]) for _ in range(5)]
    seen: list[int] = []
    out = small.score(requests, on_batch=seen.append)
    assert seen == [2, 2, 1]
    assert len(out) == 5
    first = [s.logprob for s in out[0]]
    for row in out[1:]:
        assert_close([s.logprob for s in row], first)


def test_a_context_past_the_models_length(lm):
    assert lm.max_length == 64
    context = lm.encode("The cat sat on the mat. " * 12)
    assert len(context) > 64
    with pytest.raises(InputError, match="past tinygpt2's context of 64"):
        lm.score([Request(context, [lm.encode(" cat")])])


# --- next token ------------------------------------------------------------------------


def test_next_distribution_is_the_last_positions_log_softmax(lm):
    ids = lm.encode("The cat sat on the")
    got = lm.next_distribution(ids)
    assert got.shape == (lm.tok.vocab_size,)
    assert float(got.exp().sum()) == pytest.approx(1.0, abs=1e-5)
    expected = full_logprobs(lm, ids)[-1]
    assert float((got - expected).abs().max()) < TOL


def test_top_tokens_are_the_best_first(lm):
    logprobs = lm.next_distribution(lm.encode("Hello world"))
    ranked = list(top_tokens(logprobs, 5))
    assert len(ranked) == 5
    values = [v for _, v in ranked]
    assert values == sorted(values, reverse=True)
    assert ranked[0][0] == int(logprobs.argmax())
    for token_id, value in ranked:
        assert value == pytest.approx(float(logprobs[token_id]))
    fifth = values[-1]
    assert int((logprobs > fifth).sum()) == 4


# --- generation ------------------------------------------------------------------------

PROMPTS = ["The cat sat", "Hello world! The", "A kitten is a young cat; a tractor", "It"]


def test_greedy_generation_equals_a_naive_loop(lm):
    prompt = lm.encode("The cat sat")
    (gen,) = lm.generate([prompt], max_new_tokens=12, stop=())
    expected = naive_greedy(lm, prompt, 12)
    assert gen.tokens == expected
    assert gen.text == lm.decode(expected)
    assert gen.stopped == ("length" if len(expected) == 12 else "eos")


def test_batched_greedy_generation_equals_a_naive_loop_per_prompt(lm):
    prompts = [lm.encode(p) for p in PROMPTS]
    assert len({len(p) for p in prompts}) == len(prompts)
    gens = lm.generate(prompts, max_new_tokens=10, stop=())
    assert len(gens) == len(prompts)
    for prompt, gen in zip(prompts, gens):
        assert gen.tokens == naive_greedy(lm, prompt, 10)
    # And the same one at a time.
    alone = one_at_a_time(lm).generate(prompts, max_new_tokens=10, stop=())
    assert [g.tokens for g in alone] == [g.tokens for g in gens]


def test_max_new_tokens_ends_with_length(lm):
    (gen,) = lm.generate([lm.encode("The cat sat")], max_new_tokens=5, stop=())
    assert len(gen.tokens) == 5
    assert gen.stopped == "length"


def test_a_stop_string_cuts_the_text(lm):
    prompt = lm.encode("The cat sat")
    (full,) = lm.generate([prompt], max_new_tokens=16, stop=())
    assert len(full.tokens) == 16
    # A stop string across the boundary of the 3rd and 4th tokens.
    boundary = len(lm.decode(full.tokens[:3]))
    stop = full.text[boundary - 1 : boundary + 1]
    cut = full.text.find(stop)
    streamed: list[str] = []
    (gen,) = lm.generate([prompt], max_new_tokens=16, stop=(stop,),
                         on_text=lambda row, text: streamed.append(text))  # fmt: skip
    assert gen.stopped == "stop"
    assert gen.text == full.text[:cut]
    assert stop not in gen.text
    assert gen.tokens == full.tokens[: len(gen.tokens)]
    assert len(gen.tokens) < 16
    assert stop in lm.decode(gen.tokens)
    assert "".join(streamed) == gen.text


def test_the_first_of_several_stop_strings_wins(lm):
    prompt = lm.encode("Hello world! The")
    (full,) = lm.generate([prompt], max_new_tokens=16, stop=())
    late, early = full.text[-3:], full.text[3:5]
    expected = full.text[: min(full.text.find(late), full.text.find(early))]
    (gen,) = lm.generate([prompt], max_new_tokens=16, stop=(late, early))
    assert gen.stopped == "stop"
    assert gen.text == expected


def test_streamed_text_adds_up_to_the_answer_in_a_batch(lm):
    prompts = [lm.encode(p) for p in PROMPTS[:3]]
    streamed = {0: "", 1: "", 2: ""}

    def on_text(row: int, text: str) -> None:
        streamed[row] += text

    gens = lm.generate(prompts, max_new_tokens=8, stop=(), on_text=on_text)
    assert [streamed[i] for i in range(3)] == [g.text for g in gens]


def test_an_end_of_sequence_token_stops(lm):
    prompt = lm.encode("The cat sat")
    first = naive_greedy(lm, prompt, 1)[0]
    ending = LanguageModel(lm.loaded, lm.tok)
    ending.eos_ids = frozenset({first})
    (gen,) = ending.generate([prompt], max_new_tokens=8, stop=())
    assert gen.stopped == "eos"
    assert gen.tokens == []
    assert gen.text == ""


def test_sampling_with_a_seed_repeats(lm):
    prompts = [lm.encode(p) for p in PROMPTS[:2]]
    runs = [lm.generate(prompts, max_new_tokens=12, stop=(), temperature=1.0, seed=7)
            for _ in range(2)]  # fmt: skip
    assert [g.tokens for g in runs[0]] == [g.tokens for g in runs[1]]
    other = lm.generate(prompts, max_new_tokens=12, stop=(), temperature=1.0, seed=8)
    assert [g.tokens for g in other] != [g.tokens for g in runs[0]]
    greedy = lm.generate(prompts, max_new_tokens=12, stop=())
    assert [g.tokens for g in runs[0]] != [g.tokens for g in greedy]


def test_a_sample_does_not_depend_on_the_batch(lm):
    # The same seed gives each prompt the same sample whatever the batch size and whatever
    # else is in its batch: each prompt has its own generator.
    prompts = [lm.encode(p) for p in PROMPTS]
    alone = [LanguageModel(lm.loaded, lm.tok, batch_size=1).generate(
        prompts, max_new_tokens=10, stop=(), temperature=1.2, seed=5)]  # fmt: skip
    for size in (2, 3, len(prompts)):
        batched = LanguageModel(lm.loaded, lm.tok, batch_size=size).generate(
            prompts, max_new_tokens=10, stop=(), temperature=1.2, seed=5
        )
        assert [g.tokens for g in batched] == [g.tokens for g in alone[0]]
    # keys say which prompt is which: the second prompt asked alone, under its own key.
    (second,) = lm.generate(prompts[1:2], max_new_tokens=10, stop=(), temperature=1.2, seed=5,
                            keys=[1])  # fmt: skip
    assert second.tokens == alone[0][1].tokens


@pytest.mark.parametrize(
    ("top_k", "top_p"), [(1, 1.0), (0, 0.0), (0, 1e-6), (1, 0.5)]
)  # fmt: skip
def test_sampling_from_one_token_is_greedy(lm, top_k, top_p):
    prompts = [lm.encode(p) for p in PROMPTS]
    greedy = lm.generate(prompts, max_new_tokens=10, stop=())
    sampled = lm.generate(prompts, max_new_tokens=10, stop=(), temperature=1.5, top_k=top_k,
                          top_p=top_p, seed=3)  # fmt: skip
    assert [g.tokens for g in sampled] == [g.tokens for g in greedy]


def test_top_k_keeps_sampling_among_the_k_best(lm):
    prompt = lm.encode("The cat sat")
    allowed = {i for i, _ in top_tokens(lm.next_distribution(prompt), 3)}
    firsts = {
        lm.generate([prompt], max_new_tokens=1, stop=(), temperature=5.0, top_k=3,
                    seed=seed)[0].tokens[0]
        for seed in range(20)
    }  # fmt: skip
    assert firsts <= allowed
    assert len(firsts) > 1


def test_prompt_plus_new_tokens_past_the_context(lm):
    prompt = lm.encode("The cat sat on the mat. " * 5)
    assert len(prompt) < 64
    with pytest.raises(InputError, match="--max-new-tokens"):
        lm.generate([prompt], max_new_tokens=64, stop=())


# --- models that cannot prompt ---------------------------------------------------------


def test_an_encoder_is_refused(tiny_bert_dir):
    resolved = resolve(str(tiny_bert_dir))
    loaded = load_model(resolved, device="cpu")
    with pytest.raises(ModelError, match="is an encoder; prompting needs a decoder"):
        LanguageModel(loaded, LoadedTokenizer.for_model(resolved))


# --- scoring as token trees (core.packing) ----------------------------------------------

SHARED = "Capitals:\nFrance => Paris\nPeru => Lima\n"


def tree_requests(lm: LanguageModel) -> list[Request]:
    """Prompts sharing a long beginning, choices sharing first tokens, a repeat, and two
    prompts that share nothing with the rest."""
    choices = [" Mexico City", " Mexico", " Buenos Aires", " Kuala Lumpur", " Rome"]
    out = [request(lm, SHARED + q + " =>", choices) for q in ("Mexico", "Italy", "Chile")]
    out.append(request(lm, SHARED + "Mexico =>", choices))
    out.append(request(lm, "Opposite of hot:", [" cold", " not very warm at all"]))
    out.append(request(lm, "A", [" kitten", " cat"]))
    return out


@pytest.fixture(scope="module", params=["tiny_gpt2_dir", "tiny_llama_dir", "tiny_gemma3_dir"])
def any_lm(request):
    resolved = resolve(str(request.getfixturevalue(request.param)))
    loaded = load_model(resolved, device="cpu")
    return LanguageModel(loaded, LoadedTokenizer.for_model(resolved), batch_size=8)


def test_tree_scoring_equals_the_plain_pass_of_each_choice(any_lm, monkeypatch):
    lm = any_lm
    requests = tree_requests(lm)
    assert min(len(r.context) for r in requests[:4]) >= 20  # a prefix worth computing once

    def refuse(*_: object) -> None:
        raise AssertionError("the padded route ran")

    monkeypatch.setattr(lm, "_score_batch", refuse)
    got = lm.score(requests)
    for req, scores in zip(requests, got):
        assert [s.tokens for s in scores] == req.continuations
        for score in scores:
            expected, greedy = direct_score(lm, req.context, score.tokens)
            assert_close(score.token_logprobs, expected)
            assert score.greedy is greedy


def test_tree_scoring_equals_the_padded_route(any_lm, monkeypatch):
    lm = any_lm
    requests = tree_requests(lm)
    trees = lm.score(requests)
    monkeypatch.setattr(lm, "_windows", lambda _: (False, None))
    padded = lm.score(requests)
    for a, b in zip(trees, padded):
        for x, y in zip(a, b):
            assert_close(x.token_logprobs, y.token_logprobs)
            assert x.greedy == y.greedy


def test_tree_scoring_runs_each_shared_token_once(lm):
    requests = tree_requests(lm)[:4]  # all sharing the instruction and examples
    fed: list[int] = []
    handle = lm.model.register_forward_pre_hook(
        lambda _m, _a, kw: fed.append(kw["input_ids"].numel()), with_kwargs=True
    )
    try:
        seen: list[int] = []
        lm.score(requests, on_batch=seen.append)
    finally:
        handle.remove()
    assert sum(seen) == 4
    common = packing.common_prefix([r.context for r in requests])
    assert common >= len(lm.encode(SHARED)) - 1
    plain = sum(len(r.context) + len(c) - 1 for r in requests for c in r.continuations)
    # The prefix once, then one row holding every prompt's own tail and its choices.
    assert fed[0] == common and len(fed) == 2
    assert sum(fed) < plain / 4


def test_a_prompt_past_a_sliding_window_still_scores_right(tiny_gemma3_dir):
    """The tiny Gemma's window is 4 tokens: the sliding layers' own mask must cut."""
    resolved = resolve(str(tiny_gemma3_dir))
    lm = LanguageModel(load_model(resolved, device="cpu"), LoadedTokenizer.for_model(resolved))
    assert lm._windows(tree_requests(lm)) == (True, 4)
    (scores,) = lm.score([request(lm, SHARED, [" Rome is far", " Paris"])])
    for score in scores:
        expected, _ = direct_score(lm, lm.split_pair(SHARED, score.continuation)[0], score.tokens)
        assert_close(score.token_logprobs, expected)
