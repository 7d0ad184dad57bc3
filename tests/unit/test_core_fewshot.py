"""Prompts, outcomes and accuracy in ``llmcli.core.fewshot``."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from llmcli.core import fewshot as core
from llmcli.core import tasks
from llmcli.core.fewshot import Case, Outcome, PromptBuilder, Style
from llmcli.core.lm import ChoiceScore
from llmcli.core.tasks import Item, Task, Template
from llmcli.errors import ModelError, UsageError
from llmcli.models.tokenizer import LoadedTokenizer

EOT = "<|endoftext|>"
INSTRUCTION = "Translate English to French:"
EXAMPLES = [
    Item("sea otter", ("loutre de mer",), split="example"),
    Item("peppermint", ("menthe poivrée",), split="example"),
    Item("plush girafe", ("girafe peluche", "girafe en peluche"), split="example"),
]
CHEESE = Item("cheese", ("fromage",))

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}"
    "{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


# The tiny model runs on one thread (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tok(bpe_dir):
    return LoadedTokenizer.from_folder("tinybpe", bpe_dir)


def en_fr(instruction: str = INSTRUCTION, template: str = "{input} => {output}") -> Task:
    return Task("en-fr", instruction, Template(template), [*EXAMPLES, CHEESE], shuffle=False)


def chat_folder(bpe_dir: Path, tmp_path: Path, **config: object) -> LoadedTokenizer:
    folder = tmp_path / "chatbpe"
    shutil.copytree(bpe_dir, folder)
    path = folder / "tokenizer_config.json"
    settings = json.loads(path.read_text(encoding="utf-8")) | config
    path.write_text(json.dumps(settings), encoding="utf-8")
    return LoadedTokenizer.from_folder("chatbpe", folder)


# --- plain prompts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shots", "expected"),
    [
        (0, "Translate English to French:\n\ncheese =>"),
        (1, "Translate English to French:\n\nsea otter => loutre de mer\n\ncheese =>"),
        (
            3,
            "Translate English to French:\n\nsea otter => loutre de mer\n\n"
            "peppermint => menthe poivrée\n\nplush girafe => girafe peluche\n\ncheese =>",
        ),
    ],
)
def test_prompt_follows_lm_evals_layout(tok, shots, expected):
    builder = PromptBuilder(en_fr(), tok, Style())
    text, delimiter = builder.text(EXAMPLES[:shots], "cheese")
    assert text == expected
    assert delimiter == " "
    assert builder.ids(text) == list(tok.hf.encode(expected, add_special_tokens=False).ids)


def test_prompt_without_an_instruction_and_with_another_template(tok):
    task = en_fr(instruction="", template="Q: {input}\nA: {output}")
    text, delimiter = PromptBuilder(task, tok, Style()).text(EXAMPLES[:2], "cheese")
    assert (
        text
        == "Q: sea otter\nA: loutre de mer\n\nQ: peppermint\nA: menthe poivrée\n\nQ: cheese\nA:"
    )
    assert delimiter == " "
    assert PromptBuilder(task, tok, Style()).text([], "cheese")[0] == "Q: cheese\nA:"


def test_prompt_with_another_separator(tok):
    text, _ = PromptBuilder(en_fr(), tok, Style(separator="\n")).text(EXAMPLES[:1], "cheese")
    assert text == "Translate English to French:\nsea otter => loutre de mer\ncheese =>"


def test_bos_puts_the_bos_token_text_first(tok):
    builder = PromptBuilder(en_fr(), tok, Style(bos=True))
    text, _ = builder.text(EXAMPLES[:1], "cheese")
    assert text == EOT + "Translate English to French:\n\nsea otter => loutre de mer\n\ncheese =>"
    ids = builder.ids(text)
    assert ids[0] == tok.bos_id == tok.hf.token_to_id(EOT)
    assert ids.count(tok.bos_id) == 1  # read as the special token, not as its characters


def test_bos_without_a_bos_token(bpe_dir, tmp_path):
    folder = tmp_path / "nobos"
    shutil.copytree(bpe_dir, folder)
    (folder / "tokenizer_config.json").write_text("{}", encoding="utf-8")
    bare = LoadedTokenizer.from_folder("nobos", folder)
    with pytest.raises(ModelError, match="has no BOS token"):
        PromptBuilder(en_fr(), bare, Style(bos=True)).text([], "cheese")


def test_tokenizer_adds_bos(tok, bpe_dir, tmp_path):
    from tokenizers import Tokenizer, processors

    assert core.tokenizer_adds_bos(tok) is False
    folder = tmp_path / "withbos"
    shutil.copytree(bpe_dir, folder)
    hf = Tokenizer.from_file(str(folder / "tokenizer.json"))
    eot = hf.token_to_id(EOT)
    hf.post_processor = processors.TemplateProcessing(
        single=f"{EOT} $A", pair=f"{EOT} $A $B", special_tokens=[(EOT, eot)]
    )
    hf.save(str(folder / "tokenizer.json"))
    assert core.tokenizer_adds_bos(LoadedTokenizer.from_folder("withbos", folder)) is True


# --- chat prompts ------------------------------------------------------------------------


def test_chat_prompt_from_tokenizer_config(bpe_dir, tmp_path):
    chat = chat_folder(bpe_dir, tmp_path, chat_template=CHAT_TEMPLATE)
    builder = PromptBuilder(en_fr(), chat, Style(chat=True))
    text, delimiter = builder.text(EXAMPLES[:1], "cheese")
    assert text == (
        f"{EOT}<|system|>\nTranslate English to French:{EOT}\n"
        f"<|user|>\nsea otter =>{EOT}\n"
        f"<|assistant|>\nloutre de mer{EOT}\n"
        f"<|user|>\ncheese =>{EOT}\n"
        "<|assistant|>\n"
    )
    assert delimiter == ""
    eot = chat.hf.token_to_id(EOT)
    assert builder.ids(text).count(eot) == 5


def test_chat_prompt_without_instruction_or_examples(bpe_dir, tmp_path):
    chat = chat_folder(bpe_dir, tmp_path, chat_template=CHAT_TEMPLATE)
    text, _ = PromptBuilder(en_fr(instruction=""), chat, Style(chat=True)).text([], "cheese")
    assert text == f"{EOT}<|user|>\ncheese =>{EOT}\n<|assistant|>\n"


def test_chat_template_jinja_file_comes_first(bpe_dir, tmp_path):
    chat = chat_folder(bpe_dir, tmp_path, chat_template="ignored {{ messages }}")
    # Block tags eat the line break after them, as transformers renders templates.
    (chat.folder / "chat_template.jinja").write_text(
        "{% for m in messages %}\n[{{ m.role }}] {{ m.content }}\n{% endfor %}\n"
        "{% if add_generation_prompt %}\n[assistant]{% endif %}",
        encoding="utf-8",
    )
    text, _ = PromptBuilder(en_fr(), chat, Style(chat=True)).text(EXAMPLES[2:], "cheese")
    assert text == (
        "[system] Translate English to French:\n[user] plush girafe =>\n"
        "[assistant] girafe peluche\n[user] cheese =>\n[assistant]"
    )


def test_named_chat_templates_take_the_default(bpe_dir, tmp_path):
    named = [
        {"name": "tool_use", "template": "tools"},
        {"name": "default", "template": "{{ messages[-1]['content'] }}!"},
    ]
    chat = chat_folder(bpe_dir, tmp_path, chat_template=named)
    assert PromptBuilder(en_fr(), chat, Style(chat=True)).text([], "cheese")[0] == "cheese =>!"


def test_a_folder_without_a_chat_template(tok):
    with pytest.raises(UsageError) as exc:
        PromptBuilder(en_fr(), tok, Style(chat=True))
    assert str(exc.value) == (
        "tinybpe has no chat template (it is not an instruct model); drop --chat"
    )


def test_a_chat_template_that_does_not_parse(bpe_dir, tmp_path):
    chat = chat_folder(bpe_dir, tmp_path, chat_template="{% for m in messages %}")
    with pytest.raises(ModelError, match="the chat template of chatbpe does not parse"):
        PromptBuilder(en_fr(), chat, Style(chat=True))


def test_a_chat_template_that_refuses(bpe_dir, tmp_path):
    refusing = (
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}"
    )
    chat = chat_folder(bpe_dir, tmp_path, chat_template=refusing)
    builder = PromptBuilder(en_fr(), chat, Style(chat=True))
    with pytest.raises(ModelError, match="refused the prompt: no system"):
        builder.text([], "cheese")
    assert PromptBuilder(en_fr(instruction=""), chat, Style(chat=True)).text([], "x")[0] == ""


# --- cases -------------------------------------------------------------------------------


def test_make_cases_for_the_first_test_item(tok):
    task = tasks.load_builtin("gpt3-en-fr")
    builder = PromptBuilder(task, tok, Style())
    cases = core.make_cases(task, builder, shots=[0, 1, 3], queries=None, seed=None, limit=1)
    assert [(c.shots, c.query, c.index) for c in cases] == [(0, "cheese", 0), (1, "cheese", 0),
                                                             (3, "cheese", 0)]  # fmt: skip
    assert [[e.input for e in c.examples] for c in cases] == [
        [],
        ["sea otter"],
        ["sea otter", "peppermint", "plush girafe"],
    ]
    for case in cases:
        assert case.item is task.tests[0]
        assert case.expected == ["fromage"]
        assert case.choices is None
        assert case.ids == builder.ids(case.prompt)
        assert case.delimiter == " "
        assert case.prompt.endswith("\n\ncheese =>")


def test_make_cases_orders_queries_then_shots(tok):
    task = tasks.load_builtin("capitals")
    builder = PromptBuilder(task, tok, Style())
    cases = core.make_cases(task, builder, shots=[2, 0], queries=None, seed=5, limit=3)
    assert [(c.index, c.shots) for c in cases] == [(0, 2), (0, 0), (1, 2), (1, 0), (2, 2), (2, 0)]
    assert [c.query for c in cases[::2]] == [t.input for t in task.tests[:3]]
    everything = core.make_cases(task, builder, shots=[0], queries=None, seed=5)
    assert len(everything) == len(task.tests)


def test_make_cases_for_free_and_known_queries(tok):
    task = tasks.load_builtin("capitals")
    builder = PromptBuilder(task, tok, Style())
    known = task.tests[0].input
    example = task.examples[0].input
    cases = core.make_cases(task, builder, shots=[1], queries=["Atlantis", known, example],
                            seed=None)  # fmt: skip
    free, asked, shown = cases
    assert free.item is None and free.expected is None
    assert asked.item is task.tests[0] and asked.expected == list(task.tests[0].outputs)
    assert shown.item is task.examples[0]
    assert [e.input for e in shown.examples] != [example]  # never its own example


def test_make_cases_with_choices_scores_free_queries(tok):
    task = tasks.load_builtin("capitals")
    tasks.apply_choices(task, ["Paris", "Rome"])
    builder = PromptBuilder(task, tok, Style())
    (case,) = core.make_cases(task, builder, shots=[0], queries=["Narnia"], seed=None)
    assert case.choices == ("Paris", "Rome")


# --- outcomes ----------------------------------------------------------------------------


def scored_case(choices: tuple[str, ...], answer: int, shots: int = 0) -> Case:
    item = Item("q", (choices[answer],), choices, answer)
    return Case("t", shots, "q", item, [], "q =>", [1, 2], " ")


def generated_case(expected: tuple[str, ...] | None, shots: int = 0) -> Case:
    item = Item("q", expected) if expected is not None else None
    return Case("t", shots, "q", item, [], "q =>", [1, 2, 3], " ")


def choice(text: str, logprob: float, n_tokens: int = 1) -> ChoiceScore:
    per = [logprob / n_tokens] * n_tokens
    return ChoiceScore(text, " " + text, list(range(n_tokens)), per, False)


def test_acc_and_acc_norm_can_disagree():
    # "a" is likelier in all, "longer" per character.
    scores = [choice("a", -2.0), choice("longer", -3.0, 2)]
    outcome = Outcome(scored_case(("a", "longer"), 1), scores=scores)
    assert outcome.prediction == "a"
    assert outcome.prediction_norm == "longer"
    assert outcome.correct is False
    assert outcome.correct_norm is True
    flipped = Outcome(scored_case(("a", "longer"), 0), scores=outcome.scores)
    assert flipped.correct is True
    assert flipped.correct_norm is False


def test_probabilities_are_shares_that_sum_to_one():
    scores = [choice("x", -1.0), choice("y", -2.0), choice("z", -700.0)]
    outcome = Outcome(scored_case(("x", "y", "z"), 0), scores=scores)
    shares = outcome.probabilities()
    total = math.exp(-1.0) + math.exp(-2.0) + math.exp(-700.0)
    assert shares == pytest.approx([math.exp(-1.0) / total, math.exp(-2.0) / total, 0.0])
    assert math.fsum(shares) == pytest.approx(1.0)
    # Very unlikely choices still share without underflow.
    tiny = Outcome(scored_case(("x", "y"), 0), scores=[choice("x", -1000.0), choice("y", -1001.0)])
    assert tiny.probabilities() == pytest.approx([1 / (1 + math.exp(-1)), 1 / (1 + math.exp(1))])
    assert Outcome(generated_case(("a",)), completion="a").probabilities() == []


def test_generated_answers_match_ignoring_case_and_spaces():
    assert Outcome(generated_case(("fromage",)), completion=" Fromage ").correct is True
    assert Outcome(generated_case(("fromage",)), completion=" Fromage ").prediction == "Fromage"
    assert Outcome(generated_case(("small", "little")), completion="little").correct is True
    assert Outcome(generated_case(("fromage",)), completion="fromages").correct is False
    assert Outcome(generated_case(("fromage",)), completion="").correct is False
    assert Outcome(generated_case(None), completion="fromage").correct is None
    assert Outcome(generated_case(("fromage",))).correct is None  # nothing answered yet
    assert Outcome(generated_case(("fromage",)), completion="x").correct_norm is False


@pytest.mark.parametrize(
    ("answer", "expected", "right"),
    [
        ("fromage", ["fromage"], True),
        ("  FROMAGE\t", ["fromage"], True),
        ("loutre  de\nmer", ["Loutre de mer"], True),
        ("loutre de mer", ["loutre  de mer "], True),
        ("Straße", ["STRASSE"], True),  # casefold, not lower
        ("fromage.", ["fromage"], False),
        ("from age", ["fromage"], False),
        ("", ["fromage"], False),
        ("b", ["a", "B"], True),
        ("a", [], False),
    ],
)
def test_matches(answer, expected, right):
    assert core.matches(answer, expected) is right


def test_to_dict_of_a_scored_outcome():
    outcome = Outcome(scored_case(("yes", "no"), 1, shots=3),
                      scores=[choice("yes", -0.5), choice("no", -1.5, 3)])  # fmt: skip
    row = outcome.to_dict("tiny")
    assert set(row) == {"task", "model", "shots", "draw", "query", "examples", "prompt",
                        "prompt_tokens", "completion", "prediction", "expected", "correct",
                        "correct_norm", "scores"}  # fmt: skip
    assert (row["model"], row["shots"], row["prompt_tokens"]) == ("tiny", 3, 2)
    assert row["prediction"] == "yes"
    assert row["expected"] == ["no"]
    assert row["correct"] is False
    assert row["completion"] is None
    yes, no = row["scores"]
    assert set(yes) == {"choice", "continuation", "tokens", "logprob", "logprob_per_char",
                        "logprob_per_token", "probability", "share", "greedy"}  # fmt: skip
    assert no["continuation"] == " no"
    assert no["logprob_per_char"] == pytest.approx(-0.75)
    assert no["logprob_per_token"] == pytest.approx(-0.5)
    assert yes["probability"] == pytest.approx(math.exp(-0.5))
    assert yes["share"] + no["share"] == pytest.approx(1.0)
    json.dumps(row)  # plain JSON values only


def test_to_dict_of_a_generated_outcome():
    row = Outcome(generated_case(("chat",)), completion=" chat", stopped="stop").to_dict("m")
    assert set(row) == {"task", "model", "shots", "draw", "query", "examples", "prompt",
                        "prompt_tokens", "completion", "prediction", "expected", "correct",
                        "stopped"}  # fmt: skip
    assert (row["completion"], row["prediction"], row["correct"], row["stopped"]) == (
        " chat", "chat", True, "stop")  # fmt: skip
    assert row["prompt_tokens"] == 3


# --- evaluation --------------------------------------------------------------------------


def test_summarize_counts_per_shot_count():
    outcomes = []
    for i in range(4):  # zero-shot: 1 of 4 right
        outcomes.append(Outcome(generated_case(("x",), 0), completion="x" if i == 0 else "y"))
    for i in range(4):  # three-shot: 3 of 4 right
        outcomes.append(Outcome(generated_case(("x",), 3), completion="x" if i else "y"))
    outcomes.append(Outcome(generated_case(None, 3), completion="x"))  # not counted
    zero, three, five = core.summarize(outcomes, [0, 3, 5])
    assert (zero.shots, zero.n, zero.correct, zero.correct_norm) == (0, 4, 1, None)
    assert (three.shots, three.n, three.correct) == (3, 4, 3)
    assert zero.accuracy == 0.25 and three.accuracy == 0.75
    assert zero.stderr == pytest.approx(math.sqrt(0.25 * 0.75 / 3))
    assert three.stderr == pytest.approx(math.sqrt(0.75 * 0.25 / 3))
    assert zero.accuracy_norm is None
    assert (five.n, five.correct, five.accuracy, five.stderr) == (0, 0, 0.0, 0.0)


def test_summarize_scored_outcomes_counts_acc_norm():
    right = [choice("a", -1.0), choice("longer", -3.0, 2)]  # acc: a; acc_norm: longer
    outcomes = [
        Outcome(scored_case(("a", "longer"), 0, shots=1), scores=right),
        Outcome(scored_case(("a", "longer"), 1, shots=1), scores=right),
        Outcome(scored_case(("a", "longer"), 1, shots=1), scores=right),
    ]
    (one,) = core.summarize(outcomes, [1])
    assert (one.n, one.correct, one.correct_norm) == (3, 1, 2)
    assert one.accuracy == pytest.approx(1 / 3)
    assert one.accuracy_norm == pytest.approx(2 / 3)
    assert one.stderr == pytest.approx(math.sqrt((1 / 3) * (2 / 3) / 2))


def test_stderr_of_a_single_item_is_zero():
    (s,) = core.summarize([Outcome(generated_case(("x",)), completion="x")], [0])
    assert (s.n, s.accuracy, s.stderr) == (1, 1.0, 0.0)


def test_read_queries_and_describe_task():
    assert core.read_queries("  cheese \n\n\tdog\n") == ["cheese", "dog"]
    row = core.describe_task(tasks.load_builtin("sentiment"))
    assert row == {"task": "sentiment", "description": "Positive or negative short reviews",
                   "kind": "choice", "examples": 8, "tests": 40,
                   "source": "task sentiment"}  # fmt: skip


# --- running cases on the tiny model -----------------------------------------------------


def test_run_cases_keeps_the_order_of_mixed_cases(tiny_gpt2_dir):
    from llmcli.core.lm import LanguageModel
    from llmcli.models.loader import load_model
    from llmcli.models.resolve import resolve

    resolved = resolve(str(tiny_gpt2_dir))
    tok = LoadedTokenizer.for_model(resolved)
    lm = LanguageModel(load_model(resolved, device="cpu"), tok, batch_size=3)
    items = [
        Item("cat", ("mat",), split="example"),
        Item("The cat", ("sat",)),
        Item("It's a", ("blue", "red"), ("blue", "red"), 0),
        Item("Hello", ("world",)),
        Item("A kitten", ("cat", "mat"), ("cat", "mat"), 1),
        Item("young", ("cat",)),
    ]
    task = Task("mixed", "", Template("{input} {output}"), items)
    builder = PromptBuilder(task, tok, Style())
    cases = core.make_cases(task, builder, shots=[0, 1], queries=None, seed=0)
    outcomes = list(core.run_cases(lm, cases, max_new_tokens=3, stop=()))
    assert [o.case for o in outcomes] == cases
    for outcome in outcomes:
        case = outcome.case
        if case.choices:
            assert outcome.completion is None and outcome.scores is not None
            assert [s.choice for s in outcome.scores] == list(case.choices)
            for s, c in zip(outcome.scores, case.choices):
                assert s.tokens == lm.split_pair(case.prompt, " " + c)[1]
            expected = lm.score([core._request(lm, case)])[0]
            assert [s.logprob for s in outcome.scores] == pytest.approx(
                [s.logprob for s in expected], abs=1e-5
            )
        else:
            assert outcome.scores is None
            (gen,) = lm.generate([case.ids], max_new_tokens=3, stop=())
            assert outcome.completion == gen.text
            assert outcome.stopped == gen.stopped


def test_a_free_query_on_a_choice_task_has_no_right_answer() -> None:
    """A query that is not a task item is scored against the choices, never marked."""
    task = tasks.load_builtin("sentiment")
    case = Case(task.name, 0, "Cold soup.", None, [], "Review: Cold soup.\nSentiment:",
                free_choices=task.choices)  # fmt: skip
    assert case.choices == ("positive", "negative")
    assert case.expected is None
    scores = [ChoiceScore("positive", " positive", [1], [-2.0], False),
              ChoiceScore("negative", " negative", [2], [-1.0], True)]  # fmt: skip
    outcome = Outcome(case, scores=scores)
    assert outcome.prediction == "negative"
    assert outcome.correct is None and outcome.correct_norm is None


# --- drawing the examples as lm-evaluation-harness does ---------------------------------


def lm_eval_examples(docs, asked, k, seed, same_split):
    """lm-evaluation-harness 0.4's ContextSampler, written out: one random.Random(seed) per
    run (a shot count), consumed in the order the docs are asked; get_context samples k + 1
    where the few-shot split is the test split, drops the doc and keeps the first k."""
    import random

    rnd = random.Random(seed)
    out = []
    for doc in asked:
        drawn = rnd.sample(docs, k + 1 if same_split else k)
        out.append([x for x in drawn if x != doc][:k])
    return out


@pytest.mark.parametrize("name", ["capitals", "antonyms", "sentiment"])
@pytest.mark.parametrize("seed", [None, 0, 1234, 99])
def test_the_default_draw_is_lm_evals(tok, name, seed):
    task = tasks.load_builtin(name)
    builder = PromptBuilder(task, tok, Style())
    cases = core.make_cases(task, builder, shots=[0, 1, 3], queries=None, seed=seed, limit=12)
    for k in (1, 3):
        got = [c.examples for c in cases if c.shots == k]
        same_split = not task.has_example_split
        want = lm_eval_examples(task.examples, task.tests[:12], k, 1234 if seed is None else seed,
                                same_split)  # fmt: skip
        assert got == want
        assert all(c.draw == "lm-eval" for c in cases)
    # Item 2's examples depend on the draws before it: ask it alone and they differ.
    second = [c.examples for c in cases if c.shots == 3][1]
    alone = core.make_cases(task, builder, shots=[3], queries=[task.tests[1].input], seed=seed)
    assert alone[0].examples != second or len(task.examples) <= 3


def test_the_same_split_draw_never_shows_an_item_itself(tok):
    rows = [{"input": f"w{i}", "output": f"o{i}"} for i in range(6)]
    task = tasks.parse_jsonl("\n".join(json.dumps(r) for r in rows), source="t", name="t")
    assert not task.has_example_split
    builder = PromptBuilder(task, tok, Style())
    cases = core.make_cases(task, builder, shots=[5], queries=None, seed=7)
    for case in cases:
        assert case.item not in case.examples and len(case.examples) == 5
    assert [c.examples for c in cases] == lm_eval_examples(task.examples, task.tests, 5, 7, True)


def test_the_nested_draw_keeps_the_fewer_shot_examples(tok):
    task = tasks.load_builtin("capitals")
    builder = PromptBuilder(task, tok, Style())
    cases = core.make_cases(task, builder, shots=[1, 3, 5], queries=None, seed=3, limit=8,
                            draw="nested")  # fmt: skip
    for index in range(8):
        one, three, five = (c.examples for c in cases if c.index == index)
        assert one == three[:1] and three == five[:3]
        assert all(c.draw == "nested" for c in cases)
    lm_eval = core.make_cases(task, builder, shots=[1, 3], queries=None, seed=3, limit=8)
    assert [c.examples for c in lm_eval if c.shots == 3] != [
        c.examples for c in cases if c.shots == 3]  # fmt: skip


def test_an_empty_instruction_starts_the_prompt_with_the_first_example(tok):
    task = tasks.load_task("capitals", instruction="")
    builder = PromptBuilder(task, tok, Style())
    (case,) = core.make_cases(task, builder, shots=[1], queries=None, seed=1, limit=1)
    first = case.examples[0]
    assert case.prompt.startswith(f"{first.input} => {first.output}\n\n")
