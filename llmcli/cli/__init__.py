"""The ``llmpath`` command line: thin commands over ``llmcli.core``.

``main()`` is the one error funnel: an ``LlmpathError`` becomes ``Error: ...`` on
one line and its exit code (``LLMPATH_DEBUG=1`` shows the traceback instead).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Annotated

import typer

from llmcli import __version__
from llmcli.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, LlmpathError, OutputError

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
from llmcli.cli import walk as _walk  # noqa: E402

app.command("tokenize")(_tokenize.tokenize)
app.command("onehot")(_onehot.onehot)
app.command("embed")(_embed.embed)
app.command("attention")(_attention.attention)
app.command("fewshot")(_fewshot.fewshot)
app.command("next")(_fewshot.next_token)
app.command("walk")(_walk.walk)
app.command("pull")(_models.pull)
app.command("models")(_models.models)


def _debug() -> bool:
    return os.environ.get("LLMPATH_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"Error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    sys.exit(code)


def _flush_stdout() -> None:
    """Write out what stdout still buffers: a full disk shows here, not at exit."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        raise OutputError(f"cannot write to stdout: {exc.strerror or exc}") from exc


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (``kill``, ``timeout``) unwinds like Ctrl-C: half-written files are removed."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; exit codes: 0 ok, 1 error, 2 usage, 130 interrupted,
    143 terminated (SIGTERM)."""
    if hasattr(signal, "SIGPIPE"):
        # A closed pipe (| head) ends the process quietly, as for other Unix tools.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    previous = None
    if hasattr(signal, "SIGTERM"):
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> None:
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="llmpath", standalone_mode=False)
        _flush_stdout()
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
    except OSError as exc:  # the system refused something no command turned into an error
        if _debug():
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", EXIT_ERROR)
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("\n")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
