"""``llmpath embed``: how near words are, as one-hot vectors and as learned embeddings."""

from __future__ import annotations

from typing import Annotated

import typer

from llmcli.cli.options import (
    EmbedFormat,
    EmbedFormatOpt,
    InputFile,
    Metric,
    MetricName,
    Output,
    Quiet,
    Running,
    WeightsModel,
    model_options,
    pick_format,
)
from llmcli.core import inputs
from llmcli.errors import UsageError
from llmcli.models.resolve import resolve
from llmcli.models.tokenizer import LoadedTokenizer
from llmcli.render.progress import RichReporter


@model_options
def embed(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            help="Words or phrases to compare (default: cat kitten tractor).", show_default=False
        ),
    ] = None,
    file: InputFile = None,
    model: WeightsModel = "minilm",
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            "-k",
            help="onehot, input, contextual (repeat or comma-separate). Default: all three.",
            show_default=False,
        ),
    ] = None,
    metric: Metric = MetricName.cosine,
    pool: Annotated[
        str,
        typer.Option(
            "--pool",
            help="contextual: auto (an encoder's sentence-transformers mean, "
            "a decoder's mean over the text's own tokens), mean, or last.",
        ),
    ] = "auto",  # fmt: skip
    neighbors: Annotated[
        int,
        typer.Option(
            "--neighbors",
            "-n",
            help="Also list the K nearest vocabulary tokens.",
            min=0,
            metavar="K",
        ),
    ] = 0,
    fmt: EmbedFormatOpt = None,
    output: Output = None,
    quiet: Quiet = False,
    *,
    running: Running,
) -> None:
    """Compare words as one-hot vectors and as the model's learned embeddings."""
    from llmcli.core import embed as core
    from llmcli.render import embed as render

    given = list(words or [])
    if given and file is not None:
        raise UsageError("give WORDS or --file, not both")
    if given == ["-"] or file is not None:
        source = inputs.text_source(None, file, what="WORDS")
        given = [line for line in source.lines() if line.strip()] or [""]
    elif not given and not inputs.stdin_is_tty():
        # Words piped in, one per line; nothing piped: the default words.
        piped = inputs.read_stdin_or_empty()
        given = [line for line in piped.split("\n") if line.strip()]
    kinds = list(dict.fromkeys(
        k.strip() for item in (kind or ["onehot,input,contextual"]) for k in item.split(",")
    ))  # fmt: skip
    for k in kinds:
        core.check_choice(k, core.KINDS, "kind")
    metric_name = core.check_choice(metric.value, core.METRICS, "metric")
    core.check_choice(pool, core.POOLS, "pool")
    fmt_name = pick_format(fmt, output, EmbedFormat, needs_file=("png",))
    if fmt_name == "png" and output is None:
        raise UsageError("-f png needs -o FILE.png")
    reporter = RichReporter(quiet)
    word_list = core.check_words(given or list(core.DEFAULT_WORDS))
    resolved = resolve(model, reporter=reporter)
    tok = LoadedTokenizer.for_model(resolved)
    loaded = None
    if any(k != "onehot" for k in kinds) or neighbors:
        loaded = running.load(resolved)
    if neighbors and fmt_name not in ("table", "json"):
        reporter.note(f"--neighbors shows in the table and in -f json; -f {fmt_name} leaves it out")
    result = core.embed(
        word_list, tok, loaded, kinds=kinds, metric=metric_name, k_neighbors=neighbors, pool=pool
    )
    render.emit(result, fmt_name, output)
