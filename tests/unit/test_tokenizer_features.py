"""A tokenizer's features are read from its tokenizer.json form, not from ``repr`` strings
of ``tokenizers`` objects, which a new release may word differently."""

from __future__ import annotations

from typing import Any

from llmcli.models.tokenizer import LoadedTokenizer


class Reworded:
    """A tokenizers component whose ``repr`` says something else; its state is the same."""

    def __init__(self, part: Any):
        self._part = part

    def __repr__(self) -> str:
        return "Component(renamed in a later release)"

    def __getstate__(self) -> Any:
        return self._part.__getstate__()


class Proxy:
    """The tokenizer, with its decoder and pre-tokenizer reworded."""

    def __init__(self, hf: Any):
        self._hf = hf
        self.decoder = Reworded(hf.decoder)
        self.pre_tokenizer = Reworded(hf.pre_tokenizer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hf, name)


def features(tok: LoadedTokenizer) -> tuple[Any, ...]:
    return (tok.byte_level, tok.byte_fallback, tok.wordpiece_prefix, tok.splittable)


def test_features_do_not_depend_on_repr(bpe_dir, wordpiece_dir):
    for folder, expected in ((bpe_dir, (True, False, None, True)),
                             (wordpiece_dir, (False, False, "##", True))):  # fmt: skip
        plain = LoadedTokenizer.from_folder("t", folder)
        assert features(plain) == expected
        reworded = LoadedTokenizer("t", folder, Proxy(plain.hf), plain.config)
        assert features(reworded) == expected


def test_a_byte_fallback_sequence_decoder_is_seen(tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE(vocab={"a": 0, "<0x41>": 1}, merges=[], byte_fallback=True))
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    tok.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    loaded = LoadedTokenizer("t", tmp_path, Proxy(tok), {})
    assert (loaded.byte_level, loaded.byte_fallback, loaded.splittable) == (False, True, False)
