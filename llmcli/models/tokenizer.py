"""Load a model's tokenizer from a store folder, with the facts the commands need.

Uses the ``tokenizers`` library (and ``tiktoken`` where the folder carries GPT-2's
ranks file, for speed); never torch or transformers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from llmcli.errors import InputError, ModelError
from llmcli.models.convert import GPT2_PATTERN, GPT2_SPECIAL, TIKTOKEN_FILE, bytes_to_unicode
from llmcli.models.resolve import ResolvedModel

_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")


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
        decoder = repr(hf.decoder)
        self.byte_level = decoder.startswith("ByteLevel") or "ByteLevel(" in decoder
        self.byte_fallback = bool(getattr(hf.model, "byte_fallback", False)) or (
            "ByteFallback" in decoder
        )
        self.wordpiece_prefix: str | None = (
            getattr(hf.model, "continuing_subword_prefix", "##")
            if type(hf.model).__name__ == "WordPiece"
            else None
        )
        pre = repr(hf.pre_tokenizer)
        # Pre-tokenizers after which a line break between two non-space characters
        # is always a boundary: input can be tokenized in chunks cut there.
        self.splittable = (
            pre.startswith("ByteLevel(") and "use_regex=True" in pre
        ) or pre.startswith("BertPreTokenizer")
        self._bytes_cache: dict[int, bytes] = {}

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

    # --- one token ----------------------------------------------------------------

    def token(self, token_id: int) -> str:
        """The vocabulary string of an ID (``Ġblue`` for GPT-2's " blue")."""
        token = self.hf.id_to_token(token_id)
        if token is None:
            raise InputError(self.out_of_range(token_id))
        return str(token)

    def out_of_range(self, token_id: int) -> str:
        return (
            f"ID {token_id} is outside the vocabulary of {self.label} "
            f"(0..{self.vocab_size - 1})"
        )

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

    def encode_batch_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """IDs for each text, as the model's own tokenizer gives them (no BOS/EOS)."""
        if self.tiktoken is not None:
            return _tiktoken_batch(self.tiktoken, texts)
        encodings = self.hf.encode_batch_fast(list(texts), add_special_tokens=False)
        return [e.ids for e in encodings]

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


def _tiktoken_batch(enc: Any, texts: Sequence[str]) -> list[list[int]]:
    """tiktoken's IDs for each text, from one call on the texts joined by a special token.

    tiktoken encodes the text between two special tokens on its own, so the IDs of
    the joined text are each text's IDs with the separator's ID between them: one
    call instead of one a text (many short lines encode several times faster).
    Should a text hold the special token itself, the separators do not add up and
    each text is encoded on its own.
    """
    if len(texts) < 2 or len(enc.special_tokens_set) != 1:
        return [enc.encode(text, allowed_special="all") for text in texts]
    (sep_text,) = enc.special_tokens_set
    sep = enc.encode_single_token(sep_text)
    ids = enc.encode(sep_text.join(texts), allowed_special="all")
    if ids.count(sep) != len(texts) - 1:
        return [enc.encode(text, allowed_special="all") for text in texts]
    out = []
    start = 0
    for _ in range(len(texts) - 1):
        end = ids.index(sep, start)
        out.append(ids[start:end])
        start = end + 1
    out.append(ids[start:])
    return out


_BYTE_DECODER: dict[str, int] = {}


def _byte_decoder() -> dict[str, int]:
    if not _BYTE_DECODER:
        _BYTE_DECODER.update({c: b for b, c in bytes_to_unicode().items()})
    return _BYTE_DECODER
