"""``llmpath fewshot`` and ``llmpath next`` on the real decoders.

Log-likelihoods and next-token probabilities are checked against a direct
computation: transformers' AutoModelForCausalLM on the same folder, one full
forward pass per sequence, log_softmax at the positions that predict each token.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

GPT3_PROMPT_3 = (
    "Translate English to French:\n\nsea otter => loutre de mer\n\npeppermint => menthe "
    "poivrée\n\nplush girafe => girafe peluche\n\ncheese =>"
)


@pytest.fixture(scope="module")
def direct(model_dir: Callable[[str], Path]) -> Callable[[str], Any]:
    """``direct(name)``: (transformers model, tokenizers Tokenizer), loaded once."""
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            from tokenizers import Tokenizer
            from transformers import AutoModelForCausalLM

            folder = model_dir(name)
            model = AutoModelForCausalLM.from_pretrained(
                str(folder), dtype="float32", use_safetensors=True, local_files_only=True
            ).eval()
            cache[name] = (model, Tokenizer.from_file(str(folder / "tokenizer.json")))
        return cache[name]

    return get


def logprob_of(model: Any, context: list[int], continuation: list[int]) -> float:
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([context + continuation])).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    n = len(context)
    return math.fsum(float(lp[n - 1 + j, t]) for j, t in enumerate(continuation))


def test_gpt3_example_shows_the_few_shot_effect(llmpath: Callable[..., Any]) -> None:
    """Gemma misses zero-shot and answers 'fromage' one- and three-shot (greedy)."""
    rows = llmpath(["fewshot", "-f", "jsonl"]).records()
    assert [r["shots"] for r in rows] == [0, 1, 3]
    by_shots = {r["shots"]: r for r in rows}
    assert by_shots[3]["prompt"] == "<bos>" + GPT3_PROMPT_3
    assert by_shots[0]["prompt"] == "<bos>Translate English to French:\n\ncheese =>"
    assert by_shots[1]["completion"].strip() == "fromage"
    assert by_shots[3]["completion"].strip() == "fromage"
    assert by_shots[1]["correct"] is True and by_shots[3]["correct"] is True
    assert by_shots[0]["correct"] is False


@pytest.mark.parametrize("name", ["smollm2", "gemma3-270m"])
def test_choice_logprobs_equal_a_direct_computation(
    name: str, llmpath: Callable[..., Any], direct: Callable[[str], Any]
) -> None:
    rows = llmpath(
        ["fewshot", "-m", name, "-t", "sentiment", "--shots", "0,2", "-f", "jsonl"]
    ).records()
    model, tok = direct(name)
    bos = name == "gemma3-270m"
    assert len(rows) == 2
    for row in rows:
        assert row["prompt"].startswith("<bos>") == bos
        prompt = row["prompt"].removeprefix("<bos>")
        assert prompt.endswith("\nSentiment:")
        context = ([2] if bos else []) + tok.encode(prompt, add_special_tokens=False).ids
        shares = []
        for score in row["scores"]:
            whole = tok.encode(prompt + " " + score["choice"], add_special_tokens=False).ids
            cont = whole[len(context) - (1 if bos else 0) :]
            assert score["tokens"] == cont
            expected = logprob_of(model, context, cont)
            assert score["logprob"] == pytest.approx(expected, abs=1e-4)
            assert score["logprob_per_char"] == pytest.approx(
                expected / len(score["choice"]), abs=1e-4
            )
            shares.append(score["share"])
        assert math.fsum(shares) == pytest.approx(1.0)
        best = max(row["scores"], key=lambda s: s["logprob"])["choice"]
        assert row["prediction"] == best


def test_next_equals_the_models_own_distribution(
    llmpath: Callable[..., Any], direct: Callable[[str], Any]
) -> None:
    import torch

    rows = llmpath(["next", "-m", "smollm2", "--top", "5", "The capital of France is"]).records()
    model, tok = direct("smollm2")
    ids = tok.encode("The capital of France is", add_special_tokens=False).ids
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
    values, top = torch.topk(lp, 5)
    assert [r["id"] for r in rows] == top.tolist()
    for row, value in zip(rows, values.tolist()):
        assert row["logprob"] == pytest.approx(value, abs=1e-4)
        assert row["probability"] == pytest.approx(math.exp(value), rel=1e-3)


def test_sampling_with_a_seed_repeats(llmpath: Callable[..., Any]) -> None:
    args = ["fewshot", "-m", "smollm2", "-t", "capitals", "--shots", "2", "--temperature",
            "1.5", "--seed", "7", "--max-new-tokens", "6", "-f", "jsonl"]  # fmt: skip
    first = llmpath(args).records()
    second = llmpath(args).records()
    assert [r["completion"] for r in first] == [r["completion"] for r in second]
    assert first[0]["prompt"] == second[0]["prompt"]


def test_chat_template_wraps_the_prompt(llmpath: Callable[..., Any]) -> None:
    rows = llmpath(
        ["fewshot", "-m", "smollm2", "--chat", "--shots", "1", "--show-prompt", "-f", "jsonl"]
    ).records()
    prompt = rows[0]["prompt"]
    assert prompt.startswith("<|im_start|>system\nTranslate English to French:<|im_end|>\n")
    assert "<|im_start|>user\nsea otter =><|im_end|>\n" in prompt
    assert "<|im_start|>assistant\nloutre de mer<|im_end|>\n" in prompt
    assert prompt.endswith("<|im_start|>user\ncheese =><|im_end|>\n<|im_start|>assistant\n")


def test_eval_reports_accuracy_per_shot_count(llmpath: Callable[..., Any]) -> None:
    run = llmpath(["fewshot", "-m", "smollm2", "-t", "arithmetic", "--eval", "--limit", "6",
                   "--shots", "0,3", "-f", "json"])  # fmt: skip
    report = json.loads(run.stdout)
    summary = {row["shots"]: row for row in report["summary"]}
    assert set(summary) == {0, 3}
    for shots, row in summary.items():
        items = [i for i in report["items"] if i["shots"] == shots]
        assert row["n"] == len(items) == 6
        assert row["correct"] == sum(1 for i in items if i["correct"])
        assert row["accuracy"] == pytest.approx(row["correct"] / 6)


def test_gpt2_has_no_weights(llmpath: Callable[..., Any]) -> None:
    run = llmpath(["fewshot", "-m", "gpt2"], check=False)
    assert run.returncode == 1
    assert run.stderr.startswith("Error: ") and run.stderr.count("\n") == 1
    assert "no weights" in run.stderr


LONG_TASK = [
    {"task": "capitals-choice", "instruction": "Answer each question.", "shuffle": False,
     "template": "{input}\nAnswer: {output}"},
    {"input": "What is the capital of France?", "choices": ["Paris", "Lyon"], "answer": 0,
     "split": "example"},
    {"input": "What is the capital of Peru?", "choices": ["Quito", "Lima"], "answer": 1,
     "split": "example"},
    {"input": "What is the capital of Mexico?", "answer": 0, "split": "test",
     "choices": ["Mexico City", "Mexico", "Guatemala City", "Panama City"]},
    {"input": "What is the capital of Malaysia?", "answer": 1, "split": "test",
     "choices": ["Phnom Penh", "Kuala Lumpur", "Kuala Terengganu", "Port Moresby"]},
    {"input": "What is the opposite of \"the top of the mountain\"?", "answer": 0,
     "split": "test", "choices": ["the bottom of the mountain", "the top of the hill"]},
]  # fmt: skip


@pytest.mark.parametrize("name", ["smollm2", "gemma3-270m"])
def test_shared_examples_and_long_answers_equal_a_direct_computation(
    name: str, llmpath: Callable[..., Any], direct: Callable[[str], Any], tmp_path: Path
) -> None:
    """Every prompt has the same examples (their tokens are computed once) and choices
    of several tokens that begin alike ("Mexico City", "Mexico"): each log-likelihood
    is still a plain pass's."""
    task = tmp_path / "capitals-choice.jsonl"
    task.write_text("".join(json.dumps(row) + "\n" for row in LONG_TASK), encoding="utf-8")
    rows = llmpath(["fewshot", "--eval", "-m", name, "-t", str(task), "--shots", "2",
                    "-f", "jsonl", "-q"]).records()  # fmt: skip
    model, tok = direct(name)
    bos = [2] if name == "gemma3-270m" else []
    assert len(rows) == 3
    assert len({tuple(r["examples"]) for r in rows}) == 1
    lengths = [len(s["tokens"]) for r in rows for s in r["scores"]]
    assert max(lengths) >= 5 and min(lengths) <= 2
    for row in rows:
        prompt = row["prompt"].removeprefix("<bos>")
        context = bos + tok.encode(prompt, add_special_tokens=False).ids
        for score in row["scores"]:
            expected = logprob_of(model, context, score["tokens"])
            assert score["logprob"] == pytest.approx(expected, abs=1e-4)
