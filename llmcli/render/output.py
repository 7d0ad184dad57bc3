"""Where results go: stdout (a terminal or a pipe) or a file written atomically."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from llmcli.errors import OutputError, UsageError
from llmcli.fsutil import atomic_open


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def choose_format(explicit: str | None, output: Path | None, allowed: Iterable[str]) -> str:
    """``-f`` if given; else a table on a terminal and JSON Lines in a pipe or file."""
    allowed = list(allowed)
    if explicit is not None:
        if explicit not in allowed:
            raise UsageError(f"unknown format {explicit!r}; choose from {', '.join(allowed)}")
        return explicit
    if output is not None:
        suffix = output.suffix.lstrip(".").lower()
        if suffix in allowed and suffix != "table":
            return suffix
        return "jsonl"
    return "table" if stdout_is_tty() else "jsonl"


@contextlib.contextmanager
def open_output(path: Path | None, *, binary: bool = False) -> Iterator[IO[Any]]:
    """stdout, or ``path`` written atomically (nothing is left if the command fails)."""
    if path is None or str(path) == "-":
        if binary and stdout_is_tty():
            raise UsageError("this format is binary: write it to a file with -o FILE")
        stream: IO[Any] = sys.stdout.buffer if binary else sys.stdout
        try:
            yield stream
            stream.flush()
        except OSError as exc:
            # A full disk or a failing device behind stdout (a closed pipe ends the
            # process by SIGPIPE before this): one error line, not a traceback.
            if isinstance(exc, BrokenPipeError):
                raise
            raise OutputError(f"cannot write to stdout: {exc.strerror or exc}") from exc
        return
    try:
        folder = path.is_dir()
    except OSError as exc:  # a name too long for the file system, say
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    if folder:
        raise OutputError(f"cannot write {path}: it is a folder")
    if binary:
        with atomic_open(path, "wb") as fh:
            yield fh
    else:
        with atomic_open(path, "w", encoding="utf-8", newline="\n") as fh:
            yield fh


def _not_a_number(exc: ValueError) -> OutputError:
    return OutputError(f"cannot write JSON: {exc} (a NaN or infinity reached the output)")


def write_jsonl(fh: IO[str], rows: Iterable[dict[str, Any]]) -> int:
    """JSON Lines; NaN and infinity, which JSON does not have, are refused."""
    count = 0
    buf = io.StringIO()
    for row in rows:
        try:
            buf.write(json.dumps(row, ensure_ascii=False, allow_nan=False))
        except ValueError as exc:
            raise _not_a_number(exc) from exc
        buf.write("\n")
        count += 1
        if buf.tell() > 1 << 16:
            fh.write(buf.getvalue())
            buf = io.StringIO()
    fh.write(buf.getvalue())
    return count


def write_json(fh: IO[str], obj: Any) -> None:
    """One JSON document; NaN and infinity are refused before anything is written."""
    try:
        text = json.dumps(obj, ensure_ascii=False, indent=2, allow_nan=False)
    except ValueError as exc:
        raise _not_a_number(exc) from exc
    fh.write(text)
    fh.write("\n")


def tsv_cell(value: object) -> str:
    """A TSV field: tabs, line breaks and backslashes escaped so each row stays one line."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def write_tsv(fh: IO[str], header: list[str], rows: Iterable[Iterable[object]]) -> None:
    fh.write("\t".join(header) + "\n")
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join(tsv_cell(v) for v in row) + "\n")
        if buf.tell() > 1 << 16:
            fh.write(buf.getvalue())
            buf = io.StringIO()
    fh.write(buf.getvalue())


def console(file: IO[str] | None = None) -> Any:
    """A rich console for results (stdout unless ``file``)."""
    from rich.console import Console

    return Console(file=file or sys.stdout, highlight=False, soft_wrap=False)


def err_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)
