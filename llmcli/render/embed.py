"""Embedding distances as coloured matrices, rankings, pairs (jsonl/csv), arrays and pictures."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import IO, Any

import numpy as np

from llmcli.core.embed import EmbedResult, KindResult, higher_is_nearer
from llmcli.render.output import console, open_output, write_json, write_jsonl

KIND_TITLES = {
    "onehot": "one-hot",
    "input": "input embedding",
    "contextual": "contextual",
}


def _nearness(kr: KindResult, metric: str) -> Any:
    """Each cell scaled to 0 (farthest pair) .. 1 (nearest pair), diagonal left out."""
    m = kr.matrix.astype(np.float64)
    off = ~np.eye(len(m), dtype=bool)
    values = m[off]
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo
    if span == 0:
        return np.full_like(m, 0.5)
    scaled = (m - lo) / span
    return scaled if higher_is_nearer(metric) else 1.0 - scaled


def _colour(x: float) -> str:
    """Red (far) through yellow to green (near)."""
    x = min(1.0, max(0.0, x))
    red = int(255 * min(1.0, 2 * (1 - x)))
    green = int(200 * min(1.0, 2 * x))
    return f"#{red:02x}{green:02x}40"


def _matrix_table(kr: KindResult, result: EmbedResult) -> Any:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    near = _nearness(kr, result.metric)
    table = Table(
        title=f"{KIND_TITLES[kr.kind]} · {result.metric}",
        box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold", title_justify="left",
    )  # fmt: skip
    table.add_column("")
    for word in result.words:
        table.add_column(escape(word), justify="right")
    for i, word in enumerate(result.words):
        if kr.unknown and kr.unknown[i]:
            word += " [UNK]"
        cells = []
        for j in range(len(result.words)):
            value = f"{kr.matrix[i, j]:.3f}"
            cells.append(
                f"[dim]{value}[/]" if i == j else f"[black on {_colour(near[i, j])}] {value} [/]"
            )
        table.add_row(f"[bold]{escape(word)}[/]", *cells)
    return table


def render_table(out: Any, result: EmbedResult) -> None:
    from rich.markup import escape

    out.print(
        f"{result.model} ({result.model_kind}) · {len(result.words)} words · "
        f"{result.metric} ({'higher' if higher_is_nearer(result.metric) else 'lower'} is nearer)"
    )
    from rich.columns import Columns

    out.print(Columns([_matrix_table(kr, result) for kr in result.kinds], padding=(0, 3)))
    for kr in result.kinds:
        split = [
            f"{escape(w)} = {' + '.join(escape(t) for t in toks)}"
            for w, toks in zip(result.words, kr.tokens)
            if len(toks) > 1 or kr.kind == "contextual"
        ]
        ranking = " > ".join(f"{escape(w)} ({v:.3f})" for w, v in kr.ranking[1:])
        out.print(
            f"{KIND_TITLES[kr.kind]}: nearest to [bold]{escape(result.words[0])}[/]: {ranking}"
        )
        if kr.how:
            out.print(f"[dim]  {escape(kr.how)}{': ' + '; '.join(split) if split else ''}[/]")
    if any(kr.kind == "onehot" for kr in result.kinds) and len(result.kinds) > 1:
        out.print(
            "\nOne-hot vectors put every two different words at the same distance; the learned "
            "vectors put related words closer together."
        )
    unknown = (
        [w for w, u in zip(result.words, result.kinds[0].unknown) if u] if result.kinds else []
    )
    if unknown:
        names = ", ".join(repr(w) for w in unknown)
        out.print(f"[yellow]{escape(names)} hold the unknown token \\[UNK]: every unknown "
                  "word gets its vector, so their nearness says nothing of meaning[/]")  # fmt: skip
    for word, near in result.neighbors.items():
        shown = ", ".join(f"{escape(n.token)} ({n.value:.3f})" for n in near)
        out.print(f"[bold]{escape(word)}[/] nearest tokens (input embeddings): {shown}")


def to_json(result: EmbedResult) -> dict[str, object]:
    return {
        "model": result.model,
        "model_kind": result.model_kind,
        "metric": result.metric,
        "words": result.words,
        "unknown": result.kinds[0].unknown if result.kinds else [],
        "kinds": {
            kr.kind: {
                "tokens": kr.tokens,
                "matrix": [[round(float(x), 6) for x in row] for row in kr.matrix],
                "ranking": [{"word": w, "value": round(v, 6)} for w, v in kr.ranking],
                "dim": int(kr.vectors.shape[1]),
                "how": kr.how,
            }
            for kr in result.kinds
        },
        "neighbors": {
            w: [{"token": n.token, "id": n.id, "value": round(n.value, 6)} for n in near]
            for w, near in result.neighbors.items()
        },
    }


def _write_csv(fh: IO[str], result: EmbedResult) -> None:
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(["a", "b", "metric", "kind", "value"])
    for row in result.pairs():
        writer.writerow([row["a"], row["b"], row["metric"], row["kind"], row["value"]])


def _vectors_kind(result: EmbedResult) -> KindResult:
    learned = [kr for kr in result.kinds if kr.kind != "onehot"]
    chosen = (learned or result.kinds)[0]
    if len(result.kinds) > 1:
        sys.stderr.write(
            f"llmpath: the array holds the {chosen.kind} vectors [word, dim]; "
            "choose another with --kind\n"
        )
    return chosen


def emit(result: EmbedResult, fmt: str, output: Path | None) -> None:
    if fmt == "png":
        with open_output(output, binary=True) as fh:
            draw_png(result, fh)
        return
    if fmt in ("npy", "npz"):
        with open_output(output, binary=True) as fh:
            if fmt == "npy":
                np.save(fh, _vectors_kind(result).vectors)
            else:
                arrays: dict[str, Any] = {kr.kind: kr.vectors for kr in result.kinds}
                np.savez_compressed(fh, words=np.array(result.words, dtype=np.str_), **arrays)
        return
    with open_output(output) as fh:
        if fmt == "table":
            render_table(console(fh), result)
        elif fmt == "jsonl":
            write_jsonl(fh, result.pairs())
        elif fmt == "csv":
            _write_csv(fh, result)
        else:
            write_json(fh, to_json(result))


def _pca2(vectors: Any) -> Any:
    """The first two principal components of the rows (centred), by SVD."""
    centred = vectors.astype(np.float64) - vectors.mean(axis=0, keepdims=True)
    if len(vectors) < 2 or not np.any(centred):
        return np.zeros((len(vectors), 2))
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    coords = u[:, :2] * s[:2]
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords


def draw_png(result: EmbedResult, fh: IO[bytes]) -> None:
    """Per kind: the distance matrix as a heatmap, and a labelled 2-D PCA of the vectors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(result.kinds)
    size = max(4.0, 0.55 * len(result.words) + 2.5)
    fig, axes = plt.subplots(n, 2, figsize=(2 * size + 1, size * n), squeeze=False)
    cmap = "viridis" if higher_is_nearer(result.metric) else "viridis_r"
    for row, kr in enumerate(result.kinds):
        ax = axes[row][0]
        image = ax.imshow(kr.matrix, cmap=cmap)
        lo, hi = float(kr.matrix.min()), float(kr.matrix.max())
        ax.set_xticks(range(len(result.words)), result.words, rotation=45, ha="right")
        ax.set_yticks(range(len(result.words)), result.words)
        for i in range(len(result.words)):
            for j in range(len(result.words)):
                bright = (kr.matrix[i, j] - lo) / (hi - lo or 1.0)
                if cmap.endswith("_r"):
                    bright = 1.0 - bright
                ax.text(j, i, f"{kr.matrix[i, j]:.2f}", ha="center", va="center",
                        color="black" if bright > 0.6 else "white", fontsize=8)  # fmt: skip
        ax.set_title(f"{KIND_TITLES[kr.kind]}: {result.metric}")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ax = axes[row][1]
        coords = _pca2(kr.vectors)
        ax.scatter(coords[:, 0], coords[:, 1], s=40)
        for (x, y), word in zip(coords, result.words):
            ax.annotate(word, (x, y), textcoords="offset points", xytext=(5, 5))
        ax.set_title(f"{KIND_TITLES[kr.kind]}: PCA of the vectors")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.margins(0.2)
    fig.suptitle(f"{result.model}: {', '.join(result.words)}")
    fig.tight_layout()
    fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
