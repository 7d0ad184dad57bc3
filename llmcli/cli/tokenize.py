"""``llmpath tokenize``: text to tokens and IDs (and back with ``--decode``)."""

from __future__ import annotations

from typing import Annotated

import typer

from llmcli.cli.options import (
    Bos,
    Eos,
    InputFile,
    Models,
    Output,
    Quiet,
    Special,
    TokenizeFormat,
    TokenizeFormatOpt,
    pick_format,
)
from llmcli.core import inputs
from llmcli.core import tokenize as core
from llmcli.errors import UsageError
from llmcli.models.resolve import resolve
from llmcli.models.tokenizer import LoadedTokenizer
from llmcli.render import tokens as render
from llmcli.render.progress import RichReporter


def tokenize(
    text: Annotated[
        list[str] | None,
        typer.Argument(
            help="Text to tokenize ('-' or a pipe: stdin). With --decode: token IDs.",
            show_default=False,
        ),
    ] = None,
    file: InputFile = None,
    model: Models = None,
    fmt: TokenizeFormatOpt = None,
    output: Output = None,
    special: Special = True,
    bos: Bos = False,
    eos: Eos = False,
    decode: Annotated[
        bool,
        typer.Option(
            "--decode", "-d", help="Turn IDs (arguments, or stdin: IDs or records) into text."
        ),
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Split text into tokens and vocabulary IDs (GPT-2's BPE by default)."""
    names = model or ["gpt2"]
    reporter = RichReporter(quiet)
    fmt_name = fmt.value if fmt is not None else None
    if decode:
        if len(names) > 1:
            raise UsageError("--decode takes one model")
        if fmt_name not in (None, "table", "json"):
            raise UsageError("--decode writes text (or -f json)")
        tok = LoadedTokenizer.for_model(resolve(names[0], reporter=reporter))
        sequences = (
            [inputs.ids_from_words(text)]
            if text and text != ["-"]
            else inputs.read_id_input(inputs.text_source(None, file, what="IDs"))
        )
        render.emit_decoded((core.decode(tok, s.ids) for s in sequences), fmt_name, output)
        return
    source = inputs.text_source(" ".join(text) if text else None, file)
    fmt_name = pick_format(fmt, output, TokenizeFormat)
    toks = [LoadedTokenizer.for_model(resolve(name, reporter=reporter)) for name in names]
    wraps = [t.wrap(special=special, bos=bos, eos=eos) for t in toks]
    if fmt_name == "ids":
        if len(toks) > 1:
            raise UsageError("-f ids takes one model; use -f jsonl or tsv to compare")
        render.emit_id_lines(core.stream_id_batches(toks[0], source, wraps[0]), output)
    elif len(toks) == 1:
        tok = toks[0]
        records = core.stream_tokens(tok, source, wraps[0])
        render.emit_tokens(
            records, fmt_name, output, label=tok.label, vocab=tok.vocab_size, source=source,
            lossless=tok.byte_level or tok.byte_fallback, added=wraps[0].summary,
        )  # fmt: skip
    else:
        text_all = source.read()
        results = [
            (t.label, t.vocab_size, core.tokenize(t, text_all, w)) for t, w in zip(toks, wraps)
        ]
        render.emit_comparison(results, fmt_name, output, text_all)
