"""The bulk engine (fastokens) gives exactly the reference's IDs (tiktoken where the folder
has GPT-2's ranks, else tokenizers), and a short input never loads it. The real
vocabularies: tests/integration/test_real_engines.py."""

from __future__ import annotations

import io
import shutil

import pytest
from adversarial import strings
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcli.core import tokenize as core
from llmcli.core.inputs import TextSource
from llmcli.core.tokenize import IdLines
from llmcli.models import tokenizer
from llmcli.models.tokenizer import LoadedTokenizer

ADVERSARIAL = strings(3000, long_every=500)


def fresh(folder, label="tiny"):  # type: ignore[no-untyped-def]
    return LoadedTokenizer.from_folder(label, folder)


def lines_of(tok, texts, *, bulk):  # type: ignore[no-untyped-def]
    ids, separator = tok.encode_lines(texts, bulk=bulk)
    return list(IdLines(ids, separator).lines())


def reference(tok, texts):  # type: ignore[no-untyped-def]
    if tok.tiktoken is not None:
        return [tok.tiktoken.encode(t, allowed_special="all") for t in texts]
    return [tok.hf.encode(t, add_special_tokens=False).ids for t in texts]


@pytest.fixture(scope="module", params=["tiktoken ranks", "byte-level BPE"])
def engine_tok(request, tiktoken_dir, bpe_dir):  # type: ignore[no-untyped-def]
    tok = fresh(tiktoken_dir if request.param == "tiktoken ranks" else bpe_dir)
    assert tok.bulk is not None and tok.bulk.name == "fastokens"
    return tok


def test_no_engine_for_wordpiece(wordpiece_dir):
    assert fresh(wordpiece_dir).bulk is None


def test_unicode_17_letters_after_a_contraction(engine_tok):
    """Letters new in Unicode 17 (U+088F, U+A7CE, CJK extension J): an engine with older
    tables cuts ``'s`` + letter otherwise than tiktoken does."""
    texts = [f"{p}{chr(c)}{p}" for c in (0x088F, 0x0C5C, 0xA7CE, 0x10940, 0x323B0, 0x33479)
             for p in ("'s", ":", "a", " ", "1")]  # fmt: skip
    assert lines_of(engine_tok, texts, bulk=True) == reference(engine_tok, texts)


def test_each_engine_gives_the_references_ids_on_adversarial_text(engine_tok):
    texts = [t.replace("\n", " ") for t in ADVERSARIAL]
    assert lines_of(engine_tok, texts, bulk=True) == reference(engine_tok, texts)
    assert lines_of(engine_tok, texts, bulk=False) == reference(engine_tok, texts)


def test_a_literal_special_token_is_the_special_id_in_every_engine(engine_tok):
    eot = engine_tok.hf.token_to_id("<|endoftext|>")
    texts = ["<|endoftext|>", "a<|endoftext|>b", " <|endoftext|> ", "<|endoftext", ""]
    got = lines_of(engine_tok, texts, bulk=True)
    assert got == reference(engine_tok, texts) == lines_of(engine_tok, texts, bulk=False)
    assert got[0] == [eot] and eot in got[1] and eot not in got[3]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=40).map(lambda t: t.replace("\n", " ")), min_size=1, max_size=8))
def test_engines_agree_on_any_text(engine_tok, texts):
    assert lines_of(engine_tok, texts, bulk=True) == reference(engine_tok, texts)


def test_a_short_input_never_loads_an_engine(bpe_dir, tiktoken_dir):
    for folder in (bpe_dir, tiktoken_dir):
        tok = fresh(folder)
        text = "\n".join(ADVERSARIAL[1:200]).replace("\r", "")
        batches = list(core.stream_id_batches(tok, TextSource("argument", text=text)))
        assert batches and "bulk" not in tok.__dict__  # the cached engine was never made


def test_the_threshold_is_the_size_of_the_engines_file(bpe_dir, tiktoken_dir, tmp_path):
    """The bulk engine pays from an input as large as the tokenizer.json it must read
    (1.5 MB at the least); against tiktoken, from 16 MB."""
    assert fresh(tiktoken_dir).bulk_threshold == tokenizer.BULK_THRESHOLD
    assert fresh(bpe_dir).bulk_threshold == tokenizer.BULK_THRESHOLD_TOKENIZERS == 3 << 19
    big = tmp_path / "big"
    shutil.copytree(bpe_dir, big)
    data = (big / "tokenizer.json").read_bytes()
    (big / "tokenizer.json").write_bytes(data + b" " * (2_000_000 - len(data)))  # same JSON
    tok = fresh(big)
    assert tok.bulk_threshold == 2_000_000
    assert tok.encode_lines(["It's a cat"]) == fresh(bpe_dir).encode_lines(["It's a cat"])


def _counting(engine, calls):  # type: ignore[no-untyped-def]
    original = engine.lines

    def lines(texts):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        return original(texts)

    return lines


def test_a_large_input_takes_the_engine_with_the_same_ids(bpe_dir, tiktoken_dir, monkeypatch):
    monkeypatch.setattr(core, "ID_BATCH_BYTES", 2000)
    text = "\n".join(t.replace("\r", "").replace("\n", " ") for t in ADVERSARIAL[1:400]) + "\n"
    for folder in (bpe_dir, tiktoken_dir):
        tok = fresh(folder)
        engine = tok.bulk
        assert engine is not None
        calls: list[int] = []
        monkeypatch.setattr(LoadedTokenizer, "bulk_threshold", 1000)
        monkeypatch.setattr(engine, "lines", _counting(engine, calls))
        got = list(core.stream_id_lines(tok, TextSource("argument", text=text)))
        assert calls  # the engine did take over
        assert got == reference(tok, text.split("\n")[:-1])


def test_an_input_of_known_size_takes_the_engine_from_its_start(bpe_dir, tmp_path, monkeypatch):
    """A file past the threshold is the engine's from its first line; from a pipe, whose
    size is not known, the engine takes over once that much has been read."""
    monkeypatch.setattr(core, "ID_BATCH_BYTES", 2000)
    monkeypatch.setattr(LoadedTokenizer, "bulk_threshold", 10_000)
    lines = [t.replace("\r", "").replace("\n", " ") for t in ADVERSARIAL if len(t) < 200]
    text = "\n".join(lines[:1500]) + "\n"
    assert len(text.encode("utf-8")) > 30_000
    path = tmp_path / "in.txt"
    path.write_bytes(text.encode("utf-8"))
    expected = reference(fresh(bpe_dir), text.split("\n")[:-1])
    piped = TextSource("stdin", stream=io.BytesIO(path.read_bytes()))
    for source, whole in ((TextSource(str(path), path=path), True), (piped, False)):
        tok = fresh(bpe_dir)
        engine = tok.bulk
        assert engine is not None
        calls: list[int] = []
        monkeypatch.setattr(engine, "lines", _counting(engine, calls))
        assert list(core.stream_id_lines(tok, source)) == expected
        if whole:
            assert sum(calls) == len(expected)
        else:
            assert 0 < sum(calls) < len(expected)


def test_a_batch_the_engine_refuses_is_done_by_the_reference(bpe_dir, monkeypatch):
    """fastokens raises on a byte that has no token (SmolLM2 lacks 21 of them), where
    tokenizers drops it: that batch is encoded by tokenizers."""
    tok = fresh(bpe_dir)
    engine = tok.bulk
    assert engine is not None

    def refuse(texts):  # type: ignore[no-untyped-def]
        raise ValueError("model error: byte 0xf1 has no token in vocabulary")

    monkeypatch.setattr(engine, "_lines", refuse)
    texts = ["a cat", "", "日本語 🙂"]
    assert lines_of(tok, texts, bulk=True) == reference(tok, texts)


def test_a_short_text_is_encoded_without_loading_another_engine(tiktoken_dir):
    """A TEXT argument goes to tokenizers, loaded already: tiktoken's ranks are not read
    for it, and the IDs are tiktoken's, a literal special token included."""
    tok = fresh(tiktoken_dir)
    text = "It's a <|endoftext|> blue\n\tsundress.  \n\n日本語 🙂 don't"
    got = list(core.stream_id_lines(tok, TextSource("argument", text=text)))
    assert "tiktoken" not in tok.__dict__ and "bulk" not in tok.__dict__  # never loaded
    expected = reference(tok, text.split("\n"))
    assert got == expected
    assert tok.tiktoken.encode_single_token("<|endoftext|>") in expected[0]
