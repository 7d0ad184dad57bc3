"""Where input comes from (an argument, ``--file``, or stdin) and how it is read.

Text is decoded as strict UTF-8 in blocks, so a file of any size is read with
constant memory, and a bad byte is reported with its offset.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

from llmcli.errors import InputError, UsageError

BLOCK = 1 << 20


@dataclass
class TextSource:
    """Text to work on: ``text`` given directly, or a binary stream to decode."""

    label: str  # "argument", "stdin" or the file's path
    text: str | None = None
    path: Path | None = None
    stream: IO[bytes] | None = None
    chars: int = 0  # how much has been read so far
    nbytes: int = 0

    def size(self) -> int | None:
        """The input's size in bytes where it is known before reading: a text argument, a
        regular file (given with ``--file`` or redirected to stdin); None for a pipe."""
        if self.text is not None:
            return len(self.text.encode("utf-8", "surrogatepass"))
        try:
            if self.stream is not None:
                info = os.fstat(self.stream.fileno())
            elif self.path is not None:
                info = os.stat(self.path)
            else:
                return None
        except (OSError, ValueError, io.UnsupportedOperation):
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def blocks(self, size: int = BLOCK) -> Iterator[str]:
        """The text, decoded in blocks of about ``size`` bytes; never empty."""
        seen = False
        if self.text is not None:
            if self.text:
                seen = True
                self.chars = len(self.text)
                self.nbytes = len(self.text.encode("utf-8", "surrogatepass"))
                yield self.text
        else:
            for block in self._decoded(size):
                seen = True
                yield block
        if not seen:
            raise InputError(f"empty input ({self.label}): there is no text to work on")

    def _decoded(self, size: int) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        offset = 0
        try:
            fh = self.stream if self.stream is not None else open(self.path or "", "rb")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot read {self.label}: {exc.strerror or exc}") from exc
        try:
            while True:
                try:
                    raw = fh.read(size)
                except OSError as exc:
                    raise InputError(f"cannot read {self.label}: {exc.strerror or exc}") from exc
                final = not raw
                pending = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(raw, final=final)
                except UnicodeDecodeError as exc:
                    # exc.object starts with the bytes the decoder held back (pending).
                    at = offset - pending + exc.start
                    bad = exc.object[exc.start : exc.start + 1].hex()
                    raise InputError(
                        f"{self.label} is not valid UTF-8: byte 0x{bad} at byte offset {at}"
                    ) from None
                offset += len(raw)
                self.nbytes = offset
                self.chars += len(text)
                if text:
                    yield text
                if final:
                    return
        finally:
            if self.stream is None:
                fh.close()

    def read(self) -> str:
        return "".join(self.blocks())

    def lines(self) -> Iterator[str]:
        """Lines without their ``\\n`` (a ``\\r`` stays: text round-trips exactly)."""
        for batch in self.line_batches():
            yield from batch

    def line_batches(self, size: int = BLOCK) -> Iterator[list[str]]:
        """The lines of ``lines()``, a list of them for each block of about ``size`` bytes read."""
        rest: list[str] = []  # the start of a line that goes on in the next block
        for block in self.blocks(size):
            if "\n" not in block:
                rest.append(block)
                continue
            parts = block.split("\n")
            parts[0] = "".join([*rest, parts[0]])
            rest = [parts.pop()]
            yield parts
        if last := "".join(rest):
            yield [last]

    def chunks(self, splittable: bool, size: int = BLOCK) -> Iterator[str]:
        """The text in pieces that tokenize the same apart as together.

        A piece ends where GPT-2-style and BERT pre-tokenizers always cut (see
        ``safe_cut``). Tokenizers without such a pre-tokenizer get the whole text.
        """
        if not splittable:
            yield self.read()
            return
        buf = ""
        for block in self.blocks(size):
            buf += block
            if len(buf) < size:
                continue
            cut = safe_cut(buf)
            if cut > 0:
                yield buf[:cut]
                buf = buf[cut:]
        if buf:
            yield buf


def first_tokens(tok: Any, text: str, wrap: Any, keep: int) -> list[int]:
    """The first ``keep`` IDs of ``text`` inside ``wrap``, as of tokenizing it whole.

    A tokenizer whose pre-tokenizer always cuts at ``safe_cut`` places (``tok.splittable``)
    tokenizes a piece ending there as the whole text begins, so only a prefix long enough
    for ``keep`` tokens is read (a 10 MB text costs what its first few thousand
    characters do). Another tokenizer gets the whole text.
    """
    length = max(16 * keep, 1 << 12)
    while tok.splittable and length < len(text):
        cut = safe_cut(text[:length])
        if cut > 0:
            ids = tok.hf.encode(text[:cut], add_special_tokens=False).ids
            if len(wrap.before) + len(ids) >= keep:
                return [*wrap.before, *ids][:keep]
        length *= 2
    return list(wrap.around(tok.hf.encode(text, add_special_tokens=False).ids))[:keep]


def safe_cut(buf: str) -> int:
    """The last index where the text may be cut (0 if there is none).

    That is before a space that follows a non-space character (a pre-token may
    start with a space but never runs from a non-space into one), or else after a
    line break with a non-space character on each side. Python's ``isspace`` knows
    more spaces than the tokenizers' ``\\s``, so this errs on the safe side.
    """
    pos = buf.rfind(" ", 1)
    while pos > 0:
        if not buf[pos - 1].isspace():
            return pos
        pos = buf.rfind(" ", 1, pos)
    pos = buf.rfind("\n", 0, len(buf) - 1)
    while pos > 0:
        if not buf[pos - 1].isspace() and not buf[pos + 1].isspace():
            return pos + 1
        pos = buf.rfind("\n", 0, pos)
    return 0


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def text_source(text: str | None, file: Path | None, *, what: str = "TEXT") -> TextSource:
    """Pick the input: TEXT, ``-`` for stdin, ``--file PATH``, or piped stdin."""
    if text is not None and file is not None:
        raise UsageError(f"give {what} or --file, not both")
    if file is not None:
        if str(file) == "-":
            return _stdin()
        if file.is_dir():
            raise InputError(f"cannot read {file}: it is a folder")
        if not file.exists():
            raise InputError(f"cannot read {file}: no such file")
        return TextSource(str(file), path=file)
    if text == "-" or (text is None and not stdin_is_tty()):
        return _stdin()
    if text is None:
        raise UsageError(f"give {what}, --file PATH, or pipe text on stdin")
    return TextSource("argument", text=text)


def read_stdin_or_empty() -> str:
    """All of stdin, or "" when nothing was piped (a command then uses its default input)."""
    if sys.stdin is None or sys.stdin.closed:
        return ""
    source = _stdin()
    try:
        return source.read()
    except InputError as exc:
        if source.nbytes == 0 and "empty input" in str(exc):
            return ""
        raise


def _stdin() -> TextSource:
    return TextSource("stdin", stream=sys.stdin.buffer)


# --- IDs and token records ----------------------------------------------------------


@dataclass(frozen=True)
class IdSequence:
    """IDs read from input; ``line`` is where they came from (1-based), for messages."""

    ids: list[int]
    line: int
    tokens: list[str] | None = None  # from token records: their vocabulary strings


def parse_id(word: str, where: str) -> int:
    try:
        return int(word)
    except ValueError:
        raise InputError(f"{where}: {word!r} is not a token ID (an integer)") from None


def ids_from_words(words: Iterable[str]) -> IdSequence:
    ids = [parse_id(w, "argument") for arg in words for w in arg.replace(",", " ").split()]
    if not ids:
        raise InputError("no token IDs given")
    return IdSequence(ids, 0)


def read_id_input(source: TextSource) -> Iterator[IdSequence]:
    """IDs from lines of space-separated integers, or from token records (JSON Lines).

    Lines of IDs give one sequence per line; a blank line among them is an empty
    sequence (an empty line of text), so that ``-f ids`` output decodes back to
    every line. Token records give one sequence for each run of records whose
    ``index`` counts up from 0 (one ``tokenize`` call); blank lines there are ignored.
    """
    current: list[int] = []
    tokens: list[str] = []
    start_line = 0
    any_line = False
    blanks: list[int] = []  # blank lines seen since the last non-blank one
    last_was_ids = False
    for number, line in enumerate(source.lines(), 1):
        stripped = line.strip()
        if not stripped:
            blanks.append(number)
            continue
        any_line = True
        if stripped.startswith("{"):
            blanks.clear()
            last_was_ids = False
            record = _parse_record(stripped, number, source.label)
            if record.get("index") == 0 and current:
                yield IdSequence(current, start_line, tokens)
                current, tokens = [], []
            if not current:
                start_line = number
            current.append(record["id"])
            tokens.append(str(record.get("token", "")))
        else:
            if current:
                yield IdSequence(current, start_line, tokens)
                current, tokens = [], []
            for blank in blanks:
                yield IdSequence([], blank)
            blanks.clear()
            last_was_ids = True
            where = f"{source.label} line {number}"
            yield IdSequence(
                [parse_id(w, where) for w in stripped.replace(",", " ").split()], number
            )
    if current:
        yield IdSequence(current, start_line, tokens)
    if last_was_ids:
        for blank in blanks:
            yield IdSequence([], blank)
    if not any_line:
        raise InputError(f"empty input ({source.label}): no token IDs or records")


def _parse_record(line: str, number: int, label: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{label} line {number}: malformed JSON ({exc.msg})") from None
    if not isinstance(record, dict) or "id" not in record:
        raise InputError(f'{label} line {number}: a token record needs an "id"')
    token_id = record["id"]
    if not isinstance(token_id, int) or isinstance(token_id, bool):
        raise InputError(f'{label} line {number}: "id" must be an integer, not {token_id!r}')
    return record


def all_records(content: str) -> bool:
    """Every non-blank line is a JSON object: token records (``tokenize -f jsonl``), read
    as such, so that a malformed one is an error rather than text."""
    lines = [line.strip() for line in content.splitlines() if line.strip()]
    return bool(lines) and all(line.startswith("{") for line in lines)


class ModelInput(NamedTuple):
    """The IDs a model command runs on; ``from_text``: made from text (so with a ``Wrap``)."""

    ids: list[int]
    from_text: bool


def model_input(
    tok: Any, text: list[str] | None, file: Path | None, *, ids: bool, wrap: Any, default: str,
    keep: int | None = None,
) -> ModelInput:  # fmt: skip
    """The token IDs a model command runs on.

    A TEXT argument is always text. Stdin (or ``--file``) is token records when every
    line is one (``tokenize -f jsonl``), ID lines with ``ids`` (``tokenize -f ids``),
    and text otherwise. Text gets the special tokens of ``wrap`` (a
    ``llmcli.models.tokenizer.Wrap``: by default the model's own template, what the model
    is fed: Gemma's ``<bos>``, BERT's ``[CLS] ... [SEP]``); IDs and records are as given.
    With nothing given and nothing piped: ``default``. ``keep``: only the first ``keep``
    IDs are wanted (``--truncate``), and a long text is tokenized only as far as they go.
    """
    if text and text != ["-"]:
        if file is not None:
            raise UsageError("give TEXT or --file, not both")
        if ids:
            raise UsageError("--ids reads IDs from stdin or --file; a TEXT argument is text")
        content = " ".join(text)
        from_text = True
    else:
        if text == ["-"] or file is not None:
            content = text_source("-" if text == ["-"] else None, file).read()
        elif not stdin_is_tty():
            content = read_stdin_or_empty()
            if not content and not ids:
                content = default  # nothing piped: the default text
        else:
            if ids:
                raise UsageError("--ids reads IDs from stdin or --file: pipe them in")
            content = default
        from_text = not ids and not all_records(content)
    if from_text:
        if not content.strip():
            raise InputError("empty input: there is no text")
        if keep is not None:
            return ModelInput(first_tokens(tok, content, wrap, keep), True)
        return ModelInput(wrap.around(tok.hf.encode(content, add_special_tokens=False).ids), True)
    found = [i for seq in read_id_input(TextSource("stdin", text=content)) for i in seq.ids]
    if not found:
        raise InputError("empty input: no token IDs")
    for token_id in found:
        tok.check_id(token_id)
    return ModelInput(found, False)
