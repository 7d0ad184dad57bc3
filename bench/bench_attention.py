"""Attention benchmark of llmpath: an attention dump against the same work in transformers.

    python bench/bench_attention.py            # the full run (3 repeats, about 2 minutes)
    python bench/bench_attention.py --quick    # one repeat

Run it with the interpreter llmpath is installed in. The store (``$LLMPATH_HOME``)
must hold smollm2; it is only read (``LLMPATH_OFFLINE=1``).

The input is 512 tokens of smollm2 (30 layers x 9 heads): the start of the Python
license text that comes with the interpreter (``LICENSE.txt`` of the standard library),
cut to exactly 512 tokens by decoding its first 512 IDs; encoding the cut text must give
those IDs again. Every command below runs in a fresh process of its own, started by a
small wrapper that reads its wall time, CPU time and peak RSS:

a) llmpath end to end: ``llmpath attention --file TEXT -m smollm2 -f npz -o OUT.npz``
   (all layers and heads, the ``[layer, head, query, key]`` array), and ``-f npy``;
b) the anchor: the same forward pass and save written directly against transformers
   (ANCHOR below): ``AutoModelForCausalLM.from_pretrained(folder,
   attn_implementation="eager", dtype=torch.float32)``, the text tokenized with
   ``tokenizers`` from the store's ``tokenizer.json``, one forward pass with
   ``output_attentions=True`` under ``torch.inference_mode()``, the layers stacked into
   a float32 ``[layer, head, query, key]`` numpy array, saved with
   ``np.savez_compressed`` (``np.save`` for npy).

Median of 3 repeats (``--quick``: 1), in rounds: every command once per round, so that
changes in the machine's load spread over all of them. The first round's outputs are
compared: llmpath's IDs must be the anchor's, and its array equal to the anchor's.
Targets (DESIGN.md): llmpath within 1.1x of the anchor in time and 1.3x in peak memory.

The tables are printed and written to bench/results-attention.md. Exit status 1 if a
check fails (a command that fails, outputs that differ), 2 if the run cannot start.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _report import Report, Run, fmt_s, llmpath_script, load_note, run_round, spread, warm_cache

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
MODEL = "smollm2"
TOKENS = 512
TIME_TARGET = 1.1  # llmpath's wall time at most this times the anchor's
MEMORY_TARGET = 1.3  # llmpath's peak RSS at most this times the anchor's
TOLERANCE = 1e-6  # largest accepted |difference| of an attention weight

# The anchor: what a person would write with transformers. argv: folder, text, output.
ANCHOR = r"""
import sys

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

folder, text_file, out_file = sys.argv[1:4]
tok = Tokenizer.from_file(f"{folder}/tokenizer.json")
with open(text_file, encoding="utf-8", newline="") as fh:
    ids = tok.encode(fh.read()).ids
model = AutoModelForCausalLM.from_pretrained(
    folder, attn_implementation="eager", dtype=torch.float32
)
model.eval()
with torch.inference_mode():
    out = model(input_ids=torch.tensor([ids]), output_attentions=True)
attention = torch.stack(out.attentions)[:, 0].float().numpy()  # [layer, head, query, key]
if out_file.endswith(".npy"):
    np.save(out_file, attention)
else:
    np.savez_compressed(out_file, attention=attention, ids=np.array(ids, dtype=np.int64))
"""


class BenchError(Exception):
    """The run cannot start (a missing model, a text that cannot be cut)."""


# --- the input ------------------------------------------------------------------------


def source_text() -> tuple[str, str]:
    """English text from the machine: the Python license, or else standard docstrings."""
    license_file = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    if license_file.is_file():
        return license_file.read_text(encoding="utf-8"), str(license_file)
    import argparse as a
    import json as j
    import zipfile as z

    docs = [m.__doc__ or "" for m in (a, j, z, subprocess, tempfile, statistics)]
    return "\n".join(docs), "the docstrings of argparse, json, zipfile, subprocess, ..."


def cut_text(tok: Any, text: str, n: int) -> tuple[str, list[int]]:
    """The start of ``text`` that is exactly ``n`` tokens, and their IDs."""
    ids = tok.encode(text).ids
    if len(ids) < n:
        raise BenchError(f"the text has only {len(ids)} tokens, fewer than {n}")
    cut = tok.decode(ids[:n])
    if tok.encode(cut).ids != ids[:n]:
        # Decoding may not give the text back: cut at the end of the n-th token.
        enc = tok.encode(text)
        cut = text[: enc.offsets[n - 1][1]]
        if tok.encode(cut).ids != ids[:n]:
            raise BenchError(f"cannot cut the text to {n} tokens that encode the same again")
    return cut, ids[:n]


# --- the run --------------------------------------------------------------------------


def compare(report: Report, fmt: str, mine: Path, anchor: Path, ids: list[int]) -> list[Any]:
    """Check llmpath's output against the anchor's; a row of the equality table."""
    import numpy as np

    if fmt == "npz":
        with np.load(mine) as got, np.load(anchor) as ref:
            a, b = got["attention"], ref["attention"]
            got_ids, ref_ids = got["ids"].tolist(), ref["ids"].tolist()
        report.check(ref_ids == ids, f"the anchor ran the {len(ids)} IDs of the text")
        report.check(got_ids == ids, f"llmpath ran the same {len(ids)} IDs")
    else:
        a, b = np.load(mine), np.load(anchor)
    same_shape = report.check(
        a.shape == b.shape and a.dtype == b.dtype,
        f"-f {fmt}: llmpath's array is {a.dtype} {a.shape}, the anchor's {b.dtype} {b.shape}",
    )
    if not same_shape:
        return [f"-f {fmt}", str(a.shape), str(b.shape), "", ""]
    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    report.check(diff <= TOLERANCE, f"-f {fmt}: the arrays are equal (max |diff| {diff:.3g})")
    rows_sum = float(np.max(np.abs(a.sum(axis=-1, dtype=np.float64) - 1)))
    return [
        f"-f {fmt}", f"{a.dtype} {list(a.shape)}", f"{mine.stat().st_size / 1e6:.1f} MB",
        f"{diff:.3g}", "yes" if np.array_equal(a, b) else "no", f"{rows_sum:.2g}",
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat")
    parser.add_argument("--repeat", type=int, help="repeats of each command (default 3; quick 1)")
    parser.add_argument("--output", type=Path, default=BENCH / "results-attention.md")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)

    py = sys.executable
    script = llmpath_script()
    from llmcli.models import store

    env = dict(
        os.environ, LLMPATH_HOME=str(store.home()), LLMPATH_OFFLINE="1", HF_HUB_OFFLINE="1",
        TRANSFORMERS_VERBOSITY="error", TQDM_DISABLE="1",
    )  # fmt: skip
    folder = store.models_dir() / MODEL
    weights = folder / "model.safetensors"
    if not weights.is_file() or not (folder / "tokenizer.json").is_file():
        print(f"the store {store.home()} lacks {MODEL}: llmpath pull {MODEL}", file=sys.stderr)
        return 2
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    report = Report()
    started = time.time()
    DATA.mkdir(parents=True, exist_ok=True)
    try:
        text, origin = source_text()
        cut, ids = cut_text(tok, text, TOKENS)
    except BenchError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    special = tok.encode(cut).ids != tok.encode(cut, add_special_tokens=False).ids

    # Warm up: the weights in the page cache, the imports read once.
    warm_cache(weights)
    versions = subprocess.run(
        [py, "-c",
         "import numpy, tokenizers, torch, transformers, typer, rich;"
         "print(torch.__version__, transformers.__version__, numpy.__version__,"
         " tokenizers.__version__, torch.get_num_threads())"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    with open("/proc/meminfo") as fh:
        mem_gib = int(fh.readline().split()[1]) / 2**20
    loads = [os.getloadavg()[0]]
    report.note(
        f"Run {datetime.date.today().isoformat()}{' (--quick)' if args.quick else ''}: "
        f"{os.cpu_count()} CPUs, {mem_gib:.0f} GiB, {platform.python_implementation()} "
        f"{platform.python_version()}, torch {versions[0]} ({versions[4]} threads), "
        f"transformers {versions[1]}, numpy {versions[2]}, tokenizers {versions[3]}; "
        f"load average at start {loads[0]:.2f}. Median of {repeat} repeat(s), each command "
        f"in a fresh process, the weights in the page cache.\n"
    )
    report.note(
        f"Input: {MODEL}, {len(ids)} tokens ({len(cut):,} characters), the start of {origin}; "
        f"{MODEL}'s tokenizer adds {'special tokens' if special else 'no special tokens'}. "
        f"Output: {len(ids)} x {len(ids)} weights for each of 30 x 9 heads.\n"
    )

    with tempfile.TemporaryDirectory(dir=DATA) as tmpdir:
        tmp = Path(tmpdir)
        text_file = tmp / "text.txt"
        text_file.write_bytes(cut.encode("utf-8"))
        commands: dict[tuple[str, str], list[str]] = {}
        for fmt in ("npz", "npy"):
            anchor_out, llmpath_out = str(tmp / f"anchor.{fmt}"), str(tmp / f"llmpath.{fmt}")
            commands[("anchor", fmt)] = [py, "-c", ANCHOR, str(folder), str(text_file), anchor_out]
            commands[("llmpath", fmt)] = [
                py, script, "attention", "--file", str(text_file), "-m", MODEL, "-f", fmt,
                "-o", llmpath_out,
            ]  # fmt: skip
        results: dict[tuple[str, str], list[Run]] = {}
        equal_rows = []
        for r in range(repeat):
            for key, got in run_round(commands, env, report, r):
                loads.append(got.load)
                results.setdefault(key, []).append(got)
                print(
                    f"  round {r + 1}/{repeat} {key[0]:8} -f {key[1]}  wall {got.wall:6.2f} s  "
                    f"CPU {got.cpu:6.2f} s  peak RSS {got.maxrss_mb:5.0f} MB  "
                    f"(load average {got.load:.2f})",
                    flush=True,
                )
            if r == 0:
                for fmt in ("npz", "npy"):
                    mine, ref = tmp / f"llmpath.{fmt}", tmp / f"anchor.{fmt}"
                    if mine.is_file() and ref.is_file():
                        equal_rows.append(compare(report, fmt, mine, ref, ids))
        summarize(report, results, repeat)
        report.table(
            "llmpath's arrays against the anchor's (first repeat)",
            ["output", "array", "file size", "max abs diff", "bit-identical",
             "max |row sum - 1|"], equal_rows,
        )  # fmt: skip
    load_note(report, loads, started)
    return report.finish(args.output)


def summarize(report: Report, results: dict[tuple[str, str], list[Run]], repeat: int) -> None:
    rows, notes = [], []
    for fmt in ("npz", "npy"):
        anchor = results.get(("anchor", fmt))
        for who in ("anchor", "llmpath"):
            runs = results.get((who, fmt))
            what = (
                f"`llmpath attention --file TEXT -m {MODEL} -f {fmt} -o OUT.{fmt}`"
                if who == "llmpath"
                else f"transformers + `np.{'savez_compressed' if fmt == 'npz' else 'save'}` "
                "(anchor)"
            )
            if not runs:
                rows.append([what, "failed", "", "", "", "", ""])
                continue
            wall = statistics.median(x.wall for x in runs)
            rss = statistics.median(x.maxrss_mb for x in runs)
            row = [what, spread([x.wall for x in runs]),
                   fmt_s(statistics.median(x.cpu for x in runs)), f"{rss:.0f} MB"]  # fmt: skip
            if who == "anchor" or not anchor:
                rows.append([*row, "1.00x" if anchor else "", "1.00x" if anchor else "", ""])
                continue
            t_ratio = wall / statistics.median(x.wall for x in anchor)
            m_ratio = rss / statistics.median(x.maxrss_mb for x in anchor)
            verdict = (
                f"time ≤ {TIME_TARGET}x: {'met' if t_ratio <= TIME_TARGET else 'NOT met'}; "
                f"memory ≤ {MEMORY_TARGET}x: {'met' if m_ratio <= MEMORY_TARGET else 'NOT met'}"
            )
            rows.append([*row, f"{t_ratio:.2f}x", f"{m_ratio:.2f}x", verdict])
            if len(runs) == len(anchor) > 1:
                # The rounds are pairs run close together: their ratios show the noise.
                pairs = [b.wall / a.wall for a, b in zip(anchor, runs, strict=True)]
                notes.append(
                    f"-f {fmt}: llmpath/anchor wall time round by round: "
                    + ", ".join(f"{p:.2f}x" for p in pairs)
                )
    report.table(
        f"{MODEL}, {TOKENS} tokens, all 30 layers x 9 heads (median of {repeat}; "
        "min-max in brackets)",
        ["command", "wall", "CPU", "peak RSS", "time vs anchor", "RSS vs anchor", "target"],
        rows,
    )  # fmt: skip
    if notes:
        report.note("\n".join(notes))


if __name__ == "__main__":
    sys.exit(main())
