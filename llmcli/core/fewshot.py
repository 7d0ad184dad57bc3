"""Zero-, one- and few-shot prompting, GPT-3 style, and its evaluation.

A prompt is built as lm-evaluation-harness builds one, so that numbers compare
across tools: the instruction, then each example as ``prompt + delimiter + answer``
(``"sea otter => loutre de mer"``), then the query's prompt (``"cheese =>"``), all
joined by a blank line (``"\\n\\n"``). No BOS and no chat template are added unless
the model's tokenizer adds a BOS itself (Gemma's ``<bos>``, as lm-eval does with the
tokenizer's defaults) or they are asked for (``--bos``, ``--chat``).

An item with choices is scored: each choice is the continuation ``delimiter + choice``
and the model's log-likelihood of it ranks the choices (``acc``), also divided by the
choice's length in characters (``acc_norm``) and by its tokens. An item without
choices is answered by generation, which stops at the end of the answer line, and is
right when the answer equals one of the expected ones (ignoring case and the spaces
around it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmcli.core.lm import ChoiceScore, Generation, LanguageModel, Request
from llmcli.core.tasks import Draw, Item, Task
from llmcli.errors import InputError, ModelError, UsageError
from llmcli.models.tokenizer import LoadedTokenizer

SEPARATOR = "\n\n"  # lm-evaluation-harness's fewshot_delimiter


@dataclass
class Style:
    """How a prompt is put together; the defaults are lm-evaluation-harness's."""

    separator: str = SEPARATOR
    bos: bool = False
    chat: bool = False
    stop: tuple[str, ...] = ("\n",)


@dataclass
class Case:
    """One query asked with a given number of shots."""

    task: str
    shots: int
    query: str
    item: Item | None  # the task item asked, when the query is one
    examples: list[Item]
    prompt: str  # the exact text the model reads (BOS text and chat template included)
    ids: list[int] = field(default_factory=list)
    delimiter: str = " "
    index: int = 0  # the query's number
    free_choices: tuple[str, ...] | None = None  # a free query's choices (no right one)
    draw: str = "lm-eval"  # how the examples were drawn (llmcli.core.tasks.Draw)

    @property
    def choices(self) -> tuple[str, ...] | None:
        return self.item.choices if self.item is not None else self.free_choices

    @property
    def expected(self) -> list[str] | None:
        return list(self.item.outputs) if self.item is not None else None

    def record(self, model: str | None = None) -> dict[str, Any]:
        """The fields every record of this prompt starts with (``model`` second, if given)."""
        row: dict[str, Any] = {"task": self.task}
        if model is not None:
            row["model"] = model
        row.update(shots=self.shots, draw=self.draw, query=self.query,
                   examples=[e.input for e in self.examples], prompt=self.prompt,
                   prompt_tokens=len(self.ids))  # fmt: skip
        return row


@dataclass
class Outcome:
    case: Case
    completion: str | None = None  # generation
    stopped: str | None = None
    scores: list[ChoiceScore] | None = None  # scoring

    @property
    def prediction(self) -> str | None:
        """What the model answered: the completion, or the most likely choice (acc)."""
        if self.scores is not None:
            return max(self.scores, key=lambda s: s.logprob).choice
        return self.completion.strip() if self.completion is not None else None

    @property
    def prediction_norm(self) -> str | None:
        if self.scores is None:
            return self.prediction
        return max(self.scores, key=lambda s: s.per_char).choice

    @property
    def correct(self) -> bool | None:
        expected = self.case.expected
        if expected is None or self.prediction is None:
            return None
        if self.scores is not None:
            return self.prediction == expected[0]
        return matches(self.prediction, expected)

    @property
    def correct_norm(self) -> bool | None:
        if self.scores is None or self.case.expected is None:
            return self.correct
        return self.prediction_norm == self.case.expected[0]

    def probabilities(self) -> list[float]:
        """Each choice's share of the probability the choices hold together."""
        if not self.scores:
            return []
        top = max(s.logprob for s in self.scores)
        weights = [math.exp(s.logprob - top) for s in self.scores]
        total = math.fsum(weights)
        return [w / total for w in weights]

    def to_dict(self, model: str) -> dict[str, Any]:
        row = self.case.record(model)
        row.update(completion=self.completion, prediction=self.prediction,
                   expected=self.case.expected, correct=self.correct)  # fmt: skip
        if self.scores is not None:
            shares = self.probabilities()
            row["correct_norm"] = self.correct_norm
            row["scores"] = [
                {
                    "choice": s.choice,
                    "continuation": s.continuation,
                    "tokens": s.tokens,
                    "logprob": s.logprob,
                    "logprob_per_char": s.per_char,
                    "logprob_per_token": s.per_token,
                    "probability": math.exp(s.logprob),
                    "share": share,
                    "greedy": s.greedy,
                }
                for s, share in zip(self.scores, shares)
            ]
        else:
            row["stopped"] = self.stopped
        return row


def matches(answer: str, expected: Sequence[str]) -> bool:
    """Exact match, ignoring case and the spaces around the answer."""
    got = " ".join(answer.split()).casefold()
    return any(got == " ".join(e.split()).casefold() for e in expected)


def tokenizer_adds_bos(tok: LoadedTokenizer) -> bool:
    """Whether the tokenizer's own template puts a token before the text (Gemma's <bos>)."""
    probe = tok.hf.encode("a", add_special_tokens=True).ids
    bare = tok.hf.encode("a", add_special_tokens=False).ids
    return len(probe) > len(bare) and probe[-len(bare) :] == bare


# --- prompts -----------------------------------------------------------------------


class PromptBuilder:
    """Turns (task, examples, query) into the exact prompt text and its token IDs."""

    def __init__(self, task: Task, tok: LoadedTokenizer, style: Style):
        self.task = task
        self.tok = tok
        self.style = style
        self._chat_template: Any = None
        if style.chat:
            self._chat_template = load_chat_template(tok)

    def text(self, examples: Sequence[Item], query: str) -> tuple[str, str]:
        """(prompt text, delimiter before the answer)."""
        template = self.task.template
        if self.style.chat:
            messages: list[dict[str, str]] = []
            if self.task.instruction:
                messages.append({"role": "system", "content": self.task.instruction})
            for e in examples:
                messages.append({"role": "user", "content": template.prompt(e.input)})
                messages.append({"role": "assistant", "content": e.output})
            messages.append({"role": "user", "content": template.prompt(query)})
            return render_chat(self._chat_template, self.tok, messages), ""
        parts = [self.task.instruction] if self.task.instruction else []
        parts += [template.example(e) for e in examples]
        parts.append(template.prompt(query))
        text = self.style.separator.join(parts)
        if self.style.bos:
            text = self._bos_text() + text
        return text, template.delimiter

    def _bos_text(self) -> str:
        token_id = self.tok.bos_id if self.tok.bos_id is not None else self.tok.eos_id
        if token_id is None:
            raise ModelError(f"{self.tok.label} has no BOS token to put first (--bos)")
        return self.tok.token(token_id)

    def ids(self, text: str) -> list[int]:
        # Special tokens written in the text (<bos>, <|im_start|>) are read as themselves.
        return list(self.tok.hf.encode(text, add_special_tokens=False).ids)


def load_chat_template(tok: LoadedTokenizer) -> Any:
    """The model's chat template (``chat_template.jinja`` or ``tokenizer_config.json``)."""
    source = None
    path = tok.folder / "chat_template.jinja"
    if path.is_file():
        source = path.read_text(encoding="utf-8")
    else:
        value = tok.config.get("chat_template")
        if isinstance(value, str):
            source = value
        elif isinstance(value, list):  # named templates: take "default"
            for entry in value:
                if isinstance(entry, dict) and entry.get("name") == "default":
                    source = entry.get("template")
    if not source:
        raise UsageError(f"{tok.label} has no chat template (it is not an instruct model); "
                         "drop --chat")  # fmt: skip
    try:
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as exc:  # pragma: no cover - jinja2 comes with torch
        raise ModelError("--chat needs the jinja2 package") from exc

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(value: Any, indent: int | None = None) -> str:
        return json.dumps(value, ensure_ascii=False, indent=indent)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(source)
    except TemplateError as exc:
        raise ModelError(f"the chat template of {tok.label} does not parse: {exc}") from exc


def render_chat(template: Any, tok: LoadedTokenizer, messages: list[dict[str, str]]) -> str:
    from jinja2.exceptions import TemplateError

    def name(token_id: int | None) -> str:
        return tok.token(token_id) if token_id is not None else ""

    try:
        text = template.render(messages=messages, add_generation_prompt=True,
                               bos_token=name(tok.bos_id), eos_token=name(tok.eos_id))  # fmt: skip
        return str(text)
    except TemplateError as exc:
        raise ModelError(f"the chat template of {tok.label} refused the prompt: {exc}") from exc


# --- cases -------------------------------------------------------------------------


def make_cases(
    task: Task,
    builder: PromptBuilder,
    *,
    shots: Sequence[int],
    queries: Sequence[str] | None,
    seed: int | None,
    limit: int | None = None,
    draw: str = "lm-eval",
) -> list[Case]:
    """Every (query, shot count), the queries in order and each one's shot counts together.

    The examples are drawn as ``draw`` says (``llmcli.core.tasks.Draw``): one draw per shot
    count, consumed in the order the queries are asked."""
    asked: list[tuple[str, Item | None]]
    if queries:
        by_input = {i.input: i for i in task.tests} | {
            i.input: i for i in task.items if i.input not in {t.input for t in task.tests}
        }
        asked = [(q, by_input.get(q)) for q in queries]
    else:
        tests = task.tests
        asked = [(i.input, i) for i in (tests[:limit] if limit else tests)]
    for _, item in asked:
        if item is not None and item.choices and item.answer is None:
            # Scored against choices that do not hold its answer, the item could only
            # count as wrong: refuse it rather than count it so.
            raise InputError(
                f"{task.source or task.name}, line {item.line}: the answer {item.output!r} is "
                f"not one of the choices ({', '.join(item.choices)})"
            )
    draws = {count: Draw(task, count, seed, draw) for count in shots}
    cases = []
    for index, (query, item) in enumerate(asked):
        for count in shots:
            examples = draws[count].next(item if item is not None else Item(query, ("",)), index)
            text, delimiter = builder.text(examples, query)
            # A free query is scored against the task's choices, with no right answer.
            cases.append(Case(task.name, count, query, item, examples, text,
                              builder.ids(text), delimiter, index, task.choices, draw))  # fmt: skip
    return cases


def run_cases(
    lm: LanguageModel,
    cases: Sequence[Case],
    *,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    stop: Sequence[str] = ("\n",),
    on_text: Callable[[Case, str], None] | None = None,
    on_done: Callable[[int], None] | None = None,
) -> Iterator[Outcome]:
    """Answer every case: score the ones with choices, generate the others.

    Outcomes come in the order of ``cases``, a window of batches at a time. Within a
    window, prompts of like length run together, so that batches carry little padding.
    """
    window = lm.batch_size * 8
    # A sample's seed follows the case's place in the run, not its batch (see generate).
    place = {id(case): i for i, case in enumerate(cases)}

    def done(n: int) -> None:
        if on_done is not None:
            on_done(n)

    for start in range(0, len(cases), window):
        part = cases[start : start + window]
        outcomes: dict[int, Outcome] = {}
        scored = sorted((c for c in part if c.choices), key=lambda c: len(c.ids))
        if scored:
            requests = [_request(lm, c) for c in scored]
            for case, scores in zip(scored, lm.score(requests, on_batch=done)):
                outcomes[id(case)] = Outcome(case, scores=scores)
        generated = sorted((c for c in part if not c.choices), key=lambda c: len(c.ids))
        if generated:

            def relay(row: int, text: str, rows: list[Case] = generated) -> None:
                if on_text is not None:
                    on_text(rows[row], text)

            gens: list[Generation] = lm.generate(
                [c.ids for c in generated], max_new_tokens=max_new_tokens, stop=stop,
                temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                keys=[place[id(c)] for c in generated], on_text=relay, on_batch=done,
            )  # fmt: skip
            for case, gen in zip(generated, gens):
                outcomes[id(case)] = Outcome(case, completion=gen.text, stopped=gen.stopped)
        for case in part:
            yield outcomes[id(case)]


def _request(lm: LanguageModel, case: Case) -> Request:
    assert case.choices  # only cases with choices are scored
    conts = []
    for choice in case.choices:
        context, cont = lm.split_pair(case.prompt, case.delimiter + choice)
        conts.append(cont)
    return Request(context, conts, list(case.choices), [case.delimiter + c for c in case.choices])


# --- evaluation --------------------------------------------------------------------


@dataclass
class ShotScore:
    shots: int
    n: int
    correct: int
    correct_norm: int | None  # scoring tasks: acc_norm

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def accuracy_norm(self) -> float | None:
        if self.correct_norm is None:
            return None
        return self.correct_norm / self.n if self.n else 0.0

    @property
    def stderr(self) -> float:
        """Standard error of the accuracy (lm-eval's ``acc_stderr``: sample variance)."""
        if self.n < 2:
            return 0.0
        p = self.accuracy
        return math.sqrt(p * (1 - p) / (self.n - 1))


def summarize(outcomes: Sequence[Outcome], shots: Sequence[int]) -> list[ShotScore]:
    out = []
    for count in shots:
        rows = [o for o in outcomes if o.case.shots == count and o.correct is not None]
        scoring = any(o.scores is not None for o in rows)
        out.append(
            ShotScore(
                count,
                len(rows),
                sum(1 for o in rows if o.correct),
                sum(1 for o in rows if o.correct_norm) if scoring else None,
            )
        )
    return out


def read_queries(lines: str) -> list[str]:
    return [line.strip() for line in lines.splitlines() if line.strip()]


def describe_task(task: Task) -> dict[str, Any]:
    return {
        "task": task.name,
        "description": task.description,
        "kind": "choice" if task.multiple_choice else "generation",
        "examples": len(task.examples) if task.has_example_split else 0,
        "tests": len(task.tests),
        "source": task.source,
    }
