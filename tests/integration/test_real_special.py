"""``--special``: each model's BOS/EOS tokens, as its own files name them."""

from __future__ import annotations

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
def test_special_adds_bos_and_eos(llmpath, expected_special, reference, name):
    bos, eos = expected_special(name)
    marked = llmpath(["tokenize", "-m", name, "-f", "jsonl", "--special", TEXT]).records()
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

    ids = llmpath(["tokenize", "-m", name, "-f", "ids", "--special", TEXT]).stdout
    assert ids == " ".join(str(r["id"]) for r in marked) + "\n"


def test_no_special_by_default(llmpath):
    records = llmpath(["tokenize", "-m", "minilm", TEXT]).records()
    assert 101 not in [r["id"] for r in records] and 102 not in [r["id"] for r in records]
    assert not any(r["special"] for r in records)


def test_special_minilm_matches_its_post_processor(llmpath, reference):
    """BERT's own template is [CLS] A [SEP]: --special gives exactly that."""
    marked = llmpath(["tokenize", "-m", "minilm", "-f", "jsonl", "--special", TEXT]).records()
    encoding = reference("minilm").encode(TEXT, add_special_tokens=True)
    assert [r["id"] for r in marked] == encoding.ids
    assert [r["token"] for r in marked] == encoding.tokens
