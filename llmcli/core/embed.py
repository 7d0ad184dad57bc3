"""Embeddings: from one-hot vectors to learned ones.

A one-hot vector says only which token it is: every two different tokens are
equally far apart. A model's input embedding matrix gives each token a learned
row of numbers instead, and there "cat" lands near "kitten" and far from
"tractor". Contextual embeddings go one step further: the model's last hidden
states, averaged over the tokens of the text, as sentence-transformers pools them.

Vectors are ``[word, dim]``; distance matrices are ``[word, word]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmcli.core.numbers import require_finite
from llmcli.errors import InputError, UsageError
from llmcli.models.loader import LoadedModel
from llmcli.models.tokenizer import LoadedTokenizer

KINDS = ("onehot", "input", "contextual")
POOLS = ("auto", "mean", "last")
METRICS = ("cosine", "euclidean", "dot")
DEFAULT_WORDS = ("cat", "kitten", "tractor")
BATCH = 32

Array = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class Neighbor:
    token: str
    id: int
    value: float


@dataclass
class KindResult:
    """One kind of vector for every word, and how near the words are to each other."""

    kind: str
    vectors: Array  # [word, dim]
    tokens: list[list[str]]  # the tokens each vector was made from
    matrix: Array  # [word, word] under the metric
    ranking: list[tuple[str, float]]  # every word by nearness to the first
    how: str = ""  # how the vectors were made, in words (the scale, the pooling)
    unknown: list[bool] = field(default_factory=list)  # a word holds the [UNK] token


@dataclass
class EmbedResult:
    model: str
    model_kind: str  # "encoder" | "decoder"
    metric: str
    words: list[str]
    kinds: list[KindResult]
    neighbors: dict[str, list[Neighbor]] = field(default_factory=dict)

    def pairs(self) -> list[dict[str, object]]:
        """One record per pair of words and kind: a, b, metric, kind, value."""
        rows: list[dict[str, object]] = []
        for kr in self.kinds:
            n = len(self.words)
            for i in range(n):
                for j in range(i + 1, n):
                    row: dict[str, object] = {
                        "a": self.words[i], "b": self.words[j], "metric": self.metric,
                        "kind": kr.kind, "value": round(float(kr.matrix[i, j]), 6),
                    }  # fmt: skip
                    if kr.unknown and (kr.unknown[i] or kr.unknown[j]):
                        # [UNK] stands for any unknown word: a value that says nothing.
                        row["unknown"] = [w for w, u in zip((self.words[i], self.words[j]),
                                          (kr.unknown[i], kr.unknown[j])) if u]  # fmt: skip
                    rows.append(row)
        return rows


def higher_is_nearer(metric: str) -> bool:
    return metric != "euclidean"


def check_words(words: list[str]) -> list[str]:
    cleaned = [w.strip() for w in words]
    for i, word in enumerate(cleaned):
        if not word:
            raise InputError(f"word {i + 1} is empty: give words or phrases with text in them")
    if len(cleaned) < 2:
        raise InputError("give at least two words: distances are between pairs")
    return cleaned


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise UsageError(f"unknown {what} {value!r}; choose from {', '.join(allowed)}")
    return value


def pairwise(vectors: Array, metric: str) -> Array:
    """The ``[word, word]`` matrix of ``metric`` between the rows of ``vectors``."""
    v = vectors.astype(np.float64)
    if metric == "dot":
        out = v @ v.T
    elif metric == "cosine":
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        unit = v / np.where(norms == 0, 1.0, norms)
        out = unit @ unit.T
        np.fill_diagonal(out, np.where(norms[:, 0] == 0, 0.0, 1.0))
    else:
        sq = (v * v).sum(axis=1)
        out = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * (v @ v.T), 0.0))
        np.fill_diagonal(out, 0.0)
    return out.astype(np.float32)


def rank(words: list[str], matrix: Array, metric: str) -> list[tuple[str, float]]:
    """All words by nearness to the first one (the first itself included)."""
    order = sorted(
        range(len(words)),
        key=lambda j: -matrix[0, j] if higher_is_nearer(metric) else matrix[0, j],
    )
    return [(words[j], float(matrix[0, j])) for j in order]


def _word_ids(tok: LoadedTokenizer, word: str, special: bool) -> list[int]:
    ids = list(tok.hf.encode(word, add_special_tokens=special).ids)
    if not ids:
        raise InputError(f"{word!r} gives no tokens with {tok.label}")
    return ids


def _unknown(tok: LoadedTokenizer, words: list[str]) -> list[bool]:
    """Which words hold the tokenizer's unknown token ([UNK]): all such words get the same
    vector, so they look identical (cosine 1) whatever they are."""
    unk = tok.config.get("unk_token")
    if isinstance(unk, dict):
        unk = unk.get("content")
    unk_id = tok.hf.token_to_id(unk) if isinstance(unk, str) else None
    if unk_id is None or tok.wordpiece_prefix is None:
        return [False] * len(words)
    return [unk_id in _word_ids(tok, w, special=False) for w in words]


def onehot_vectors(tok: LoadedTokenizer, words: list[str]) -> tuple[Array, list[list[str]]]:
    """Each word's one-hot vector (the mean of its tokens' one-hot vectors)."""
    out = np.zeros((len(words), tok.vocab_size), dtype=np.float32)
    tokens = []
    for i, word in enumerate(words):
        ids = _word_ids(tok, word, special=False)
        np.add.at(out[i], ids, 1.0 / len(ids))
        tokens.append([tok.token(t) for t in ids])
    return out, tokens


def input_scale(model: LoadedModel) -> float:
    """The factor the model's input embedding multiplies each row by (Gemma: sqrt(d_model),
    cast to the weight's dtype), 1 for most models."""
    module = model.model.get_input_embeddings()
    scale = getattr(module, "embed_scale", None)
    if scale is None:
        return 1.0
    return float(scale.to(module.weight.dtype)) if hasattr(scale, "to") else float(scale)


def input_vectors(
    model: LoadedModel, tok: LoadedTokenizer, words: list[str]
) -> tuple[Array, list[list[str]]]:
    """The vectors the model feeds its first layer: the rows of the input embedding matrix
    as its embedding module returns them (Gemma multiplies them by sqrt(d_model)); a word
    of several tokens is their mean."""
    import torch

    module = model.model.get_input_embeddings()
    rows, tokens = [], []
    with torch.no_grad():
        for word in words:
            ids = _word_ids(tok, word, special=False)
            index = torch.tensor(ids, device=module.weight.device)
            rows.append(module(index).float().mean(dim=0).cpu().numpy())
            tokens.append([tok.token(t) for t in ids])
    return np.stack(rows).astype(np.float32), tokens


def contextual_vectors(
    model: LoadedModel, tok: LoadedTokenizer, words: list[str], *, pool: str = "auto"
) -> tuple[Array, list[list[str]]]:
    """Each text's last hidden state, pooled into one vector.

    ``auto``: an encoder's masked mean over all its tokens, special ones too, as
    sentence-transformers pools all-MiniLM-L6-v2 (then normalized to length 1 where the
    folder says so); a decoder's mean over the text's own tokens, leaving out the special
    ones (Gemma's ``<bos>`` is an attention sink with a huge norm: averaged in, it makes
    every text look alike). ``mean`` is the mean over the text's own tokens for either kind,
    ``last`` the last token's state (what a decoder has read the whole text by).
    """
    encoded = [_word_ids(tok, w, special=True) for w in words]
    tokens = [[tok.token(t) for t in ids] for ids in encoded]
    if pool == "auto" and not model.decoder:
        return pooled_vectors(model, tok, encoded), tokens
    return _pool_own_tokens(model, tok, encoded, last=pool == "last"), tokens


def pool_words(model: LoadedModel, pool: str) -> str:
    """What ``contextual_vectors`` pools, in words."""
    if pool == "auto" and not model.decoder:
        norm = ", then scaled to length 1" if normalizes(model) else ""
        return f"mean of the last hidden state over all tokens, special ones too{norm}"
    if pool == "last":
        return "the last hidden state of the last token"
    return "mean of the last hidden state over the text's own tokens (special ones left out)"


def _pool_own_tokens(
    model: LoadedModel, tok: LoadedTokenizer, encoded: list[list[int]], *, last: bool
) -> Array:
    import torch

    vectors = []
    with torch.no_grad():
        for ids in encoded:
            keep = [i for i, t in enumerate(ids) if t not in tok.special_ids] or [len(ids) - 1]
            input_ids = torch.tensor([ids], device=model.device)
            out = model.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                              output_hidden_states=True)  # fmt: skip
            hidden = out.hidden_states[-1][0].float()  # [token, dim]
            chosen = hidden[keep[-1:]] if last else hidden[keep]
            vectors.append(chosen.mean(dim=0).cpu().numpy())
    return np.stack(vectors).astype(np.float32)


def pooled_vectors(model: LoadedModel, tok: LoadedTokenizer, encoded: list[list[int]]) -> Array:
    """``[text, d_model]``: each ID sequence's masked mean of the last hidden state,
    normalized where the model folder's sentence-transformers modules say so."""
    import torch

    pad = tok.hf.token_to_id("[PAD]") or tok.hf.token_to_id("<pad>") or 0
    vectors = []
    with torch.no_grad():
        for start in range(0, len(encoded), BATCH):
            batch = encoded[start : start + BATCH]
            width = max(len(ids) for ids in batch)
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in batch])
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in batch])
            input_ids, mask = input_ids.to(model.device), mask.to(model.device)
            out = model.model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
            hidden = out.hidden_states[-1].float()  # [text, token, dim]
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            if normalizes(model):
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            vectors.append(pooled.cpu().numpy())
    return np.concatenate(vectors).astype(np.float32)


def normalizes(model: LoadedModel) -> bool:
    """Whether the folder's sentence-transformers modules end with a Normalize step."""
    path = model.resolved.path / "modules.json"
    try:
        modules = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any(str(m.get("type", "")).endswith("Normalize") for m in modules)


def neighbors(
    model: LoadedModel, tok: LoadedTokenizer, words: list[str], vectors: Array, k: int, metric: str
) -> dict[str, list[Neighbor]]:
    """The ``k`` vocabulary tokens nearest to each word's input-embedding vector."""
    import torch

    if k < 1:
        raise UsageError("--neighbors takes a number of at least 1")
    # The rows the model feeds its first layer, as input_vectors makes them.
    weight = model.model.get_input_embeddings().weight.detach().float() * input_scale(model)
    queries = torch.from_numpy(vectors).to(weight.device)
    with torch.no_grad():
        if metric == "cosine":
            scores = (
                torch.nn.functional.normalize(queries, dim=1)
                @ torch.nn.functional.normalize(weight, dim=1).T
            )
        elif metric == "dot":
            scores = queries @ weight.T
        else:
            scores = -torch.cdist(queries, weight)
        # The embedding matrix may have more rows than the tokenizer has tokens.
        scores = scores[:, : tok.vocab_size]
        values, indices = scores.topk(min(k, scores.shape[1]), dim=1)
    sign = -1.0 if metric == "euclidean" else 1.0
    return {
        word: [
            Neighbor(tok.token(int(i)), int(i), sign * float(v))
            for v, i in zip(values[row].tolist(), indices[row].tolist())
        ]
        for row, word in enumerate(words)
    }


def embed(
    words: list[str],
    tok: LoadedTokenizer,
    model: LoadedModel | None,
    *,
    kinds: list[str],
    metric: str = "cosine",
    k_neighbors: int = 0,
    pool: str = "auto",
) -> EmbedResult:
    """Vectors of ``words`` of each kind, their pairwise ``metric`` and rankings."""
    words = check_words(words)
    metric = check_choice(metric, METRICS, "metric")
    for kind in kinds:
        check_choice(kind, KINDS, "kind")
    check_choice(pool, POOLS, "pool")
    unknown = _unknown(tok, words)
    results = []
    input_cache: Array | None = None
    for kind in kinds:
        how = ""
        if kind == "onehot":
            vectors, tokens = onehot_vectors(tok, words)
        else:
            if model is None:
                raise UsageError(f"--kind {kind} needs a model with weights")
            if kind == "input":
                vectors, tokens = input_vectors(model, tok, words)
                input_cache = vectors
                scale = input_scale(model)
                how = ("mean of the embedding rows" if scale == 1.0 else
                       f"mean of the embedding rows times {scale:.4g}, as the model scales "
                       "them before its first layer")  # fmt: skip
            else:
                vectors, tokens = contextual_vectors(model, tok, words, pool=pool)
                how = pool_words(model, pool)
        matrix = pairwise(vectors, metric)
        if model is not None:
            require_finite(vectors, f"the {kind} vectors", model.label)
        results.append(KindResult(kind, vectors, tokens, matrix, rank(words, matrix, metric),
                                  how, unknown))  # fmt: skip
    near: dict[str, list[Neighbor]] = {}
    if k_neighbors:
        if model is None:
            raise UsageError("--neighbors needs a model with weights")
        if input_cache is None:
            input_cache, _ = input_vectors(model, tok, words)
        near = neighbors(model, tok, words, input_cache, k_neighbors, metric)
    return EmbedResult(
        model=tok.label,
        model_kind=model.kind if model is not None else "tokenizer",
        metric=metric,
        words=words,
        kinds=results,
        neighbors=near,
    )
