"""Options shared by several commands, declared once."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llmcli.errors import UsageError
from llmcli.models.registry import REGISTRY

if TYPE_CHECKING:
    from llmcli.models.loader import LoadedModel
    from llmcli.models.resolve import ResolvedModel

_MODEL_HELP = (
    f"Model: a registry name ({', '.join(REGISTRY)}), a Hugging Face folder, "
    "a .gguf file, or a hub id."
)

Model = Annotated[str, typer.Option("--model", "-m", help=_MODEL_HELP, show_default=True)]
WeightsModel = Annotated[
    str,
    typer.Option("--model", "-m", help="A model with weights: a registry name, a Hugging Face "
                 "folder, a .gguf file or a hub id."),
]  # fmt: skip
Models = Annotated[
    list[str] | None,
    typer.Option("--model", "-m", help=_MODEL_HELP + " Repeat to compare.", show_default=False),
]
Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write to FILE (atomically) instead of stdout.",
                 dir_okay=False, show_default=False),
]  # fmt: skip
# readable=False: a file that cannot be read is an input error (exit 1) named by
# llmcli.core.inputs, as a missing one is, not a usage error.
InputFile = Annotated[
    Path | None,
    typer.Option("--file", help="Read input from this file ('-' for stdin).",
                 dir_okay=True, readable=False, show_default=False),
]  # fmt: skip
Special = Annotated[
    bool,
    typer.Option(
        "--special/--no-special",
        help="Add the special tokens the model's own "
        "template adds, as the model is fed (Gemma: <bos>; BERT: [CLS] … [SEP]; "
        "GPT-2: none).",
    ),
]
Bos = Annotated[
    bool,
    typer.Option(
        "--bos",
        help="Put the model's BOS token first (GPT-2: <|endoftext|>), unless it is there already.",
    ),
]
Eos = Annotated[
    bool,
    typer.Option("--eos", help="Put the model's EOS token last, unless it is there already."),
]
IdsFlag = Annotated[
    bool,
    typer.Option("--ids", help="Stdin or --file holds token IDs (as 'tokenize -f ids' writes "
                 "them), not text."),
]  # fmt: skip
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No notices or progress on stderr.")]


_FORMAT_HELP = "Output format. Default: a table on a terminal, jsonl otherwise."


class TokenizeFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"
    json = "json"
    tsv = "tsv"
    ids = "ids"


class OneHotFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"
    json = "json"
    npy = "npy"
    npz = "npz"


class EmbedFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"
    json = "json"
    csv = "csv"
    npy = "npy"
    npz = "npz"
    png = "png"


class AttentionFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"
    json = "json"
    npy = "npy"
    npz = "npz"
    html = "html"
    png = "png"


class Aggregate(str, Enum):
    """``attention --aggregate`` (``llmcli.core.attention.AGGREGATES``)."""

    none = "none"
    mean = "mean"
    max = "max"
    rollout = "rollout"


class Precision(str, Enum):
    float32 = "float32"
    float16 = "float16"


class FewshotFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"
    json = "json"
    png = "png"


class WalkFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"
    json = "json"
    npz = "npz"
    html = "html"


class WalkStep(str, Enum):
    """The steps of ``llmpath walk``, in order (``llmcli.core.walk.STEPS``)."""

    tokens = "tokens"
    embed = "embed"
    position = "position"
    norm = "norm"
    head = "head"
    heads = "heads"
    mlp = "mlp"
    layers = "layers"
    output = "output"


class ListFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"
    json = "json"


TokenizeFormatOpt = Annotated[
    TokenizeFormat | None,
    typer.Option("--format", "-f", help=_FORMAT_HELP, show_default=False, case_sensitive=False),
]
OneHotFormatOpt = Annotated[
    OneHotFormat | None,
    typer.Option("--format", "-f", help=_FORMAT_HELP + " npy/npz: dense \\[token, vocab] uint8.",
                 show_default=False, case_sensitive=False),
]  # fmt: skip
ListFormatOpt = Annotated[
    ListFormat | None,
    typer.Option("--format", "-f", help=_FORMAT_HELP, show_default=False, case_sensitive=False),
]
EmbedFormatOpt = Annotated[
    EmbedFormat | None,
    typer.Option("--format", "-f", help=_FORMAT_HELP + " npy/npz: the vectors; png: a picture.",
                 show_default=False, case_sensitive=False),
]  # fmt: skip


class DeviceName(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class DtypeName(str, Enum):
    auto = "auto"
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


class MetricName(str, Enum):
    cosine = "cosine"
    euclidean = "euclidean"
    dot = "dot"


Device = Annotated[
    DeviceName,
    typer.Option("--device", help="auto picks cuda, then mps, then cpu.", case_sensitive=False),
]
Dtype = Annotated[
    DtypeName,
    typer.Option("--dtype", help="auto keeps the stored float32.", case_sensitive=False),
]
Metric = Annotated[
    MetricName,
    typer.Option("--metric", help="How nearness is measured.", case_sensitive=False),
]
DeviceMap = Annotated[
    str | None,
    typer.Option("--device-map", help="'auto': spread a model too large for one device over "
                 "the GPUs and the CPU (needs accelerate).", show_default=False),
]  # fmt: skip
TrustRemoteCode = Annotated[
    bool,
    typer.Option("--trust-remote-code", help="Run model code shipped with a hub model (off: "
                 "only transformers' own code runs)."),
]  # fmt: skip
AttentionFormatOpt = Annotated[
    AttentionFormat | None,
    typer.Option("--format", "-f", help=_FORMAT_HELP + " npy/npz: \\[layer, head, query, key]; "
                 "html: an interactive page; png: a picture.", show_default=False,
                 case_sensitive=False),
]  # fmt: skip
FewshotFormatOpt = Annotated[
    FewshotFormat | None,
    typer.Option("--format", "-f", help=_FORMAT_HELP + " png: --eval's accuracy against shots.",
                 show_default=False, case_sensitive=False),
]  # fmt: skip
WalkFormatOpt = Annotated[
    WalkFormat | None,
    typer.Option("--format", "-f", help=_FORMAT_HELP + " npz: the tensors; html: a page.",
                 show_default=False, case_sensitive=False),
]  # fmt: skip


# --- the model options, declared once ---------------------------------------------------


@dataclass(frozen=True)
class Running:
    """How a model runs: the options every model command takes, as one value."""

    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None
    trust_remote_code: bool = False

    def load(self, resolved: ResolvedModel, **extra: Any) -> LoadedModel:
        """``load_model`` with these options (and ``extra``, e.g. ``attention="eager"``)."""
        from llmcli.models.loader import load_model

        return load_model(resolved, device=self.device, dtype=self.dtype,
                          device_map=self.device_map, trust_remote_code=self.trust_remote_code,
                          **extra)  # fmt: skip


_RUNNING_OPTIONS = (
    ("device", Device, DeviceName.auto),
    ("dtype", Dtype, DtypeName.auto),
    ("device_map", DeviceMap, None),
    ("trust_remote_code", TrustRemoteCode, False),
)


def model_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a model command ``--device``, ``--dtype``, ``--device-map`` and
    ``--trust-remote-code`` (before ``--quiet`` in its help); it gets them as one
    ``running: Running`` argument.

    >>> @model_options                                          # doctest: +SKIP
    ... def walk(text: ..., quiet: Quiet = False, *, running: Running) -> None: ...
    """
    signature = inspect.signature(command, eval_str=True)
    kept = [p for name, p in signature.parameters.items() if name != "running"]
    added = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                          annotation=annotation)
        for name, annotation, default in _RUNNING_OPTIONS
    ]  # fmt: skip
    at = next((i for i, p in enumerate(kept) if p.name == "quiet"), len(kept))
    params = [*kept[:at], *added, *kept[at:]]

    @functools.wraps(command)
    def run(**given: Any) -> None:
        values = {name: given.pop(name) for name, _, _ in _RUNNING_OPTIONS}
        running = Running(**{k: getattr(v, "value", v) for k, v in values.items()})
        command(**given, running=running)

    run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    # Resolved, so that typer never evaluates the command's string annotations here.
    run.__annotations__ = {p.name: p.annotation for p in params}
    del run.__wrapped__
    return run


def pick_format(
    given: Enum | None,
    output: Path | None,
    formats: type[Enum],
    *,
    needs_file: tuple[str, ...] = (),
) -> str:
    """The format of a command (``-f``, else by ``-o``'s suffix or the terminal), one of
    ``formats``; one in ``needs_file`` (a picture, a page) needs ``-o``."""
    from llmcli.render.output import choose_format

    name = choose_format(given.value if given is not None else None, output,
                         [f.value for f in formats])  # fmt: skip
    if name in needs_file and output is None:
        raise UsageError(f"-f {name} needs -o FILE.{name}")
    return name
