"""A walk as a terminal report, JSON Lines (one record per step), JSON, npz or a page."""

from __future__ import annotations

import math
from pathlib import Path
from typing import IO, Any

import numpy as np

from llmcli.core.walk.records import Check, Matrix, Rows, Step, Vector, Walk
from llmcli.errors import LlmpathError
from llmcli.models.tokenizer import LoadedTokenizer
from llmcli.render.output import console, open_output, write_json, write_jsonl
from llmcli.render.tokens import visible

# Backgrounds for a weight from 0 to 1 (as the attention heatmaps), and for -1..1.
SHADES = ["#1c1c1c", "#26364a", "#2c4f73", "#2f6a9c", "#3a86c4", "#5aa2dc", "#86bfe8", "#b8dcf4"]
NEGATIVE = ["#b03a2e", "#c0665b", "#d09a92", "#3a3a3a"]
NUMBERED = {"tokens": 1, "embed": 2, "position": 3, "norm": 4, "head": 5, "heads": 6,
            "mlp": 7, "layers": 8, "output": 9}  # fmt: skip


def finite(obj: Any) -> Any:
    """The same structure with NaN and infinities as None (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def step_record(walk: Walk, step: Step) -> dict[str, Any]:
    return finite({"model": walk.model, "layer": walk.layer, "head": walk.head,
                   "token": walk.token, **step.to_dict()})  # fmt: skip


def emit(walk: Walk, tok: LoadedTokenizer, fmt: str, output: Path | None) -> None:
    if fmt == "npz":
        with open_output(output, binary=True) as fh:
            np.savez(fh, **walk.arrays)  # type: ignore[arg-type]
        return
    if fmt == "html":
        from llmcli.render.walk_page import html_page

        page = html_page(walk, tok.describe)
        with open_output(output) as fh:
            fh.write(page)
        return
    with open_output(output) as fh:
        if fmt == "jsonl":
            write_jsonl(fh, (step_record(walk, s) for s in walk.steps))
        elif fmt == "json":
            write_json(fh, finite({**walk.header(), "ok": walk.ok,
                                   "steps": [s.to_dict() for s in walk.steps]}))  # fmt: skip
        else:
            render_table(fh, walk)


def report_failures(walk: Walk) -> None:
    """A failed check ends the command with one error line (the report is already out)."""
    failed = walk.failures()
    if not failed:
        return
    step, check = failed[0]
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    raise LlmpathError(
        f"walk check failed in step {step.name}: {check.what} differs from {check.against} "
        f"by {_delta(check)}, above {check.tolerance:g} x {check.scale:.3g}{more}"
    )


# --- the terminal report ----------------------------------------------------------------


def _delta(c: Check) -> str:
    return "inf or NaN" if not math.isfinite(c.max_abs_diff) else f"{c.max_abs_diff:.1e}"


def _num(x: float | None) -> str:
    if x is None:
        return "-inf"
    if x == 0:
        return "0"
    a = abs(x)
    return f"{x:.4f}" if 1e-3 <= a < 1e4 else f"{x:.2e}"


def _check_line(c: Check) -> str:
    from rich.markup import escape

    mark = "[green]✓[/]" if c.ok else "[bold red]✗[/]"
    tail = "" if c.ok else f" [red](allowed {c.tolerance:g} x {c.scale:.3g})[/]"
    relative = ""
    if c.scale > 1 and math.isfinite(c.max_abs_diff) and c.max_abs_diff > 0:
        relative = f" [dim](relative {c.max_abs_diff / c.scale:.1e})[/]"
    return (f"  {mark} {escape(c.what)} [dim]vs[/] {escape(c.against)}: "
            f"max |Δ| = {_delta(c)}{relative}{tail}")  # fmt: skip


def _vector_line(v: Vector, width: int) -> str:
    from rich.markup import escape

    values = " ".join(_short(x) for x in v.values)
    more = " …" if len(v.values) < v.size else ""
    norm = f"  [dim]|v| {v.norm:.4g}[/]" if v.norm is not None else ""
    return f"  {escape(v.label):<{width}} [{values}{more}]{norm}"


def _short(x: float) -> str:
    """A vector entry in 7 characters: +0.1234, -12.345, +1.2e+05."""
    a = abs(x)
    if a == 0:
        return "      0"
    if a < 1e-3 or a >= 1e4:
        return f"{x:+.0e}".rjust(7)
    return f"{x:+.4f}"[:7].rjust(7)


def _shade(value: float | None, kind: str) -> str:
    if value is None:
        return "grey23"
    if kind == "similarity" and value < 0:
        return NEGATIVE[min(len(NEGATIVE) - 1, int((1 + value) * len(NEGATIVE)))]
    v = max(0.0, min(1.0, value))
    return SHADES[min(len(SHADES) - 1, int(v * len(SHADES)))]


def _matrix_table(m: Matrix) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, padding=(0, 1), header_style="dim", pad_edge=True)
    table.add_column("", no_wrap=True, max_width=12)
    for c in m.cols:
        table.add_column(visible(c)[:6], justify="right", no_wrap=True)
    for label, row in zip(m.rows, m.values):
        cells = []
        for value in row:
            if m.kind == "scores":
                cells.append(Text(_num(value), style="dim" if value is None else ""))
            else:
                ink = "black" if value is not None and value >= 0.6 else "white"
                shown = "" if value is None else f"{value:.2f}"
                cells.append(Text(shown, style=f"{ink} on {_shade(value, m.kind)}"))
        table.add_row(visible(label)[:12], *cells)
    return table


def _rows_table(r: Rows) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, padding=(0, 1), header_style="dim", pad_edge=True)
    for name in r.columns:
        table.add_column(name, no_wrap=True)
    shown = [name in TOKEN_COLUMNS for name in r.columns]
    for row in r.rows:
        table.add_row(*(escape(visible(v)) if show and isinstance(v, str) else _cell(v)
                        for v, show in zip(row, shown)))  # fmt: skip
    return table


TOKEN_COLUMNS = {"token", "text", "lens top-1"}


def _cell(value: Any) -> str:
    from rich.markup import escape

    if isinstance(value, float):
        return _num(value)
    if isinstance(value, list):
        return "[" + " ".join(_num(x) if isinstance(x, float) else str(x) for x in value) + "]"
    return escape(str(value))


def _layers_checks(step: Step) -> list[str]:
    """The per-layer checks of the layers step as one line (the table has each)."""
    per_layer = [c for c in step.checks if c.what.startswith("layer ")]
    rest = [c for c in step.checks if not c.what.startswith("layer ")]
    lines = []
    if per_layer:
        worst = max(per_layer, key=lambda c: c.max_abs_diff)
        bad = [c for c in per_layer if not c.ok]
        mark = "[green]✓[/]" if not bad else "[bold red]✗[/]"
        lines.append(f"  {mark} each of the {len(per_layer)} layers by hand equals the model's "
                     f"output of that layer: largest max |Δ| = {_delta(worst)} "
                     f"({worst.what.split(',')[0]})")  # fmt: skip
        lines += [_check_line(c) for c in bad]
    return lines + [_check_line(c) for c in rest]


def render_table(fh: IO[str], walk: Walk) -> None:
    from rich.markup import escape
    from rich.rule import Rule

    out = console(fh)
    head = (f"[bold]{escape(walk.model)}[/]: {walk.architecture} {walk.kind}, "
            f"{walk.n_layers} layers x {walk.n_heads} heads, {walk.dtype} on {walk.device}; "
            f"following token {walk.token} ({escape(visible(walk.tokens[walk.token].text))!r}), "
            f"layer {walk.layer}, head {walk.head}")  # fmt: skip
    out.print(head)
    for note in walk.notes:
        out.print(f"[yellow]{escape(note)}[/]")
    for step in walk.steps:
        out.print()
        out.print(Rule(f"[bold]{NUMBERED[step.name]}. {escape(step.title)}[/]", align="left",
                       style="grey50"))  # fmt: skip
        for line in step.explain:
            out.print(f"  {escape(line)}")
        if step.facts:
            facts = " · ".join(f"{k} {_cell(v)}" for k, v in step.facts.items() if v is not None)
            out.print(f"  [dim]{facts}[/]")
        if step.shapes:
            shapes = " · ".join(f"{k} {list(v)}" for k, v in step.shapes.items())
            out.print(f"  [dim]shapes: {escape(shapes)}[/]")
        for m in step.matmuls:
            times = f" x {m.times}" if m.times > 1 else ""
            out.print(f"  [cyan]{escape(m.what)}[/]: {list(m.left)} @ {list(m.right)}{times}"
                      f" = {m.flops:,} FLOPs")  # fmt: skip
        width = max((len(v.label) for v in step.vectors), default=0)
        for v in step.vectors:
            out.print(_vector_line(v, width))
        for matrix in step.matrices:
            out.print(f"  [bold]{escape(matrix.title)}[/]")
            out.print(_matrix_table(matrix))
        for table in step.tables:
            out.print(f"  [bold]{escape(table.title)}[/]")
            out.print(_rows_table(table))
        lines = _layers_checks(step) if step.name == "layers" else [
            _check_line(c) for c in step.checks]  # fmt: skip
        for line in lines:
            out.print(line)
    out.print()
    total = sum(len(s.checks) for s in walk.steps)
    failed = len(walk.failures())
    if failed:
        out.print(f"[bold red]{failed} of {total} checks failed[/]")
    else:
        out.print(f"[green]all {total} checks pass[/]: every number above was computed by hand "
                  "from the weights and equals the model's own")  # fmt: skip
