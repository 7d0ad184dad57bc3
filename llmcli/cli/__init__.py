"""The ``llmpath`` command line: thin commands over ``llmcli.core``.

``main()`` is the one error funnel: an ``LlmpathError`` becomes ``Error: ...`` on
one line and its exit code (``LLMPATH_DEBUG=1`` shows the traceback instead).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from llmcli import __version__
from llmcli.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, LlmpathError, OutputError

# Each command: its name, the module that holds it, the function's name there.
COMMANDS = (
    ("tokenize", "tokenize", "tokenize"),
    ("onehot", "onehot", "onehot"),
    ("embed", "embed", "embed"),
    ("attention", "attention", "attention"),
    ("fewshot", "fewshot", "fewshot"),
    ("next", "fewshot", "next_token"),
    ("walk", "walk", "walk"),
    ("pull", "models", "pull"),
    ("models", "models", "models"),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmpath {__version__}")
        raise typer.Exit()


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


def build_app(names: Sequence[str] | None = None, *, rich_help: bool = True) -> typer.Typer:
    """The command line with the commands ``names`` (default: all of them).

    Only those commands' modules are imported. ``rich_help``: help drawn by rich
    (boxes, colours); without it, click's plain text.
    """
    import importlib

    app = typer.Typer(
        name="llmpath",
        help="See how a large language model handles text: tokens, IDs, one-hot vectors, "
        "embeddings, attention and prompts, from real local models.",
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        rich_markup_mode="rich" if rich_help else None,
    )
    app.callback(invoke_without_command=True)(_root)
    for name, module, function in COMMANDS:
        if names is None or name in names:
            command = getattr(importlib.import_module(f"llmcli.cli.{module}"), function)
            app.command(name)(command)
    return app


def __getattr__(name: str) -> typer.Typer:
    """``llmcli.cli.app``: the whole command line, built on first use."""
    if name == "app":
        app = build_app()
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def _wanted(argv: Sequence[str]) -> list[str] | None:
    """The one command ``argv`` runs, where it names one; else None (all of them)."""
    known = {name for name, _, _ in COMMANDS}
    for arg in argv:
        if arg in known:
            return [arg]
        if not arg.startswith("-"):
            return None  # an unknown command: its error lists them all
    return None


def _run(argv: list[str] | None) -> None:
    args = sys.argv[1:] if argv is None else argv
    # Help to a pipe or a file is click's plain text: quicker, and easier to grep.
    command = typer.main.get_command(build_app(_wanted(args), rich_help=sys.stdout.isatty()))
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
