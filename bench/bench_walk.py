"""Walk benchmark: ``llmpath walk`` against ``llmpath attention`` on the same text and model.

    python bench/bench_walk.py            # the full run (3 repeats, a few minutes)
    python bench/bench_walk.py --quick    # one repeat

Run it with the interpreter llmpath is installed in. The store (``$LLMPATH_HOME``)
must hold smollm2, gemma3-270m and minilm; it is only read (``LLMPATH_OFFLINE=1``).

A walk is one forward pass with hooks, plus the hand computation of every layer (each
checked against the model's own output), the opened layer's steps, and a final norm and
unembedding per layer (the logit lens). The anchor is ``llmpath attention`` on the same
text and model: one forward pass under eager attention that returns every layer's and
head's weights, the thing a user runs today to look inside. Commands, each in a fresh
process (wall time, CPU time and peak RSS read by a small wrapper):

a) ``llmpath attention TEXT -m MODEL -f npz -o OUT.npz`` (the anchor);
b) ``llmpath walk TEXT -m MODEL -f jsonl -o OUT.jsonl`` (every step; the lens of the
   followed token, as the terminal report shows it);
c) ``llmpath walk TEXT -m MODEL -f npz -o OUT.npz`` (the lens of every token, for the
   page and the arrays).

TEXT is the seed sentence ("It's a blue sundress.") and a 200-token paragraph. Median of
3 repeats in rounds (each command once per round, the order alternating). Every walk must
exit 0 (all its checks passed). Target: at most 1.5x the anchor's time and
1.3x its peak memory. Tables are printed and written to bench/results-walk.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _report import Report, Run, llmpath_script, load_note, run_round, warm_cache

BENCH = Path(__file__).resolve().parent
MODELS = ("smollm2", "gemma3-270m", "minilm")
SEED = "It's a blue sundress."
PARAGRAPH = (
    "A transformer reads a text as a row of tokens. Each token becomes a vector, and every "
    "layer lets each vector look at the others, mixes in what it finds relevant, and passes "
    "the result through a small network of its own. The vectors grow richer layer by layer, "
    "until the last one is turned back into a score for every word of the vocabulary. "
) * 3
TIME_TARGET, MEMORY_TARGET = 1.5, 1.3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat")
    parser.add_argument("--repeat", type=int, help="repeats of each command (default 3)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--output", type=Path, default=BENCH / "results-walk.md")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    models = [m for m in args.models.split(",") if m]
    py = sys.executable
    script = llmpath_script()
    from llmcli.models import store

    env = dict(os.environ, LLMPATH_HOME=str(store.home()), LLMPATH_OFFLINE="1",
               HF_HUB_OFFLINE="1", TQDM_DISABLE="1")  # fmt: skip
    for name in models:
        if not (store.models_dir() / name / "model.safetensors").is_file():
            print(f"the store {store.home()} lacks {name}: llmpath pull {name}", file=sys.stderr)
            return 2
        warm_cache(store.models_dir() / name / "model.safetensors")
    versions = subprocess.run(
        [py, "-c", "import torch, transformers; print(torch.__version__, "
         "transformers.__version__, torch.get_num_threads())"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    report = Report()
    started = time.time()
    loads = [os.getloadavg()[0]]
    report.note(
        f"Run {datetime.date.today().isoformat()}{' (--quick)' if args.quick else ''}: "
        f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}"
        f", torch {versions[0]} ({versions[2]} threads), transformers {versions[1]}; load "
        f"average at start {loads[0]:.2f}. Median of {repeat} repeat(s), each command in a "
        "fresh process, the weights in the page cache.\n"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for name in models:
            for label, text in (("seed sentence", SEED), ("paragraph", PARAGRAPH)):
                commands = {
                    "attention": [script, "attention", text, "-m", name, "-f", "npz", "-o",
                                  str(tmp / "a.npz"), "-q"],
                    "walk -f jsonl": [script, "walk", text, "-m", name, "-f", "jsonl", "-o",
                                      str(tmp / "w.jsonl"), "-q"],
                    "walk -f npz": [script, "walk", text, "-m", name, "-f", "npz", "-o",
                                    str(tmp / "w.npz"), "-q"],
                }  # fmt: skip
                runs: dict[str, list[Run]] = {k: [] for k in commands}
                for r in range(repeat):
                    for key, got in run_round(commands, env, report, r, f"{name} {label}: "):
                        loads.append(got.load)
                        runs[key].append(got)
                        print(f"  {name:12} {label:14} {key:14} wall {got.wall:6.2f} s  "
                              f"peak RSS {got.maxrss_mb:5.0f} MB  (load {got.load:.2f})",
                              flush=True)  # fmt: skip
                if not all(runs.values()):
                    continue
                base_t = statistics.median(x.wall for x in runs["attention"])
                base_m = statistics.median(x.maxrss_mb for x in runs["attention"])
                for key, got_runs in runs.items():
                    t = statistics.median(x.wall for x in got_runs)
                    m = statistics.median(x.maxrss_mb for x in got_runs)
                    verdict = ""
                    if key != "attention":
                        ok = t / base_t <= TIME_TARGET and m / base_m <= MEMORY_TARGET
                        verdict = "met" if ok else "NOT met"
                    rows.append([name, label, f"`{key}`", f"{t:.2f} s", f"{m:.0f} MB",
                                 f"{t / base_t:.2f}x", f"{m / base_m:.2f}x", verdict])  # fmt: skip
    report.table(
        "llmpath walk against llmpath attention (median; ratios against attention, same run)",
        ["model", "text", "command", "wall", "peak RSS", "time vs attention",
         "RSS vs attention", f"≤ {TIME_TARGET}x time, ≤ {MEMORY_TARGET}x RSS"],
        rows,
    )  # fmt: skip
    load_note(report, loads, started)
    return report.finish(args.output)


if __name__ == "__main__":
    sys.exit(main())
