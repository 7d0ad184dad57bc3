"""The ``llmpath`` command line: thin commands over ``llmcli.core``.

``main()`` is the one error funnel: an ``LlmpathError`` becomes ``Error: ...`` on
one line and its exit code (``LLMPATH_DEBUG=1`` shows the traceback instead).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated

import typer

from llmcli import __version__
from llmcli.errors import EXIT_INTERRUPTED, EXIT_USAGE, LlmpathError

app = typer.Typer(
    name="llmpath",
    help="See how a large language model handles text: tokens, IDs, one-hot vectors, "
    "embeddings, attention and prompts, from real local models.",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmpath {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


from llmcli.cli import attention as _attention  # noqa: E402
from llmcli.cli import embed as _embed  # noqa: E402
from llmcli.cli import fewshot as _fewshot  # noqa: E402
from llmcli.cli import models as _models  # noqa: E402
from llmcli.cli import onehot as _onehot  # noqa: E402
from llmcli.cli import tokenize as _tokenize  # noqa: E402

app.command("tokenize")(_tokenize.tokenize)
app.command("onehot")(_onehot.onehot)
app.command("embed")(_embed.embed)
app.command("attention")(_attention.attention)
app.command("fewshot")(_fewshot.fewshot)
app.command("next")(_fewshot.next_token)
app.command("pull")(_models.pull)
app.command("models")(_models.models)


def _debug() -> bool:
    return os.environ.get("LLMPATH_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"Error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; exit codes: 0 ok, 1 error, 2 usage, 130 interrupted."""
    if hasattr(signal, "SIGPIPE"):
        # A closed pipe (| head) ends the process quietly, as for other Unix tools.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="llmpath", standalone_mode=False)
    except LlmpathError as exc:
        if _debug():
            raise
        _fail(str(exc), exc.exit_code)
    except typer.TyperException as exc:  # usage errors found while parsing
        if _debug():
            raise
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _fail(exc.format_message() + hint, getattr(exc, "exit_code", EXIT_USAGE))
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("\n")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
