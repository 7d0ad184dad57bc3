"""Tokenization and decoding in ``llmcli.core.tokenize`` on the tiny tokenizers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcli.core import tokenize as core
from llmcli.core.inputs import TextSource
from llmcli.errors import InputError, ModelError
from llmcli.models.tokenizer import LoadedTokenizer

EOT = "<|endoftext|>"
TEXTS = [
    "It's a blue sundress.",
    "The cat sat on the mat.",
    "naïve café 日本語 🙂 and a zebra",
    "two\nlines\r\n  indented\ttab",
    "  leading and trailing spaces  ",
]


def test_loaded_tokenizer_facts(bpe, bpe_ref, wp, wordpiece_ref):
    eot = bpe_ref.token_to_id(EOT)
    assert bpe.vocab_size == bpe_ref.get_vocab_size(with_added_tokens=True)
    assert bpe.special_ids == {eot}
    assert (bpe.bos_id, bpe.eos_id) == (eot, eot)
    assert bpe.byte_level and not bpe.byte_fallback and bpe.splittable
    assert bpe.wordpiece_prefix is None
    assert bpe.tiktoken is None  # no ranks file in the folder

    assert wp.vocab_size == wordpiece_ref.get_vocab_size()
    assert wp.bos_id == wordpiece_ref.token_to_id("[CLS]")
    assert wp.eos_id == wordpiece_ref.token_to_id("[SEP]")
    assert wp.wordpiece_prefix == "##"
    assert not wp.byte_level and wp.splittable


@pytest.mark.parametrize("text", TEXTS)
def test_ids_and_tokens_equal_the_tokenizers_library(bpe, bpe_ref, text):
    expected = bpe_ref.encode(text, add_special_tokens=False)
    records = core.tokenize(bpe, text)
    assert [r.id for r in records] == expected.ids
    assert [r.token for r in records] == expected.tokens
    assert [r.index for r in records] == list(range(len(records)))
    assert not any(r.special for r in records)


@pytest.mark.parametrize("text", TEXTS)
def test_bytes_add_up_to_the_input_and_offsets_point_at_the_text(bpe, text):
    records = core.tokenize(bpe, text)
    assert b"".join(bytes.fromhex(r.bytes) for r in records) == text.encode("utf-8")
    for r in records:
        data = bytes.fromhex(r.bytes)
        try:
            whole = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        assert r.text == whole
        assert text[r.start : r.end] == whole


def test_a_character_split_across_tokens_shows_its_bytes(bpe, bpe_ref):
    text = "語"  # three UTF-8 bytes, seen once in the training text: not one token
    ids = bpe_ref.encode(text, add_special_tokens=False).ids
    assert len(ids) > 1
    records = core.tokenize(bpe, text)
    assert b"".join(bytes.fromhex(r.bytes) for r in records) == "語".encode()
    partial = [r for r in records if "\\x" in r.text]
    assert partial, records
    for r in partial:
        assert r.text == bytes.fromhex(r.bytes).decode("utf-8", "backslashreplace")
    assert not any("\ufffd" in r.text for r in records)
    # Decoding only the first token gives its bytes as escapes, never U+FFFD.
    first = core.decode(bpe, ids[:1])
    assert "\ufffd" not in first
    assert first == bytes.fromhex(records[0].bytes).decode("utf-8", "backslashreplace")
    assert core.decode(bpe, ids) == text


def test_bos_and_eos_add_the_config_tokens(bpe, bpe_ref):
    text = "The cat sat."
    eot = bpe_ref.token_to_id(EOT)
    # GPT-2's own template adds nothing: --special alone changes nothing.
    plain = bpe_ref.encode(text, add_special_tokens=False).ids
    assert [r.id for r in core.tokenize(bpe, text, bpe.wrap(special=True))] == plain
    records = core.tokenize(bpe, text, bpe.wrap(special=True, bos=True, eos=True))
    inner = bpe_ref.encode(text, add_special_tokens=False).ids
    assert [r.id for r in records] == [eot, *inner, eot]
    first, last = records[0], records[-1]
    assert first.special and last.special and first.token == EOT
    assert first.bytes == EOT.encode().hex()
    assert (first.start, first.end) == (0, 0)
    assert (last.start, last.end) == (len(text), len(text))
    assert [r.index for r in records] == list(range(len(inner) + 2))


def test_special_token_in_the_text_is_one_special_token(bpe, bpe_ref):
    records = core.tokenize(bpe, f"cat{EOT}cat")
    assert [r.id for r in records] == bpe_ref.encode(f"cat{EOT}cat", add_special_tokens=False).ids
    assert [r.special for r in records].count(True) == 1


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_decode_inverts_encode(bpe, bpe_ref, text):
    ids = bpe_ref.encode(text, add_special_tokens=False).ids
    assert [r.id for r in core.tokenize(bpe, text)] == ids
    assert core.decode(bpe, ids) == text


@pytest.mark.parametrize("text", TEXTS)
def test_stream_in_small_chunks_matches_one_piece(bpe, monkeypatch, tmp_path, text):
    big = "\n".join([text] * 40) + "\n"
    whole = core.tokenize(bpe, big)
    original = TextSource.chunks

    def small(self, splittable, size=64):
        return original(self, splittable, 64)

    monkeypatch.setattr(TextSource, "chunks", small)
    path = tmp_path / "in.txt"
    path.write_bytes(big.encode("utf-8"))
    source = TextSource(str(path), path=path)
    streamed = list(core.stream_tokens(bpe, source))
    assert streamed == whole
    assert source.chars == len(big)
    assert source.nbytes == len(big.encode("utf-8"))


def test_stream_id_lines_gives_the_ids_of_each_line(bpe, bpe_ref):
    lines = ["It's a blue sundress.", "", "日本語 🙂", "  two  spaces"]
    source = TextSource("argument", text="\n".join(lines) + "\n")
    got = list(core.stream_id_lines(bpe, source))
    assert got == [bpe_ref.encode(line, add_special_tokens=False).ids for line in lines]
    eot = bpe_ref.token_to_id(EOT)
    source = TextSource("argument", text="a cat\nthe mat")
    with_special = list(
        core.stream_id_lines(bpe, source, bpe.wrap(special=True, bos=True, eos=True))
    )
    assert with_special == [
        [eot, *bpe_ref.encode(line, add_special_tokens=False).ids, eot]
        for line in ("a cat", "the mat")
    ]


def test_records_for_ids_count_offsets_in_decoded_text(bpe, bpe_ref):
    text = "The cat sat."
    ids = bpe_ref.encode(text, add_special_tokens=False).ids
    records = core.records_for_ids(bpe, ids)
    assert [r.id for r in records] == ids
    assert "".join(r.text for r in records) == text
    for r in records:
        assert text[r.start : r.end] == r.text


@pytest.mark.parametrize("bad", [-1, 10_000])
def test_ids_outside_the_vocabulary_are_refused(bpe, bad):
    with pytest.raises(InputError) as exc:
        core.decode(bpe, [1, bad])
    assert str(exc.value) == (
        f"ID {bad} is outside the vocabulary of tinybpe (0..{bpe.vocab_size - 1})"
    )
    with pytest.raises(InputError):
        core.records_for_ids(bpe, [bad])


def test_wordpiece_tokens_and_text(wp, wordpiece_ref):
    text = "The kitten sat, unseen."
    expected = wordpiece_ref.encode(text, add_special_tokens=False)
    records = core.tokenize(wp, text)
    assert [r.id for r in records] == expected.ids
    assert [r.token for r in records] == expected.tokens
    assert any(r.token.startswith("##") for r in records)
    for r in records:
        assert r.text == r.token.removeprefix("##")
        assert text[r.start : r.end].lower() == r.text
    # Its template adds nothing; --bos/--eos add [CLS]/[SEP] (the config's BOS/EOS).
    assert core.tokenize(wp, text, wp.wrap(special=True)) == records
    with_special = core.tokenize(wp, text, wp.wrap(special=True, bos=True, eos=True))
    assert with_special[0].token == "[CLS]" and with_special[-1].token == "[SEP]"
    assert with_special[0].special and with_special[-1].special
    assert core.decode(wp, expected.ids) == wordpiece_ref.decode(
        expected.ids, skip_special_tokens=False
    )


def test_a_folder_without_tokenizer_json_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="no tokenizer.json"):
        LoadedTokenizer.from_folder("empty", tmp_path)


def test_a_broken_tokenizer_config_is_a_model_error(bpe_dir, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes((bpe_dir / "tokenizer.json").read_bytes())
    (folder / "tokenizer_config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="not valid JSON"):
        LoadedTokenizer.from_folder("broken", folder)


def test_token_record_dict_has_the_documented_keys(bpe):
    record = core.tokenize(bpe, "It")[0]
    assert list(record.to_dict()) == [
        "index", "id", "token", "text", "start", "end", "bytes", "special",
    ]  # fmt: skip
    json.dumps(record.to_dict())


def test_wrap_is_the_template_and_never_doubles_bos_or_eos(bert_tokenizer_dir, bpe):
    wp = LoadedTokenizer.from_folder("tinywp", bert_tokenizer_dir)
    text = "The kitten sat."
    ref = wp.hf.encode(text).ids  # the tokenizer's own template
    assert [r.id for r in core.tokenize(wp, text, wp.wrap(special=True))] == ref
    cls, sep = wp.hf.token_to_id("[CLS]"), wp.hf.token_to_id("[SEP]")
    assert wp.template == ((cls,), (sep,))
    wrap = wp.wrap(special=True, bos=True, eos=True)  # BOS/EOS are [CLS]/[SEP] here
    assert (wrap.before, wrap.after) == ((cls,), (sep,))
    assert "[CLS] … [SEP] by tinywp's own template" in wrap.summary
    assert "--bos: [CLS] is there already" in wrap.summary
    off = wp.wrap(special=False)
    assert (off.before, off.after) == ((), ())
    assert off.summary == "special tokens: none (--no-special leaves out tinywp's [CLS] … [SEP])"
    assert bpe.wrap(special=True).summary.startswith("special tokens: none (")
    assert wp.wrap(special=False, bos=True).before == (cls,)


def test_bos_on_a_tokenizer_without_one_is_an_input_error(bpe_dir):
    tok = LoadedTokenizer.from_folder("tinybpe", bpe_dir)
    tok.bos_id = None  # as for a tokenizer_config.json that names none
    with pytest.raises(InputError, match="--bos: tinybpe's tokenizer names no BOS token"):
        tok.wrap(special=True, bos=True)
