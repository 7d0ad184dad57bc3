"""``llmpath fewshot`` and ``llmpath next`` on the tiny GPT-2: records, formats and errors.

The numbers themselves are checked against transformers in ``tests/unit/test_core_lm.py``;
here the command line must build the right prompts and carry the results to each format.
The tiny model reads 64 positions, so most runs use a task file of short words.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from llmcli.core import tasks
from llmcli.models.loader import load_model
from llmcli.models.resolve import resolve
from llmcli.models.tokenizer import LoadedTokenizer

TINY_TASK: list[dict[str, object]] = [
    {"task": "tiny", "description": "tiny words", "instruction": "Say:",
     "template": "{input} => {output}"},
    {"input": "cat", "output": "mat", "split": "example"},
    {"input": "blue", "output": "sundress", "split": "example"},
    {"input": "young", "output": "kitten", "split": "example"},
    {"input": "Hello", "output": "world", "split": "example"},
    {"input": "The", "output": "cat", "split": "test"},
    {"input": "fields", "output": ["spring", "summer"], "split": "test"},
    {"input": "sat", "output": "on", "split": "test"},
]  # fmt: skip
RECORD_KEYS = {"task", "model", "shots", "draw", "query", "examples", "prompt", "prompt_tokens",
               "completion", "prediction", "expected", "correct"}  # fmt: skip
GPT3_PROMPTS = [
    "Translate English to French:\n\ncheese =>",
    "Translate English to French:\n\nsea otter => loutre de mer\n\ncheese =>",
    "Translate English to French:\n\nsea otter => loutre de mer\n\npeppermint => menthe poivrée"
    "\n\nplush girafe => girafe peluche\n\ncheese =>",
]
PNG = b"\x89PNG\r\n\x1a\n"


# The tiny model runs on one thread (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_task(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")  # fmt: skip
    return path


@pytest.fixture
def tiny_task(tmp_path) -> Path:
    return write_task(tmp_path / "tiny.jsonl", TINY_TASK)


@pytest.fixture(scope="module")
def tok(tiny_gpt2_dir):
    return LoadedTokenizer.from_folder("tinygpt2", tiny_gpt2_dir)


@pytest.fixture
def fewshot(cli, tiny_gpt2_dir, tiny_task):
    """``fewshot(*args)``: the tiny task on the tiny model, short answers, nothing on stdin."""

    def run(*args: object, stdin: bytes = b""):
        return cli("fewshot", "-m", tiny_gpt2_dir, "-t", tiny_task, "--max-new-tokens", "3",
                   *args, stdin=stdin)  # fmt: skip

    return run


# --- prompts only ------------------------------------------------------------------------


def test_show_prompt_prints_the_exact_prompts(cli, tiny_gpt2_dir, tok, monkeypatch):
    def no_weights(*args, **kwargs):
        raise AssertionError("--show-prompt loaded the weights")

    monkeypatch.setattr("llmcli.models.loader.load_model", no_weights)
    result = cli("fewshot", "--show-prompt", "-f", "jsonl", "-m", tiny_gpt2_dir, stdin=b"")
    assert result.code == 0, result.err
    rows = result.jsonl()
    assert [r["shots"] for r in rows] == [0, 1, 3]
    assert [r["prompt"] for r in rows] == GPT3_PROMPTS
    assert [r["examples"] for r in rows] == [
        [],
        ["sea otter"],
        ["sea otter", "peppermint", "plush girafe"],
    ]
    for row in rows:
        assert row["task"] == "gpt3-en-fr"
        assert row["query"] == "cheese"
        assert row["expected"] == ["fromage"]
        assert row["ids"] == list(tok.hf.encode(row["prompt"], add_special_tokens=False).ids)
        assert row["prompt_tokens"] == len(row["ids"])


def test_show_prompt_needs_no_weights(cli, bpe_dir):
    result = cli("fewshot", "--show-prompt", "-f", "jsonl", "-m", bpe_dir, "-k", "1", stdin=b"")
    assert result.code == 0, result.err
    (row,) = result.jsonl()
    assert row["prompt"] == GPT3_PROMPTS[1]


def test_show_prompt_with_bos_and_choices(cli, tiny_gpt2_dir, tiny_task):
    result = cli("fewshot", "--show-prompt", "-f", "jsonl", "-m", tiny_gpt2_dir, "-t", tiny_task,
                 "--bos", "--choices", "mat,cat", "-k", "0", stdin=b"")  # fmt: skip
    assert result.code == 0, result.err
    (row,) = result.jsonl()
    assert row["prompt"] == "<|endoftext|>Say:\n\nThe =>"
    assert row["ids"][0] == 0  # <|endoftext|> read as the special token
    assert row["continuations"] == [" mat", " cat"]


def test_show_prompt_as_a_table(cli, tiny_gpt2_dir):
    result = cli("fewshot", "--show-prompt", "-f", "table", "-m", tiny_gpt2_dir, stdin=b"")
    assert result.code == 0, result.err
    assert "gpt3-en-fr · 'cheese' · zero-shot" in result.out
    assert "3-shot" in result.out
    assert "plush girafe => girafe peluche" in result.out


# --- answers -----------------------------------------------------------------------------


def test_jsonl_records_one_per_query_and_shot_count(fewshot):
    result = fewshot("-f", "jsonl")
    assert result.code == 0, result.err
    rows = result.jsonl()
    assert [(r["query"], r["shots"]) for r in rows] == [("The", 0), ("The", 1), ("The", 3)]
    for row in rows:
        assert set(row) == RECORD_KEYS | {"stopped"}
        assert row["task"] == "tiny"
        assert row["model"] == "tinygpt2"
        assert row["expected"] == ["cat"]
        assert len(row["examples"]) == row["shots"]
        assert row["prompt"].startswith("Say:\n\n") and row["prompt"].endswith("\n\nThe =>")
        assert row["stopped"] in ("stop", "length", "eos")
        assert isinstance(row["completion"], str)
        assert row["prediction"] == row["completion"].strip()
        assert row["correct"] is (row["prediction"].casefold() == "cat")
    # The examples of fewer shots are the first of more shots.
    assert rows[2]["examples"][:1] == rows[1]["examples"]


def test_json_holds_the_same_records(fewshot):
    lines = fewshot("-f", "jsonl").jsonl()
    result = fewshot("-f", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == lines


def test_repeated_queries(fewshot):
    result = fewshot("-f", "jsonl", "--query", "sat", "--query", "cat", "-k", "0,2")
    assert result.code == 0, result.err
    rows = result.jsonl()
    assert [(r["query"], r["shots"]) for r in rows] == [("sat", 0), ("sat", 2), ("cat", 0),
                                                        ("cat", 2)]  # fmt: skip
    assert rows[0]["expected"] == ["on"]  # a test item of the task
    assert rows[2]["expected"] == ["mat"]  # one of its examples
    assert "cat" not in rows[3]["examples"]  # never shown as its own example


def test_queries_from_stdin(fewshot):
    piped = fewshot("-f", "jsonl", "-k", "1", stdin=b"sat\n\n  Hello world  \n")
    assert piped.code == 0, piped.err
    assert [r["query"] for r in piped.jsonl()] == ["sat", "Hello world"]
    assert piped.jsonl()[1]["expected"] is None and piped.jsonl()[1]["correct"] is None
    dash = fewshot("-f", "jsonl", "-k", "1", "--query", "-", stdin=b"sat\nHello world\n")
    assert [r["query"] for r in dash.jsonl()] == ["sat", "Hello world"]
    assert [r["prompt"] for r in dash.jsonl()] == [r["prompt"] for r in piped.jsonl()]


def test_choices_give_scores(fewshot):
    result = fewshot("-f", "jsonl", "--choices", "mat,cat", "-k", "0,1")
    assert result.code == 0, result.err
    rows = result.jsonl()
    assert len(rows) == 2
    for row in rows:
        assert set(row) == RECORD_KEYS | {"correct_norm", "scores"}
        assert row["completion"] is None
        scores = row["scores"]
        assert [s["choice"] for s in scores] == ["mat", "cat"]
        assert [s["continuation"] for s in scores] == [" mat", " cat"]
        assert math.fsum(s["share"] for s in scores) == pytest.approx(1.0)
        for s in scores:
            assert s["logprob"] < 0
            assert s["probability"] == pytest.approx(math.exp(s["logprob"]))
            assert s["logprob_per_char"] == pytest.approx(s["logprob"] / 3)
        best = max(scores, key=lambda s: s["logprob"])["choice"]
        assert row["prediction"] == best
        assert row["correct"] is (best == "cat")


def test_choices_that_miss_an_asked_items_answer_are_refused(fewshot, one_error, tiny_task):
    # The first test item's answer is "cat": scored against mat,sundress it could only be
    # wrong, so it is an error naming the item; --eval names the first such item.
    one_error(fewshot("--choices", "mat,sundress"), 1,
              f"{tiny_task}, line 6: the answer 'cat' is not one of the choices "
              "(mat, sundress)")  # fmt: skip
    one_error(fewshot("--choices", "mat,cat", "--eval"), 1, "line 7: the answer 'spring'")
    # Free queries have no right answer, and examples need none among the choices.
    free = fewshot("-f", "jsonl", "--choices", "mat,sundress", "-k", "1", "--query", "dog")
    assert free.code == 0, free.err
    (row,) = free.jsonl()
    assert row["correct"] is None and row["prediction"] in ("mat", "sundress")


def test_choices_are_scored_as_the_model_scores_them(fewshot, tiny_gpt2_dir):
    (row,) = fewshot("-f", "jsonl", "--choices", "mat,cat", "-k", "0").jsonl()
    resolved = resolve(str(tiny_gpt2_dir))
    model = load_model(resolved, device="cpu").model
    tok = LoadedTokenizer.for_model(resolved)
    context = list(tok.hf.encode(row["prompt"], add_special_tokens=False).ids)
    for score in row["scores"]:
        ids = context + score["tokens"]
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        lp = torch.log_softmax(logits.float(), dim=-1)
        expected = sum(float(lp[len(context) - 1 + j, t]) for j, t in enumerate(score["tokens"]))
        assert score["logprob"] == pytest.approx(expected, abs=1e-5)


def test_a_table_of_answers(fewshot):
    result = fewshot("-f", "table", "-k", "0,1")
    assert result.code == 0, result.err
    assert "tiny: 'The' · tinygpt2" in result.out
    assert "zero-shot" in result.out and "one-shot" in result.out
    assert "expected cat" in result.out


# --- evaluation --------------------------------------------------------------------------


def test_eval_json_summary(fewshot):
    result = fewshot("--eval", "-f", "json", "-k", "0,1,2")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["model"] == "tinygpt2"
    summary = data["summary"]
    assert [s["shots"] for s in summary] == [0, 1, 2]
    items = data["items"]
    assert len(items) == 3 * 3
    for s in summary:
        assert s["n"] == 3  # the task's test items
        mine = [i for i in items if i["shots"] == s["shots"]]
        assert [i["query"] for i in mine] == ["The", "fields", "sat"]
        assert s["correct"] == sum(1 for i in mine if i["correct"])
        assert s["accuracy"] == pytest.approx(s["correct"] / 3)
        assert s["metric"] == "exact_match"
        assert s["accuracy_norm"] is None
        assert (s["task"], s["bos"], s["chat"]) == ("tiny", False, False)


def test_eval_of_a_builtin_choice_task_with_a_limit(cli, tiny_gpt2_dir):
    result = cli("fewshot", "-m", tiny_gpt2_dir, "-t", "animal-class", "--instruction", "",
                 "--eval", "--limit", "4", "-k", "0,1", "-f", "json", stdin=b"")  # fmt: skip
    assert result.code == 0, result.err
    data = json.loads(result.out)
    task = tasks.load_builtin("animal-class")
    assert [s["n"] for s in data["summary"]] == [4, 4]
    assert [s["metric"] for s in data["summary"]] == ["acc", "acc"]
    expected = [t.input for t in task.tests[:4]]
    assert [i["query"] for i in data["items"] if i["shots"] == 0] == expected
    for s in data["summary"]:
        mine = [i for i in data["items"] if i["shots"] == s["shots"]]
        assert s["correct"] == sum(1 for i in mine if i["correct"])
        assert s["accuracy_norm"] == pytest.approx(sum(1 for i in mine if i["correct_norm"]) / 4)
        for item in mine:
            assert [sc["choice"] for sc in item["scores"]] == list(task.choices or ())


def test_eval_jsonl_marks_every_item(fewshot):
    rows = fewshot("--eval", "-f", "jsonl", "-k", "1", "--limit", "2").jsonl()
    assert [r["query"] for r in rows] == ["The", "fields"]
    assert all(r["eval"] is True for r in rows)


def test_eval_table(fewshot):
    result = fewshot("--eval", "-f", "table", "-k", "0,1")
    assert result.code == 0, result.err
    assert "tinygpt2: accuracy against shots" in result.out
    assert "/3" in result.out


def test_eval_png(fewshot, tmp_path):
    path = tmp_path / "acc.png"
    result = fewshot("--eval", "-k", "0,1", "-o", path)
    assert result.code == 0, result.err
    assert result.out == ""
    data = path.read_bytes()
    assert data[:8] == PNG
    assert len(data) > 1000


# --- listing and next tokens -------------------------------------------------------------


def test_tasks_list(cli):
    result = cli("fewshot", "--tasks", "-f", "jsonl")
    assert result.code == 0, result.err
    rows = result.jsonl()
    assert [r["task"] for r in rows] == tasks.builtin_names()
    assert len(rows) == 10
    kinds = {r["task"]: r["kind"] for r in rows}
    assert kinds["sentiment"] == "choice" and kinds["capitals"] == "generation"
    gpt3 = next(r for r in rows if r["task"] == "gpt3-en-fr")
    assert (gpt3["examples"], gpt3["tests"]) == (3, 1)


def test_next_top_tokens(cli, tiny_gpt2_dir):
    result = cli("next", "-f", "jsonl", "--top", "5", "-m", tiny_gpt2_dir, "The cat sat on the")
    assert result.code == 0, result.err
    rows = result.jsonl()
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    probabilities = [r["probability"] for r in rows]
    assert probabilities == sorted(probabilities, reverse=True)
    resolved = resolve(str(tiny_gpt2_dir))
    model = load_model(resolved, device="cpu").model
    tok = LoadedTokenizer.for_model(resolved)
    ids = list(tok.hf.encode("The cat sat on the", add_special_tokens=False).ids)
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    top = torch.topk(torch.softmax(logits, dim=-1), 5)
    assert [r["id"] for r in rows] == top.indices.tolist()
    assert probabilities == pytest.approx(top.values.tolist(), abs=1e-6)
    for row in rows:
        assert row["logprob"] == pytest.approx(math.log(row["probability"]))
        token, text, hexed, special = tok.describe(row["id"])
        assert (row["token"], row["text"], row["bytes"], row["special"]) == (
            token, text, hexed, special)  # fmt: skip
        assert bytes.fromhex(row["bytes"]) == tok.token_bytes(row["id"])


def test_next_json_and_stdin(cli, tiny_gpt2_dir):
    result = cli("next", "-f", "json", "-k", "3", "-m", tiny_gpt2_dir, stdin=b"Hello world\n")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["prompt"] == "Hello world"
    assert data["bos"] is False
    assert len(data["next"]) == 3
    as_arg = cli("next", "-f", "json", "-k", "3", "-m", tiny_gpt2_dir, "Hello", "world")
    assert json.loads(as_arg.out) == data


def test_next_with_bos(cli, tiny_gpt2_dir):
    data = json.loads(cli("next", "-f", "json", "--bos", "-m", tiny_gpt2_dir, "cat").out)
    assert data["bos"] is True
    assert data["prompt_ids"][0] == 0


# --- errors ------------------------------------------------------------------------------


def test_more_shots_than_examples(fewshot, one_error):
    one_error(fewshot("-k", "0,5"), 2, "5 shots asked", "only 4 examples")
    one_error(fewshot("--eval", "-k", "5"), 2, "5 shots asked", "only 4 examples")


def test_an_empty_task_file(cli, tiny_gpt2_dir, tmp_path, one_error):
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")
    one_error(cli("fewshot", "-m", tiny_gpt2_dir, "-t", path, stdin=b""), 1, "holds no items")


def test_a_malformed_task_file_names_the_line(cli, tiny_gpt2_dir, tmp_path, one_error):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input": "a", "output": "b"}\n\n{"input": "c", "output": \n',
                    encoding="utf-8")  # fmt: skip
    one_error(cli("fewshot", "-m", tiny_gpt2_dir, "-t", path, stdin=b""), 1,
              "bad.jsonl, line 3: not valid JSON")  # fmt: skip


def test_a_single_choice(fewshot, one_error):
    one_error(fewshot("--choices", "mat"), 2, "--choices needs at least two answers")
    one_error(fewshot("--choices", "mat,,"), 2, "--choices needs at least two answers")


def test_an_unknown_task(cli, tiny_gpt2_dir, one_error):
    one_error(cli("fewshot", "-m", tiny_gpt2_dir, "-t", "no-such-task", stdin=b""), 2,
              "unknown task 'no-such-task'", "sentiment")  # fmt: skip


def test_a_tokenizer_only_model(cli, bpe_dir, tiny_task, one_error):
    result = cli("fewshot", "-m", bpe_dir, "-t", tiny_task, stdin=b"")
    one_error(result, 1, "tinybpe is a tokenizer only, with no weights")
    one_error(cli("next", "-m", bpe_dir, "cat"), 1, "is a tokenizer only")


def test_an_encoder_model(cli, tiny_bert_dir, tiny_task, one_error):
    one_error(cli("fewshot", "-m", tiny_bert_dir, "-t", tiny_task, stdin=b""), 1,
              "is an encoder; prompting needs a decoder")  # fmt: skip
    one_error(cli("next", "-m", tiny_bert_dir, "cat"), 1, "is an encoder")


def test_png_without_eval(fewshot, tmp_path, one_error):
    one_error(fewshot("-f", "png", "-o", tmp_path / "x.png"), 2, "-f png", "add --eval")
    assert not (tmp_path / "x.png").exists()
    one_error(fewshot("-f", "png", "--eval"), 2, "-f png needs -o FILE.png")


def test_sampling_options_without_temperature(fewshot, one_error):
    one_error(fewshot("--top-k", "5"), 2, "add --temperature above 0")
    one_error(fewshot("--top-p", "0.5"), 2, "add --temperature above 0")


def test_sampling_with_top_p_zero_is_greedy(fewshot):
    greedy = fewshot("-f", "jsonl", "-k", "0,1").jsonl()
    sampled = fewshot("-f", "jsonl", "-k", "0,1", "--temperature", "2", "--top-p", "0").jsonl()
    assert [r["completion"] for r in sampled] == [r["completion"] for r in greedy]


def test_an_empty_query(fewshot, one_error):
    one_error(fewshot("--query", " "), 2, "--query is empty")
    one_error(fewshot("--query", "-", stdin=b"\n\n"), 2, "no queries on stdin")


def test_an_empty_next_prompt(cli, tiny_gpt2_dir, one_error):
    one_error(cli("next", "-m", tiny_gpt2_dir, ""), 2, "the prompt is empty")
    one_error(cli("next", "-m", tiny_gpt2_dir, "-", stdin=b""), 2, "stdin is empty")


def test_next_top_past_the_vocabulary(cli, tiny_gpt2_dir, one_error):
    one_error(cli("next", "-m", tiny_gpt2_dir, "--top", "100000", "cat"), 2,
              "--top 100000 is more than the")  # fmt: skip


def test_eval_with_a_query(fewshot, one_error):
    one_error(fewshot("--eval", "--query", "cat"), 2, "--eval asks the task's own test items")


def test_a_prompt_past_the_models_context(cli, tiny_gpt2_dir, one_error):
    result = cli("fewshot", "-m", tiny_gpt2_dir, "-f", "jsonl", stdin=b"")
    one_error(result, 1, "past tinygpt2's context of 64", "use fewer shots")


def test_bad_shots(fewshot, one_error):
    one_error(fewshot("-k", "one"), 2, "--shots 'one'")
    one_error(fewshot("-k", "-1"), 2, "a shot count is 0 or more")


def test_chat_without_a_template(fewshot, one_error):
    one_error(fewshot("--chat"), 2, "has no chat template", "drop --chat")


def test_a_sampled_answer_does_not_depend_on_the_batch_size(fewshot):
    args = ("-f", "jsonl", "--eval", "-k", "0,1", "--temperature", "1.5", "--seed", "11")
    one = [r["completion"] for r in fewshot(*args, "--batch-size", "1").jsonl()]
    many = [r["completion"] for r in fewshot(*args, "--batch-size", "4").jsonl()]
    assert one == many and len(one) == 6


def test_the_draw_is_chosen_and_said(fewshot, one_error):
    lm_eval = fewshot("--show-prompt", "-f", "jsonl", "--eval", "-k", "1", "--seed", "3")
    nested = fewshot("--show-prompt", "-f", "jsonl", "--eval", "-k", "1", "--seed", "3",
                     "--draw", "nested")  # fmt: skip
    assert {r["draw"] for r in lm_eval.jsonl()} == {"lm-eval"}
    assert {r["draw"] for r in nested.jsonl()} == {"nested"}
    summary = json.loads(fewshot("--eval", "-k", "0,1", "-f", "json").out)["summary"]
    assert {row["draw"] for row in summary} == {"lm-eval"}
    table = fewshot("--eval", "-k", "0", "-f", "table").out
    assert "examples drawn lm-eval-style" in table
    one_error(fewshot("--draw", "random"), 2, "unknown draw 'random'", "lm-eval, nested")
