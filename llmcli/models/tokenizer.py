"""Load a model's tokenizer from a store folder, with the facts the commands need.

Uses the ``tokenizers`` library (and ``tiktoken`` where the folder carries GPT-2's
ranks file, for speed); never torch or transformers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from llmcli.errors import InputError, ModelError
from llmcli.models.convert import GPT2_PATTERN, GPT2_SPECIAL, TIKTOKEN_FILE, bytes_to_unicode
from llmcli.models.resolve import ResolvedModel

_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")
# From this many bytes of input, ``-f ids`` takes the bulk engine (``LoadedTokenizer.bulk``):
# where its load (0.45 s, and 100 MB for GPT-2's vocabulary) is won back. Measured here:
# tiktoken (GPT-2) gives 7-10 MB/s on two threads, tokenizers (SmolLM2) 2-3 MB/s,
# fastokens 25-45 MB/s; below 16 MB fastokens gains little over tiktoken.
BULK_THRESHOLD = 16 << 20  # against tiktoken
# Against tokenizers: as many bytes as the tokenizer.json that fastokens' load parses
# (0.23 s a MB here for SmolLM2's 3.5 MB and Gemma's 33 MB), 1.5 MB at the least. Measured
# here, -f ids end to end, engine against none: SmolLM2 1.6x the time at 1.6 MB, even at
# 3 MB, 0.90x at 4 MB; Gemma 2.5x at 2 MB, 1.43x at 12 MB, 1.12x at 24 MB, 0.88x at 36 MB.
BULK_THRESHOLD_TOKENIZERS = 3 << 19


class BulkEngine:
    """A tokenizer engine for large inputs: its name, and ``lines(texts)``: the IDs of each
    text (special tokens in it matched), flat, -1 between two texts, or None where it
    cannot encode one of them (fastokens refuses a byte that has no token, where
    tokenizers drops it: tokenizers then does the batch). One call at a time (the engine
    parallelizes on threads of its own)."""

    def __init__(self, name: str, lines: Callable[[list[str]], list[int]]):
        import threading

        self.name, self._lines = name, lines
        self._lock = threading.Lock()

    def lines(self, texts: Sequence[str]) -> list[int] | None:
        with self._lock:
            try:
                return self._lines(list(texts))
            except ValueError:
                return None


def _flat_from_offsets(ids: bytes, offsets: bytes) -> list[int]:
    """fastokens' ``encode_batch_flat`` result as one list, -1 between two texts."""
    import numpy as np

    flat = np.frombuffer(ids, np.uint32).astype(np.int64)
    cuts = np.frombuffer(offsets, np.uint64).astype(np.int64)[1:-1]
    ids_list: list[int] = np.insert(flat, cuts, -1).tolist()
    return ids_list


@dataclass(frozen=True)
class Wrap:
    """The special tokens put around a text, and what put them there.

    ``--special`` (on by default) adds what the model's own template adds, as the model
    is fed (Gemma's ``<bos>``, BERT's ``[CLS] ... [SEP]``, nothing for GPT-2);
    ``--bos``/``--eos`` add the BOS/EOS tokens explicitly, where they are not there yet.
    ``notes`` say it in words, for a table.
    """

    before: tuple[int, ...] = ()
    after: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()

    def around(self, ids: Sequence[int]) -> list[int]:
        return [*self.before, *ids, *self.after]

    @property
    def summary(self) -> str:
        """``special tokens: <bos> by gemma3-270m's own template``."""
        return "special tokens: " + "; ".join(self.notes)


class TokenInfo(NamedTuple):
    """What an ID stands for: ``TokenInfo("Ġblue", " blue", "20626c7565", False)``.

    ``text`` is the token's bytes as UTF-8, with ``\\xNN`` for bytes that are only part
    of a character (never U+FFFD); ``hex`` is the same bytes in hexadecimal.
    """

    token: str  # the vocabulary string
    text: str
    hex: str
    special: bool


class LoadedTokenizer:
    """A tokenizer plus what it means: special tokens, BOS/EOS, each token's bytes.

    >>> tok = LoadedTokenizer.from_folder("gpt2", folder)      # doctest: +SKIP
    >>> tok.hf.encode("It's", add_special_tokens=False).ids    # doctest: +SKIP
    [1026, 338]
    """

    def __init__(self, label: str, folder: Path, hf: Any, config: dict[str, Any]):
        self.label = label
        self.folder = folder
        self.hf = hf
        self.config = config
        self.vocab_size: int = hf.get_vocab_size(with_added_tokens=True)
        added = hf.get_added_tokens_decoder()
        self.special_ids: frozenset[int] = frozenset(i for i, t in added.items() if t.special)
        self.bos_id = self._config_token_id("bos_token", "cls_token")
        self.eos_id = self._config_token_id("eos_token", "sep_token")
        # The features are read from the decoder's and pre-tokenizer's tokenizer.json form
        # (what ``__getstate__`` serializes) and the model's attributes, never from
        # ``repr``, which a release may reword. (The model's own state would serialize its
        # whole vocabulary: 0.6 s for Gemma's.)
        decoders = _types(_component(hf.decoder))
        pre = _component(hf.pre_tokenizer)
        self.byte_level = "ByteLevel" in decoders
        self.byte_fallback = bool(getattr(hf.model, "byte_fallback", False)) or (
            "ByteFallback" in decoders
        )
        self.wordpiece_prefix: str | None = (
            getattr(hf.model, "continuing_subword_prefix", None) or "##"
            if type(hf.model).__name__ == "WordPiece"
            else None
        )
        # Pre-tokenizers after which a line break between two non-space characters
        # is always a boundary: input can be tokenized in chunks cut there.
        self.splittable = (
            pre.get("type") == "ByteLevel" and pre.get("use_regex", True) is True
        ) or pre.get("type") == "BertPreTokenizer"
        self._bytes_cache: dict[int, bytes] = {}
        self._describe_cache: dict[int, TokenInfo] = {}

    @classmethod
    def from_folder(cls, label: str, folder: Path) -> LoadedTokenizer:
        from tokenizers import Tokenizer

        path = folder / "tokenizer.json"
        # tokenizers reports a missing file as a plain Exception: check first.
        if not path.is_file():
            raise ModelError(f"{label} has no tokenizer.json in {folder}")
        try:
            hf = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise ModelError(f"cannot load the tokenizer of {label} ({path}): {exc}") from exc
        hf.no_truncation()
        hf.no_padding()
        config: dict[str, Any] = {}
        cfg_path = folder / "tokenizer_config.json"
        if cfg_path.is_file():
            try:
                config = json.loads(cfg_path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ModelError(f"{cfg_path} is not valid JSON") from exc
        return cls(label, folder, hf, config)

    @classmethod
    def for_model(cls, model: ResolvedModel) -> LoadedTokenizer:
        return cls.from_folder(model.label, model.path)

    def _config_token_id(self, *keys: str) -> int | None:
        for key in keys:
            value = self.config.get(key)
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                token_id = self.hf.token_to_id(value)
                if token_id is not None:
                    return int(token_id)
        return None

    # --- what goes around a text ------------------------------------------------

    @cached_property
    def template(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The IDs the tokenizer's own template puts before and after a text.

        Found by encoding a probe with and without it, so it is what the tokenizer does,
        whatever form its post-processor takes.
        """
        bare = self.hf.encode("a", add_special_tokens=False).ids
        full = self.hf.encode("a", add_special_tokens=True).ids
        for start in range(len(full) - len(bare) + 1):
            if full[start : start + len(bare)] == bare:
                return tuple(full[:start]), tuple(full[start + len(bare) :])
        return (), ()

    def wrap(self, *, special: bool, bos: bool = False, eos: bool = False) -> Wrap:
        """What goes around a text: the template's tokens (``special``), then BOS/EOS."""
        before: tuple[int, ...] = ()
        after: tuple[int, ...] = ()
        notes: list[str] = []
        template = " … ".join(
            " ".join(self.token(i) for i in part) for part in self.template if part
        )
        if special and template:
            before, after = self.template
            notes.append(f"{template} by {self.label}'s own template")
        for wanted, flag, token_id, first in ((bos, "--bos", self.bos_id, True),
                                              (eos, "--eos", self.eos_id, False)):  # fmt: skip
            if not wanted:
                continue
            if token_id is None:
                what = "BOS" if first else "EOS"
                raise InputError(f"{flag}: {self.label}'s tokenizer names no {what} token")
            if (before[:1] if first else after[-1:]) == (token_id,):
                notes.append(f"{flag}: {self.token(token_id)} is there already")
            else:
                before, after = (
                    ((token_id, *before), after) if first else (before, (*after, token_id))
                )
                notes.append(f"{self.token(token_id)} by {flag}")
        if not before and not after:
            why = (f"--no-special leaves out {self.label}'s {template}" if template
                   else f"{self.label}'s own template adds none; --bos/--eos add them")  # fmt: skip
            notes.insert(0, f"none ({why})")
        return Wrap(before, after, tuple(notes))

    # --- one token ----------------------------------------------------------------

    def token(self, token_id: int) -> str:
        """The vocabulary string of an ID (``Ġblue`` for GPT-2's " blue")."""
        token = self.hf.id_to_token(token_id)
        if token is None:
            raise InputError(self.out_of_range(token_id))
        return str(token)

    def out_of_range(self, token_id: int) -> str:
        return f"ID {token_id} is outside the vocabulary of {self.label} (0..{self.vocab_size - 1})"

    def check_id(self, token_id: int) -> None:
        if not 0 <= token_id < self.vocab_size or self.hf.id_to_token(token_id) is None:
            raise InputError(self.out_of_range(token_id))

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token stands for: a byte-level token may be part of a character."""
        cached = self._bytes_cache.get(token_id)
        if cached is not None:
            return cached
        token = self.token(token_id)
        if token_id in self.special_ids:
            data = token.encode("utf-8")
        elif self.byte_level:
            table = _byte_decoder()
            data = (
                bytes(table[c] for c in token)
                if all(c in table for c in token)
                else token.encode("utf-8")
            )
        elif self.byte_fallback and (match := _BYTE_TOKEN.fullmatch(token)):
            data = bytes([int(match.group(1), 16)])
        elif self.wordpiece_prefix is not None:
            prefix = self.wordpiece_prefix
            data = (token[len(prefix) :] if token.startswith(prefix) else token).encode()
        else:
            data = token.replace("\u2581", " ").encode("utf-8")
        self._bytes_cache[token_id] = data
        return data

    def describe(self, token_id: int) -> TokenInfo:
        """The token, text, bytes as hex and special flag of an ID, computed once per ID."""
        info = self._describe_cache.get(token_id)
        if info is None:
            data = self.token_bytes(token_id)
            info = TokenInfo(
                self.token(token_id),
                data.decode("utf-8", errors="backslashreplace"),
                data.hex(),
                token_id in self.special_ids,
            )
            self._describe_cache[token_id] = info
        return info

    # --- many tokens ----------------------------------------------------------------

    @cached_property
    def tiktoken(self) -> Any | None:
        """tiktoken's engine for the same vocabulary, where the folder has the ranks."""
        ranks_file = self.folder / TIKTOKEN_FILE
        if not ranks_file.is_file():
            return None
        import tiktoken

        from llmcli.models.convert import load_tiktoken_ranks

        return tiktoken.Encoding(
            name=self.label,
            pat_str=GPT2_PATTERN,
            mergeable_ranks=load_tiktoken_ranks(ranks_file),
            special_tokens=GPT2_SPECIAL,
        )

    def encode_lines(
        self, lines: Sequence[str], *, bulk: bool = False, short: bool = False
    ) -> tuple[list[int], int]:
        """The IDs of all ``lines`` in one list, and the ID that stands between two lines.

        Each line is encoded on its own, as the model's tokenizer does it (no BOS/EOS).
        The ID between lines is none that the lines themselves give: -1, or the
        special token of ``line_separator``. One flat list is much faster to make and
        to write out than a list for each line. ``bulk``: the input is large, and the
        ``bulk`` engine (where there is one, loaded beforehand) does the work. ``short``:
        the whole input is these few lines, and ``tokenizers``, loaded already, does it
        rather than an engine that would first have to load (tiktoken's ranks: 80 ms).

        >>> tok.encode_lines(["It's", "", "a"])                   # doctest: +SKIP
        ([1026, 338, 50256, 50256, 64], 50256)
        """
        if short:
            return _flat(self._hf_each(lines)), -1
        engine = self.bulk if bulk else None
        if engine is not None and (found := engine.lines(lines)) is not None:
            return found, -1
        if self.line_separator is not None:
            separator, end = self.line_separator
            ids = self._encode_one(separator.join(lines))
            # A line that holds the separator itself adds one: encode line by line.
            if ids.count(end) == len(lines) - 1:
                return ids, end
        return _flat(self._encode_each(lines)), -1

    @property
    def bulk_threshold(self) -> int | None:
        """The input size (bytes) from which ``bulk`` is worth its load, known without
        loading it; None where there is no bulk engine for this tokenizer's kind."""
        if type(self.hf.model).__name__ != "BPE":
            return None  # WordPiece (MiniLM): fastokens reads no BertNormalizer
        if (self.folder / TIKTOKEN_FILE).is_file():
            return BULK_THRESHOLD
        try:
            size = (self.folder / "tokenizer.json").stat().st_size
        except OSError:
            size = 0
        return max(BULK_THRESHOLD_TOKENIZERS, size)

    @cached_property
    def bulk(self) -> BulkEngine | None:
        """The engine for a large input in this vocabulary, or None.

        fastokens, for a BPE ``tokenizer.json`` (GPT-2's, SmolLM2's, Gemma's): it gives
        exactly tiktoken's and tokenizers' IDs (the tests check it against both, on
        adversarial text, every Unicode 17 letter and special tokens) and is many times
        faster on megabytes, but its load (0.8 s for SmolLM2, 7.6 s for Gemma) is more
        than a short text takes in all: ``bulk_threshold`` is the input size from which it
        pays. A probe against ``tokenizers`` at load refuses it for a tokenizer it reads
        otherwise.
        (gigatoken, faster still on GPT-2, cuts Unicode 17's new letters otherwise than
        tiktoken does, ``'s`` + U+088F for one, so it is not used.)
        """
        if self.bulk_threshold is None:
            return None
        try:
            import fastokens

            fast = fastokens.Tokenizer.from_file(str(self.folder / "tokenizer.json"))
            engine = BulkEngine("fastokens", lambda texts: _flat_from_offsets(
                *fast.encode_batch_flat(texts)
            ))  # fmt: skip
            probe = [*_PROBE_LINES, "<|endoftext|> x", "'s\u088f's", "\t's  \u3000e\u0301"]
            encoded = self.hf.encode_batch_fast(probe, add_special_tokens=False)
            expected = _flat([e.ids for e in encoded])
        except Exception:  # not installed, or a tokenizer.json it cannot read
            return None
        return engine if engine.lines(probe) == expected else None

    @cached_property
    def line_separator(self) -> tuple[str, int] | None:
        """A special token (text, ID) that cuts lines apart without changing their IDs.

        The text between two special tokens is encoded on its own, so lines joined by
        one encode, in one call, to each line's IDs with the token's ID between them.
        tiktoken works so; for a ``tokenizers`` tokenizer a probe checks it (it fails
        where the start of a text is treated apart, as with Metaspace's
        ``prepend_scheme="first"``, or where the token takes the spaces around it).
        """
        if self.tiktoken is not None:
            text = min(self.tiktoken.special_tokens_set, default=None)
            return None if text is None else (text, self.tiktoken.encode_single_token(text))
        unknown = getattr(self.hf.model, "unk_token", None)  # the model gives it too
        for token_id, token in sorted(self.hf.get_added_tokens_decoder().items()):
            if (
                token.special
                and token.content != unknown
                and not (token.lstrip or token.rstrip or token.normalized)
            ):
                candidate = (str(token.content), int(token_id))
                break
        else:
            return None
        text, end = candidate
        expected = _flat(self._encode_each(_PROBE_LINES))
        joined = self._encode_one(text.join(_PROBE_LINES))
        return candidate if joined == [end if i == -1 else i for i in expected] else None

    def _encode_one(self, text: str) -> list[int]:
        if self.tiktoken is not None:
            ids: list[int] = self.tiktoken.encode(text, allowed_special="all")
            return ids
        return self.hf.encode_batch_fast([text], add_special_tokens=False)[0].ids

    def _encode_each(self, texts: Sequence[str]) -> list[list[int]]:
        if self.tiktoken is not None:
            return [self.tiktoken.encode(t, allowed_special="all") for t in texts]
        return self._hf_each(texts)

    def _hf_each(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch_fast(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        """Text for IDs. Bytes that do not complete a character are shown as ``\\xNN``."""
        for token_id in ids:
            self.check_id(token_id)
        if self.byte_level or self.byte_fallback:
            if self.tiktoken is not None:
                data = self.tiktoken.decode_bytes(list(ids))
            else:
                data = b"".join(self.token_bytes(i) for i in ids)
            return data.decode("utf-8", errors="backslashreplace")
        return str(self.hf.decode(list(ids), skip_special_tokens=False))


# Lines that show whether a separator token changes the IDs around it.
_PROBE_LINES = [
    "It's a blue sundress.", "", "  two  spaces  ", "\tand a tab", "naïve café 日本語 🙂",
    " x", "y ", "The cat sat on the mat.", "123 4567",
]  # fmt: skip


def _flat(per_line: list[list[int]]) -> list[int]:
    """The lists in one, -1 between two of them."""
    ids: list[int] = []
    for line_ids in per_line:
        ids += line_ids
        ids.append(-1)
    return ids[:-1]


_BYTE_DECODER: dict[str, int] = {}


def _byte_decoder() -> dict[str, int]:
    if not _BYTE_DECODER:
        _BYTE_DECODER.update({c: b for b, c in bytes_to_unicode().items()})
    return _BYTE_DECODER


def _component(part: Any) -> dict[str, Any]:
    """A tokenizer component (decoder, model, pre-tokenizer) as tokenizer.json holds it."""
    if part is None:
        return {}
    state = json.loads(part.__getstate__())
    return state if isinstance(state, dict) else {}


def _types(component: dict[str, Any]) -> set[str]:
    """The ``type`` of a component and of every component in a ``Sequence`` of them."""
    found = {str(component["type"])} if "type" in component else set()
    for key in ("decoders", "pretokenizers", "normalizers"):
        for inner in component.get(key) or []:
            if isinstance(inner, dict):
                found |= _types(inner)
    return found
