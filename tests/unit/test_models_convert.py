"""Conversions done at pull time: tiktoken ranks to tokenizer.json, copying a model folder."""

from __future__ import annotations

import base64
import itertools
import os

import pytest
import tiktoken
from tokenizers import Tokenizer

from llmcli.errors import ModelError
from llmcli.models import convert

SAMPLES = [
    "the cat sat singing. The cats, the hats!",
    "  indented\tline\r\nnaïve 日本語 🙂 don't\u00a0stop   \n",
    "they'll say: we've 12,345 cafés <|endoftext|> the end",
]


def tiny_ranks() -> dict[bytes, int]:
    """All 256 bytes, then merges that build a few words, then pairs of printable bytes."""
    ranks = {bytes([b]): b for b in range(256)}
    for token in (b"at", b"he", b" t", b" the", b" c", b" cat", b"in", b"ing", b" s", b" sat"):
        ranks[token] = len(ranks)
    for a, b in itertools.product(b"abcdefghijklmnop", b"qrstuvwxyz .,"):
        ranks.setdefault(bytes([a, b]), len(ranks))
    return ranks


def test_bytes_to_unicode_is_gpt2s_printable_map():
    table = convert.bytes_to_unicode()
    assert len(table) == 256 and len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    assert all(table[b] == chr(b) for b in range(ord("!"), ord("~") + 1))
    assert all(c.isprintable() and not c.isspace() for c in table.values())


def test_load_tiktoken_ranks(tmp_path):
    path = tmp_path / "r.tiktoken"
    path.write_bytes(b"YQ== 0\n\nYg== 1\nYWI= 2\n")
    assert convert.load_tiktoken_ranks(path) == {b"a": 0, b"b": 1, b"ab": 2}
    path.write_bytes(b"YQ== 0\nnot-a-line\n")
    with pytest.raises(ModelError, match="line 2 is not 'base64 rank'"):
        convert.load_tiktoken_ranks(path)
    with pytest.raises(ModelError, match="cannot read"):
        convert.load_tiktoken_ranks(tmp_path / "missing.tiktoken")


@pytest.mark.parametrize("text", SAMPLES)
def test_converted_ranks_give_the_same_ids_as_tiktoken(text):
    ranks = tiny_ranks()
    special = {"<|endoftext|>": len(ranks)}
    hf = Tokenizer.from_str(convert.tiktoken_to_tokenizer_json(ranks, special))
    enc = tiktoken.Encoding(
        name="tiny", pat_str=convert.GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=special
    )
    expected = enc.encode(text, allowed_special="all")
    assert hf.encode(text, add_special_tokens=False).ids == expected
    assert hf.get_vocab_size() == len(ranks) + 1
    assert hf.token_to_id("Ġcat") == ranks[b" cat"]
    assert hf.decode(expected, skip_special_tokens=False) == text


def test_special_tokens_must_follow_the_ranks():
    ranks = tiny_ranks()
    with pytest.raises(ModelError, match="must follow the ranks"):
        convert.tiktoken_to_tokenizer_json(ranks, {"<|endoftext|>": len(ranks) + 5})


def test_a_rank_that_is_not_one_merge_is_refused():
    ranks = {bytes([b]): b for b in range(256)}
    ranks[b"abc"] = 256  # neither "ab" nor "bc" exists: BPE cannot build it in one merge
    with pytest.raises(ModelError, match="rank 256 cannot be expressed as one merge"):
        convert.tiktoken_to_tokenizer_json(ranks, {})


def test_ranks_file_round_trip_through_the_loader(tmp_path):
    ranks = tiny_ranks()
    path = tmp_path / "tiny.tiktoken"
    path.write_bytes(b"".join(base64.b64encode(t) + b" %d\n" % r for t, r in ranks.items()))
    assert convert.load_tiktoken_ranks(path) == ranks


def test_copy_hf_folder_copies_data_files_only(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    out.mkdir()
    files = {
        "tokenizer.json": "{}", "config.json": "{}", "sub/vocab.txt": "a\nb\n",
        "README.md": "# m", "modeling_evil.py": "import os", "pytorch_model.bin": "pickle",
        ".hidden.json": "{}",
    }  # fmt: skip
    for name, text in files.items():
        (src / name).write_text(text)
    os.symlink("/etc/passwd", src / "link.json")
    skipped = convert.copy_hf_folder(src, out)
    copied = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert copied == ["README.md", "config.json", "sub/vocab.txt", "tokenizer.json"]
    assert sorted(skipped) == [".hidden.json", "link.json", "modeling_evil.py", "pytorch_model.bin"]
    assert (out / "sub" / "vocab.txt").read_text() == "a\nb\n"


def test_converted_merges_are_written_as_strings():
    """The "a b" form of the merges loads in about half the time of ["a", "b"] pairs,
    and means the same: the loaded tokenizer writes the very same pairs back."""
    import json

    ranks = tiny_ranks()
    text = convert.tiktoken_to_tokenizer_json(ranks, {"<|endoftext|>": len(ranks)})
    merges = json.loads(text)["model"]["merges"]
    assert merges and all(isinstance(m, str) and m.count(" ") == 1 for m in merges)
    again = json.loads(Tokenizer.from_str(text).to_str())["model"]["merges"]
    assert [" ".join(pair) for pair in again] == merges
