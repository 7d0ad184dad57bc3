"""The registry and the store, as a table or JSON."""

from __future__ import annotations

from pathlib import Path

from llmcli.core.store_info import ModelRow
from llmcli.models import store
from llmcli.models.pull import PullResult
from llmcli.models.registry import ModelSpec
from llmcli.render.output import console, open_output, write_json, write_jsonl


def megabytes(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


# What ``llmpath models --verify`` found, by model name: [] when the folder is as pulled,
# else its problems ("FILE: what"). Models not installed are absent.
Checks = dict[str, list[str]]


def _record(row: ModelRow, checks: Checks | None) -> dict[str, object]:
    record = row.to_dict()
    if checks is not None:
        problems = checks.get(row.name)
        record["integrity"] = None if problems is None else "changed" if problems else "ok"
        record["changes"] = problems
    return record


def emit(rows: list[ModelRow], fmt: str, output: Path | None, checks: Checks | None = None) -> None:
    """The rows as a table, JSON Lines or JSON; with ``checks``, an integrity column
    (``integrity``: "ok", "changed" or null, and ``changes``: the problems)."""
    with open_output(output) as fh:
        if fmt == "jsonl":
            write_jsonl(fh, (_record(r, checks) for r in rows))
        elif fmt == "json":
            write_json(fh, [_record(r, checks) for r in rows])
        else:
            _table(console(fh), rows, checks)


def _integrity(problems: list[str] | None) -> str:
    if problems is None:
        return "[dim]—[/]"
    if not problems:
        return "[green]ok[/]"
    from rich.markup import escape

    return f"[red]changed[/] ({escape(store.describe(problems))})"


def changed_summary(names: list[str], checks: Checks) -> str:
    """The error line of ``models --verify`` when stored models were changed."""
    if len(names) == 1:
        return str(store.changed_error(names[0], checks[names[0]]))
    return (
        f"the stored {', '.join(names)} were changed since they were pulled; "
        f"run 'llmpath pull {' '.join(names)} --force' to pull them again"
    )


def _table(out: object, rows: list[ModelRow], checks: Checks | None = None) -> None:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
    for name, kwargs in (
        ("name", {"style": "bold", "no_wrap": True}), ("kind", {"no_wrap": True}),
        ("layers x heads", {"no_wrap": True}), ("vocab", {"justify": "right", "no_wrap": True}),
        ("stored", {"justify": "right", "no_wrap": True}), ("licence", {}),
        ("installed", {"justify": "center", "no_wrap": True}),
        ("path", {"style": "dim", "overflow": "fold", "min_width": 12}),
    ):  # fmt: skip
        table.add_column(name, **kwargs)
    if checks is not None:
        table.add_column("integrity", overflow="fold")
    for r in rows:
        cells = [
            r.name, r.kind, r.shape or "—", f"{r.vocab_size:,}",
            megabytes(r.stored_size), r.licence,
            "[green]yes[/]" if r.installed else "[dim]no[/]", _short(r.path),
        ]  # fmt: skip
        if checks is not None:
            cells.append(_integrity(checks.get(r.name)))
        table.add_row(*cells)
    out.print(table)  # type: ignore[attr-defined]
    out.print(f"[dim]store: {store.home()} (set LLMPATH_HOME to move it)[/]")  # type: ignore[attr-defined]


def _short(path: str) -> str:
    """A store path relative to the store's root, which the line under the table names."""
    try:
        return str(Path(path).relative_to(store.home()))
    except ValueError:
        return path


def terms_notice(spec: ModelSpec) -> str:
    return (
        f"{spec.name} is provided under and subject to the {spec.licence} "
        f"({spec.terms_url}); by pulling it you accept them. A copy is stored with the model."
    )


def pull_line(result: PullResult) -> str:
    verb = "pulled" if result.pulled else "already in the store:"
    return f"{verb} {result.name} ({megabytes(result.size)}) -> {result.path}"
