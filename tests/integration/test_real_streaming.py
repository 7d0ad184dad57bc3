"""A large file tokenized in pieces gives exactly the tokens of the whole text at once.

Blocks, record chunks and ID batches are a tenth of their usual size here (``shrink``), so
a tenth of the text is cut as often as a large file is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmcli.core import tokenize as core
from llmcli.core.inputs import BLOCK, TextSource

SPLITTABLE = ("gpt2", "minilm", "smollm2")
SCALE = 10

# Mixed into the real text so that pieces are cut next to CR LF, whitespace runs and
# multi-byte characters, not only next to plain source code.
VARIED = (
    "Naïve café — 東京タワー 🤖👩‍💻 e\u0301\r\n"
    "  indented\tand\t\ttabbed   \n\n\n"
    "x\ny\r\nz \n w\u00a0\n\u3000full-width space\n"
    "it's we'll 3.14159 <b>bold</b>\n"
)


@pytest.fixture(autouse=True)
def _small_blocks(shrink) -> None:  # type: ignore[no-untyped-def]
    shrink(SCALE)


@pytest.fixture(scope="module")
def big_file(stdlib_text: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real text with VARIED after every 40th line: about 210 KB, read in blocks of
    100 KB (a tenth of 2.1 MB in 1 MB blocks)."""
    lines = stdlib_text.read_bytes().decode("utf-8").split("\n")
    out = []
    size = 0
    for number, line in enumerate(lines):
        out.append(line)
        size += len(line)
        if number % 40 == 39:
            out.append(VARIED)
        if size > 1_950_000 // SCALE:
            break
    path = tmp_path_factory.mktemp("big") / "big.txt"
    path.write_bytes("\n".join(out).encode("utf-8"))
    return path


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")  # exactly: no newline translation


def _whole(hf, text: str) -> list[tuple[int, int, int]]:
    encoding = hf.encode(text, add_special_tokens=False)
    return [(i, s, e) for i, (s, e) in zip(encoding.ids, encoding.offsets, strict=True)]


def test_big_file_is_read_in_several_pieces(big_file: Path, loaded):
    assert loaded("gpt2").splittable and loaded("minilm").splittable
    assert loaded("smollm2").splittable
    assert not loaded("gemma3-270m").splittable
    text = _read(big_file)
    assert len(text.encode("utf-8")) > 2 * BLOCK // SCALE
    pieces = list(TextSource(str(big_file), path=big_file).chunks(True))
    assert len(pieces) >= 2
    assert "".join(pieces) == text
    whole = list(TextSource(str(big_file), path=big_file).chunks(False))
    assert whole == [text]


@pytest.mark.parametrize("name", SPLITTABLE)
def test_streamed_records_equal_whole_text(loaded, reference, big_file: Path, name: str):
    """What ``llmpath tokenize -f jsonl --file`` streams, against one whole-text encode."""
    tok = loaded(name)
    source = TextSource(str(big_file), path=big_file)
    streamed = [(r.id, r.start, r.end) for r in core.stream_tokens(tok, source)]
    text = _read(big_file)
    assert streamed == _whole(reference(name), text)
    assert source.chars == len(text)


@pytest.mark.parametrize("name", SPLITTABLE)
def test_small_pieces_tokenize_like_the_whole(reference, big_file: Path, tmp_path: Path, name):
    """Many cuts (blocks of 1 KB) still give the whole text's tokens and offsets."""
    text = _read(big_file)[:100_000]
    path = tmp_path / "part.txt"
    path.write_bytes(text.encode("utf-8"))
    hf = reference(name)
    pieces = list(TextSource(str(path), path=path).chunks(True, size=1024))
    assert len(pieces) > 50
    assert "".join(pieces) == text
    got: list[tuple[int, int, int]] = []
    base = 0
    for piece in pieces:
        got.extend((i, base + s, base + e) for i, s, e in _whole(hf, piece))
        base += len(piece)
    assert got == _whole(hf, text)


def test_gemma_reads_the_whole_text(loaded, reference, big_file: Path, tmp_path: Path):
    """Gemma's tokenizer cannot be cut at line breaks: it gets the text in one piece."""
    text = _read(big_file)[: 1_200_000 // SCALE]
    path = tmp_path / "part.txt"
    path.write_bytes(text.encode("utf-8"))
    tok = loaded("gemma3-270m")
    streamed = [
        (r.id, r.start, r.end) for r in core.stream_tokens(tok, TextSource(str(path), path=path))
    ]
    assert streamed == _whole(reference("gemma3-270m"), text)


def test_cli_streams_a_big_file(llmpath, reference, big_file: Path):
    """``llmpath tokenize -f jsonl --file`` on more than a block: the whole text's records."""
    text = _read(big_file)[: 1_150_000 // SCALE]
    path = big_file.with_name("cli.txt")
    path.write_bytes(text.encode("utf-8"))
    assert path.stat().st_size > BLOCK // SCALE
    assert len(list(TextSource(str(path), path=path).chunks(True))) == 2
    records = llmpath(["tokenize", "-m", "smollm2", "-f", "jsonl", "--file", str(path)]).records()
    got = [(r["id"], r["start"], r["end"]) for r in records]
    assert got == _whole(reference("smollm2"), text)
    assert [r["index"] for r in records] == list(range(len(records)))
    assert b"".join(bytes.fromhex(r["bytes"]) for r in records) == text.encode("utf-8")
