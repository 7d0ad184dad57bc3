"""Attention maps as a PNG grid of heatmaps (``llmpath attention -f png``), drawn with
matplotlib.

Each ``[query, key]`` map is drawn with the query tokens as rows and the key tokens as
columns. In a decoder the future is masked: a token does not see later tokens, so the
cells above the diagonal are drawn grey rather than as a weight of 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import IO

import numpy as np

from llmcli.core.attention import AttentionMap, AttentionRun
from llmcli.errors import UsageError
from llmcli.render.attention_words import rollout_layers
from llmcli.render.tokens import token_label

# A PNG draws at most this many maps (all of a 6 x 12 or 18 x 4 model), at most this many
# side by side, and scales down past about this many pixels.
PNG_MAX_PANELS = 72
PNG_MAX_COLUMNS = 12
PNG_MAX_PIXELS = 40_000_000
MASKED = "#d4d4d4"  # the colour of a masked cell: a later token a decoder does not see
# Fonts tried in turn for token labels in the PNG; only those installed are asked for.
LABEL_FONTS = [
    "DejaVu Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans",
    "WenQuanYi Zen Hei",
    "Noto Sans Symbols 2",
]


def check_size(run: AttentionRun) -> None:
    """Refuse, before the model runs, a grid of more maps than a picture can show."""
    layers, heads, _, _ = run.shape()
    _check_panels(layers * heads, f"{layers} layers x {heads} heads")


def _check_panels(count: int, what: str) -> None:
    if count > PNG_MAX_PANELS:
        raise UsageError(
            f"-f png draws at most {PNG_MAX_PANELS} maps and this run has {count} ({what}): "
            "choose layers with --layer (e.g. -l 3) or heads with --head, or use -f html"
        )


def _title(amap: AttentionMap, run: AttentionRun) -> str:
    if amap.layer == "rollout":
        return f"attention rollout of {rollout_layers(run)}"
    if isinstance(amap.head, str):
        return f"layer {amap.layer} · {amap.head} of heads"
    return f"layer {amap.layer} · head {amap.head}"


def _layout(maps: Sequence[AttentionMap]) -> tuple[int, list[list[AttentionMap | None]]]:
    """Rows of panels: a layer a row (wrapped past PNG_MAX_COLUMNS heads); or, for one
    layer, or one map a layer (an aggregate), the maps in a squarish grid."""
    groups: dict[str, list[AttentionMap]] = {}
    for amap in maps:
        groups.setdefault(str(amap.layer), []).append(amap)
    widest = max(len(g) for g in groups.values())
    rows: list[list[AttentionMap | None]] = []
    if widest == 1 or len(groups) == 1:
        cols = min(len(maps), 6, math.ceil(math.sqrt(len(maps))))
        flat = list(maps)
        for start in range(0, len(flat), cols):
            rows.append(list(flat[start : start + cols]))
    else:
        cols = min(widest, PNG_MAX_COLUMNS)
        for group in groups.values():
            for start in range(0, len(group), cols):
                rows.append(list(group[start : start + cols]))
    for row in rows:
        row.extend([None] * (cols - len(row)))
    return cols, rows


def _png_labels(run: AttentionRun) -> list[str]:
    labels = [token_label(r) for r in run.tokens]
    return [s if len(s) <= 12 else s[:11] + "…" for s in labels]


def _text_inches(texts: Sequence[str], family: list[str], size: float) -> float:
    """The width of the widest of ``texts`` in inches, as matplotlib would set it."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(family=family, size=size)
    measure = TextToPath()
    widest = max(measure.get_text_width_height_descent(s, prop, ismath=False)[0] for s in texts)
    return widest / 72 * 1.05


def png_grid(run: AttentionRun, maps: Sequence[AttentionMap], fh: IO[bytes]) -> None:
    """A grid of heatmaps, one per map (a row per layer), with a shared colour bar.

    Rows are query tokens and columns key tokens; the colour is the square root of
    the weight so that small weights still show; a decoder's masked cells are grey.
    """
    maps = list(maps)
    if not maps:
        raise UsageError("there are no attention maps to draw")
    layer_count = len({str(m.layer) for m in maps})
    _check_panels(len(maps), f"{layer_count} layers x {len(maps) // layer_count} heads")

    import matplotlib
    from matplotlib import colors, font_manager
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = run.n_tokens
    cols, rows = _layout(maps)
    panel = min(9.0, max(2.4, 0.13 * t + 1.2))  # inches a map
    font = min(10.0, max(5.0, 10.5 - 0.12 * (t - 7)))  # points, for token labels
    step = max(1, math.ceil(t / 70))  # past 70 tokens, label every step-th
    labels = _png_labels(run)
    ticks = list(range(0, t, step))
    queries = [f"{labels[i]} {i}" for i in ticks]
    keys = [f"{i} {labels[i]}" for i in ticks]
    installed = {f.name for f in font_manager.fontManager.ttflist}
    family = [f for f in LABEL_FONTS if f in installed] or ["sans-serif"]
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad=MASKED)
    norm = colors.PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)
    future = np.triu(np.ones((t, t), dtype=bool), k=1) if run.kind == "decoder" else None

    # The layout, in inches from the top left. In a tall grid only the lowest map of a
    # column has key labels, and only the first column has query labels.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        y_room = _text_inches(queries, family, font) + 0.12
        x_room = _text_inches(keys, family, font) + 0.12

    def labelled(r: int, c: int) -> bool:
        below = rows[r + 1][c] if r + 1 < len(rows) else None
        return len(rows) <= 3 or below is None

    left, top, gap, title_h = 0.2 + y_room, 0.8, 0.14, 0.28
    places: list[tuple[AttentionMap, float, float, bool, bool]] = []
    y = top
    for r, row in enumerate(rows):
        y += title_h
        for c, amap in enumerate(row):
            if amap is not None:
                places.append((amap, left + c * (panel + gap), y, c == 0, labelled(r, c)))
        has_keys = any(amap is not None and labelled(r, c) for c, amap in enumerate(row))
        y += panel + (x_room if has_keys else 0.05) + 0.18
    bar_x = left + cols * panel + (cols - 1) * gap + 0.3
    width, height = bar_x + 1.3, y + 0.05
    dpi = max(50, min(100, int(math.sqrt(PNG_MAX_PIXELS / (width * height)))))
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)

    def box(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
        """A rectangle given in inches from the top left, as figure fractions."""
        return (x / width, 1 - (y + h) / height, w / width, h / height)

    image = None
    with warnings.catch_warnings():
        # A token in a script no installed font has is drawn as a box.
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        for amap, x, y, first, bottom in places:
            ax = fig.add_axes(box(x, y, panel, panel))
            matrix = np.asarray(amap.matrix, dtype=np.float64)
            data = np.ma.masked_array(matrix, mask=future) if future is not None else matrix
            image = ax.imshow(data, cmap=cmap, norm=norm, interpolation="nearest")
            ax.set_title(_title(amap, run), fontsize=10, parse_math=False)
            if bottom:
                ax.set_xticks(ticks, keys, rotation=90, fontsize=font, family=family,
                              parse_math=False)  # fmt: skip
            else:
                ax.set_xticks([])
            if first:
                ax.set_yticks(ticks, queries, fontsize=font, family=family, parse_math=False)
            else:
                ax.set_yticks([])
            ax.tick_params(length=2, pad=2)
        area = height - top - title_h - x_room  # from the first map's top to the last's foot
        span = min(area, max(panel, 6.0))
        bar_top = top + title_h + (area - span) / 2
        assert image is not None
        bar = fig.colorbar(image, cax=fig.add_axes(box(bar_x, bar_top, 0.18, span)))
        bar.set_ticks([0, 0.01, 0.05, 0.1, 0.25, 0.5, 1])
        bar.set_label("attention weight (√ colour scale)")
        how = (
            "decoder: masked (causal) attention, grey = a later token it does not see"
            if run.kind == "decoder"
            else "encoder: each token attends in both directions"
        )
        fig.text(
            0.5, 1 - 0.15 / height,
            f"{run.model}: attention, {how}\n{run.n_layers} layers x {run.n_heads} heads; "
            f"[layer, head, query, key] = {list(run.shape())}; rows: query, columns: key",
            ha="center", va="top", fontsize=11, parse_math=False,
        )  # fmt: skip
        fig.savefig(fh, format="png")
