"""``llmpath attention``: per-layer, per-head attention matrices."""

from __future__ import annotations

from typing import Annotated

import typer

from llmcli.cli.options import (
    Aggregate,
    AttentionFormat,
    AttentionFormatOpt,
    Bos,
    Eos,
    IdsFlag,
    InputFile,
    Output,
    Precision,
    Quiet,
    Running,
    Special,
    WeightsModel,
    model_options,
    pick_format,
)
from llmcli.core import inputs
from llmcli.models.resolve import model_config, resolve
from llmcli.models.tokenizer import LoadedTokenizer
from llmcli.render.progress import RichReporter


@model_options
def attention(
    text: Annotated[
        list[str] | None,
        typer.Argument(
            help="Text (default: \"It's a blue sundress.\"), always read as text; '-' or a "
            "pipe: stdin, text or token records (IDs with --ids).",
            show_default=False,
        ),
    ] = None,
    file: InputFile = None,
    ids: IdsFlag = False,
    model: WeightsModel = "smollm2",
    layer: Annotated[
        str | None,
        typer.Option(
            "--layer",
            "-l",
            help="Layers: 0,3 or 2-5 or -1 (the last). Default: all.",
            show_default=False,
        ),
    ] = None,
    head: Annotated[
        str | None,
        typer.Option("--head", help="Heads, as for --layer. Default: all.", show_default=False),
    ] = None,
    aggregate: Annotated[
        Aggregate,
        typer.Option(
            "--aggregate",
            "-a",
            help="none, mean or max over heads, or rollout (Abnar & Zuidema 2020) over layers.",
            case_sensitive=False,
        ),
    ] = Aggregate.none,
    top: Annotated[
        int,
        typer.Option(
            "--top", help="List the K tokens each token attends to most.", min=0, metavar="K"
        ),
    ] = 0,
    special: Special = True,
    bos: Bos = False,
    eos: Eos = False,
    truncate: Annotated[
        bool, typer.Option("--truncate", help="Keep the tokens that fit the model's context.")
    ] = False,
    fmt: AttentionFormatOpt = None,
    output: Output = None,
    precision: Annotated[
        Precision,
        typer.Option("--precision", help="npy/npz values.", case_sensitive=False),
    ] = Precision.float32,
    quiet: Quiet = False,
    *,
    running: Running,
) -> None:
    """Show each layer's and head's attention: which earlier tokens each token mixes in."""
    from llmcli.core import attention as core
    from llmcli.models.loader import require_weights
    from llmcli.render import attention as render

    fmt_name = pick_format(fmt, output, AttentionFormat, needs_file=("html", "png"))
    reporter = RichReporter(quiet)
    resolved = resolve(model, reporter=reporter)
    tok = LoadedTokenizer.for_model(resolved)
    wrap = tok.wrap(special=special, bos=bos, eos=eos)
    require_weights(resolved)
    config = model_config(resolved)
    keep = core.context_size(config) if truncate else None
    token_ids = inputs.model_input(tok, text, file, ids=ids, wrap=wrap, default=core.SEED,
                                   keep=keep).ids  # fmt: skip
    token_ids = core.prepare_ids(token_ids, config, resolved.label, truncate=truncate)
    run = core.plan(config, resolved.label, tok, token_ids, layers=layer, heads=head,
                    aggregate=aggregate.value)  # fmt: skip
    core.check_memory(run)  # before the weights load
    if fmt_name in ("html", "png"):
        render.check_size(run, fmt_name)
    note = ""
    if (
        fmt_name == "table"
        and not top
        and layer is None
        and aggregate is Aggregate.none
        and run.n_layers > 1
    ):
        # A terminal shows one layer unless asked: all of them would be hundreds of grids.
        run.layers = run.layers[-1:]
        note = (f"showing layer {run.layers[0]} of 0-{run.n_layers - 1}; "
                "choose with --layer, or use -f html for all")  # fmt: skip
    loaded = running.load(resolved, attention="eager")
    render.emit(run, core.maps(loaded, run), fmt_name, output, precision=precision.value, top=top,
                shown_note=note)  # fmt: skip
