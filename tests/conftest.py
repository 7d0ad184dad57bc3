"""Shared fixtures: an isolated store for every test; tiny tokenizers and models built here.

Tests under ``tests/integration/`` are marked ``integration`` here and keep the
environment their own fixtures set up; every other test gets an empty store in a
temporary folder and ``LLMPATH_OFFLINE=1``, so nothing can reach the network or
the user's cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
INTEGRATION = TESTS / "integration"

# A few sentences to train the tiny tokenizers on: ASCII, accents, CJK and an emoji,
# so that some characters end up split across byte-level tokens.
CORPUS = [
    "It's a blue sundress.",
    "The cat sat on the mat.",
    "A kitten is a young cat; a tractor is not.",
    "Tractors plough the fields in spring.",
    "naïve café, crème brûlée and 日本語.",
    "Hello world!\nSecond line here.\n",
]
EOT = "<|endoftext|>"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject's default): a test process for each core, 4 at most, as
    each one loads the real models for itself (1 to 3 GB)."""
    return max(1, min(4, _cores()))


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each test process's torch (and the commands it starts) takes
    its share of the cores, not all of them: two processes on two cores with two
    threads each wait on each other (8.2 minutes of CPU for the suite against 5.9)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, _cores() // int(workers)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _isolated_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """An empty store and no downloads, for every test that is not an integration test."""
    if request.node.get_closest_marker("integration"):
        return
    monkeypatch.setenv("LLMPATH_HOME", str(tmp_path_factory.mktemp("store")))
    monkeypatch.setenv("LLMPATH_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("LLMPATH_DEBUG", "HF_HUB_OFFLINE", "FORCE_COLOR", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def shrink(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """``shrink(scale)``: the sizes llmpath reads text in (blocks, record chunks, ID
    batches), the size of a text argument that is short, and the input sizes from which
    the bulk engine takes over, all ``scale`` times smaller in this process, so that an
    input ``scale`` times smaller takes the path a large one takes."""

    def apply(scale: int) -> None:
        from llmcli.core import inputs, tokenize
        from llmcli.models.tokenizer import LoadedTokenizer

        source = inputs.TextSource
        for method in (source.blocks, source.line_batches, source.chunks):
            monkeypatch.setattr(method, "__defaults__", (inputs.BLOCK // scale,))
        for name in ("RECORD_CHUNK_CHARS", "ID_BATCH_BYTES", "SHORT_TEXT"):
            monkeypatch.setattr(tokenize, name, getattr(tokenize, name) // scale)
        threshold = LoadedTokenizer.bulk_threshold.fget

        def smaller(tok: LoadedTokenizer) -> int | None:
            found = threshold(tok)
            return None if found is None else found // scale

        monkeypatch.setattr(LoadedTokenizer, "bulk_threshold", property(smaller))

    return apply


# --- tiny tokenizers ---------------------------------------------------------------------


def _train_bpe(folder: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=[EOT], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )  # fmt: skip
    tok.train_from_iterator(CORPUS * 5, trainer)
    folder.mkdir(parents=True)
    tok.save(str(folder / "tokenizer.json"))
    config = {"bos_token": EOT, "eos_token": EOT, "unk_token": EOT, "model_max_length": 64}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _train_wordpiece(folder: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        show_progress=False,
    )  # fmt: skip
    tok.train_from_iterator(CORPUS * 5, trainer)
    folder.mkdir(parents=True)
    tok.save(str(folder / "tokenizer.json"))
    config = {"cls_token": "[CLS]", "sep_token": "[SEP]", "unk_token": "[UNK]"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def bpe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-level BPE tokenizer folder (GPT-2 style, ~365 tokens, <|endoftext|> = BOS/EOS)."""
    return _train_bpe(tmp_path_factory.mktemp("tiny") / "tinybpe")


@pytest.fixture(scope="session")
def wordpiece_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BERT-like WordPiece tokenizer folder (lower-cased, [CLS]/[SEP])."""
    return _train_wordpiece(tmp_path_factory.mktemp("tiny") / "tinywp")


@pytest.fixture(scope="session")
def bpe_ref(bpe_dir: Path):  # type: ignore[no-untyped-def]
    """The BPE tokenizer loaded straight with the tokenizers library: the expected values."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(bpe_dir / "tokenizer.json"))


@pytest.fixture(scope="session")
def wordpiece_ref(wordpiece_dir: Path):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(wordpiece_dir / "tokenizer.json"))


GPT2_WORDS = (b"at", b"he", b" t", b" the", b" c", b" cat", b"in", b"ing", b" s", b" sat", b"ou")


@pytest.fixture(scope="session")
def gpt2_ranks() -> dict[bytes, int]:
    """Ranks shaped like GPT-2's: the 256 bytes, a few merges, then pairs up to 50,256
    (so that <|endoftext|> is 50256, as in GPT-2)."""
    import itertools

    ranks = {bytes([b]): b for b in range(256)}
    for word in GPT2_WORDS:
        ranks[word] = len(ranks)
    for a, b in itertools.product(range(33, 256), range(256)):
        if len(ranks) == 50256:
            break
        ranks.setdefault(bytes([a, b]), len(ranks))
    return ranks


@pytest.fixture(scope="session")
def tiktoken_dir(gpt2_ranks: dict[bytes, int], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2-shaped tokenizer folder as the store makes it from a ``.tiktoken`` file:
    the ranks file (tiktoken) and the tokenizer.json made from it."""
    import base64

    from llmcli.models.convert import tiktoken_to_folder

    folder = tmp_path_factory.mktemp("tiny") / "tinygpt"
    folder.mkdir()
    ranks_file = folder.parent / "ranks.tiktoken"
    ranks_file.write_bytes(
        b"".join(base64.b64encode(t) + b" %d\n" % r for t, r in gpt2_ranks.items())
    )
    tiktoken_to_folder(ranks_file, folder, context=64)
    return folder


@pytest.fixture(scope="session")
def bpe(bpe_dir: Path):  # type: ignore[no-untyped-def]
    """The tiny byte-level BPE tokenizer, loaded by llmpath."""
    from llmcli.models.tokenizer import LoadedTokenizer

    return LoadedTokenizer.from_folder("tinybpe", bpe_dir)


@pytest.fixture(scope="session")
def wp(wordpiece_dir: Path):  # type: ignore[no-untyped-def]
    """The tiny WordPiece tokenizer (no template), loaded by llmpath."""
    from llmcli.models.tokenizer import LoadedTokenizer

    return LoadedTokenizer.from_folder("tinywp", wordpiece_dir)


# --- tiny models with weights ----------------------------------------------------------
# Random weights, two layers, 32 dimensions: small enough to build in a second, real
# enough that every embedding and hidden state is computed by transformers itself.

SENTENCE_TRANSFORMERS_MODULES = [
    {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
    for i, (path, kind) in enumerate(
        [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    )
]


def _save_model(model, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model.save_pretrained(str(folder), safe_serialization=True)
    assert (folder / "model.safetensors").is_file()
    return folder


@pytest.fixture(scope="session")
def bert_tokenizer_dir(wordpiece_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The WordPiece tokenizer with BERT's template: it adds [CLS] ... [SEP]."""
    from tokenizers import Tokenizer, processors

    folder = tmp_path_factory.mktemp("tokenizers") / "tinybert"
    shutil.copytree(wordpiece_dir, folder)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    cls_sep = [(t, tok.token_to_id(t)) for t in ("[CLS]", "[SEP]")]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=cls_sep
    )
    tok.save(str(folder / "tokenizer.json"))
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(bert_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT encoder (d=32) on the WordPiece tokenizer, which here adds
    [CLS] ... [SEP]; its modules.json asks for a normalized mean, as all-MiniLM-L6-v2's does."""
    import torch
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tinymodels") / "tinybert"
    shutil.copytree(bert_tokenizer_dir, folder)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
        pad_token_id=tok.token_to_id("[PAD]"),
    )  # fmt: skip
    _save_model(BertModel(config).eval(), folder)
    modules = json.dumps(SENTENCE_TRANSFORMERS_MODULES)
    (folder / "modules.json").write_text(modules, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_gpt2_dir(bpe_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer GPT-2 decoder (d=32, causal attention) on the byte-level BPE tokenizer."""
    import torch
    from tokenizers import Tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tinymodels") / "tinygpt2"
    shutil.copytree(bpe_dir, folder)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    eot = tok.token_to_id(EOT)
    torch.manual_seed(1)
    config = GPT2Config(
        vocab_size=tok.get_vocab_size(), n_positions=64, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=eot, eos_token_id=eot,
    )  # fmt: skip
    return _save_model(GPT2LMHeadModel(config).eval(), folder)


def _randomize_norms(model, *, scale: float, base: float) -> None:  # type: ignore[no-untyped-def]
    """Give every norm's gain (and bias) random values: ``base + scale * randn``, so that
    a formula that forgets the gain, or Gemma's ``1 + w``, is seen."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name.lower() and name.endswith(".weight"):
                param.copy_(base + scale * torch.randn_like(param))
            elif "norm" in name.lower() and name.endswith(".bias"):
                param.copy_(scale * torch.randn_like(param))


@pytest.fixture(scope="session")
def tiny_llama_dir(bpe_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama decoder (d=32, 4 query heads sharing 2 key/value heads, RoPE,
    SwiGLU, tied embeddings) on the byte-level BPE tokenizer; its RMSNorm gains random."""
    import torch
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tinymodels") / "tinyllama"
    shutil.copytree(bpe_dir, folder)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    eot = tok.token_to_id(EOT)
    torch.manual_seed(2)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, intermediate_size=64,
        max_position_embeddings=64, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True, bos_token_id=eot, eos_token_id=eot,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    _randomize_norms(model, scale=0.3, base=1.0)
    return _save_model(model, folder)


@pytest.fixture(scope="session")
def tiny_gemma3_dir(bpe_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-layer Gemma 3 decoder (d=32, 2 query heads on 1 key/value head, d_head 16) on
    the byte-level BPE tokenizer: two sliding-window layers (window 4, so a 10-token text
    is really cut) with RoPE base 10000, then a full layer with base 1000000. Gemma's
    RMSNorm gains start at 0 (the norm multiplies by 1 + w): here they are random."""
    import torch
    from tokenizers import Tokenizer
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    folder = tmp_path_factory.mktemp("tinymodels") / "tinygemma3"
    shutil.copytree(bpe_dir, folder)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    eot = tok.token_to_id(EOT)
    torch.manual_seed(3)
    rope = {
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
    }
    config = Gemma3TextConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, intermediate_size=64,
        query_pre_attn_scalar=16, sliding_window=4,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        rope_parameters=rope, tie_word_embeddings=True, max_position_embeddings=64,
        pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
    )  # fmt: skip
    model = Gemma3ForCausalLM(config).eval()
    _randomize_norms(model, scale=0.1, base=0.0)
    return _save_model(model, folder)


# --- running the command line ------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str
    out_bytes: bytes = b""

    def jsonl(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """The tiny models run on one thread: their small operations gain nothing from more,
    and on a busy machine two threads make each of them many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """Run ``llmcli.cli.main(args)`` in this process; ``stdin`` bytes replace standard input."""
    import io

    from llmcli.cli import main

    def run(*args: object, stdin: bytes | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        code = exc.value.code if isinstance(exc.value.code, int) else 0
        return Result(code, captured.out, captured.err)

    return run


def llmpath_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "llmcli", *(str(a) for a in args)]


def modes_apply() -> list[str] | None:
    """A prefix for a command under which file modes apply to its process: none where the
    tests do not run as root; as root, util-linux's ``setpriv`` taking the two capabilities
    that pass over modes out of the bounding set, so the process it starts holds neither
    (it stays root, so it still reaches the venv under /root). None where that cannot be."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


@pytest.fixture
def run_llmpath() -> Callable[..., Result]:
    """Run ``python -m llmcli ARGS`` in a subprocess (stdin: bytes, or nothing); with
    ``modes``, as a process to which file modes apply (``modes_apply``)."""

    def run(*args: object, stdin: bytes | None = None, timeout: float = 60,
            modes: bool = False) -> Result:  # fmt: skip
        prefix = modes_apply() if modes else []
        if prefix is None:
            pytest.skip("root reads any file, and there is no setpriv to take that away")
        proc = subprocess.run(
            [*prefix, *llmpath_cmd(*args)], input=stdin if stdin is not None else b"",
            capture_output=True, timeout=timeout, env=dict(os.environ),
        )  # fmt: skip
        return Result(
            proc.returncode, proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"), proc.stdout,
        )  # fmt: skip

    return run


def assert_one_error(result: Result, code: int, *fragments: str) -> str:
    """A single ``Error: ...`` line on stderr with ``code``, no traceback, nothing on stdout."""
    lines = result.err.splitlines()
    assert result.code == code, result.err
    assert len(lines) == 1, result.err
    assert lines[0].startswith("Error: "), result.err
    assert "Traceback" not in result.err
    assert result.out == ""
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def one_error() -> Callable[..., str]:
    """``one_error(result, code, *fragments)``: see ``assert_one_error``."""
    return assert_one_error


@pytest.fixture
def store_home() -> Iterator[Path]:
    """The isolated store folder of the current test."""
    yield Path(os.environ["LLMPATH_HOME"])


NOBODY = 65534  # the user and group ``nobody``


@pytest.fixture
def without_root(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., contextlib.AbstractContextManager[None]]:
    """``with without_root(reach, writable):`` runs its body as the user and group
    nobody (effective IDs; root's own are back afterwards) where the tests run as root,
    so that file modes apply to it: root reads and writes any file whatever its mode.
    Meanwhile the temporary folders on the way to each path in ``reach`` may be passed
    through (not listed) by others, those folders themselves read, and the ``writable``
    folders belong to nobody. Elsewhere it does nothing."""

    @contextlib.contextmanager
    def run(reach: Sequence[Path] = (), writable: Sequence[Path] = ()) -> Iterator[None]:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            yield
            return
        import fcntl  # POSIX, as geteuid is

        base = tmp_path_factory.getbasetemp()
        # pytest-of-root/pytest-N/ (and popen-gwK/ under pytest-xdist): from pytest-of-root.
        top = next((p for p in base.parents if p.name.startswith("pytest-of-")), base.parent)
        # One body at a time across the test processes of a run: they share those folders.
        with open(top / ".without-root.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            changed: dict[Path, int] = {}
            for target in [*reach, *writable]:
                folders = [target, *target.parents]
                for folder in folders[: folders.index(top) + 1]:
                    mode = folder.stat().st_mode
                    changed.setdefault(folder, mode)
                    folder.chmod(mode | (0o055 if folder == target else 0o011))
            owners = [(d, d.stat().st_uid, d.stat().st_gid) for d in writable]
            for folder, _, _ in owners:
                os.chown(folder, NOBODY, NOBODY)
            os.setegid(NOBODY)
            os.seteuid(NOBODY)
            try:
                yield
            finally:
                os.seteuid(0)
                os.setegid(0)
                for folder, uid, gid in owners:
                    os.chown(folder, uid, gid)
                for folder, mode in changed.items():
                    folder.chmod(mode)

    return run
