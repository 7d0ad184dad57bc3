"""``llmpath walk`` and ``llmpath next --layers`` through the command line, on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmcli.core.walk import STEPS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = "The cat sat on the mat."


def test_jsonl_has_one_passing_record_per_step(cli, tiny_gpt2_dir):
    result = cli("walk", TEXT, "-m", tiny_gpt2_dir, "-f", "jsonl")
    assert result.code == 0, result.err
    records = result.jsonl()
    assert [r["step"] for r in records] == list(STEPS)
    assert all(r["ok"] for r in records)
    for r in records:
        assert r["model"] == "tinygpt2" and r["layer"] == 0 and r["head"] == 0
        for c in r["checks"]:
            assert c["max_abs_diff"] <= 1e-5 * c["scale"], c
    head = {r["step"]: r for r in records}["head"]
    assert {"q", "k", "v", "scores", "weights", "mixed"} <= set(head["shapes"])
    assert any(m["flops"] > 0 for m in head["matmuls"])


def test_a_pipe_gets_jsonl_and_a_table_names_each_step(cli, tiny_llama_dir):
    piped = cli("walk", TEXT, "-m", tiny_llama_dir)
    assert piped.code == 0, piped.err
    assert piped.jsonl()[0]["step"] == "tokens"
    table = cli("walk", TEXT, "-m", tiny_llama_dir, "-f", "table")
    assert table.code == 0, table.err
    for title in ("1. text -> tokens -> IDs", "3. position: rotary (RoPE)",
                  "5. one head of self-attention", "9. final norm"):  # fmt: skip
        assert title in table.out
    assert "Grouped-query attention" in table.out
    assert "all " in table.out and "checks pass" in table.out
    assert "✗" not in table.out


def test_json_is_one_document(cli, tiny_gemma3_dir):
    result = cli("walk", TEXT, "-m", tiny_gemma3_dir, "-f", "json", "--layer", "2", "--head", "1")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["ok"] is True and doc["architecture"] == "Gemma 3"
    assert doc["layer"] == 2 and doc["head"] == 1
    assert [s["step"] for s in doc["steps"]] == list(STEPS)
    assert [t["index"] for t in doc["tokens"]] == list(range(len(doc["tokens"])))


def test_npz_holds_the_named_tensors(cli, tiny_llama_dir, tmp_path):
    out = tmp_path / "walk.npz"
    result = cli("walk", TEXT, "-m", tiny_llama_dir, "-o", out, "--top", "3", "-l", "1")
    assert result.code == 0, result.err
    assert result.out == ""
    data = np.load(out)
    n = int(data["ids"].shape[0])
    layers = 2
    assert data["ids"].dtype == np.int64
    assert data["embeddings"].shape == (n, 32)
    assert data["hidden"].shape == (layers + 1, n, 32)
    for key in ("q", "k", "v", "mixed"):
        assert data[key].shape == (4, n, 8) and data[key].dtype == np.float32
    assert data["scores"].shape == data["weights"].shape == (4, n, n)
    assert np.isneginf(data["scores"][0, 0, 1])
    assert data["lens_ids"].shape == data["lens_probs"].shape == (layers + 1, n, 3)
    assert data["next_ids"].shape == (3,)
    assert int(data["layer"]) == 1 and int(data["head"]) == 0
    np.testing.assert_array_equal(data["lens_ids"][-1, -1], data["next_ids"])
    np.testing.assert_allclose(data["weights"].sum(-1), 1, atol=1e-6)


def test_an_encoder_ends_with_pooling(cli, tiny_bert_dir, tmp_path):
    result = cli("walk", TEXT, "-m", tiny_bert_dir, "-f", "jsonl")
    assert result.code == 0, result.err
    out = {r["step"]: r for r in result.jsonl()}
    assert out["output"]["title"].startswith("pooling")
    assert "lens" not in json.dumps(out["layers"]["tables"])
    cli("walk", TEXT, "-m", tiny_bert_dir, "-o", tmp_path / "w.npz")
    data = np.load(tmp_path / "w.npz")
    assert "pooled" in data and "lens_ids" not in data and "next_ids" not in data
    assert abs(float(np.linalg.norm(data["pooled"])) - 1) < 1e-5


def test_steps_can_be_chosen(cli, tiny_gpt2_dir):
    result = cli("walk", TEXT, "-m", tiny_gpt2_dir, "-s", "output", "-s", "head")
    assert result.code == 0, result.err
    assert [r["step"] for r in result.jsonl()] == ["head", "output"]


def test_the_followed_token_and_dims(cli, tiny_gpt2_dir):
    result = cli("walk", TEXT, "-m", tiny_gpt2_dir, "--token", "0", "--dims", "3", "-s", "embed")
    assert result.code == 0, result.err
    (record,) = result.jsonl()
    assert record["token"] == 0
    assert all(len(v["values"]) == 3 for v in record["vectors"])


def test_text_stays_text_and_records_or_ids_come_from_stdin(cli, tiny_gpt2_dir):
    def ids_of(result):
        assert result.code == 0, result.err
        return [row[2] for row in result.jsonl()[0]["tables"][0]["rows"]]

    as_text = cli("walk", "1999 2024", "-m", tiny_gpt2_dir, "-s", "tokens")
    tokens = cli("tokenize", "1999 2024", "-m", tiny_gpt2_dir, "-f", "jsonl")
    expected = [r["id"] for r in tokens.jsonl()]
    assert ids_of(as_text) == expected
    from_records = cli("walk", "-m", tiny_gpt2_dir, "-s", "tokens", stdin=tokens.out.encode())
    assert ids_of(from_records) == expected
    from_ids = cli("walk", "--ids", "-m", tiny_gpt2_dir, "-s", "tokens", stdin=b"3 4 5\n")
    assert ids_of(from_ids) == [3, 4, 5]


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        ([TEXT, "--layer", "2"], 2, "--layer 2 is out of range: there are 2 layers"),
        ([TEXT, "--head", "-3"], 2, "--head -3 is out of range"),
        ([TEXT, "--token", "99"], 2, "--token 99 is out of range"),
        ([TEXT, "-s", "nope"], 2, "'nope' is not one of 'tokens', 'embed'"),
        ([TEXT, "-f", "npz"], 2, "-f npz needs -o FILE.npz"),
        ([TEXT, "-f", "html"], 2, "-f html needs -o FILE.html"),
        (["--ids", "1 2"], 2, "a TEXT argument is text"),
        ([" "], 1, "empty input"),
        (["word " * 80], 1, "do not fit tinygpt2's context of 64"),
    ],
)
def test_bad_input_is_one_line_before_the_weights_load(
    cli, one_error, tiny_gpt2_dir, tmp_path, monkeypatch, args, code, fragment
):  # fmt: skip
    import llmcli.models.loader as loader

    def no_load(*a, **k):
        raise AssertionError("weights were loaded before the input was checked")

    monkeypatch.setattr(loader, "load_model", no_load)
    out = tmp_path / "out.jsonl"
    result = cli("walk", *args, "-m", tiny_gpt2_dir, *([] if "-f" in args else ["-o", out]))
    one_error(result, code, fragment)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_tokenizer_only_model_and_an_unknown_architecture(cli, one_error, bpe_dir, tmp_path):
    one_error(cli("walk", TEXT, "-m", bpe_dir), 1, "tokenizer only", "GPT-2")
    folder = tmp_path / "mistral"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((bpe_dir / name).read_bytes())
    (folder / "config.json").write_text(json.dumps({"model_type": "mistral"}))
    (folder / "model.safetensors").write_bytes(b"")
    one_error(cli("walk", TEXT, "-m", folder), 1, "do not know the architecture", "mistral",
              "Llama (smollm2)")  # fmt: skip


def test_a_failed_check_is_reported_and_exits_1(cli, tiny_gpt2_dir, monkeypatch):
    import llmcli.core.walk.gpt2 as gpt2

    real = gpt2.conv1d

    def off(x, module):
        return real(x, module) + 1e-3

    monkeypatch.setattr(gpt2, "conv1d", off)
    result = cli("walk", TEXT, "-m", tiny_gpt2_dir, "-f", "jsonl")
    assert result.code == 1
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: walk check failed in step ")
    assert "Traceback" not in result.err
    records = result.jsonl()
    assert records and not all(r["ok"] for r in records)  # the evidence is still written
    table = cli("walk", TEXT, "-m", tiny_gpt2_dir, "-f", "table")
    assert table.code == 1 and "✗" in table.out and "checks failed" in table.out


def test_next_layers_adds_the_logit_lens(cli, tiny_gpt2_dir):
    plain = cli("next", TEXT, "-m", tiny_gpt2_dir, "-f", "jsonl", "--top", "3")
    lens = cli("next", TEXT, "-m", tiny_gpt2_dir, "-f", "jsonl", "--top", "3", "--layers")
    assert plain.code == 0 and lens.code == 0, lens.err
    rows = lens.jsonl()
    assert [r["layer"] for r in rows] == [-1, 0, 1]
    assert rows[0]["after"] == "embeddings"
    assert [t["id"] for t in rows[-1]["top"]] == [r["id"] for r in plain.jsonl()]
    for got, want in zip(rows[-1]["top"], plain.jsonl()):
        assert abs(got["probability"] - want["probability"]) < 1e-5
    doc = json.loads(cli("next", TEXT, "-m", tiny_gpt2_dir, "-f", "json", "--layers").out)
    assert len(doc["layers"]) == 3 and doc["next"]
    table = cli("next", TEXT, "-m", tiny_gpt2_dir, "-f", "table", "--layers")
    assert "logit lens" in table.out and "embeddings" in table.out


def test_next_layers_refuses_a_tokenizer_only_model(cli, one_error, bpe_dir):
    one_error(cli("next", TEXT, "-m", bpe_dir, "--layers"), 1, "tokenizer only")


def test_walk_help_names_its_options(cli):
    result = cli("walk", "--help")
    assert result.code == 0
    for option in ("--layer", "--head", "--token", "--step", "--dims", "--top", "--ids"):
        assert option in result.out


def test_walk_step_enum_matches_core():
    from llmcli.cli.options import WalkStep

    assert tuple(s.value for s in WalkStep) == STEPS


def test_stdin_text_is_read(cli, tiny_gpt2_dir):
    result = cli("walk", "-m", tiny_gpt2_dir, "-s", "tokens", stdin=b"The cat sat.\n")
    assert result.code == 0, result.err
    assert result.jsonl()[0]["facts"]["tokens"] >= 3


def test_a_page_too_large_is_refused_before_the_weights_load(
    cli, one_error, tiny_gpt2_dir, tmp_path, monkeypatch
):  # fmt: skip
    import llmcli.models.loader as loader
    import llmcli.render.walk_page as page

    monkeypatch.setattr(loader, "load_model", lambda *a, **k: pytest.fail("weights loaded"))
    monkeypatch.setattr(page, "HTML_MAX_VALUES", 100)
    out = tmp_path / "w.html"
    one_error(cli("walk", TEXT, "-m", tiny_gpt2_dir, "-o", out), 2, "would hold", "-f npz")
    assert not out.exists()


def test_a_long_text_shows_the_followed_row_around_its_token(cli, tiny_bert_dir):
    text = " ".join(["the cat sat on the mat"] * 4)
    result = cli("walk", text, "-m", tiny_bert_dir, "-s", "head", "--token", "3")
    assert result.code == 0, result.err
    (weights,) = [m for m in result.jsonl()[0]["matrices"] if m["kind"] == "weights"]
    assert len(weights["rows"]) == 1 and weights["rows"][0].startswith("3:")
    assert len(weights["cols"]) == 16 and weights["cols"][0].startswith("0:")
    assert any(c.startswith("10:") for c in weights["cols"])  # an encoder looks ahead too


def test_records_made_from_ids_claim_no_input_offsets(cli, tiny_gpt2_dir):
    for command in ("attention", "walk"):
        doc = json.loads(cli(command, "-m", tiny_gpt2_dir, "--ids", "-f", "json",
                             stdin=b"5 6 7").out)  # fmt: skip
        tokens = doc["tokens"]
        assert [(t["start"], t["end"]) for t in tokens] == [(None, None)] * 3
        pos = 0
        for t in tokens:  # the offsets into the decoded text, under their own names
            assert (t["decoded_start"], t["decoded_end"]) == (pos, pos + len(t["text"]))
            pos += len(t["text"])
    # tokenize's records come from the text itself: their offsets are input offsets.
    records = cli("tokenize", "-m", tiny_gpt2_dir, "-f", "jsonl", "a cat").jsonl()
    assert all("decoded_start" not in r and isinstance(r["start"], int) for r in records)
