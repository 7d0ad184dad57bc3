"""What the bench scripts share: markdown tables, notes and checks, and a measured child run."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

K = TypeVar("K")


@dataclass
class Report:
    sections: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def table(self, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        text = "\n".join(lines) + "\n"
        print("\n" + text, flush=True)
        self.sections.append(text)

    def note(self, text: str) -> None:
        print(text, flush=True)
        self.sections.append(text + "\n")

    def check(self, ok: bool, what: str) -> bool:
        print(f"  check: {what}: {'ok' if ok else 'FAILED'}", flush=True)
        if not ok:
            self.failures.append(what)
        return ok

    def note_failures(self) -> None:
        """A note that lists the failed checks, if any failed."""
        if self.failures:
            self.note("\nFAILED checks:\n" + "\n".join(f"- {f}" for f in self.failures))

    def finish(self, output: Path) -> int:
        """Note the failed checks and write every section to ``output``; the exit status."""
        self.note_failures()
        output.write_text("\n".join(self.sections), encoding="utf-8")
        print(f"\nwritten to {output}")
        return 1 if self.failures else 0


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def spread(values: Sequence[float], unit: str = " s", digits: int = 2) -> str:
    """The median of ``values``, and with two or more their min-max in brackets."""
    median = f"{statistics.median(values):.{digits}f}{unit}"
    if len(values) < 2:
        return median
    return f"{median} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def warm_cache(path: Path) -> None:
    """Read a file once, so that every timed run finds it in the page cache."""
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


# Runs a command and writes its wall time, CPU time and peak RSS to a file. A small
# process of its own: a child's peak RSS starts at its parent's size when it starts.
MEASURE = """
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as fh:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
               "maxrss_kb": usage.ru_maxrss}, fh)
sys.exit(code)
"""


@dataclass
class Run:
    """One command in a fresh process: wall and CPU seconds, peak RSS, and the load then."""

    wall: float
    cpu: float
    maxrss_mb: float
    load: float  # load average (1 min) when it started


def run_child(
    cmd: Sequence[str], env: dict[str, str], *, cwd: Path | None = None, log: Path | None = None
) -> Run:
    """Run ``cmd`` in a fresh process (in ``cwd`` if given); its wall time, CPU time, peak RSS.

    Without ``log``, its stdout goes to /dev/null, and if it fails the error quotes the
    end of its stderr. With ``log``, its stdout and stderr both go to that file, and if it
    fails the error names the first four words of ``cmd`` and quotes the end of the log.
    """
    load = os.getloadavg()[0]
    stderr = subprocess.PIPE if log is None else subprocess.STDOUT
    with tempfile.TemporaryDirectory() as tmp, open(log or os.devnull, "wb") as out:
        result = Path(tmp) / "run.json"
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, str(result), *cmd],
            env=env, cwd=cwd, stdout=out, stderr=stderr,
        )  # fmt: skip
        if done.returncode != 0:
            if log is None:
                raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.decode()[-500:]}")
            tail = log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{tail}")
        got = json.loads(result.read_text())
    return Run(got["wall"], got["cpu"], got["maxrss_kb"] / 1024, load)


def run_round(
    commands: Mapping[K, Sequence[str]],
    env: dict[str, str],
    report: Report,
    r: int,
    what: str = "",
) -> Iterator[tuple[K, Run]]:
    """Round ``r`` of a comparison: each command run once by ``run_child``, in the order
    given in even rounds and reversed in odd ones, so that none goes first every time.
    ``(key, run)`` for each that succeeded; a failure is a failed check in ``report``."""
    keys = list(commands)
    for key in keys if r % 2 == 0 else keys[::-1]:
        try:
            got = run_child(commands[key], env)
        except RuntimeError as exc:
            report.check(False, f"{what}{exc}")
            continue
        yield key, got


def llmpath_script() -> str:
    """The ``llmpath`` script installed next to this Python, else the one on PATH; where
    there is none, the run ends with exit status 2."""
    found = shutil.which("llmpath", path=str(Path(sys.executable).parent))
    found = found or shutil.which("llmpath")
    if found is None:
        print("llmpath is not installed next to this interpreter", file=sys.stderr)
        raise SystemExit(2)
    return found


def load_note(report: Report, loads: list[float], started: float) -> None:
    """The note that ends a comparison: the load averages seen before each command (and
    now), and how long the run took since ``started`` (``time.time()``)."""
    loads.append(os.getloadavg()[0])
    report.note(
        f"Load average (1 min) seen before each command: {min(loads):.2f} to {max(loads):.2f}; "
        f"the whole run took {time.time() - started:.0f} s."
    )
