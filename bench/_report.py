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
