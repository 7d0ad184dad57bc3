"""``llmpath attention`` on the real models: smollm2 (the default), minilm, gemma3-270m.

Expected maps come from outside llmpath: each model is loaded and run directly with
transformers under eager attention, and its ``output_attentions=True`` is compared
with what the command wrote. Each real model is loaded once for the session
(conftest's ``_load_each_model_once``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmcli.core.attention import SEED

_DIRECT: dict[str, Any] = {}


def direct_attentions(folder: Path, ids: list[int], decoder: bool) -> np.ndarray:
    """``[layer, head, query, key]`` from the folder's model run with transformers alone."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    key = str(folder)
    if key not in _DIRECT:  # loaded once
        cls = AutoModelForCausalLM if decoder else AutoModel
        _DIRECT[key] = cls.from_pretrained(key, attn_implementation="eager").eval()
    with torch.no_grad():
        out = _DIRECT[key](input_ids=torch.tensor([ids]), output_attentions=True)
    return np.stack([a[0].float().numpy() for a in out.attentions])


def upper(t: int) -> np.ndarray:
    """The strict upper triangle of a ``[query, key]`` matrix: the keys after the query."""
    return np.triu(np.ones((t, t), dtype=bool), k=1)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {name: npz[name] for name in npz.files}


@pytest.fixture(scope="module")
def default_npz(llmpath, tmp_path_factory) -> dict[str, np.ndarray]:
    """``llmpath attention -f npz`` with nothing on stdin: smollm2, the seed, every layer."""
    path = tmp_path_factory.mktemp("attention") / "seed.npz"
    run = llmpath(["attention", "-f", "npz", "-o", str(path), "--device", "cpu"], input=b"")
    assert run.stdout == ""
    return load_npz(path)


# --- smollm2, the default --------------------------------------------------------------------


def test_default_is_smollm2_on_the_seed_with_every_layer_and_head(default_npz, reference):
    encoding = reference("smollm2").encode(SEED)
    t = len(encoding.ids)
    assert default_npz["ids"].tolist() == encoding.ids
    assert default_npz["tokens"].tolist() == encoding.tokens
    assert default_npz["attention"].shape == (30, 9, t, t)
    assert default_npz["attention"].dtype == np.float32
    assert default_npz["layers"].tolist() == list(range(30))
    assert default_npz["heads"].tolist() == list(range(9))
    assert default_npz["dims"].tolist() == ["layer", "head", "query", "key"]


def test_default_equals_transformers_output_attentions(default_npz, model_dir):
    ids = default_npz["ids"].tolist()
    expected = direct_attentions(model_dir("smollm2"), ids, decoder=True)
    assert expected.shape == default_npz["attention"].shape
    for layer in (0, 1, 14, 29):
        np.testing.assert_allclose(
            default_npz["attention"][layer], expected[layer], rtol=0, atol=1e-6,
            err_msg=f"layer {layer}",
        )  # fmt: skip


def test_smollm2_rows_sum_to_one_and_see_no_future(default_npz):
    attention = default_npz["attention"]
    t = attention.shape[-1]
    np.testing.assert_allclose(attention.sum(axis=-1), 1.0, atol=1e-5)
    assert (attention[..., upper(t)] == 0).all()
    assert (attention[..., 0, 0] == 1).all()
    assert (attention[..., ~upper(t)] > 0).any(axis=-1).all()


def test_smollm2_table_shows_the_last_layer(cli, default_npz):
    result = cli("attention", "-f", "table", "--device", "cpu", stdin=b"")
    assert result.code == 0, result.err
    out = result.out
    assert "smollm2 is a decoder: masked (causal) attention" in out
    assert "30 layers x 9 heads" in out
    assert "showing layer 29 of 0-29" in out
    assert [f"layer 29 · head {h}" in out for h in range(9)] == [True] * 9
    assert "layer 28 ·" not in out
    # Row 1 ('s) of head 0 (the first grid), in percent: what the array holds.
    row = default_npz["attention"][29, 0, 1, :2]
    shown = [str(round(w * 100)) if round(w * 100) else "·" for w in row]
    first = next(line for line in out.splitlines() if line.startswith(" 1 's"))
    assert first.split()[2:4] == shown


def test_tokens_piped_from_tokenize_give_the_same_maps(cli, llmpath, default_npz, tmp_path):
    records = llmpath(["tokenize", "-f", "jsonl", "-m", "smollm2", SEED]).stdout
    path = tmp_path / "piped.npz"
    result = cli("attention", "-f", "npz", "-o", path, "--device", "cpu", "-l", "0,14,-1",
                 stdin=records.encode())  # fmt: skip
    assert result.code == 0, result.err
    piped = load_npz(path)
    assert piped["ids"].tolist() == default_npz["ids"].tolist()
    assert piped["layers"].tolist() == [0, 14, 29]
    np.testing.assert_array_equal(piped["attention"], default_npz["attention"][[0, 14, 29]])


# --- minilm: an encoder ----------------------------------------------------------------------


def test_minilm_attends_both_ways(cli, reference, model_dir, tmp_path):
    path = tmp_path / "minilm.npz"
    result = cli("attention", "-m", "minilm", "-f", "npz", "-o", path, "--device", "cpu",
                 stdin=b"")  # fmt: skip
    assert result.code == 0, result.err
    got = load_npz(path)
    encoding = reference("minilm").encode(SEED)  # with [CLS] and [SEP]
    assert got["tokens"].tolist() == encoding.tokens
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]"
    t = len(encoding.ids)
    attention = got["attention"]
    assert attention.shape == (6, 12, t, t)
    np.testing.assert_allclose(attention.sum(axis=-1), 1.0, atol=1e-5)
    # Tokens look at later ones too: in most heads a good share of the weight.
    later = attention[..., upper(t)].sum(axis=-1) / t  # [layer, head]: mean weight per row
    assert (later > 0.05).mean() > 0.5, later
    expected = direct_attentions(model_dir("minilm"), encoding.ids, decoder=False)
    np.testing.assert_allclose(attention, expected, rtol=0, atol=1e-6)


def test_minilm_table_says_it_is_an_encoder(cli):
    result = cli("attention", "-m", "minilm", "-f", "table", "-l", "0", "--head", "3",
                 "--device", "cpu", stdin=b"")  # fmt: skip
    assert result.code == 0, result.err
    assert "minilm is an encoder: each token attends in both directions" in result.out
    assert "6 layers x 12 heads" in result.out
    assert "layer 0 · head 3" in result.out


def test_minilm_context_of_512(cli, one_error, tmp_path):
    text = " ".join(["blue"] * 600)  # 602 tokens with [CLS] and [SEP]
    one_error(cli("attention", "-m", "minilm", "--device", "cpu", text), 1,
              "602 tokens do not fit minilm's context of 512", "--truncate")  # fmt: skip
    path = tmp_path / "long.npz"
    result = cli("attention", "-m", "minilm", "--device", "cpu", "--truncate", "-l", "-1",
                 "--head", "0", "-o", path, text)  # fmt: skip
    assert result.code == 0, result.err
    got = load_npz(path)
    assert got["attention"].shape == (1, 1, 512, 512)
    assert got["tokens"][0] == "[CLS]" and got["tokens"][-1] == "blue"  # cut before [SEP]


# --- gemma3-270m, gpt2 -------------------------------------------------------------------------


def test_gemma3_loads_and_its_rows_sum_to_one(cli, reference, model_dir, tmp_path):
    path = tmp_path / "gemma.npz"
    result = cli("attention", "-m", "gemma3-270m", "-f", "npz", "-o", path, "--device", "cpu",
                 stdin=b"")  # fmt: skip
    assert result.code == 0, result.err
    got = load_npz(path)
    encoding = reference("gemma3-270m").encode(SEED)
    assert got["tokens"].tolist() == encoding.tokens
    assert encoding.tokens[0] == "<bos>"  # the tokenizer's own special token
    t = len(encoding.ids)
    attention = got["attention"]
    assert attention.shape == (18, 4, t, t)
    np.testing.assert_allclose(attention.sum(axis=-1), 1.0, atol=1e-5)
    assert (attention[..., upper(t)] == 0).all()
    expected = direct_attentions(model_dir("gemma3-270m"), encoding.ids, decoder=True)
    for layer in (0, 5, 17):  # sliding and full attention layers
        np.testing.assert_allclose(attention[layer], expected[layer], rtol=0, atol=1e-6)


def test_gpt2_has_no_weights(cli, one_error):
    one_error(cli("attention", "-m", "gpt2", "It's a cat."), 1,
              "gpt2 is a tokenizer only, with no weights", "smollm2")  # fmt: skip
