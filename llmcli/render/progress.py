"""Progress bars and notices on stderr, for long model work."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any

from llmcli.render.output import err_console


class RichReporter:
    """Draws each step as a rich progress bar (or spinner) on stderr."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    @cached_property
    def console(self) -> Any:
        """rich's console on stderr, made (and rich.console imported) when first used."""
        return err_console()

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[bold cyan]llmpath:[/] {message}", markup=True)

    @contextlib.contextmanager
    def step(
        self, description: str, total: int | None = None, unit: str = "bytes"
    ) -> Iterator[Callable[[int], None]]:
        if self.quiet or not self.console.is_terminal:
            yield lambda n: None
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if total:
            columns += [BarColumn(), DownloadColumn() if unit == "bytes" else MofNCompleteColumn()]
        columns.append(TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(description, total=total)
            yield lambda n: progress.advance(task, n)
            if total:
                progress.update(task, completed=total)
