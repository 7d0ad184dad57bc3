"""One-hot vectors on a terminal (compact or a window around the 1), as JSON or arrays."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from llmcli.core.onehot import OneHot, dense, pair_stats
from llmcli.render.output import console, open_output, write_json, write_jsonl
from llmcli.render.tokens import visible

WINDOW = 6


def compact(row: OneHot) -> str:
    """``[0 … 0 1 0 … 0]`` with how many zeros stand on each side of the 1."""
    left, right = row.id, row.vocab_size - row.id - 1
    parts = ["["]
    if left:
        parts.append(f"0 ×{left:,} " if left > 2 else "0 " * left)
    parts.append("[bold yellow]1[/]")
    if right:
        parts.append(f" 0 ×{right:,}" if right > 2 else " 0" * right)
    parts.append("]")
    return "".join(parts)


def window(row: OneHot, width: int = WINDOW) -> str:
    """The entries around the 1, with their positions: ``…0 0 [1] 0 0…``."""
    lo, hi = max(0, row.id - width), min(row.vocab_size, row.id + width + 1)
    cells = ["[bold yellow]1[/]" if i == row.id else "[dim]0[/]" for i in range(lo, hi)]
    head = f"[dim]{lo}:[/] " + ("… " if lo > 0 else "")
    tail = (" …" if hi < row.vocab_size else "") + f" [dim]:{hi - 1}[/]"
    return head + " ".join(cells) + tail


def stats_line(rows: list[OneHot], vocab: int) -> str:
    st = pair_stats(rows, vocab)
    if st is None:
        return "Only one distinct token: give more text to compare one-hot vectors."
    same = math.isclose(st.min_distance, st.max_distance) and math.isclose(
        st.min_cosine, st.max_cosine
    )
    spread = (
        f"distance {st.min_distance:.4f} (√2 = {math.sqrt(2):.4f}), cosine {st.min_cosine:.4f}"
        if same
        else f"distance {st.min_distance:.4f}–{st.max_distance:.4f}, "
        f"cosine {st.min_cosine:.4f}–{st.max_cosine:.4f}"
    )
    return (
        f"Every pair of the {st.tokens} distinct tokens ({st.pairs} pairs), computed from the "
        f"vectors: {spread}. One-hot vectors are all equally far apart: they carry no "
        "notion of similarity (see llmpath embed)."
    )


def render_table(
    out: Any, rows: list[OneHot], *, label: str, vocab: int, show_dense: bool, added: str = ""
) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
    table.add_column("#", justify="right", style="dim")
    table.add_column("token")
    table.add_column("ID", justify="right", style="bold cyan")
    table.add_column("V", justify="right", style="dim")
    table.add_column("one-hot vector" + (" (window around the 1)" if show_dense else ""))
    for row in rows:
        table.add_row(
            str(row.index), escape(visible(row.token)), str(row.id), f"{row.vocab_size:,}",
            window(row) if show_dense else compact(row),
        )  # fmt: skip
    out.print(table)
    out.print(f"{len(rows)} vectors of length {vocab:,} ({label}), one 1 each.")
    if added:
        out.print(f"[dim]{escape(added)}[/]")
    out.print(stats_line(rows, vocab))


def emit(
    rows: list[OneHot], fmt: str, output: Path | None, *, label: str, vocab: int, dense: bool,
    added: str = "",
) -> None:  # fmt: skip
    if fmt in ("npy", "npz"):
        _write_array(rows, fmt, output, vocab)
        return
    with open_output(output) as fh:
        if fmt == "table":
            render_table(console(fh), rows, label=label, vocab=vocab, show_dense=dense,
                         added=added)  # fmt: skip
        elif fmt == "jsonl":
            write_jsonl(fh, (r.to_dict() for r in rows))
        else:
            st = pair_stats(rows, vocab)
            write_json(fh, {
                "model": label, "vocab_size": vocab,
                "vectors": [r.to_dict() for r in rows],
                "pairs": None if st is None else st.__dict__,
            })  # fmt: skip


def _write_array(rows: list[OneHot], fmt: str, output: Path | None, vocab: int) -> None:
    """Dense ``[token, vocab]`` uint8; npz adds ``ids`` and ``tokens`` alongside."""
    matrix = dense(rows, vocab)
    with open_output(output, binary=True) as fh:
        if fmt == "npy":
            np.save(fh, matrix)
        else:
            np.savez_compressed(
                fh,
                onehot=matrix,
                ids=np.array([r.id for r in rows], dtype=np.int64),
                tokens=np.array([r.token for r in rows], dtype=np.str_),
            )
