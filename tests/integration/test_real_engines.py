"""The bulk engine (fastokens) on the real vocabularies: exactly the reference's IDs.

The reference is tiktoken on GPT-2's ranks and the ``tokenizers`` library on the
store's tokenizer.json, as everywhere else in llmpath. A large input takes the engine
end to end (``tokenize -f ids``), a short one never loads it.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from adversarial import strings

from llmcli.core.tokenize import IdLines
from llmcli.models.tokenizer import LoadedTokenizer

ENGINE_MODELS = ("gpt2", "smollm2", "gemma3-270m")
# Letters new in Unicode 17: an engine with older tables cuts them otherwise.
UNICODE_17 = (0x088F, 0x0C5C, 0x0CDC, 0xA7CE, 0xA7F1, 0x10940, 0x11DB0, 0x16EA0, 0x18D80,
              0x1E6C0, 0x2B73A, 0x2CEA2, 0x323B0, 0x33479)  # fmt: skip


def reference_lines(tok, texts):  # type: ignore[no-untyped-def]
    if tok.tiktoken is not None:
        return tok.tiktoken.encode_batch(texts, allowed_special="all")
    return [e.ids for e in tok.hf.encode_batch_fast(texts, add_special_tokens=False)]


@pytest.mark.parametrize("name", ENGINE_MODELS)
def test_engine_equals_the_reference(loaded, name):
    tok = loaded(name)
    assert tok.bulk is not None and tok.bulk.name == "fastokens"
    texts = [t.replace("\n", " ") for t in strings()]
    texts += [f"{p}{chr(c)}{q}" for c in UNICODE_17 for p in [*string.punctuation, "'s", "a", " "]
              for q in ("", p)]  # fmt: skip
    ids, separator = tok.encode_lines(texts, bulk=True)
    assert list(IdLines(ids, separator).lines()) == reference_lines(tok, texts)


def test_minilm_has_no_engine(loaded):
    assert loaded("minilm").bulk is None


def test_each_engine_takes_over_where_it_pays(loaded, model_dir):
    """GPT-2 from 16 MB (against tiktoken); SmolLM2 and Gemma from the size of their
    tokenizer.json, which the engine reads first (Gemma's 33 MB: 7.6 s here)."""
    assert loaded("gpt2").bulk_threshold == 16 << 20
    for name in ("smollm2", "gemma3-270m"):
        size = (model_dir(name) / "tokenizer.json").stat().st_size
        assert loaded(name).bulk_threshold == size > 3_000_000
    assert loaded("minilm").bulk_threshold is None


# Read, batched and the engine's threshold a tenth of their usual size: a tenth of the
# input goes the way a large one does.
SCALE = 10


@pytest.fixture(scope="module")
def large_file(stdlib_text: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The standard library's text, adversarial lines with literal special tokens, and
    bytes SmolLM2's vocabulary has no token for: 400 KB (a tenth of 4 MB)."""
    path = tmp_path_factory.mktemp("large") / "large.txt"
    extra = "\n".join(t.replace("\n", " ").replace("\r", " ") for t in strings(3000)) + "\n"
    extra += "<|endoftext|>\nbefore<|endoftext|>after\n\U000f3392 \U0004348c\n"
    text = stdlib_text.read_bytes().decode("utf-8")[: 3_000_000 // SCALE]
    path.write_bytes((text[: text.rindex("\n") + 1] + extra).encode("utf-8"))
    return path


@pytest.mark.parametrize(("name", "given"), [("gpt2", "file"), ("smollm2", "stdin")])
def test_a_large_file_takes_the_engine_with_the_same_ids(cli, loaded, large_file, monkeypatch,
                                                         shrink, tmp_path, name,
                                                         given):  # fmt: skip
    """End to end, with the engine's threshold lowered so that 400 KB is large (the real
    ones are 16 MB for GPT-2, 3.5 MB for SmolLM2): the engine's from the start with
    ``--file``, and from 100 KB on from a pipe, whose size is not known."""
    shrink(SCALE)
    monkeypatch.setattr(LoadedTokenizer, "bulk_threshold", (1 << 20) // SCALE)
    made = []
    real_bulk = LoadedTokenizer.__dict__["bulk"].func

    def counted(self):  # type: ignore[no-untyped-def]
        if "made_bulk" not in self.__dict__:
            made.append(self.label)
            self.__dict__["made_bulk"] = real_bulk(self)
        return self.__dict__["made_bulk"]

    monkeypatch.setattr(LoadedTokenizer, "bulk", property(counted))
    out = tmp_path / "ids.txt"
    args = ["tokenize", "-m", name, "-f", "ids", "-o", out]
    if given == "file":
        result = cli(*args, "--file", large_file)
    else:
        result = cli(*args, stdin=large_file.read_bytes())
    assert result.code == 0, result.err
    assert made  # the engine took over
    tok = loaded(name)
    lines = large_file.read_bytes().decode("utf-8").split("\n")[:-1]
    got = out.read_text(encoding="utf-8").split("\n")
    assert got.pop() == ""
    assert got == [" ".join(map(str, ids)) for ids in reference_lines(tok, lines)]
    eot = str(tok.hf.token_to_id("<|endoftext|>"))
    assert any(line == eot for line in got)  # a literal special token is its special ID
