"""One-hot vectors: the simplest way to turn a token ID into numbers.

A token with ID i in a vocabulary of V tokens becomes a vector of V zeros with a
single 1 at position i. Every two different tokens are then equally far apart
(distance sqrt 2, cosine 0): the vectors say nothing about meaning. Learned
embeddings (``llmpath embed``) fix that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from llmcli.core.inputs import TextSource, all_records, read_id_input
from llmcli.core.tokenize import TokenRecord, records_for_ids, tokenize
from llmcli.errors import InputError
from llmcli.models.tokenizer import LoadedTokenizer, Wrap

# How many distinct tokens the pairwise figures are computed over, at most.
PAIR_SAMPLE = 32


@dataclass(frozen=True)
class OneHot:
    """The one-hot vector of one token, kept sparse: the position of its 1 is ``id``."""

    index: int
    id: int
    token: str
    vocab_size: int

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "id": self.id,
            "token": self.token,
            "hot": self.id,
            "vocab_size": self.vocab_size,
        }


@dataclass(frozen=True)
class PairStats:
    """Distances between the one-hot vectors of distinct tokens, computed from them."""

    tokens: int  # distinct tokens compared
    pairs: int
    min_distance: float
    max_distance: float
    min_cosine: float
    max_cosine: float


def onehots(records: list[TokenRecord], vocab_size: int) -> list[OneHot]:
    return [OneHot(r.index, r.id, r.token, vocab_size) for r in records]


def dense(rows: list[OneHot], vocab_size: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The vectors as a dense ``[token, vocab]`` uint8 matrix."""
    matrix = np.zeros((len(rows), vocab_size), dtype=np.uint8)
    if rows:
        matrix[np.arange(len(rows)), [r.id for r in rows]] = 1
    return matrix


def pair_stats(rows: list[OneHot], vocab_size: int) -> PairStats | None:
    """Euclidean distance and cosine over all pairs of distinct tokens (None if < 2)."""
    distinct = list(dict.fromkeys(r.id for r in rows))[:PAIR_SAMPLE]
    if len(distinct) < 2:
        return None
    sample = [OneHot(i, token_id, "", vocab_size) for i, token_id in enumerate(distinct)]
    vectors = dense(sample, vocab_size).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    gram = vectors @ vectors.T
    squared = norms[:, None] ** 2 + norms[None, :] ** 2 - 2 * gram
    distances = np.sqrt(np.maximum(squared, 0.0))
    cosines = gram / (norms[:, None] * norms[None, :])
    upper = np.triu_indices(len(distinct), k=1)
    return PairStats(
        tokens=len(distinct),
        pairs=len(upper[0]),
        min_distance=float(distances[upper].min()),
        max_distance=float(distances[upper].max()),
        min_cosine=float(cosines[upper].min()),
        max_cosine=float(cosines[upper].max()),
    )


def records_from_input(
    tok: LoadedTokenizer, source: TextSource, wrap: Wrap = Wrap(), *, ids: bool = False
) -> list[TokenRecord]:
    """Token records from stdin/a file: records as they are, IDs with ``ids``, else text.

    Input is records when every line is one (``llmpath tokenize -f jsonl``); they keep
    their IDs, and their token strings are checked against this model, so that a
    mismatch of ``-m`` is caught. Text gets the special tokens of ``wrap``.
    """
    text = source.read()
    if not ids and not all_records(text):
        return tokenize(tok, text, wrap)
    relabelled = TextSource(source.label, text=text)
    records: list[TokenRecord] = []
    for seq in read_id_input(relabelled):
        for k, token_id in enumerate(seq.ids):
            tok.check_id(token_id)
            claimed = seq.tokens[k] if seq.tokens else None
            if claimed and claimed != tok.token(token_id):
                raise InputError(
                    f"{source.label}: record for ID {token_id} says {claimed!r}, but "
                    f"{tok.label} has {tok.token(token_id)!r} there; pass the -m that "
                    "tokenize used"
                )
        records.extend(records_for_ids(tok, seq.ids))
    return [
        TokenRecord(i, r.id, r.token, r.text, r.start, r.end, r.bytes, r.special, r.decoded)
        for i, r in enumerate(records)
    ]
