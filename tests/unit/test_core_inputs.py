"""Where input comes from and how it is read: ``llmcli.core.inputs``."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from llmcli.core import inputs
from llmcli.core.inputs import TextSource
from llmcli.errors import InputError, UsageError

MIXED = "It's 日本語 🙂 café\r\nsecond line\n\nlast"


def stream(data: bytes, label: str = "stdin") -> TextSource:
    return TextSource(label, stream=io.BytesIO(data))


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 64])
def test_blocks_decode_characters_split_between_reads(size):
    data = MIXED.encode("utf-8")
    source = stream(data)
    blocks = list(source.blocks(size))
    assert "".join(blocks) == MIXED
    assert all(blocks)
    assert source.chars == len(MIXED)
    assert source.nbytes == len(data)


def test_text_argument_counts_characters_and_bytes():
    source = TextSource("argument", text="日本")
    assert source.read() == "日本"
    assert (source.chars, source.nbytes) == (2, 6)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 6, 7, 8, 1 << 20])
@pytest.mark.parametrize(
    ("data", "offset", "byte"),
    [
        (b"abc\xffdef", 3, "ff"),
        (b"\xff", 0, "ff"),
        ("日本".encode() + b"\xe6\x97" + b"x", 6, "e6"),  # a character cut short
        (b"ab" + "é".encode() + b"\xe6\x97", 4, "e6"),  # cut short at the very end
        (b"ok\xc3\x28", 2, "c3"),
    ],
)
def test_invalid_utf8_is_reported_with_its_byte_offset(size, data, offset, byte):
    with pytest.raises(InputError) as exc:
        list(stream(data).blocks(size))
    assert str(exc.value) == f"stdin is not valid UTF-8: byte 0x{byte} at byte offset {offset}"


def test_empty_input_is_an_error():
    with pytest.raises(InputError, match=r"empty input \(stdin\)"):
        stream(b"").read()
    with pytest.raises(InputError, match=r"empty input \(argument\)"):
        TextSource("argument", text="").read()


def test_lines_keep_carriage_returns_and_drop_only_line_breaks():
    source = TextSource("argument", text=MIXED)
    assert list(source.lines()) == ["It's 日本語 🙂 café\r", "second line", "", "last"]
    assert list(TextSource("argument", text="a\nb\n").lines()) == ["a", "b"]


@pytest.mark.parametrize("size", [8, 16, 50])
def test_chunks_cut_before_a_space_after_a_non_space_or_between_lines(size):
    text = "one two\nthree  \n four\nfive\n\nsix\nseven eight nine\nten\n" * 5
    chunks = list(TextSource("argument", text=text).chunks(True, size))
    assert "".join(chunks) == text
    assert len(chunks) > 1
    for chunk, after in zip(chunks[:-1], chunks[1:]):
        # Either "x| y" (a space after a non-space) or "x\n|y" (a line break between
        # two non-space characters): no pre-token runs across either.
        assert (
            not chunk[-1].isspace()
            and after[0] == " "
            or (chunk.endswith("\n") and not chunk[-2].isspace() and not after[0].isspace())
        )


def test_chunks_without_a_safe_pre_tokenizer_are_the_whole_text():
    text = "a\nb\n" * 100
    assert list(TextSource("argument", text=text).chunks(False, 4)) == [text]


@pytest.mark.parametrize(
    ("buf", "cut"),
    [
        ("ab\ncd", 3),
        ("ab \ncd", 2),
        ("ab\n cd", 0),
        ("a\nb \nc", 3),
        ("abc", 0),
        ("ab\n", 0),
        ("a b c", 3),
        ("a  b", 1),
        (" ab", 0),
        ("ab\n  cd", 0),
        ("x\ny  z\nw", 3),
    ],
)
def test_safe_cut(buf, cut):
    assert inputs.safe_cut(buf) == cut


def test_text_source_routes(tmp_path, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_text("hello", encoding="utf-8")
    assert inputs.text_source("hi", None).text == "hi"
    from_file = inputs.text_source(None, path)
    assert (from_file.label, from_file.read()) == (str(path), "hello")
    assert inputs.text_source(None, Path("-")).label == "stdin"
    assert inputs.text_source("-", None).label == "stdin"
    monkeypatch.setattr(inputs, "stdin_is_tty", lambda: False)
    assert inputs.text_source(None, None).label == "stdin"
    monkeypatch.setattr(inputs, "stdin_is_tty", lambda: True)
    with pytest.raises(UsageError, match="give TEXT, --file PATH, or pipe text on stdin"):
        inputs.text_source(None, None)


def test_text_source_errors(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="give TEXT or --file, not both"):
        inputs.text_source("x", path)
    with pytest.raises(InputError, match="no such file"):
        inputs.text_source(None, tmp_path / "missing.txt")
    with pytest.raises(InputError, match="it is a folder"):
        inputs.text_source(None, tmp_path)


def test_ids_from_words():
    assert inputs.ids_from_words(["1,2", "3 4", "-5"]).ids == [1, 2, 3, 4, -5]
    with pytest.raises(InputError, match="'x' is not a token ID"):
        inputs.ids_from_words(["1", "x"])
    with pytest.raises(InputError, match="no token IDs given"):
        inputs.ids_from_words([" ", ","])


def ids_of(text: str) -> list[tuple[list[int], int, list[str] | None]]:
    return [(s.ids, s.line, s.tokens) for s in inputs.read_id_input(TextSource("stdin", text=text))]


def test_read_id_input_lines_of_ids():
    # A blank line among lines of IDs is an empty line of text.
    assert ids_of("1 2 3\n\n4,5\n  6  \n") == [
        ([1, 2, 3], 1, None), ([], 2, None), ([4, 5], 3, None), ([6], 4, None),
    ]  # fmt: skip


def test_read_id_input_records_split_where_index_restarts():
    records = [
        {"index": 0, "id": 10, "token": "a"},
        {"index": 1, "id": 11, "token": "b"},
        {"index": 0, "id": 12, "token": "c"},
    ]
    text = "\n".join(json.dumps(r) for r in records) + "\n7 8\n"
    assert ids_of(text) == [([10, 11], 1, ["a", "b"]), ([12], 3, ["c"]), ([7, 8], 4, None)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"id": 1}\n{"id": 2\n', "stdin line 2: malformed JSON"),
        ('1 2\n\n{"token": "a"}\n', 'stdin line 3: a token record needs an "id"'),
        ('{"id": "3"}\n', "stdin line 1: \"id\" must be an integer, not '3'"),
        ('{"id": true}\n', 'stdin line 1: "id" must be an integer, not True'),
        ("1 2\n3 x\n", "stdin line 2: 'x' is not a token ID"),
        ("\n  \n", "empty input (stdin)"),
    ],
)
def test_read_id_input_errors(text, message):
    with pytest.raises(InputError) as exc:
        ids_of(text)
    assert message in str(exc.value)


# --- the first tokens of a long text (attention --truncate) ------------------------------


class _Spy:
    """A tokenizer's ``hf`` that records how many characters each encode was given."""

    def __init__(self, hf):  # type: ignore[no-untyped-def]
        self.hf, self.lengths = hf, []

    def encode(self, text, add_special_tokens=True):  # type: ignore[no-untyped-def]
        self.lengths.append(len(text))
        return self.hf.encode(text, add_special_tokens=add_special_tokens)


@pytest.mark.parametrize("keep", [1, 5, 64, 300])
def test_first_tokens_are_the_whole_texts_first_tokens(bpe, bert_tokenizer_dir, keep):
    from llmcli.models.tokenizer import LoadedTokenizer

    text = ("It's a blue sundress.  naïve café 日本語 🙂\n\tx  =  f(y)\r\n" * 400)[:-3]
    for tok in (bpe, LoadedTokenizer.from_folder("tinybert", bert_tokenizer_dir)):
        for wrap in (tok.wrap(special=True), tok.wrap(special=True, bos=True, eos=True)):
            whole = wrap.around(tok.hf.encode(text, add_special_tokens=False).ids)
            assert inputs.first_tokens(tok, text, wrap, keep) == whole[:keep]
    short = "a cat"
    assert inputs.first_tokens(bpe, short, bpe.wrap(special=True), 300) == (
        bpe.hf.encode(short, add_special_tokens=False).ids
    )


def test_first_tokens_read_only_a_prefix_of_a_long_text(bpe_dir):
    from llmcli.models.tokenizer import LoadedTokenizer

    tok = LoadedTokenizer.from_folder("tinybpe", bpe_dir)
    spy = _Spy(tok.hf)
    tok.hf = spy
    text = "the cat sat on the mat. " * 50_000  # 1.2 million characters
    ids = inputs.first_tokens(tok, text, tok.wrap(special=False), 64)
    assert len(ids) == 64
    assert max(spy.lengths) <= 1 << 13  # a few thousand characters, not the text
    assert ids == spy.hf.encode(text[:10_000], add_special_tokens=False).ids[:64]


def test_size_is_known_for_a_text_and_a_regular_file_not_for_a_pipe(tmp_path: Path):
    path = tmp_path / "in.txt"
    path.write_bytes("naïve\n".encode())
    assert TextSource("argument", text="naïve").size() == 6
    assert TextSource(str(path), path=path).size() == 7
    with path.open("rb") as fh:  # `llmpath tokenize < in.txt`
        assert TextSource("stdin", stream=fh).size() == 7
    assert TextSource("stdin", stream=io.BytesIO(b"naive")).size() is None
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert TextSource(str(fifo), path=fifo).size() is None
    read, write = os.pipe()
    with os.fdopen(read, "rb") as fh:
        os.close(write)
        assert TextSource("stdin", stream=fh).size() is None
