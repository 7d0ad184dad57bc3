"""Attention maps as terminal heatmaps, JSON Lines, JSON, and ``[layer, head, query, key]``."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from llmcli.core.attention import AttentionMap, AttentionRun, top_k
from llmcli.errors import UsageError
from llmcli.render.attention_words import kind_line, rollout_layers
from llmcli.render.output import console, open_output, write_json
from llmcli.render.tokens import visible

# A light-to-dark scale of backgrounds: weight 0 .. 1.
SHADES = ["#1c1c1c", "#26364a", "#2c4f73", "#2f6a9c", "#3a86c4", "#5aa2dc", "#86bfe8", "#b8dcf4"]
LABEL_WIDTH = 14


def _label(run: AttentionRun, i: int) -> str:
    text = visible(run.tokens[i].text) or run.tokens[i].token
    return text if len(text) <= 10 else text[:9] + "…"


def _grid(run: AttentionRun, amap: AttentionMap) -> Any:
    from rich.table import Table
    from rich.text import Text

    t = run.n_tokens
    title = (
        f"layer {amap.layer} · head {amap.head}"
        if amap.layer != "rollout"
        else f"attention rollout of {rollout_layers(run)}"
    )
    table = Table(title=title, box=None, pad_edge=False, padding=(0, 0), show_header=True,
                  title_justify="left", header_style="dim")  # fmt: skip
    table.add_column("query ↓ key →", no_wrap=True, width=LABEL_WIDTH)
    for j in range(t):
        table.add_column(str(j % 100), justify="center", width=3, no_wrap=True)
    for i in range(t):
        cells = []
        for j in range(t):
            w = float(amap.matrix[i, j])
            shade = SHADES[min(len(SHADES) - 1, int(w * len(SHADES)))]
            # The weight in percent (blank where it is 0: a decoder's masked future).
            pct = round(w * 100)
            shown = "" if w == 0 else ("·" if pct == 0 else str(pct))
            ink = "black" if w >= 0.6 else "white"
            cells.append(Text(f"{shown:>3}", style=f"{ink} on {shade}"))
        label = f"{i:>2} {_label(run, i)}"
        table.add_row(label[:LABEL_WIDTH], *cells)
    return table


def _grid_width(run: AttentionRun) -> int:
    return LABEL_WIDTH + 3 * run.n_tokens + 3


def render_heatmaps(
    out: Any, run: AttentionRun, maps: Iterable[AttentionMap], shown_note: str
) -> None:
    from rich.columns import Columns

    maps = list(maps)  # computed before anything is printed: an error leaves no half table
    width = out.width or shutil.get_terminal_size().columns
    if _grid_width(run) > width:
        keep = max(1, (width - LABEL_WIDTH - 3) // 3)
        raise UsageError(
            f"{run.n_tokens} tokens do not fit a terminal {width} columns wide (about {keep} do): "
            "use -f html, png, npz or jsonl, or a shorter text"
        )
    out.print(kind_line(run))
    if shown_note:
        out.print(f"[yellow]{shown_note}[/]")
    out.print(Columns([_grid(run, m) for m in maps], padding=(1, 3)))
    legend = "".join(f"[on {s}]  [/]" for s in SHADES)
    rows = (
        "its weights are the largest over the heads"
        if run.aggregate == "max"
        else "its weights sum to 100"
    )
    out.print(
        f"weight 0 {legend} 1, in percent (· under 0.5%, blank: 0); "
        f"each row is a query token, {rows}"
    )


def render_top(out: Any, run: AttentionRun, maps: Iterable[AttentionMap], k: int) -> None:
    from rich.markup import escape

    maps = list(maps)
    out.print(kind_line(run))
    for amap in maps:
        out.print(f"[bold]layer {amap.layer} · head {amap.head}[/]")
        for i, row in enumerate(top_k(amap.matrix, k)):
            shown = ", ".join(f"{escape(_label(run, j))} {w:.2f}" for j, w in row)
            out.print(f"  {i:>3} {escape(_label(run, i)):<11} → {shown}")


def records(
    run: AttentionRun, maps: Iterable[AttentionMap], top: int = 0
) -> Iterator[dict[str, object]]:
    """One record per map; with ``top``, each query's ``top`` keys as ``[key, weight]``."""
    tokens = [r.token for r in run.tokens]
    for amap in maps:
        record: dict[str, object] = {
            "model": run.model,
            "layer": amap.layer,
            "head": amap.head,
            "layers": run.layers if amap.layer == "rollout" else [amap.layer],
            "heads": [amap.head] if isinstance(amap.head, int) else run.heads,
            "tokens": tokens,
            "matrix": [[round(float(x), 6) for x in row] for row in amap.matrix],
        }
        if top:
            record["top"] = [[[j, round(w, 6)] for j, w in row] for row in top_k(amap.matrix, top)]
        yield record


def check_size(run: AttentionRun, fmt: str) -> None:
    """Refuse, before the model runs, an HTML page or a PNG too large to be of use."""
    if fmt == "html":
        from llmcli.render import attention_pictures

        attention_pictures.check_size(run)
    elif fmt == "png":
        from llmcli.render import attention_png

        attention_png.check_size(run)


def emit(
    run: AttentionRun, maps: Iterator[AttentionMap], fmt: str, output: Path | None, *,
    precision: str = "float32", top: int = 0, shown_note: str = "",
) -> None:  # fmt: skip
    """Write the maps in ``fmt``; arrays are filled a layer at a time."""
    if fmt in ("npy", "npz"):
        _write_array(run, maps, fmt, output, precision)
        return
    if fmt == "html":
        from llmcli.render.attention_pictures import html_page

        with open_output(output, binary=True) as fh:
            fh.write(html_page(run, list(maps)).encode("utf-8"))
        return
    if fmt == "png":
        from llmcli.render.attention_png import png_grid

        with open_output(output, binary=True) as fh:
            png_grid(run, list(maps), fh)
        return
    with open_output(output) as fh:
        if fmt == "table":
            out = console(fh)
            if top:
                render_top(out, run, maps, top)
            else:
                render_heatmaps(out, run, maps, shown_note)
        elif fmt == "jsonl":
            for record in records(run, maps, top):
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            write_json(fh, {
                "model": run.model, "kind": run.kind,
                "tokens": [r.to_dict() for r in run.tokens],
                "dims": ["layer", "head", "query", "key"],
                "maps": [{k: v for k, v in r.items() if k not in ("model", "tokens")}
                         for r in records(run, maps, top)],
            })  # fmt: skip


def _write_array(
    run: AttentionRun, maps: Iterator[AttentionMap], fmt: str, output: Path | None, precision: str
) -> None:
    """Write the ``[layer, head, query, key]`` array as ``np.save`` (npy) or
    ``np.savez_compressed`` (npz) would, a map at a time as the maps come: the whole
    array is never held in memory, only the layer at hand."""
    import zipfile

    dtype = np.dtype(precision)  # float32 or float16
    shape = run.shape()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": shape}  # fmt: skip
    # The forward pass runs at the first map: before the output is opened.
    maps = iter(maps)
    first = next(maps, None)
    pending = maps if first is None else itertools.chain([first], maps)

    def write_attention(fh: IO[bytes]) -> None:
        # The maps come in [layer, head] order: the array's own (C) order.
        np.lib.format.write_array_header_1_0(fh, header)
        written = 0
        for amap in pending:
            fh.write(np.ascontiguousarray(amap.matrix, dtype=dtype).tobytes())
            written += 1
        for _ in range(written, shape[0] * shape[1]):
            fh.write(np.zeros(shape[2:], dtype=dtype).tobytes())

    with open_output(output, binary=True) as fh:
        if fmt == "npy":
            write_attention(fh)
            return
        extras = {
            "ids": np.array([r.id for r in run.tokens], dtype=np.int64),
            "tokens": np.array([r.token for r in run.tokens], dtype=np.str_),
            # The layers and heads the maps are made of (rollout: every layer it multiplied).
            "layers": np.array(run.layers),
            "heads": np.array(run.heads),
            "dims": np.array(["layer", "head", "query", "key"]),
        }
        # A zip of deflated .npy members, as np.savez_compressed writes it.
        with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_DEFLATED,
                             allowZip64=True) as zf:  # fmt: skip
            with zf.open("attention.npy", "w", force_zip64=True) as member:
                write_attention(member)
            for name, value in extras.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, value)
