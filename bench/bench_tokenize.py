"""Tokenization benchmark of llmpath: start-up, throughput and memory, in one run.

    python bench/bench_tokenize.py            # the full run (several minutes)
    python bench/bench_tokenize.py --quick    # a small smoke run

Run it with the interpreter llmpath is installed in; every command below runs with
that same interpreter. The store (``$LLMPATH_HOME``) must hold gpt2 and smollm2;
nothing is downloaded (``LLMPATH_OFFLINE=1``).

a) start-up: median wall time of ``llmpath --help``, ``llmpath tokenize TEXT`` and
   the anchor ``python -c "import typer, rich, tokenizers"``; and a check that
   neither llmpath command imports torch or transformers.
b) throughput on a real text corpus (the standard library's ``.py`` sources, about
   30 MB, built once into bench/data/corpus.txt), one line at a time:
   tiktoken's ``encode_ordinary_batch`` (the anchor), tokenizers' ``encode_batch``,
   and ``llmpath tokenize -f ids`` end to end (a process: start-up, reading,
   writing), whose IDs are checked against tiktoken's line for line. The same for
   smollm2, a vocabulary tiktoken has no engine for.
c) memory: peak RSS of ``llmpath tokenize -f ids`` and ``-f jsonl`` on the first
   3 MB of the corpus, its first half and all of it: streamed, it should not grow.

The tables are printed and written to bench/results.md. Exit status 1 if a check
fails (an import of torch/transformers, IDs that differ, a command that fails).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _report import Report, run_child

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
CORPUS = DATA / "corpus.txt"
SLICE_BYTES = 3_000_000
TEXT = "It's a blue sundress."
FORBIDDEN = ("torch", "transformers")
STARTUP_TARGET = 2.5
MB = 1e6

# Runs a script as __main__ and reports on stderr which FORBIDDEN modules were imported.
IMPORT_CHECK = """
import atexit, runpy, sys
script, forbidden = sys.argv[1], sys.argv[2].split(",")
def report():
    found = [m for m in forbidden if m in sys.modules]
    sys.stderr.write("bench-imports:" + ",".join(found) + "\\n")
atexit.register(report)
sys.argv = sys.argv[2:]
sys.argv[0] = script
runpy.run_path(script, run_name="__main__")
"""


# --- corpus ---------------------------------------------------------------------------


def build_corpus(path: Path) -> str:
    """The standard library's .py sources, sorted by path, those that are UTF-8."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages"}
    files = sorted(
        (p for p in root.rglob("*.py") if not skip & set(p.relative_to(root).parts)),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    parts, skipped = [], 0
    for file in files:
        try:
            text = file.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            skipped += 1
            continue
        parts.append(text if text.endswith("\n") or not text else text + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes("".join(parts).encode("utf-8"))
    tmp.replace(path)
    return f"{len(parts)} files from {root} ({skipped} not UTF-8, skipped)"


def write_slice(corpus: Path, path: Path, size: int) -> None:
    """The first ``size`` bytes of ``corpus`` or a little less, cut after a line."""
    with open(corpus, "rb") as fh:
        data = fh.read(size)
    path.write_bytes(data[: data.rfind(b"\n") + 1])


def read_lines(path: Path) -> tuple[str, list[str]]:
    """The text (line breaks kept as they are) and its lines, as llmpath cuts them."""
    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return text, lines


def ids_text(per_line: Sequence[Sequence[int]]) -> str:
    """The ``-f ids`` format: IDs separated by spaces, one line per input line."""
    return "".join(" ".join(map(str, ids)) + "\n" for ids in per_line)


# --- timing ---------------------------------------------------------------------------


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``fn`` over ``repeat`` calls, and what the first call gave."""
    times, first = [], None
    for i in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        if i == 0:
            first = result
        del result
    return statistics.median(times), first


# --- a) start-up ----------------------------------------------------------------------


def startup(report: Report, py: str, script: str, env: dict[str, str], runs: int, warmups: int):
    commands = [
        ('python -c "import typer, rich, tokenizers" (anchor)',
         [py, "-c", "import typer, rich, tokenizers"]),
        ("llmpath --help", [py, script, "--help"]),
        (f'llmpath tokenize "{TEXT}"', [py, script, "tokenize", TEXT]),
    ]  # fmt: skip
    medians = []
    for label, cmd in commands:
        times = []
        for i in range(warmups + runs):
            start = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True)  # stdout: a pipe
            if i >= warmups:
                times.append(time.perf_counter() - start)
            if done.returncode != 0:
                report.check(False, f"{label} exits 0 ({done.stderr.decode()[-300:]})")
                break
        medians.append(statistics.median(times) if times else float("nan"))
    anchor = medians[0]
    rows = []
    for i, ((label, _), median) in enumerate(zip(commands, medians, strict=True)):
        ratio = median / anchor
        met = "met" if ratio <= STARTUP_TARGET else "NOT met"
        target = f"≤ {STARTUP_TARGET}x: {met}" if i else ""
        rows.append([f"`{label}`", f"{median * 1000:.0f} ms", f"{ratio:.2f}x", target])
    report.table(
        f"Start-up (median of {runs} runs after {warmups} warm-ups, stdout to a pipe)",
        ["command", "median wall", "vs anchor", "target"], rows,
    )  # fmt: skip
    found_any = []
    for label, cmd in commands[1:]:
        checked = subprocess.run(
            [py, "-c", IMPORT_CHECK, script, ",".join(FORBIDDEN), *cmd[2:]],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        marker = [ln for ln in checked.stderr.splitlines() if ln.startswith("bench-imports:")]
        found = marker[-1].split(":", 1)[1] if marker else "?"
        report.check(
            checked.returncode == 0 and found == "",
            f"`{label}` imports neither torch nor transformers (found: {found or 'none'})",
        )
        found_any.append(f"`{label}`: {found or 'none'}")
    report.note("torch/transformers imported: " + "; ".join(found_any) + "\n")


# --- b) throughput --------------------------------------------------------------------


def rate(nbytes: int, seconds: float) -> str:
    return f"{nbytes / MB / seconds:.2f}"


def throughput_gpt2(report, py, script, env, corpus: Path, models: Path, repeat: int, tmp: Path):
    import tiktoken
    from tokenizers import Tokenizer

    from llmcli.models.convert import GPT2_PATTERN, GPT2_SPECIAL, load_tiktoken_ranks

    text, lines = read_lines(corpus)
    nbytes = corpus.stat().st_size
    enc = tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=load_tiktoken_ranks(models / "gpt2" / "gpt2.tiktoken"),
        special_tokens=GPT2_SPECIAL,
    )
    hf = Tokenizer.from_file(str(models / "gpt2" / "tokenizer.json"))
    hf.no_truncation()
    hf.no_padding()

    t_tik, expected = median_time(lambda: enc.encode_ordinary_batch(lines), repeat)
    expected_text = ids_text(expected)
    del expected
    t_engine = _engine_time(enc, text, repeat)
    t_hf, encodings = median_time(lambda: hf.encode_batch(lines, add_special_tokens=False), repeat)
    hf_same = ids_text([e.ids for e in encodings]) == expected_text
    del encodings

    out = tmp / "gpt2.ids"
    cmd = [py, script, "tokenize", "-f", "ids", "--file", str(corpus), "-o", str(out)]
    runs = [run_child(cmd, env) for _ in range(repeat)]
    t_llm = statistics.median(r.wall for r in runs)
    cpu_llm = statistics.median(r.cpu for r in runs)
    same = out.read_text(encoding="utf-8") == expected_text
    report.check(same, "llmpath -f ids gives tiktoken's IDs, line for line (gpt2)")
    report.check(hf_same, "tokenizers' encode_batch gives tiktoken's IDs (gpt2)")

    rows = [
        ["tiktoken `encode_ordinary_batch(lines)` (anchor)", f"{t_tik:.2f}", rate(nbytes, t_tik),
         "1.00x", "(reference)"],
        ["tokenizers `encode_batch(lines)`", f"{t_hf:.2f}", rate(nbytes, t_hf),
         f"{t_tik / t_hf:.2f}x", "yes" if hf_same else "NO"],
        ["`llmpath tokenize -f ids --file corpus.txt -o OUT` (end to end, "
         f"CPU {cpu_llm:.1f} s)", f"{t_llm:.2f}", rate(nbytes, t_llm),
         f"{t_tik / t_llm:.2f}x", "yes" if same else "NO"],
        ["for reference: tiktoken `encode_ordinary_batch` on ~1 MB pieces, not lines",
         f"{t_engine:.2f}", rate(nbytes, t_engine), f"{t_tik / t_engine:.2f}x", "(other cuts)"],
    ]  # fmt: skip
    report.table(
        f"Throughput, gpt2: {nbytes / MB:.1f} MB, {len(lines):,} lines (median of {repeat})",
        ["what", "seconds", "MB/s", "vs tiktoken", "IDs = tiktoken's"], rows,
    )  # fmt: skip
    verdict = "met" if t_llm <= t_tik else "NOT met"
    report.note(f"Target, llmpath -f ids at least tiktoken's batch rate: {verdict}.\n")


def _engine_time(enc: Any, text: str, repeat: int) -> float:
    """tiktoken on ~1 MB pieces of the text: its own rate, without a call a line."""
    pieces = _pieces(text, 1 << 20)
    return median_time(lambda: enc.encode_ordinary_batch(pieces), repeat)[0]


def _pieces(text: str, size: int) -> list[str]:
    """``text`` in pieces of about ``size`` characters, each ending after a line."""
    pieces, start = [], 0
    while start < len(text):
        cut = text.find("\n", start + size)
        end = len(text) if cut < 0 else cut + 1
        pieces.append(text[start:end])
        start = end
    return pieces


def throughput_smollm2(report, py, script, env, corpus: Path, models: Path, repeat: int, tmp: Path):
    from tokenizers import Tokenizer

    _, lines = read_lines(corpus)
    nbytes = corpus.stat().st_size
    hf = Tokenizer.from_file(str(models / "smollm2" / "tokenizer.json"))
    hf.no_truncation()
    hf.no_padding()
    t_batch, encodings = median_time(
        lambda: hf.encode_batch(lines, add_special_tokens=False), repeat
    )
    expected_text = ids_text([e.ids for e in encodings])
    del encodings
    t_fast, encodings = median_time(
        lambda: hf.encode_batch_fast(lines, add_special_tokens=False), repeat
    )
    fast_same = ids_text([e.ids for e in encodings]) == expected_text
    del encodings

    out = tmp / "smollm2.ids"
    cmd = [py, script, "tokenize", "-m", "smollm2", "-f", "ids", "--file", str(corpus),
           "-o", str(out)]  # fmt: skip
    runs = [run_child(cmd, env) for _ in range(repeat)]
    t_llm = statistics.median(r.wall for r in runs)
    cpu_llm = statistics.median(r.cpu for r in runs)
    same = out.read_text(encoding="utf-8") == expected_text
    report.check(same, "llmpath -f ids gives tokenizers' IDs, line for line (smollm2)")
    report.check(fast_same, "encode_batch_fast gives encode_batch's IDs (smollm2)")
    rows = [
        ["tokenizers `encode_batch(lines)` (anchor)", f"{t_batch:.2f}", rate(nbytes, t_batch),
         "1.00x", "(reference)"],
        ["tokenizers `encode_batch_fast(lines)`", f"{t_fast:.2f}", rate(nbytes, t_fast),
         f"{t_batch / t_fast:.2f}x", "yes" if fast_same else "NO"],
        ["`llmpath tokenize -m smollm2 -f ids --file corpus.txt -o OUT` (end to end, "
         f"CPU {cpu_llm:.1f} s)", f"{t_llm:.2f}", rate(nbytes, t_llm),
         f"{t_batch / t_llm:.2f}x", "yes" if same else "NO"],
    ]  # fmt: skip
    report.table(
        f"Throughput, smollm2 (no tiktoken engine): same corpus (median of {repeat})",
        ["what", "seconds", "MB/s", "vs encode_batch", "IDs = encode_batch's"], rows,
    )  # fmt: skip
    verdict = "met" if t_llm <= t_batch else "NOT met"
    report.note(f"Target, llmpath at least tokenizers' encode_batch rate: {verdict}.\n")


# --- c) memory ------------------------------------------------------------------------


def memory(report, py, script, env, inputs: Sequence[Path]):
    """Peak RSS of -f ids and -f jsonl on inputs of growing size (the first is the base)."""
    rows = []
    for fmt in ("ids", "jsonl"):
        base = None
        for path in inputs:
            cmd = [py, script, "tokenize", "-f", fmt, "--file", str(path)]
            run = run_child(cmd, env)  # output to /dev/null: no huge files
            base = base or run.maxrss_mb
            rows.append([f"`llmpath tokenize -f {fmt}`", f"{path.name}",
                         f"{path.stat().st_size / MB:.1f} MB", f"{run.maxrss_mb:.0f} MB",
                         f"{run.maxrss_mb / base:.2f}x", f"{run.wall:.1f} s"])  # fmt: skip
    report.table(
        "Peak memory (RSS of the process, output to /dev/null)",
        ["command", "input", "size", "peak RSS", "vs the smallest input", "wall"], rows,
    )  # fmt: skip


# --- main -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--runs", type=int, help="start-up runs (default 15; quick 3)")
    parser.add_argument("--repeat", type=int, help="throughput repeats (default 3; quick 1)")
    parser.add_argument("--rebuild", action="store_true", help="build the corpus again")
    parser.add_argument("--output", type=Path, default=BENCH / "results.md")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 15)
    warmups = 1 if args.quick else 2
    repeat = args.repeat or (1 if args.quick else 3)

    py = sys.executable
    script = shutil.which("llmpath", path=str(Path(py).parent)) or shutil.which("llmpath")
    if script is None:
        print("llmpath is not installed next to this interpreter", file=sys.stderr)
        return 2
    env = dict(os.environ, LLMPATH_OFFLINE="1")
    from llmcli.models import store

    os.environ["LLMPATH_HOME"] = env["LLMPATH_HOME"] = str(store.home())
    models = store.models_dir()
    for name in ("gpt2", "smollm2"):
        if not (models / name / "tokenizer.json").is_file():
            print(f"the store {store.home()} lacks {name}: llmpath pull {name}", file=sys.stderr)
            return 2

    report = Report()
    started = time.time()
    load_before = os.getloadavg()
    if args.rebuild or not CORPUS.is_file():
        print("building the corpus:", build_corpus(CORPUS), flush=True)
    # Slices: the first part of the corpus, cut after a line. --quick takes a 3 MB one
    # for the corpus.
    sizes = [SLICE_BYTES, CORPUS.stat().st_size // 2]
    if args.quick:
        sizes = [SLICE_BYTES // 10, SLICE_BYTES // 2, SLICE_BYTES]
    slices = [DATA / f"corpus-{size // 1000}kb.txt" for size in sizes]
    for size, path in zip(sizes, slices, strict=True):
        write_slice(CORPUS, path, size)
    big = slices.pop() if args.quick else CORPUS

    import tiktoken
    import tokenizers

    report.note(
        f"Run {datetime.date.today().isoformat()}{' (--quick)' if args.quick else ''}: "
        f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
        f"tiktoken {tiktoken.__version__}, tokenizers {tokenizers.__version__}; "
        f"load average at start {load_before[0]:.2f}.\n"
    )
    report.note(f"Corpus: {big.name}, {big.stat().st_size / MB:.1f} MB. MB = 10^6 bytes.\n")
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        startup(report, py, script, env, runs, warmups)
        throughput_gpt2(report, py, script, env, big, models, repeat, Path(tmp))
        throughput_smollm2(report, py, script, env, big, models, repeat, Path(tmp))
        memory(report, py, script, env, [*slices, big])
    load_after = os.getloadavg()
    report.note(
        f"Load average at the end {load_after[0]:.2f}; the whole run took "
        f"{time.time() - started:.0f} s."
    )
    return report.finish(args.output)


if __name__ == "__main__":
    sys.exit(main())
