"""``llmpath onehot``: each token as a one-hot vector over the vocabulary."""

from __future__ import annotations

from typing import Annotated

import typer

from llmcli.cli.options import InputFile, Model, OneHotFormatOpt, Output, Quiet, Special
from llmcli.core import inputs
from llmcli.errors import UsageError
from llmcli.models.resolve import resolve
from llmcli.models.tokenizer import LoadedTokenizer
from llmcli.render.output import choose_format
from llmcli.render.progress import RichReporter

FORMATS = ["table", "jsonl", "json", "npy", "npz"]


def onehot(
    text: Annotated[
        list[str] | None,
        typer.Argument(
            help="Text to tokenize; without it, token records or IDs are read from stdin.",
            show_default=False,
        ),
    ] = None,
    file: InputFile = None,
    model: Model = "gpt2",
    fmt: OneHotFormatOpt = None,
    output: Output = None,
    special: Special = False,
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
    fmt_name = choose_format(fmt.value if fmt else None, output, FORMATS)
    tok = LoadedTokenizer.for_model(resolve(model, reporter=RichReporter(quiet)))
    if text:
        records = tokens.tokenize(tok, " ".join(text), special=special)
    else:
        source = inputs.text_source(None, file, what="TEXT (or token records on stdin)")
        records = core.records_from_input(tok, source, special=special)
    rows = core.onehots(records, tok.vocab_size)
    render.emit(rows, fmt_name, output, label=tok.label, vocab=tok.vocab_size, dense=dense)
