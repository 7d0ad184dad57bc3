"""``llmpath walk``: one text through the whole transformer, every step by hand."""

from __future__ import annotations

from typing import Annotated

import typer

from llmcli.cli.options import (
    Bos,
    Eos,
    IdsFlag,
    InputFile,
    Output,
    Quiet,
    Running,
    Special,
    WalkFormat,
    WalkFormatOpt,
    WalkStep,
    WeightsModel,
    model_options,
    pick_format,
)
from llmcli.models.resolve import resolve
from llmcli.models.tokenizer import LoadedTokenizer
from llmcli.render.progress import RichReporter

SEED = "It's a blue sundress."


@model_options
def walk(
    text: Annotated[
        list[str] | None,
        typer.Argument(
            help=f"Text (default: {SEED!r}); '-' or a pipe: stdin, text or token records.",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    file: InputFile = None,
    ids: IdsFlag = False,
    model: WeightsModel = "smollm2",
    layer: Annotated[
        int, typer.Option("--layer", "-l", help="The layer opened step by step (-1: the last).")
    ] = 0,
    head: Annotated[int, typer.Option("--head", help="The head followed in that layer.")] = 0,
    token: Annotated[
        int | None,
        typer.Option(
            "--token",
            help="The token followed (default: the last that is not a special token).",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    step: Annotated[
        list[WalkStep] | None,
        typer.Option(
            "--step",
            "-s",
            help="Show only this step (repeatable).",
            show_default=False,
            case_sensitive=False,
        ),
    ] = None,  # fmt: skip
    dims: Annotated[
        int, typer.Option("--dims", help="How many entries of each vector to show.", min=1)
    ] = 6,
    top: Annotated[
        int, typer.Option("--top", help="Next tokens shown, and kept by the logit lens.", min=1)
    ] = 5,
    special: Special = True,
    bos: Bos = False,
    eos: Eos = False,
    fmt: WalkFormatOpt = None,
    output: Output = None,
    quiet: Quiet = False,
    *,
    running: Running,
) -> None:
    """Walk a text through a transformer: every step computed by hand and checked."""
    from llmcli.core import inputs
    from llmcli.core.walk import plan_walk, run_walk
    from llmcli.render import walk as render

    fmt_name = pick_format(fmt, output, WalkFormat, needs_file=("npz", "html"))
    reporter = RichReporter(quiet)
    resolved = resolve(model, reporter=reporter)
    tok = LoadedTokenizer.for_model(resolved)
    wrap = tok.wrap(special=special, bos=bos, eos=eos)
    token_ids, from_text = inputs.model_input(tok, text, file, ids=ids, wrap=wrap, default=SEED)
    steps = [getattr(s, "value", s) for s in step] if step else None
    plan = plan_walk(resolved, token_ids, layer=layer, head=head, token=token, steps=steps,
                     special_ids=tok.special_ids)  # fmt: skip
    if fmt_name == "html":
        from llmcli.render.walk_page import check_size

        check_size(plan)  # before the weights load
    loaded = running.load(resolved, attention="eager")
    lens = "all" if fmt_name in ("npz", "html") else "token"
    added = wrap.summary if from_text else ""
    result = run_walk(loaded, tok, plan, dims=dims, top=top, lens=lens, added=added)
    render.emit(result, tok, fmt_name, output)
    render.report_failures(result)
