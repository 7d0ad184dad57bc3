"""``--special``: each model's BOS/EOS tokens, as its own files name them."""

from __future__ import annotations

import json

import pytest

MODELS = ("gpt2", "minilm", "smollm2", "gemma3-270m")
TEXT = "It's a blue sundress."

# (BOS, EOS) as read from each folder's tokenizer_config.json (bos_token/cls_token,
# eos_token/sep_token) and looked up in its tokenizer.json.
KNOWN = {
    "gpt2": (50256, 50256),  # <|endoftext|> both ends
    "minilm": (101, 102),  # [CLS] ... [SEP]
    "smollm2": (1, 2),  # <|im_start|> ... <|im_end|>
    "gemma3-270m": (2, 1),  # <bos> ... <eos>
}


@pytest.mark.parametrize("name", MODELS)
def test_special_ids_from_the_store_files(expected_special, name):
    assert expected_special(name) == KNOWN[name]


@pytest.mark.parametrize("name", MODELS)
def test_the_template_is_the_default(llmpath, reference, name):
    """What the model is fed: each tokenizer's own template (Gemma <bos>, BERT [CLS] [SEP])."""
    hf = reference(name)
    encoding = hf.encode(TEXT, add_special_tokens=True)
    for args in ([], ["--special"]):
        records = llmpath(["tokenize", "-m", name, "-f", "jsonl", *args, TEXT]).records()
        assert [r["id"] for r in records] == encoding.ids
        assert [r["token"] for r in records] == encoding.tokens
    ids = llmpath(["tokenize", "-m", name, "-f", "ids", TEXT]).stdout
    assert ids == " ".join(map(str, encoding.ids)) + "\n"
    plain = llmpath(["tokenize", "-m", name, "-f", "jsonl", "--no-special", TEXT]).records()
    assert [r["id"] for r in plain] == hf.encode(TEXT, add_special_tokens=False).ids
    assert not any(r["special"] for r in plain)


TEMPLATE_NOTE = {
    "gpt2": "special tokens: none (gpt2's own template adds none; --bos/--eos add them)",
    "smollm2": "special tokens: none (smollm2's own template adds none; --bos/--eos add them)",
    "gemma3-270m": "special tokens: <bos> by gemma3-270m's own template",
    "minilm": "special tokens: [CLS] … [SEP] by minilm's own template",
}


@pytest.mark.parametrize("name", MODELS)
def test_the_table_says_what_was_added(llmpath, name):
    out = llmpath(["tokenize", "-m", name, "-f", "table", TEXT]).stdout
    assert TEMPLATE_NOTE[name] in " ".join(out.split())


@pytest.mark.parametrize("name", MODELS)
def test_bos_and_eos_add_the_config_tokens(llmpath, expected_special, reference, name):
    bos, eos = expected_special(name)
    args = ["tokenize", "-m", name, "-f", "jsonl", "--no-special", "--bos", "--eos", TEXT]
    marked = llmpath(args).records()
    hf = reference(name)
    plain = hf.encode(TEXT, add_special_tokens=False)

    assert len(marked) == len(plain.ids) + 2
    first, last = marked[0], marked[-1]
    assert (first["index"], first["id"], first["special"]) == (0, bos, True)
    assert (first["start"], first["end"]) == (0, 0)
    assert first["token"] == hf.id_to_token(bos)
    assert (last["index"], last["id"], last["special"]) == (len(marked) - 1, eos, True)
    assert (last["start"], last["end"]) == (len(TEXT), len(TEXT))
    assert last["token"] == hf.id_to_token(eos)
    # Between them, the text's own tokens, none of them special.
    middle = marked[1:-1]
    assert [r["id"] for r in middle] == plain.ids
    assert [(r["start"], r["end"]) for r in middle] == [tuple(o) for o in plain.offsets]
    assert [r["index"] for r in middle] == list(range(1, len(marked) - 1))
    assert not any(r["special"] for r in middle)

    ids = llmpath(["tokenize", "-m", name, "-f", "ids", "--no-special", "--bos", "--eos", TEXT])
    assert ids.stdout == " ".join(str(r["id"]) for r in marked) + "\n"
    # With the template on, --bos/--eos never double what it adds.
    both = llmpath(["tokenize", "-m", name, "-f", "jsonl", "--bos", "--eos", TEXT]).records()
    assert [r["id"] for r in both] == [r["id"] for r in marked]


def test_attention_and_walk_feed_the_template(llmpath, reference):
    """The model commands run on the same IDs tokenize gives by default."""
    ids = reference("gemma3-270m").encode(TEXT, add_special_tokens=True).ids
    walk = llmpath(["walk", "-m", "gemma3-270m", "-s", "tokens", "-f", "json", TEXT]).stdout
    doc = json.loads(walk)
    assert [t["id"] for t in doc["tokens"]] == ids
    assert "Special tokens: <bos> by gemma3-270m's own template." in doc["steps"][0]["explain"]
    att = llmpath(["attention", "-m", "gemma3-270m", "-l", "0", "-f", "json", TEXT]).stdout
    assert [t["id"] for t in json.loads(att)["tokens"]] == ids
