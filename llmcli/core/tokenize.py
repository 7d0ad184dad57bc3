"""Text to tokens and back.

A tokenizer cuts text into pieces from a fixed vocabulary and replaces each
piece by its vocabulary ID: the integers are all the model ever sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from llmcli.core.inputs import TextSource
from llmcli.models.tokenizer import LoadedTokenizer

ID_BATCH_CHARS = 1 << 20


@dataclass(frozen=True)
class TokenRecord:
    """One token, the record every subcommand reads and writes.

    ``token`` is the vocabulary string (``Ġblue``), ``text`` the text it stands
    for (`` blue``), ``start``/``end`` character offsets in the input, ``bytes``
    the hex of the token's bytes (a byte-level token may hold part of a character).
    """

    index: int
    id: int
    token: str
    text: str
    start: int
    end: int
    bytes: str
    special: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _record(tok: LoadedTokenizer, index: int, token_id: int, start: int, end: int) -> TokenRecord:
    data = tok.token_bytes(token_id)
    special = token_id in tok.special_ids
    return TokenRecord(
        index=index,
        id=token_id,
        token=tok.token(token_id),
        text=data.decode("utf-8", errors="backslashreplace"),
        start=start,
        end=end,
        bytes=data.hex(),
        special=special,
    )


def tokenize(tok: LoadedTokenizer, text: str, *, special: bool = False) -> list[TokenRecord]:
    """Tokens of ``text``; ``special`` adds the model's BOS/EOS tokens.

    >>> [r.token for r in tokenize(gpt2, "It's a blue sundress.")]   # doctest: +SKIP
    ['It', "'s", 'Ġa', 'Ġblue', 'Ġsund', 'ress', '.']
    """
    return list(stream_tokens(tok, TextSource("argument", text=text), special=special))


def stream_tokens(
    tok: LoadedTokenizer, source: TextSource, *, special: bool = False
) -> Iterator[TokenRecord]:
    """Token records of a source of any size, read in chunks (constant memory)."""
    index = 0
    base = 0
    if special and tok.bos_id is not None:
        yield _record(tok, index, tok.bos_id, 0, 0)
        index += 1
    for chunk in source.chunks(tok.splittable):
        encoding = tok.hf.encode(chunk, add_special_tokens=False)
        for token_id, (start, end) in zip(encoding.ids, encoding.offsets):
            yield _record(tok, index, token_id, base + start, base + end)
            index += 1
        base += len(chunk)
    if special and tok.eos_id is not None:
        yield _record(tok, index, tok.eos_id, base, base)


def stream_id_lines(
    tok: LoadedTokenizer, source: TextSource, *, special: bool = False
) -> Iterator[list[int]]:
    """IDs of each input line (without its line break), encoded in batches."""
    prefix = [tok.bos_id] if special and tok.bos_id is not None else []
    suffix = [tok.eos_id] if special and tok.eos_id is not None else []
    for batch in _batches(source.lines()):
        for ids in tok.encode_batch_ids(batch):
            yield prefix + ids + suffix if special else ids


def _batches(lines: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= ID_BATCH_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def records_for_ids(tok: LoadedTokenizer, ids: list[int]) -> list[TokenRecord]:
    """Token records for IDs given directly; offsets count the decoded text."""
    records = []
    pos = 0
    for index, token_id in enumerate(ids):
        tok.check_id(token_id)
        record = _record(tok, index, token_id, pos, pos)
        end = pos + len(record.text)
        records.append(
            TokenRecord(
                record.index, record.id, record.token, record.text, pos, end,
                record.bytes, record.special,
            )  # fmt: skip
        )
        pos = end
    return records


def decode(tok: LoadedTokenizer, ids: list[int]) -> str:
    """Text for IDs: the inverse of tokenization for byte-level tokenizers."""
    return tok.decode(ids)
