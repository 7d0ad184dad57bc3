"""Model commands end to end against a direct transformers script doing the same job.

    python bench/bench_commands.py            # 5 rounds (about 2 minutes)
    python bench/bench_commands.py --quick    # 1 round

Run it with the interpreter llmpath is installed in. The store (``$LLMPATH_HOME``)
must hold smollm2 and minilm; it is only read (``LLMPATH_OFFLINE=1``).

Every command runs in a fresh process (a small wrapper reads its wall time, CPU time
and peak RSS), float32 on the CPU, stdout to a file:

a) ``llmpath next "The capital of France is" -m smollm2 --device cpu -f json`` against
   the anchor NEXT below: ``tokenizers.Tokenizer.from_file`` on the store's
   ``tokenizer.json``, ``AutoModelForCausalLM.from_pretrained(folder,
   dtype=torch.float32)``, one forward pass under ``torch.inference_mode()``, the
   log-softmax of the last position, its top 10 printed as JSON;
b) ``llmpath embed cat kitten tractor -m minilm -k contextual --device cpu -f json``
   against the anchor EMBED below: the same tokenizer load, ``AutoModel.from_pretrained``,
   one padded batch of the three words, the mean over each word's tokens (the
   sentence-transformers pooling MiniLM is made for), normalized, the cosine matrix
   printed as JSON.

The anchors are what a user would write to get the same numbers with the strongest
plain tools: the ``tokenizers`` library rather than ``AutoTokenizer`` (it loads faster),
no pipeline. Each round runs every command once, the order reversed every other round;
medians of 5 rounds (``--quick``: 1). The first round's outputs are compared: the same
top-10 token IDs and log-probabilities within 1e-5 for (a), the same similarities
within 1e-5 for (b). Target: llmpath at most 1.05x the anchor's wall time.

``llmpath attention`` is measured the same way by bench_attention.py (its anchor: the
same forward pass and save written against transformers).

The tables are printed and written to bench/results-commands.md. Exit status 1 if a
check fails (a command that fails, outputs that differ), 2 if the run cannot start.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _report import Report, fmt_s, run_child, spread, warm_cache

BENCH = Path(__file__).resolve().parent
TARGET = 1.05
TOLERANCE = 1e-5
PROMPT = "The capital of France is"
WORDS = ("cat", "kitten", "tractor")

NEXT = r"""
import json, sys
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

folder, prompt = sys.argv[1], sys.argv[2]
tok = Tokenizer.from_file(folder + "/tokenizer.json")
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
ids = tok.encode(prompt, add_special_tokens=False).ids
with torch.inference_mode():
    logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
values, top = torch.topk(torch.log_softmax(logits, -1), 10)
print(json.dumps({"ids": top.tolist(), "logprobs": values.tolist()}))
"""

EMBED = r"""
import json, sys
import torch
from tokenizers import Tokenizer
from transformers import AutoModel

folder, words = sys.argv[1], sys.argv[2:]
tok = Tokenizer.from_file(folder + "/tokenizer.json")
tok.enable_padding()
model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
enc = tok.encode_batch(words)
ids = torch.tensor([e.ids for e in enc])
mask = torch.tensor([e.attention_mask for e in enc])
with torch.inference_mode():
    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
m = mask[..., None].float()
vectors = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)
print(json.dumps((vectors @ vectors.T).tolist()))
"""


class BenchError(Exception):
    pass


def folder_of(name: str) -> Path:
    from llmcli.models.resolve import resolve

    return Path(resolve(name).path)


def commands(py: str) -> dict[str, dict[str, list[str]]]:
    smollm2, minilm = str(folder_of("smollm2")), str(folder_of("minilm"))
    llmpath = [str(Path(py).parent / "llmpath")]
    return {
        "next": {
            "anchor": [py, "-c", NEXT, smollm2, PROMPT],
            "llmpath": [*llmpath, "next", PROMPT, "-m", "smollm2", "--device", "cpu",
                        "-f", "json", "-q"],
        },
        "embed": {
            "anchor": [py, "-c", EMBED, minilm, *WORDS],
            "llmpath": [*llmpath, "embed", *WORDS, "-m", "minilm", "-k", "contextual",
                        "--device", "cpu", "-f", "json", "-q"],
        },
    }  # fmt: skip


def read_json(path: Path) -> Any:
    """The JSON a command printed, after any lines of warnings before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("{", "[")))
    return json.loads("\n".join(lines[start:]))


def compare(report: Report, job: str, outs: dict[str, Path]) -> list[Any]:
    """The first round's outputs of llmpath and the anchor, side by side."""
    anchor, mine = read_json(outs["anchor"]), read_json(outs["llmpath"])
    if job == "next":
        ids = [c["id"] for c in mine["next"]]
        lps = [c["logprob"] for c in mine["next"]]
        worst = max(abs(a - b) for a, b in zip(lps, anchor["logprobs"]))
        same = ids == anchor["ids"]
        report.check(same and worst <= TOLERANCE,
                     f"next: the same top 10 (max |diff| {worst:.2g})")  # fmt: skip
        return [job, "top-10 IDs and log-probabilities", "yes" if same else "NO", f"{worst:.2g}"]
    got = mine["kinds"]["contextual"]["matrix"]  # written to 6 decimals
    worst = max(abs(a - b) for ra, rb in zip(got, anchor) for a, b in zip(ra, rb))
    report.check(worst <= TOLERANCE, f"embed: the same similarities (max |diff| {worst:.2g})")
    return [job, "cosine similarities of cat, kitten, tractor", "yes", f"{worst:.2g}"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--repeat", type=int, help="rounds (default 5; quick 1)")
    parser.add_argument("--output", type=Path, default=BENCH / "results-commands.md")
    args = parser.parse_args(argv)
    rounds = args.repeat or (1 if args.quick else 5)
    started = time.time()
    report = Report()
    env = dict(os.environ, LLMPATH_OFFLINE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    import torch
    import transformers

    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            jobs = commands(sys.executable)
            for name in ("smollm2", "minilm"):
                for path in folder_of(name).glob("*.safetensors"):
                    warm_cache(path)
            runs: dict[tuple[str, str], list[Any]] = {}
            first: dict[str, dict[str, Path]] = {}
            loads = []
            order = [(job, who) for job in jobs for who in ("anchor", "llmpath")]
            for r in range(rounds):
                for job, who in order if r % 2 == 0 else order[::-1]:
                    log = tmp / f"{job}-{who}-{r}.out"
                    try:
                        got = run_child(jobs[job][who], env, log=log)
                    except RuntimeError as exc:
                        report.check(False, f"{job} {who}: {exc}")
                        continue
                    loads.append(got.load)
                    runs.setdefault((job, who), []).append(got)
                    first.setdefault(job, {}).setdefault(who, log)
                    print(f"  round {r + 1}/{rounds} {job:6} {who:8} {got.wall:6.2f} s",
                          flush=True)  # fmt: skip
            rows, same = [], []
            for job in jobs:
                anchor = runs.get((job, "anchor"))
                mine = runs.get((job, "llmpath"))
                if not anchor or not mine:
                    continue
                a = statistics.median(x.wall for x in anchor)
                for who, got in (("anchor", anchor), ("llmpath", mine)):
                    wall = statistics.median(x.wall for x in got)
                    ratio = wall / a
                    target = ""
                    if who == "llmpath":
                        met = "met" if ratio <= TARGET else "NOT met"
                        target = f"≤ {TARGET}x: {met}"
                    label = ("direct script (anchor)" if who == "anchor"
                             else "`llmpath " + " ".join(jobs[job][who][1:]) + "`")  # fmt: skip
                    rows.append([job, label, spread([x.wall for x in got]),
                                 fmt_s(statistics.median(x.cpu for x in got)),
                                 f"{statistics.median(x.maxrss_mb for x in got):.0f} MB",
                                 f"{ratio:.2f}x", target])  # fmt: skip
                if set(first.get(job, {})) == {"anchor", "llmpath"}:
                    same.append(compare(report, job, first[job]))
    except BenchError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    header = (
        f"Run {datetime.date.today()}: {os.cpu_count()} CPUs, CPython {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), transformers "
        f"{transformers.__version__}; load average (1 min) before each command "
        f"{min(loads, default=0):.2f} to {max(loads, default=0):.2f}. Every command in a fresh "
        "process, float32 on the CPU, the weights in the page cache.\n\n"
        f"Command: `python bench/bench_commands.py{' --quick' if args.quick else ''}`\n"
    )
    report.note(header)
    report.table(
        f"Whole commands (median of {rounds}; min-max in brackets)",
        ["job", "command", "wall", "CPU", "peak RSS", "time vs anchor", "target"], rows,
    )  # fmt: skip
    report.table("Outputs against the anchor's (first round)",
                 ["job", "compared", "same IDs", "max abs diff"], same)  # fmt: skip
    report.note(f"The whole run took {time.time() - started:.0f} s.")
    return report.finish(args.output)


if __name__ == "__main__":
    sys.exit(main())
