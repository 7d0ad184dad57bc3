"""How prompting looks: prompts and answers side by side, accuracy against shots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from llmcli.core.fewshot import Case, Outcome, ShotScore, Style, describe_task, run_cases
from llmcli.core.lm import LanguageModel
from llmcli.core.tasks import Task
from llmcli.models.tokenizer import LoadedTokenizer
from llmcli.render.output import console, open_output, stdout_is_tty, write_json, write_jsonl
from llmcli.render.tokens import visible

BAR = 24


def shots_name(count: int) -> str:
    return {0: "zero-shot", 1: "one-shot"}.get(count, f"{count}-shot")


def _bar(fraction: float, width: int = BAR) -> str:
    filled = max(0.0, min(1.0, fraction)) * width
    whole = int(filled)
    return (
        "█" * whole
        + ("▌" if filled - whole >= 0.5 else "")
        + "·" * (width - whole - (1 if filled - whole >= 0.5 else 0))
    )


def _prompt_text(case: Case) -> Any:
    """The prompt as it is read, dim; line breaks kept, other whitespace as is."""
    from rich.text import Text

    return Text(case.prompt, style="dim")


# --- tasks -------------------------------------------------------------------------


def emit_tasks(tasks: Sequence[Task], fmt: str, output: Path | None) -> None:
    rows = [describe_task(t) | {"instruction": t.instruction, "template": t.template.text}
            for t in tasks]  # fmt: skip
    with open_output(output) as fh:
        if fmt == "jsonl":
            write_jsonl(fh, rows)
        elif fmt == "json":
            write_json(fh, rows)
        else:
            from rich.table import Table

            table = Table(title="built-in tasks (llmpath fewshot -t NAME)", title_justify="left")
            for col in ("task", "kind", "examples", "tests", "what it is"):
                table.add_column(col, justify="right" if col in ("examples", "tests") else "left")
            for row in rows:
                table.add_row(row["task"], row["kind"], str(row["examples"]),
                              str(row["tests"]), row["description"])  # fmt: skip
            console(fh).print(table)


# --- prompts only ------------------------------------------------------------------


def _prompt_row(case: Case) -> dict[str, Any]:
    row = case.record() | {"ids": case.ids}
    if case.choices:
        row["continuations"] = [case.delimiter + c for c in case.choices]
    else:
        row["expected"] = case.expected
    return row


def emit_prompts(cases: Sequence[Case], fmt: str, output: Path | None) -> None:
    with open_output(output) as fh:
        if fmt == "jsonl":
            write_jsonl(fh, (_prompt_row(c) for c in cases))
        elif fmt == "json":
            write_json(fh, [_prompt_row(c) for c in cases])
        else:
            from rich.panel import Panel
            from rich.text import Text

            out = console(fh)
            for case in cases:
                body = Text(case.prompt)
                if case.choices:
                    body.append("\n")
                    for c in case.choices:
                        body.append(f"\n  + {visible(case.delimiter + c)}", style="cyan")
                title = (f"{case.task} · {case.query!r} · {shots_name(case.shots)} · "
                         f"{len(case.ids)} tokens")  # fmt: skip
                out.print(Panel(body, title=title, title_align="left", expand=False))


# --- answers -----------------------------------------------------------------------


def _answer_cell(case: Case, outcome: Outcome | None, partial: str) -> Any:
    cell = _prompt_text(case)
    if case.choices:
        if outcome is None or outcome.scores is None:
            cell.append("\n\n  scoring...", style="italic")
            return cell
        shares = outcome.probabilities()
        best = outcome.prediction
        cell.append("\n")
        width = max(len(c) for c in case.choices)
        for score, share in zip(outcome.scores, shares):
            mark = "▶" if score.choice == best else " "
            style = "bold" if score.choice == best else ""
            if case.expected and score.choice == case.expected[0]:
                style += " green" if score.choice == best else " yellow"
            cell.append(f"\n{mark} {score.choice:<{width}} ", style=style.strip())
            cell.append(f"{share * 100:5.1f}% {_bar(share, 10)} ", style="cyan")
            cell.append(f"log p {score.logprob:.2f}", style="dim")
        cell.append("\n")
    else:
        done = outcome is not None and outcome.completion is not None
        text = outcome.completion if done and outcome is not None else partial
        cell.append(text if text else "", style="bold reverse")
        if outcome is not None and not (outcome.completion or "").strip():
            cell.append(" (nothing before the line ended)" if outcome.stopped == "stop"
                        else " (no answer)", style="italic")  # fmt: skip
    if outcome is not None and case.expected is not None:
        if outcome.correct:
            cell.append("\n✓ right", style="bold green")
        else:
            cell.append(f"\n✗ expected {' / '.join(case.expected)}", style="bold red")
    return cell


def _tables(groups: list[list[Case]], done: dict[int, Outcome], partial: dict[int, str],
            model: str) -> Any:  # fmt: skip
    from rich.console import Group
    from rich.table import Table

    parts = []
    for cases in groups:
        first = cases[0]
        title = f"{first.task}: {first.query!r} · {model}"
        table = Table(title=title, title_justify="left", show_lines=True, expand=False)
        for case in cases:
            table.add_column(f"{shots_name(case.shots)} · {len(case.ids)} tokens",
                             overflow="fold", ratio=1)  # fmt: skip
        table.add_row(*(_answer_cell(c, done.get(id(c)), partial.get(id(c), "")) for c in cases))
        parts.append(table)
    return Group(*parts)


def _groups(cases: Sequence[Case]) -> list[list[Case]]:
    groups: dict[tuple[str, int], list[Case]] = {}
    for case in cases:
        groups.setdefault((case.task, case.index), []).append(case)
    return list(groups.values())


def emit_cases(lm: LanguageModel, cases: Sequence[Case], fmt: str, output: Path | None,
               options: dict[str, Any], model: str) -> None:  # fmt: skip
    """Run the cases and show them; on a terminal the answers appear as they are made."""
    if fmt in ("jsonl", "json"):
        outcomes = run_cases(lm, cases, **options)
        with open_output(output) as fh:
            if fmt == "jsonl":
                for outcome in outcomes:
                    write_jsonl(fh, [outcome.to_dict(model)])
                    fh.flush()
            else:
                write_json(fh, [o.to_dict(model) for o in outcomes])
        return
    groups = _groups(cases)
    done: dict[int, Outcome] = {}
    partial: dict[int, str] = {}
    if output is None and stdout_is_tty():
        from rich.live import Live

        out = console()
        with Live(_tables(groups, done, partial, model), console=out,
                  refresh_per_second=12, transient=False) as live:  # fmt: skip

            def on_text(case: Case, text: str) -> None:
                partial[id(case)] = partial.get(id(case), "") + text
                live.update(_tables(groups, done, partial, model))

            for outcome in run_cases(lm, cases, on_text=on_text, **options):
                done[id(outcome.case)] = outcome
                live.update(_tables(groups, done, partial, model))
        return
    for outcome in run_cases(lm, cases, **options):
        done[id(outcome.case)] = outcome
    with open_output(output) as fh:
        console(fh).print(_tables(groups, done, partial, model))


# --- evaluation --------------------------------------------------------------------


@dataclass
class EvalReport:
    task: Task
    outcomes: list[Outcome]
    summary: list[ShotScore]


def _summary_rows(reports: Sequence[EvalReport], model: str, style: Style) -> list[dict[str, Any]]:
    rows = []
    for report in reports:
        for s in report.summary:
            rows.append({
                "task": report.task.name, "model": model, "shots": s.shots, "n": s.n,
                "correct": s.correct, "accuracy": s.accuracy, "stderr": s.stderr,
                "accuracy_norm": s.accuracy_norm,
                "metric": "acc" if s.correct_norm is not None else "exact_match",
                "bos": style.bos, "chat": style.chat, "draw": _draw_of(report),
            })  # fmt: skip
    return rows


def _draw_of(report: EvalReport) -> str:
    return report.outcomes[0].case.draw if report.outcomes else "lm-eval"


def emit_eval(reports: Sequence[EvalReport], model: str, fmt: str, output: Path | None,
              style: Style) -> None:  # fmt: skip
    rows = _summary_rows(reports, model, style)
    if fmt == "png":
        with open_output(output, binary=True) as fh:
            draw_png(reports, model, fh)
        return
    with open_output(output) as fh:
        if fmt == "jsonl":
            write_jsonl(fh, (o.to_dict(model) | {"eval": True} for r in reports
                             for o in r.outcomes))  # fmt: skip
        elif fmt == "json":
            write_json(fh, {
                "model": model, "summary": rows,
                "items": [o.to_dict(model) for r in reports for o in r.outcomes],
            })  # fmt: skip
        else:
            _eval_table(fh, reports, model)


def _eval_table(fh: IO[str], reports: Sequence[EvalReport], model: str) -> None:
    from rich.table import Table

    table = Table(title=f"{model}: accuracy against shots", title_justify="left")
    table.add_column("task")
    table.add_column("shots", justify="right")
    table.add_column("right", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("±", justify="right", style="dim")
    table.add_column("", no_wrap=True)
    table.add_column("acc_norm", justify="right")
    for report in reports:
        for i, s in enumerate(report.summary):
            norm = f"{s.accuracy_norm * 100:.1f}%" if s.accuracy_norm is not None else ""
            table.add_row(
                report.task.name if i == 0 else "",
                str(s.shots),
                f"{s.correct}/{s.n}",
                f"{s.accuracy * 100:.1f}%",
                f"{s.stderr * 100:.1f}",
                _bar(s.accuracy),
                norm,
                end_section=i == len(report.summary) - 1,
            )
    out = console(fh)
    out.print(table)
    kinds = {"acc" if any(o.scores for o in r.outcomes) else "em" for r in reports}
    notes = []
    if "em" in kinds:
        notes.append("generation: exact match of the answer line (case and spaces ignored)")
    if "acc" in kinds:
        notes.append("choices: the most likely answer (acc), or per character (acc_norm)")
    draws = sorted({_draw_of(r) for r in reports})
    notes.append(f"examples drawn {' and '.join(draws)}-style (--draw)")
    out.print("[dim]" + "; ".join(notes) + "; ± is the standard error[/]")


def draw_png(reports: Sequence[EvalReport], model: str, fh: IO[bytes]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for report in reports:
        xs = [s.shots for s in report.summary]
        ys = [s.accuracy * 100 for s in report.summary]
        errs = [s.stderr * 100 for s in report.summary]
        ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=report.task.name)
    shots = sorted({s.shots for r in reports for s in r.summary})
    ax.set_xticks(shots)
    ax.set_xlabel("examples in the prompt (shots)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.set_title(f"{model}: accuracy against shots")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)


# --- next tokens -------------------------------------------------------------------


def emit_next(tok: LoadedTokenizer, lm: LanguageModel, prompt: str, ids: list[int],
              ranked: list[tuple[int, float]], fmt: str, output: Path | None,
              bos: bool, lens: dict[str, Any] | None = None) -> None:  # fmt: skip
    rows = [_next_row(tok, token_id, math.exp(logprob), rank) | {"logprob": logprob}
            for rank, (token_id, logprob) in enumerate(ranked, 1)]  # fmt: skip
    lens_rows = _lens_rows(tok, lens) if lens is not None else []
    with open_output(output) as fh:
        if fmt == "jsonl":
            write_jsonl(fh, rows if lens is None else lens_rows)
        elif fmt == "json":
            doc = {"model": lm.loaded.label, "prompt": prompt, "bos": bos, "prompt_ids": ids,
                   "next": rows}  # fmt: skip
            if lens is not None:
                doc["layers"] = lens_rows
            write_json(fh, doc)
        else:
            from rich.table import Table

            shown = visible(prompt if len(prompt) <= 60 else "…" + prompt[-59:])
            table = Table(title=f"after {shown!r}: {lm.loaded.label}, {len(ids)} tokens"
                          f"{' (BOS first)' if bos else ''}", title_justify="left")  # fmt: skip
            table.add_column("#", justify="right")
            table.add_column("next", no_wrap=True)
            table.add_column("id", justify="right")
            table.add_column("probability", justify="right")
            table.add_column("", no_wrap=True)
            table.add_column("log p", justify="right", style="dim")
            top = rows[0]["probability"] if rows else 1.0
            for row in rows:
                table.add_row(str(row["rank"]), visible(row["text"]), str(row["id"]),
                              f"{row['probability'] * 100:.2f}%",
                              _bar(row["probability"] / top if top else 0.0, 20),
                              f"{row['logprob']:.3f}")  # fmt: skip
            out = console(fh)
            if lens is not None:
                out.print(_lens_table(lens_rows, lm.loaded.label))
                check = lens["check"]
                mark = "[green]✓[/]" if check.ok else "[bold red]✗[/]"
                out.print(f"{mark} the lens after the last layer vs the model's own logits: "
                          f"max |Δ| = {check.max_abs_diff:.1e}")  # fmt: skip
            out.print(table)
            covered = sum(r["probability"] for r in rows)
            out.print(f"[dim]these {len(rows)} hold {covered * 100:.1f}% of the probability; "
                      "bars are relative to the first[/]")  # fmt: skip
    if lens is not None and not lens["check"].ok:
        from llmcli.errors import LlmpathError

        raise LlmpathError(
            f"the logit lens after the last layer differs from the model's own logits by "
            f"{lens['check'].max_abs_diff:.1e}"
        )


def _next_row(tok: LoadedTokenizer, token_id: int, p: float, rank: int) -> dict[str, Any]:
    token, text, hexed, special = tok.describe(token_id)
    return {"rank": rank, "id": token_id, "token": token, "text": text, "bytes": hexed,
            "special": special, "probability": p}  # fmt: skip


def _lens_rows(tok: LoadedTokenizer, lens: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per residual: ``layer`` -1 is the embeddings, then each layer's output."""
    out = []
    for row, (ids, probs) in enumerate(zip(lens["ids"], lens["probs"])):
        out.append({"layer": row - 1, "after": "embeddings" if row == 0 else f"layer {row - 1}",
                    "top": [_next_row(tok, int(i), float(p), r)
                            for r, (i, p) in enumerate(zip(ids, probs), 1)]})  # fmt: skip
    return out


def _lens_table(rows: list[dict[str, Any]], model: str) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"logit lens of the last token: {model}'s final norm and unembedding "
                  "after each layer", title_justify="left")  # fmt: skip
    table.add_column("after", no_wrap=True)
    width = len(rows[0]["top"]) if rows else 0
    for k in range(min(width, 5)):
        table.add_column(f"top {k + 1}", no_wrap=True)
    for row in rows:
        cells = []
        for entry in row["top"][:5]:
            p = entry["probability"]
            shade = "bold" if p >= 0.5 else "" if p >= 0.1 else "dim"
            cells.append(Text(f"{visible(entry['text'])[:12]} {p * 100:.0f}%", style=shade))
        table.add_row(row["after"], *cells)
    return table
