"""How long-running model work reports progress, without depending on a UI library.

The command line passes a reporter that draws rich progress bars on stderr;
library callers get the silent default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol


class Reporter(Protocol):
    def note(self, message: str) -> None:
        """A one-line notice (shown on stderr by the command line)."""

    def step(
        self, description: str, total: int | None = None, unit: str = "bytes"
    ) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        """A step of work; the yielded function advances it by n units (bytes or items)."""


class SilentReporter:
    def note(self, message: str) -> None:
        pass

    @contextlib.contextmanager
    def step(
        self, description: str, total: int | None = None, unit: str = "bytes"
    ) -> Iterator[Callable[[int], None]]:
        yield lambda n: None
