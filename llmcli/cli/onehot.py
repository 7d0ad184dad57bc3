"""``llmpath onehot``: each token as a one-hot vector over the vocabulary."""

from __future__ import annotations

from typing import Annotated

import typer

from llmcli.cli.options import (
    Bos,
    Eos,
    IdsFlag,
    InputFile,
    Model,
    OneHotFormat,
    OneHotFormatOpt,
    Output,
    Quiet,
    Special,
    pick_format,
)
from llmcli.core import inputs
from llmcli.errors import UsageError
from llmcli.models.resolve import resolve
from llmcli.models.tokenizer import LoadedTokenizer
from llmcli.render.progress import RichReporter


def onehot(
    text: Annotated[
        list[str] | None,
        typer.Argument(
            help="Text to tokenize, always read as text; without it, stdin: text or token "
            "records (IDs with --ids).",
            show_default=False,
        ),
    ] = None,
    file: InputFile = None,
    ids: IdsFlag = False,
    model: Model = "gpt2",
    fmt: OneHotFormatOpt = None,
    output: Output = None,
    special: Special = True,
    bos: Bos = False,
    eos: Eos = False,
    dense: Annotated[
        bool, typer.Option("--dense", help="Show a window of the vector around its 1.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """One-hot vectors of tokens: a single 1 at the token's ID, zeros elsewhere."""
    # numpy loads only when this command runs, so other commands start faster.
    from llmcli.core import onehot as core
    from llmcli.core import tokenize as tokens
    from llmcli.render import onehot as render

    if text and file is not None:
        raise UsageError("give TEXT or --file, not both")
    if text and ids:
        raise UsageError("--ids reads IDs from stdin or --file; a TEXT argument is text")
    fmt_name = pick_format(fmt, output, OneHotFormat)
    tok = LoadedTokenizer.for_model(resolve(model, reporter=RichReporter(quiet)))
    wrap = tok.wrap(special=special, bos=bos, eos=eos)
    if text:
        records = tokens.tokenize(tok, " ".join(text), wrap)
    else:
        what = "IDs" if ids else "TEXT (or token records on stdin)"
        source = inputs.text_source(None, file, what=what)
        records = core.records_from_input(tok, source, wrap, ids=ids)
    rows = core.onehots(records, tok.vocab_size)
    from_text = bool(records) and not records[0].decoded  # records and IDs come as they are
    render.emit(rows, fmt_name, output, label=tok.label, vocab=tok.vocab_size, dense=dense,
                added=wrap.summary if from_text else "")  # fmt: skip
