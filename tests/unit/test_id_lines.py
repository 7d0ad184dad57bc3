"""IDs of each line (``-f ids``): batches, the line separator, and the text written."""

from __future__ import annotations

import io

import pytest

from llmcli.core import tokenize as core
from llmcli.core.inputs import TextSource
from llmcli.errors import InputError
from llmcli.models.tokenizer import LoadedTokenizer
from llmcli.render.tokens import emit_id_lines, id_lines_text

EOT = "<|endoftext|>"
LINES = [
    "It's a blue sundress.", "", "  two  spaces  ", "a\r", "\ttab", "naïve café 日本語 🙂",
    f"holds {EOT} itself", " x", "y ", "",
]  # fmt: skip


def expected(tok: LoadedTokenizer, lines: list[str]) -> list[list[int]]:
    return [tok.hf.encode(line, add_special_tokens=False).ids for line in lines]


def source(lines: list[str]) -> TextSource:
    return TextSource("stdin", stream=io.BytesIO("\n".join(lines).encode("utf-8") + b"\n"))


def test_the_special_token_separates_lines_of_a_byte_level_bpe(bpe):
    assert bpe.line_separator == (EOT, bpe.hf.token_to_id(EOT))
    lines = [line for line in LINES if EOT not in line]
    ids, end = bpe.encode_lines(lines)
    assert end == bpe.hf.token_to_id(EOT)
    assert list(core.IdLines(ids, end).lines()) == expected(bpe, lines)


def test_a_line_holding_the_separator_is_encoded_on_its_own(bpe):
    ids, end = bpe.encode_lines(LINES)
    assert end == -1
    assert list(core.IdLines(ids, end).lines()) == expected(bpe, LINES)
    assert bpe.hf.token_to_id(EOT) in ids  # the line's own special token


def test_many_batches_give_the_ids_of_each_line(bpe, wp, monkeypatch):
    monkeypatch.setattr(core, "ID_BATCH_BYTES", 7)  # a batch every few lines
    lines = LINES * 20
    assert list(core.stream_id_lines(bpe, source(lines))) == expected(bpe, lines)
    assert list(core.stream_id_lines(wp, source(lines))) == expected(wp, lines)


def test_the_template_wraps_every_line(bert_tokenizer_dir, tmp_path):
    wp = LoadedTokenizer.from_folder("tinywp", bert_tokenizer_dir)
    cls, sep = wp.hf.token_to_id("[CLS]"), wp.hf.token_to_id("[SEP]")
    lines = ["a cat", "", "the mat"]
    got = list(core.stream_id_lines(wp, source(lines), wp.wrap(special=True)))
    assert got == [[cls, *ids, sep] for ids in expected(wp, lines)]
    out = tmp_path / "ids.txt"
    emit_id_lines(core.stream_id_batches(wp, source(lines), wp.wrap(special=True)), out)
    assert out.read_text(encoding="utf-8") == "".join(" ".join(map(str, ids)) + "\n" for ids in got)


@pytest.mark.parametrize(
    ("batch", "text"),
    [
        (core.IdLines([1026, 338, 7, 7, 64], 7), "1026 338\n\n64\n"),
        (core.IdLines([], -1), "\n"),
        (core.IdLines([5, -1], -1), "5\n\n"),
        (core.IdLines([5, -1], -1, before=(0,), after=(9,)), "0 5 9\n0 9\n"),
        (core.IdLines([-1], -1, before=(0,)), "0\n0\n"),
    ],
)
def test_id_lines_text(batch, text):
    assert id_lines_text(batch) == text
    assert text == "".join(" ".join(map(str, ids)) + "\n" for ids in batch.lines())


def test_no_separator_where_the_start_of_a_text_is_treated_apart(tmp_path):
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers

    hf = Tokenizer(models.BPE(unk_token="<unk>"))
    hf.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    hf.train_from_iterator(
        ["It's a blue sundress.", "The cat sat on the mat."] * 20,
        trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>"], show_progress=False),
    )
    hf.add_special_tokens([AddedToken("<s>", special=True, normalized=False)])
    hf.save(str(tmp_path / "tokenizer.json"))
    tok = LoadedTokenizer.from_folder("first", tmp_path)
    assert tok.line_separator is None
    lines = ["a cat", "the mat", ""]
    ids, end = tok.encode_lines(lines)
    assert end == -1
    assert list(core.IdLines(ids, end).lines()) == expected(tok, lines)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_line_batches_cut_lines_as_lines_does(size):
    text = "ab\n\ncé日\r\n🙂 x\n" * 3 + "no break at the end"
    data = text.encode("utf-8")
    batches = list(TextSource("s", stream=io.BytesIO(data)).line_batches(size))
    assert all(batches)
    assert [line for batch in batches for line in batch] == text.split("\n")


def test_bad_utf8_is_reported_with_its_offset(bpe, monkeypatch):
    monkeypatch.setattr(core, "ID_BATCH_BYTES", 16)
    data = b"a cat\n" * 50 + b"bad \xff\n" + b"the mat\n"
    src = TextSource("in.txt", stream=io.BytesIO(data))
    with pytest.raises(InputError) as exc:
        list(core.stream_id_lines(bpe, src))
    assert str(exc.value) == f"in.txt is not valid UTF-8: byte 0xff at byte offset {300 + 4}"


@pytest.mark.parametrize("size", [16, 64, 1000])
def test_a_long_line_comes_in_pieces_with_the_ids_of_the_whole(bpe, bert_tokenizer_dir, tmp_path,
                                                               monkeypatch, size):  # fmt: skip
    monkeypatch.setattr(core, "ID_BATCH_BYTES", size)
    long = "It's a blue sundress.  naïve café 日本語 🙂 x=f(y)\t<|endoftext|> z " * 40
    lines = ["short", long, "", long.strip(), "end"]
    for tok in (bpe, LoadedTokenizer.from_folder("tinybert", bert_tokenizer_dir)):
        wrap = tok.wrap(special=True, bos=True, eos=True)
        whole = [wrap.around(ids) for ids in expected(tok, lines)]
        batches = list(core.stream_id_batches(tok, source(lines), wrap))
        assert any(not b.closes for b in batches)  # the long lines did come in pieces
        assert list(core.stream_id_lines(tok, source(lines), wrap)) == whole
        out = tmp_path / "ids.txt"
        emit_id_lines(iter(batches), out)
        assert out.read_text(encoding="utf-8") == "".join(
            " ".join(map(str, ids)) + "\n" for ids in whole
        )
