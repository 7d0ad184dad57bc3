"""Tokenization benchmark of llmpath: start-up, throughput and memory, in one run.

    python bench/bench_tokenize.py            # the full run (several minutes)
    python bench/bench_tokenize.py --quick    # a small smoke run

Run it with the interpreter llmpath is installed in; every command below runs with
that same interpreter. The store (``$LLMPATH_HOME``) must hold gpt2 and smollm2;
nothing is downloaded (``LLMPATH_OFFLINE=1``).

a) start-up: median wall time of ``llmpath --help``, ``llmpath tokenize TEXT`` and
   the anchor ``python -c "import typer, rich, tokenizers"``, stdout to a pipe, with
   the bytecode cache a user's Python keeps (PYTHONDONTWRITEBYTECODE unset; the
   warm-ups write it); and a check that neither llmpath command imports torch or
   transformers.
b) throughput on two corpora, one line at a time: the standard library's ``.py``
   sources (about 30 MB, built once into bench/data/corpus.txt) and a Unicode-heavy
   text (19 MB of words in a dozen scripts, emoji, combining marks, runs of spaces:
   bench/data/unicode.txt, made by a seeded generator). For gpt2 the anchor is the
   plain serial loop a user would write, ``[enc.encode_ordinary(line) for line in
   lines]`` (tiktoken's ``encode_ordinary_batch`` is slower than that on short lines);
   for smollm2, tokenizers' ``encode_batch`` in batches of 10,000 lines. Against them:
   ``llmpath tokenize -f ids`` end to end (a process: start-up, reading, writing),
   whose IDs are checked line for line, and for reference the engines themselves.
   Then the adversarial strings of tests/adversarial.py (30,000, repeated to more than
   the bulk engine's threshold), whose IDs llmpath must give as tiktoken (with its
   special token) and tokenizers do.
c) memory: peak RSS of ``llmpath tokenize -f ids`` and ``-f jsonl`` on the first
   3 MB of the corpus, its first half and all of it: streamed, it should not grow.

The tables are printed and written to bench/results.md (``--only startup``: part a
alone, to bench/results-startup.md). Exit status 1 if a check
fails (an import of torch/transformers, IDs that differ, a command that fails).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _report import Report, llmpath_script, run_child

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
CORPUS = DATA / "corpus.txt"
SLICE_BYTES = 3_000_000
TEXT = "It's a blue sundress."
FORBIDDEN = ("torch", "transformers")
STARTUP_TARGET = 2.5
HELP_TARGET = 2.0
SPEED_TARGET = 5.0  # llmpath -f ids at least this times the anchor's rate
UNICODE = DATA / "unicode.txt"
UNICODE_BYTES = 19_000_000
BATCH_LINES = 10_000
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


SCRIPTS = (
    "abcdefghijklmnopqrstuvwxyz", "àáâãäåæçèéêëìíîïñòóôõöùúûüýÿœšžłńśźżčďěňřťůő",
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя", "αβγδεζηθικλμνξοπρστυφχψω",
    "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年",
    "あいうえおかきくけこさしすせそたちつてとなにぬねのアイウエオカキクケコ",
    "가나다라마바사아자차카타파하국어한글", "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "अआइईउऊएऐओऔकखगघचछजझटठडढणतथदधनपफबभमयरलवशसह", "אבגדהוזחטיכלמנסעפצקרשת",
    "กขคงจฉชซญดตถทนบปผพฟมยรลวศสหอ", "ሀለሐመሠረሰሸቀበተቸኀነኘአከኸወዐዘዠየደጀገጠጨጰጸፀፈፐ",
)  # fmt: skip
EXTRA = ("🙂", "👩‍💻", "🇫🇷", "e\u0301", "\u00a0", "  ", "\t", "—", "…", "«", "»", "'s", "123")


def build_unicode_corpus(path: Path, size: int) -> str:
    """``size`` bytes of lines of words drawn from many scripts, the same every time."""
    import random

    rnd = random.Random(2026)
    lines, nbytes = [], 0
    while nbytes < size:
        alphabet = rnd.choice(SCRIPTS)
        words = []
        for _ in range(rnd.randint(3, 18)):
            word = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 9)))
            if rnd.random() < 0.15:
                word += rnd.choice(EXTRA)
            if rnd.random() < 0.1:
                alphabet = rnd.choice(SCRIPTS)  # scripts mixed within a line
            words.append(word)
        line = " ".join(words) + rnd.choice((".", ",", "!", "?", "", ""))
        lines.append(line)
        nbytes += len(line.encode("utf-8")) + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return f"{len(lines):,} lines, {nbytes / MB:.1f} MB"


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
    # As on a user's machine, Python keeps the modules' bytecode: the warm-ups write it.
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    commands = [
        ('python -c "import typer, rich, tokenizers" (anchor)',
         [py, "-c", "import typer, rich, tokenizers"]),
        ("llmpath --help", [py, script, "--help"]),
        (f'llmpath tokenize "{TEXT}"', [py, script, "tokenize", TEXT]),
        *[(f'llmpath tokenize "{TEXT}" -f {f}', [py, script, "tokenize", TEXT, "-f", f])
          for f in ("ids", "json", "table")],
    ]  # fmt: skip
    # Round-robin: each round runs every command once, so a drift of the machine's
    # speed falls on all of them alike.
    times: list[list[float]] = [[] for _ in commands]
    failed: set[int] = set()
    for i in range(warmups + runs):
        for c, (label, cmd) in enumerate(commands):
            if c in failed:
                continue
            start = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True)  # stdout: a pipe
            if i >= warmups:
                times[c].append(time.perf_counter() - start)
            if done.returncode != 0:
                report.check(False, f"{label} exits 0 ({done.stderr.decode()[-300:]})")
                failed.add(c)
    medians = [statistics.median(t) if t and c not in failed else float("nan")
               for c, t in enumerate(times)]  # fmt: skip
    anchor = medians[0]
    rows = []
    for i, ((label, _), median) in enumerate(zip(commands, medians, strict=True)):
        ratio = median / anchor
        limit = HELP_TARGET if label == "llmpath --help" else STARTUP_TARGET
        met = "met" if ratio <= limit else "NOT met"
        target = f"≤ {limit}x: {met}" if i else ""
        rows.append([f"`{label}`", f"{median * 1000:.0f} ms", f"{ratio:.2f}x", target])
    report.table(
        f"Start-up (median of {runs} rounds after {warmups} warm-ups, each round every "
        "command once, stdout to a pipe)",
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
    import fastokens
    import tiktoken
    from tokenizers import Tokenizer

    from llmcli.models.convert import GPT2_PATTERN, GPT2_SPECIAL, load_tiktoken_ranks

    _, lines = read_lines(corpus)
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
    fast = fastokens.Tokenizer.from_file(str(models / "gpt2" / "tokenizer.json"))

    t_loop, expected = median_time(lambda: [enc.encode_ordinary(line) for line in lines], repeat)
    expected_text = ids_text(expected)
    del expected
    t_tik, got = median_time(lambda: enc.encode_ordinary_batch(lines), repeat)
    tik_same = ids_text(got) == expected_text
    t_hf, got = median_time(lambda: _batched_hf(hf, lines), repeat)
    hf_same = ids_text(got) == expected_text
    t_fast, got = median_time(lambda: _fastokens_lines(fast, lines), repeat)
    fast_same = ids_text(got) == expected_text
    del got

    t_llm, cpu_llm, same = _llmpath_ids(py, script, env, corpus, "gpt2", tmp, repeat,
                                        expected_text)  # fmt: skip
    report.check(same, f"llmpath -f ids gives tiktoken's IDs, line for line (gpt2, {corpus.name})")
    rows = [
        _row("plain serial loop `[enc.encode_ordinary(line) for line in lines]` (anchor)",
             t_loop, t_loop, nbytes, None),
        _row("tiktoken `encode_ordinary_batch(lines)`", t_tik, t_loop, nbytes, tik_same),
        _row(f"tokenizers `encode_batch` in batches of {BATCH_LINES:,} lines", t_hf, t_loop,
             nbytes, hf_same),
        _row("fastokens `encode_batch_flat(lines)` (the engine alone)", t_fast, t_loop, nbytes,
             fast_same),
        _row(f"`llmpath tokenize -f ids --file {corpus.name} -o OUT` (end to end, CPU "
             f"{cpu_llm:.1f} s)", t_llm, t_loop, nbytes, same),
    ]  # fmt: skip
    report.table(
        f"Throughput, gpt2, {corpus.name}: {nbytes / MB:.1f} MB, {len(lines):,} lines "
        f"(median of {repeat})",
        ["what", "seconds", "MB/s", "vs the serial loop", "IDs = the loop's"], rows,
    )  # fmt: skip
    _verdict(report, "gpt2", corpus, t_loop / t_llm, "the plain serial tiktoken loop")


def _row(what: str, seconds: float, anchor: float, nbytes: int, same: bool | None) -> list[str]:
    check = "(reference)" if same is None else ("yes" if same else "NO")
    return [what, f"{seconds:.2f}", rate(nbytes, seconds), f"{anchor / seconds:.2f}x", check]


def _verdict(report: Report, model: str, corpus: Path, ratio: float, anchor: str) -> None:
    met = "met" if ratio >= SPEED_TARGET else "NOT met"
    report.note(f"Target, {model} on {corpus.name}: llmpath -f ids at least {SPEED_TARGET:.0f}x "
                f"{anchor}: {ratio:.2f}x, {met}.\n")  # fmt: skip


def _batched_hf(hf: Any, lines: list[str]) -> list[list[int]]:
    out: list[list[int]] = []
    for start in range(0, len(lines), BATCH_LINES):
        batch = lines[start : start + BATCH_LINES]
        out += [e.ids for e in hf.encode_batch(batch, add_special_tokens=False)]
    return out


def _fastokens_lines(fast: Any, lines: list[str]) -> list[list[int]]:
    import numpy as np

    ids, offsets = fast.encode_batch_flat(lines)
    flat = np.frombuffer(ids, np.uint32).tolist()
    cuts = np.frombuffer(offsets, np.uint64).tolist()
    return [flat[a:b] for a, b in zip(cuts, cuts[1:])]


def _llmpath_ids(py, script, env, corpus, model, tmp, repeat, expected_text):
    """llmpath -f ids of ``corpus``: median wall and CPU seconds, and whether the IDs are
    ``expected_text``."""
    out = tmp / f"{model}.ids"
    cmd = [py, script, "tokenize", "-m", model, "-f", "ids", "--file", str(corpus),
           "-o", str(out)]  # fmt: skip
    runs = [run_child(cmd, env) for _ in range(repeat)]
    same = out.read_text(encoding="utf-8") == expected_text
    out.unlink()
    return statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs), same


def throughput_smollm2(report, py, script, env, corpus: Path, models: Path, repeat: int, tmp: Path):
    import fastokens
    from tokenizers import Tokenizer

    _, lines = read_lines(corpus)
    nbytes = corpus.stat().st_size
    hf = Tokenizer.from_file(str(models / "smollm2" / "tokenizer.json"))
    hf.no_truncation()
    hf.no_padding()
    fast = fastokens.Tokenizer.from_file(str(models / "smollm2" / "tokenizer.json"))
    t_batch, expected = median_time(lambda: _batched_hf(hf, lines), repeat)
    expected_text = ids_text(expected)
    del expected
    t_whole, got = median_time(
        lambda: [e.ids for e in hf.encode_batch_fast(lines, add_special_tokens=False)], repeat
    )
    whole_same = ids_text(got) == expected_text
    try:
        t_fast, got = median_time(lambda: _fastokens_lines(fast, lines), repeat)
        fast_same: bool | None = ids_text(got) == expected_text
    except ValueError:  # a byte SmolLM2's vocabulary has no token for
        t_fast, fast_same = math.nan, False
    del got
    t_llm, cpu_llm, same = _llmpath_ids(py, script, env, corpus, "smollm2", tmp, repeat,
                                        expected_text)  # fmt: skip
    report.check(same, f"llmpath -f ids gives tokenizers' IDs, line for line (smollm2, "
                 f"{corpus.name})")  # fmt: skip
    rows = [
        _row(f"tokenizers `encode_batch` in batches of {BATCH_LINES:,} lines (anchor)", t_batch,
             t_batch, nbytes, None),
        _row("tokenizers `encode_batch_fast(lines)`, all lines at once", t_whole, t_batch,
             nbytes, whole_same),
        _row("fastokens `encode_batch_flat(lines)` (the engine alone)", t_fast, t_batch, nbytes,
             fast_same),
        _row(f"`llmpath tokenize -m smollm2 -f ids --file {corpus.name} -o OUT` (end to end, "
             f"CPU {cpu_llm:.1f} s)", t_llm, t_batch, nbytes, same),
    ]  # fmt: skip
    report.table(
        f"Throughput, smollm2, {corpus.name}: {nbytes / MB:.1f} MB (median of {repeat})",
        ["what", "seconds", "MB/s", "vs encode_batch", "IDs = encode_batch's"], rows,
    )  # fmt: skip
    _verdict(report, "smollm2", corpus, t_batch / t_llm, "tokenizers' encode_batch")


def adversarial(report, py, script, env, models: Path, tmp: Path):
    """The adversarial strings, repeated past the bulk engine's threshold: llmpath's IDs
    against tiktoken (allowed_special="all") and tokenizers, and its time."""
    sys.path.insert(0, str(BENCH.parent / "tests"))
    from adversarial import strings
    from tokenizers import Tokenizer

    from llmcli.models.tokenizer import BULK_THRESHOLD, LoadedTokenizer

    once = [t.replace("\n", " ").replace("\r", " ") for t in strings()]
    lines = list(once)
    while sum(len(t.encode("utf-8")) + 1 for t in lines) < 1.2 * BULK_THRESHOLD:
        lines += once
    path = tmp / "adversarial.txt"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    rows = []
    for model in ("gpt2", "smollm2"):
        tok = LoadedTokenizer.from_folder(model, models / model)
        if tok.tiktoken is not None:
            expected = [tok.tiktoken.encode(t, allowed_special="all") for t in once]
        else:
            hf = Tokenizer.from_file(str(models / model / "tokenizer.json"))
            expected = [e.ids for e in hf.encode_batch_fast(once, add_special_tokens=False)]
        expected_text = ids_text(expected * (len(lines) // len(once)))
        t_llm, _, same = _llmpath_ids(py, script, env, path, model, tmp, 1, expected_text)
        report.check(same, f"llmpath -f ids on the adversarial strings: the reference's IDs "
                     f"({model})")  # fmt: skip
        rows.append([model, f"{len(lines):,}", f"{path.stat().st_size / MB:.1f} MB",
                     f"{t_llm:.2f} s", "yes" if same else "NO"])  # fmt: skip
    report.table(
        "Adversarial strings (tests/adversarial.py), repeated past the bulk threshold",
        ["model", "lines", "size", "llmpath -f ids (end to end)", "IDs = the reference's"],
        rows,
    )  # fmt: skip


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
    parser.add_argument("--only", choices=("startup",),
                        help="start-up alone (written to bench/results-startup.md)")  # fmt: skip
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = BENCH / ("results-startup.md" if args.only else "results.md")
    runs = args.runs or (3 if args.quick else 15)
    warmups = 1 if args.quick else 2
    repeat = args.repeat or (1 if args.quick else 3)

    py = sys.executable
    script = llmpath_script()
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
    if args.only == "startup":
        report.note(
            f"Run {datetime.date.today().isoformat()} (--only startup): "
            f"{os.cpu_count()} CPUs, {platform.python_implementation()} "
            f"{platform.python_version()}; load average at start {load_before[0]:.2f}.\n"
        )
        startup(report, py, script, env, runs, warmups)
        return report.finish(args.output)
    if args.rebuild or not CORPUS.is_file():
        print("building the corpus:", build_corpus(CORPUS), flush=True)
    if args.rebuild or not UNICODE.is_file():
        print("building the Unicode corpus:", build_unicode_corpus(UNICODE, UNICODE_BYTES))
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
        corpora = [big, UNICODE] if not args.quick else [big]
        for corpus in corpora:
            throughput_gpt2(report, py, script, env, corpus, models, repeat, Path(tmp))
            throughput_smollm2(report, py, script, env, corpus, models, repeat, Path(tmp))
        adversarial(report, py, script, env, models, Path(tmp))
        memory(report, py, script, env, [*slices, big])
    load_after = os.getloadavg()
    report.note(
        f"Load average at the end {load_after[0]:.2f}; the whole run took "
        f"{time.time() - started:.0f} s."
    )
    return report.finish(args.output)


if __name__ == "__main__":
    sys.exit(main())
