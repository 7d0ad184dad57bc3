"""What the bench scripts print and write: markdown tables, notes and checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


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


def run_child(cmd: Sequence[str], env: dict[str, str], *, stdout: Any = None) -> Run:
    """Run ``cmd`` (stdout to /dev/null unless given); its wall time, CPU time, peak RSS."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "run.json"
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, str(result), *cmd],
            env=env, stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.decode()[-500:]}")
        got = json.loads(result.read_text())
    return Run(got["wall"], got["cpu"], got["maxrss_kb"] / 1024, load)
