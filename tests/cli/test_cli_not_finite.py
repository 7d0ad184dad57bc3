"""A model whose numbers are NaN or infinite gives one error line naming the step, never a
traceback or the invalid JSON token ``NaN``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _poisoned(source: Path, folder: Path, value: float) -> Path:
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, folder)
    weights = load_file(str(folder / "model.safetensors"))
    for name in weights:
        if name.endswith("wte.weight") or name.endswith("word_embeddings.weight"):
            weights[name][:] = value
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="module")
def nan_gpt2(tiny_gpt2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _poisoned(tiny_gpt2_dir, tmp_path_factory.mktemp("nan") / "nangpt2", float("nan"))


@pytest.fixture(scope="module")
def inf_bert(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _poisoned(tiny_bert_dir, tmp_path_factory.mktemp("inf") / "infbert", float("inf"))


@pytest.mark.parametrize("fmt", ["table", "jsonl", "json"])
@pytest.mark.parametrize(
    ("args", "step"),
    [
        (["attention", "The cat sat."], "the attention weights of layer"),
        (["embed", "--kind", "input", "cat", "dog"], "the input vectors"),
        (["next", "The cat"], "the next-token logits"),
    ],
)
def test_nan_is_one_error_naming_the_step(cli, one_error, nan_gpt2, args, step, fmt):
    result = cli(*args, "-m", nan_gpt2, "-f", fmt)
    one_error(result, 1, f"nangpt2 gave NaN or infinity in {step}", "--dtype float32")


def test_an_infinite_encoder_and_choice_scores(cli, one_error, inf_bert, nan_gpt2, tmp_path):
    one_error(cli("embed", "-m", inf_bert, "--kind", "contextual", "cat", "dog", "-f", "json"),
              1, "infbert gave NaN or infinity in the contextual vectors")  # fmt: skip
    task = tmp_path / "t.jsonl"
    task.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [{"input": "a", "output": "yes"}, {"input": "b", "output": "no"}]
        ),
        encoding="utf-8",
    )
    one_error(
        cli(
            "fewshot",
            "-m",
            nan_gpt2,
            "-t",
            task,
            "--choices",
            "yes,no",
            "-k",
            "0",
            "-f",
            "jsonl",
            stdin=b"",
        ),
        1,
        "nangpt2 gave NaN or infinity in the log-likelihood of",
    )


def test_json_writers_refuse_nan(tmp_path):
    import io

    from llmcli.errors import OutputError
    from llmcli.render.output import write_json, write_jsonl

    for write in (write_json, write_jsonl):
        with pytest.raises(OutputError, match="a NaN or infinity reached the output"):
            write(io.StringIO(), [{"x": float("nan")}] if write is write_jsonl else {"x": 1e999})


def test_a_walk_of_nan_fails_its_checks(cli, nan_gpt2):
    result = cli("walk", "The cat sat.", "-m", nan_gpt2, "-f", "jsonl")
    assert result.code == 1
    assert result.err.startswith("Error: walk check failed in step ")
    for line in result.out.splitlines():
        json.loads(line)  # valid JSON: NaN written as null
    assert "NaN" not in result.out
