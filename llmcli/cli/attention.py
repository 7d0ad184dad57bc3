"""``llmpath attention``: per-layer, per-head attention matrices."""

from __future__ import annotations

from typing import Annotated

import typer

from llmcli.cli.options import (
    AttentionFormatOpt,
    Bos,
    Device,
    DeviceMap,
    DeviceName,
    Dtype,
    DtypeName,
    Eos,
    IdsFlag,
    InputFile,
    Output,
    Quiet,
    Special,
    TrustRemoteCode,
    WeightsModel,
)
from llmcli.core import inputs
from llmcli.errors import UsageError
from llmcli.models.resolve import model_config, resolve
from llmcli.models.tokenizer import LoadedTokenizer
from llmcli.render.output import choose_format
from llmcli.render.progress import RichReporter

FORMATS = ["table", "jsonl", "json", "npy", "npz", "html", "png"]


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
        str,
        typer.Option(
            "--aggregate",
            "-a",
            help="none, mean or max over heads, or rollout (Abnar & Zuidema 2020) over layers.",
        ),
    ] = "none",
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
        str, typer.Option("--precision", help="npy/npz values: float32 or float16.")
    ] = "float32",
    device: Device = DeviceName.auto,
    dtype: Dtype = DtypeName.auto,
    device_map: DeviceMap = None,
    trust_remote_code: TrustRemoteCode = False,
    quiet: Quiet = False,
) -> None:
    """Show each layer's and head's attention: which earlier tokens each token mixes in."""
    from llmcli.core import attention as core
    from llmcli.models.loader import load_model, require_weights
    from llmcli.render import attention as render

    fmt_name = choose_format(fmt.value if fmt else None, output, FORMATS)
    if fmt_name in ("html", "png") and output is None:
        raise UsageError(f"-f {fmt_name} needs -o FILE.{fmt_name}")
    if aggregate not in core.AGGREGATES:
        raise UsageError(
            f"unknown aggregate {aggregate!r}; choose from {', '.join(core.AGGREGATES)}"
        )
    if precision not in ("float32", "float16"):
        raise UsageError("--precision is float32 or float16")
    reporter = RichReporter(quiet)
    resolved = resolve(model, reporter=reporter)
    tok = LoadedTokenizer.for_model(resolved)
    wrap = tok.wrap(special=special, bos=bos, eos=eos)
    token_ids = inputs.model_input(tok, text, file, ids=ids, wrap=wrap, default=core.SEED).ids
    require_weights(resolved)
    config = model_config(resolved)
    token_ids = core.prepare_ids(token_ids, config, resolved.label, truncate=truncate)
    run = core.plan(config, resolved.label, tok, token_ids, layers=layer, heads=head,
                    aggregate=aggregate)  # fmt: skip
    if fmt_name in ("html", "png"):
        from llmcli.render import attention_pictures as pictures

        pictures.check_size(run, fmt_name)  # before the weights load
    note = ""
    if (
        fmt_name == "table"
        and not top
        and layer is None
        and aggregate == "none"
        and run.n_layers > 1
    ):
        # A terminal shows one layer unless asked: all of them would be hundreds of grids.
        run.layers = run.layers[-1:]
        note = (f"showing layer {run.layers[0]} of 0-{run.n_layers - 1}; "
                "choose with --layer, or use -f html for all")  # fmt: skip
    loaded = load_model(resolved, device=device.value, dtype=dtype.value, device_map=device_map,
                        attention="eager", trust_remote_code=trust_remote_code)  # fmt: skip
    render.emit(run, core.maps(loaded, run), fmt_name, output, precision=precision, top=top,
                shown_note=note)  # fmt: skip
