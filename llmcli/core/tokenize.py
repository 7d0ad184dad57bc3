"""Text to tokens and back.

A tokenizer cuts text into pieces from a fixed vocabulary and replaces each
piece by its vocabulary ID: the integers are all the model ever sees.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmcli.core.inputs import TextSource, safe_cut
from llmcli.models.tokenizer import LoadedTokenizer, Wrap

# Records are made from chunks of about this many characters: an encoding with
# offsets takes a few hundred bytes a token, so memory stays small and flat.
RECORD_CHUNK_CHARS = 1 << 16

if TYPE_CHECKING:
    from concurrent.futures import Future

# Lines are encoded in batches of about this many bytes: large enough that a call
# costs little, small enough that the few batches held at once stay small. A line
# longer than this many characters is encoded (and written) in pieces of about this size.
ID_BATCH_BYTES = 1 << 18
# A text argument up to this size is encoded by `tokenizers` alone (see encode_lines).
SHORT_TEXT = 1 << 16


@dataclass(slots=True)
class TokenRecord:
    """One token, the record every subcommand reads and writes.

    ``token`` is the vocabulary string (``Ġblue``), ``text`` the text it stands
    for (`` blue``), ``start``/``end`` character offsets in the input, ``bytes``
    the hex of the token's bytes (a byte-level token may hold part of a character).
    Slotted and not frozen: millions are made for a large input, and this is cheap.
    """

    index: int
    id: int
    token: str
    text: str
    start: int
    end: int
    bytes: str
    special: bool
    # Made from IDs, not from an input text: ``start``/``end`` count the decoded text, so a
    # record says so (``decoded_start``/``decoded_end``) and claims no input offset.
    decoded: bool = False

    def to_dict(self) -> dict[str, object]:
        # Written out: this runs once per token.
        if self.decoded:
            return {
                "index": self.index, "id": self.id, "token": self.token, "text": self.text,
                "start": None, "end": None, "decoded_start": self.start,
                "decoded_end": self.end, "bytes": self.bytes, "special": self.special,
            }  # fmt: skip
        return {
            "index": self.index, "id": self.id, "token": self.token, "text": self.text,
            "start": self.start, "end": self.end, "bytes": self.bytes, "special": self.special,
        }  # fmt: skip


def _record(tok: LoadedTokenizer, index: int, token_id: int, start: int, end: int) -> TokenRecord:
    token, text, hexbytes, special = tok.describe(token_id)
    return TokenRecord(index, token_id, token, text, start, end, hexbytes, special)


def tokenize(tok: LoadedTokenizer, text: str, wrap: Wrap = Wrap()) -> list[TokenRecord]:
    """Tokens of ``text``, with the special tokens of ``wrap`` around them.

    >>> [r.token for r in tokenize(gpt2, "It's a blue sundress.")]   # doctest: +SKIP
    ['It', "'s", 'Ġa', 'Ġblue', 'Ġsund', 'ress', '.']
    """
    return list(stream_tokens(tok, TextSource("argument", text=text), wrap))


def stream_tokens(
    tok: LoadedTokenizer, source: TextSource, wrap: Wrap = Wrap()
) -> Iterator[TokenRecord]:
    """Token records of a source of any size, read in chunks (constant memory).

    The special tokens of ``wrap`` come first and last, with empty spans at 0 and at the
    end of the text.
    """
    index = 0
    base = 0
    for token_id in wrap.before:
        yield _record(tok, index, token_id, 0, 0)
        index += 1
    for chunk in source.chunks(tok.splittable, RECORD_CHUNK_CHARS):
        encoding = tok.hf.encode(chunk, add_special_tokens=False)
        ids, offsets = encoding.ids, encoding.offsets
        del encoding  # the tokenizer's own copy is large: keep one chunk's at most
        for token_id, (start, end) in zip(ids, offsets):
            yield _record(tok, index, token_id, base + start, base + end)
            index += 1
        base += len(chunk)
    for token_id in wrap.after:
        yield _record(tok, index, token_id, base, base)
        index += 1


@dataclass(frozen=True)
class IdLines:
    """The IDs of a run of lines, in one flat list: fast to make and to write out.

    ``separator`` stands between two lines (it is no ID of these lines); ``before`` and
    ``after`` are the IDs each line starts and ends with (the special tokens of a ``Wrap``).
    A very long line comes in pieces: ``opens`` is false where the first line goes on
    from the batch before, ``closes`` false where the last goes on in the next.
    """

    ids: list[int]
    separator: int
    before: tuple[int, ...] = ()
    after: tuple[int, ...] = ()
    opens: bool = True
    closes: bool = True

    def lines(self) -> Iterator[list[int]]:
        """The IDs of each line (or piece of one), ``before`` and ``after`` where it starts
        and ends."""
        ids, start = self.ids, 0
        while True:
            try:
                stop = ids.index(self.separator, start)
            except ValueError:
                stop = len(ids)
            last = stop == len(ids)
            before = self.before if start > 0 or self.opens else ()
            after = self.after if not last or self.closes else ()
            yield [*before, *ids[start:stop], *after]
            if last:
                return
            start = stop + 1


def stream_id_lines(
    tok: LoadedTokenizer, source: TextSource, wrap: Wrap = Wrap()
) -> Iterator[list[int]]:
    """IDs of each input line (without its line break), each inside ``wrap``."""
    pending: list[int] = []  # the pieces of a long line so far
    for batch in stream_id_batches(tok, source, wrap):
        lines = list(batch.lines())
        lines[0] = pending + lines[0]
        pending = lines.pop() if not batch.closes else []
        yield from lines


def stream_id_batches(
    tok: LoadedTokenizer, source: TextSource, wrap: Wrap = Wrap()
) -> Iterator[IdLines]:
    """``stream_id_lines`` a batch at a time: the lines of each block read.

    The next batches are encoded in worker threads (the tokenizers release the GIL)
    while this one is written out; a few batches at most are held (constant memory).
    A line longer than ``ID_BATCH_BYTES`` characters comes in pieces cut where the
    tokenizer always cuts (``safe_cut``), so one long line costs no more memory than
    many short ones.
    """
    groups = _line_groups(source, tok.splittable)
    threshold = tok.bulk_threshold
    limit = SHORT_TEXT if threshold is None else min(SHORT_TEXT, threshold)
    if source.text is not None and len(source.text) < limit:
        # A short text argument: encoded here by tokenizers, no engine, no threads.
        for lines, opens, closes in groups:
            ids, separator = tok.encode_lines(lines, short=True)
            yield IdLines(ids, separator, wrap.before, wrap.after, opens, closes)
        return
    tok.line_separator  # noqa: B018  (found once here, as it may load the engine)
    for ids, separator, opens, closes in _encoded_ahead(tok, groups, source):
        yield IdLines(ids, separator, wrap.before, wrap.after, opens, closes)


def _line_groups(source: TextSource, splittable: bool) -> Iterator[tuple[list[str], bool, bool]]:
    """``(lines, opens, closes)`` for each block's lines; a line longer than
    ``ID_BATCH_BYTES`` characters is a group of its own for each piece of it (where the
    tokenizer is ``splittable``: it tokenizes the pieces as it does the whole)."""
    for lines in source.line_batches(ID_BATCH_BYTES):
        if not splittable or all(len(line) <= ID_BATCH_BYTES for line in lines):
            yield lines, True, True
            continue
        run: list[str] = []
        for line in lines:
            if len(line) <= ID_BATCH_BYTES:
                run.append(line)
                continue
            if run:
                yield run, True, True
                run = []
            pieces = _pieces(line, ID_BATCH_BYTES)
            for k, piece in enumerate(pieces):
                yield [piece], k == 0, k == len(pieces) - 1
        if run:
            yield run, True, True


def _pieces(text: str, size: int) -> list[str]:
    """``text`` cut at ``safe_cut`` places into pieces of about ``size`` characters."""
    pieces, start = [], 0
    while len(text) - start > size:
        window = size
        cut = 0
        while cut == 0 and start + window < len(text):
            cut = safe_cut(text[start : start + window])
            window *= 2
        if cut == 0:
            break
        pieces.append(text[start : start + cut])
        start += cut
    pieces.append(text[start:])
    return pieces


def _encoded_ahead(
    tok: LoadedTokenizer, groups: Iterator[tuple[list[str], bool, bool]], source: TextSource
) -> Iterator[tuple[list[int], int, bool, bool]]:
    """``(ids, separator, opens, closes)``: ``tok.encode_lines`` of each group's lines, in
    order, by threads working ahead of the reader. The bulk engine (``tok.bulk``) does them
    all where the input's size is known and reaches the engine's threshold (the size from
    which its load is won back); where it is not known (a pipe), it takes over once
    ``source`` has given that much. A short text never pays its load."""
    from concurrent.futures import ThreadPoolExecutor

    workers = min(2, os.cpu_count() or 1)
    bulk = False
    threshold = tok.bulk_threshold
    known = source.size()
    with ThreadPoolExecutor(workers, thread_name_prefix="llmpath-encode") as pool:
        pending: deque[tuple[Future[tuple[list[int], int]], bool, bool]] = deque()

        def done() -> tuple[list[int], int, bool, bool]:
            future, opens, closes = pending.popleft()
            ids, separator = future.result()
            return ids, separator, opens, closes

        try:
            for lines, opens, closes in groups:
                size = source.nbytes if known is None else known
                if not bulk and threshold is not None and size >= threshold:
                    bulk = tok.bulk is not None  # loaded here, once, not by a worker thread
                job = pool.submit(tok.encode_lines, lines, bulk=bulk)
                pending.append((job, opens, closes))
                if len(pending) > workers:
                    yield done()
            while pending:
                yield done()
        finally:
            for future, _, _ in pending:
                future.cancel()


def records_for_ids(tok: LoadedTokenizer, ids: list[int]) -> list[TokenRecord]:
    """Token records for IDs given directly; their offsets count the decoded text, and the
    records say so (``decoded``)."""
    records = []
    pos = 0
    for index, token_id in enumerate(ids):
        tok.check_id(token_id)
        record = _record(tok, index, token_id, pos, pos)
        end = pos + len(record.text)
        records.append(
            TokenRecord(
                record.index,
                record.id,
                record.token,
                record.text,
                pos,
                end,
                record.bytes,
                record.special,
                True,
            )  # fmt: skip
        )
        pos = end
    return records


def decode(tok: LoadedTokenizer, ids: list[int]) -> str:
    """Text for IDs: the inverse of tokenization for byte-level tokenizers."""
    return tok.decode(ids)
