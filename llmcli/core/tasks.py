"""Few-shot tasks: an instruction, a template, and items split into examples and tests.

A task file is JSON Lines. An optional first line is the header::

    {"task": "en-fr", "instruction": "Translate English to French:",
     "template": "{input} => {output}", "choices": [...], "shuffle": true}

and every other line an item::

    {"input": "dog", "output": "chien", "split": "example"}
    {"input": "big", "output": ["small", "little"], "split": "test"}     # any is right
    {"input": "Dull.", "answer": 1}                                      # task choices
    {"input": "Which is bigger, ...?", "choices": ["elephant", "mouse"], "answer": 0}

``split`` is ``example`` (may be shown as a shot) or ``test`` (asked). A file with no
``example`` items draws the shots for each test item from the other items, so that no
item is ever shown as its own example. A TSV file holds ``input<TAB>output`` lines.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from llmcli.errors import InputError, UsageError

DEFAULT_TEMPLATE = "{input} => {output}"
DEFAULT_SEED = 1234  # lm-evaluation-harness's default few-shot seed
_TASK_PACKAGE = "llmcli.tasks"


@dataclass(frozen=True)
class Item:
    """One input and what a right answer is."""

    input: str
    outputs: tuple[str, ...]  # acceptable answers; the first is shown in examples
    choices: tuple[str, ...] | None = None  # multiple choice: the answer is outputs[0]
    answer: int | None = None  # index of the right choice
    split: str = "test"
    line: int = 0  # where it came from (for messages)

    @property
    def output(self) -> str:
        return self.outputs[0]


@dataclass
class Template:
    """``"{input} => {output}"``: the prompt text of an item, and what joins the answer."""

    text: str

    def __post_init__(self) -> None:
        if "{input}" not in self.text or "{output}" not in self.text:
            raise UsageError(f"--template {self.text!r} needs both {{input}} and {{output}}")
        if self.text.index("{input}") > self.text.index("{output}"):
            raise UsageError(f"--template {self.text!r}: {{input}} comes before {{output}}")
        if not self.text.endswith("{output}"):
            raise UsageError(f"--template {self.text!r} ends with {{output}}: it is the answer")
        head = self.text[: -len("{output}")]
        stripped = head.rstrip()
        # lm-evaluation-harness's target_delimiter: what stands between prompt and answer.
        self.delimiter = head[len(stripped) :]
        self.prefix = stripped

    def prompt(self, text: str) -> str:
        """The prompt text of an input, without the delimiter: ``"cheese =>"``."""
        return self.prefix.replace("{input}", text)

    def example(self, item: Item) -> str:
        return self.prompt(item.input) + self.delimiter + item.output


@dataclass
class Task:
    name: str
    instruction: str
    template: Template
    items: list[Item]
    description: str = ""
    choices: tuple[str, ...] | None = None
    shuffle: bool = True
    source: str = ""
    has_example_split: bool = field(init=False)

    def __post_init__(self) -> None:
        self.has_example_split = any(i.split == "example" for i in self.items)

    @property
    def examples(self) -> list[Item]:
        if self.has_example_split:
            return [i for i in self.items if i.split == "example"]
        return list(self.items)

    @property
    def tests(self) -> list[Item]:
        if self.has_example_split:
            return [i for i in self.items if i.split != "example"]
        return list(self.items)

    @property
    def multiple_choice(self) -> bool:
        return any(i.choices for i in self.items)

    def pool_for(self, item: Item | None) -> list[Item]:
        """The items that may be shown as shots before ``item``: never the item itself."""
        pool = self.examples
        if item is None:
            return pool
        return [e for e in pool if e is not item and e.input != item.input]

    def max_shots(self) -> int:
        tests = self.tests
        if not tests:
            return len(self.examples)
        return min(len(self.pool_for(t)) for t in tests)

    def draw(self, item: Item | None, shots: int, seed: int | None, index: int) -> list[Item]:
        """The ``shots`` examples shown before query number ``index``.

        The same seed gives the same examples; the k-shot examples are the first k of
        one permutation, so the 1-shot prompt's example is also in the 3-shot prompt.
        Without a seed, a task marked ``"shuffle": false`` keeps its file order.
        """
        pool = self.pool_for(item)
        if shots > len(pool):
            where = f" for {item.input!r}" if item is not None else ""
            raise UsageError(
                f"{shots} shots asked, but task {self.name!r} has only "
                f"{_examples(len(pool))}{where}"
            )
        if seed is None and not self.shuffle:
            return pool[:shots]
        rng = random.Random(f"{DEFAULT_SEED if seed is None else seed}:{index}")
        order = rng.sample(pool, len(pool))
        return order[:shots]


DRAWS = ("lm-eval", "nested")


class Draw:
    """The examples each asked item gets at one shot count.

    ``lm-eval`` draws as lm-evaluation-harness does, so that a prompt and its accuracy can
    be compared with it item by item: one ``random.Random(seed)`` for the shot count,
    consumed in the order the items are asked, each taking ``rnd.sample(pool, k)`` in the
    order sample returns; where the pool is the asked items themselves (no example split)
    it samples k + 1, drops the item and keeps the first k. So item i's examples depend on
    every earlier draw. ``nested`` draws each item's examples from a generator of its own,
    the k-shot examples being the first k of one permutation: the 1-shot example is also in
    the 3-shot prompt, which isolates the effect of one more example in a sweep of shots.
    Without a seed, a task marked ``"shuffle": false`` keeps its file order either way.
    """

    def __init__(self, task: Task, shots: int, seed: int | None, how: str = "lm-eval"):
        if how not in DRAWS:
            raise UsageError(f"unknown draw {how!r}; choose from {', '.join(DRAWS)}")
        self.task, self.shots, self.seed, self.how = task, shots, seed, how
        self.rnd = random.Random(DEFAULT_SEED if seed is None else seed)

    def next(self, item: Item | None, index: int) -> list[Item]:
        """The examples of the next asked item (``index``: its place among them)."""
        task, shots = self.task, self.shots
        if self.how == "nested":
            return task.draw(item, shots, self.seed, index)
        pool = task.pool_for(item)
        if shots > len(pool):
            where = f" for {item.input!r}" if item is not None else ""
            raise UsageError(f"{shots} shots asked, but task {task.name!r} has only "
                             f"{_examples(len(pool))}{where}")  # fmt: skip
        if shots == 0:
            return []  # lm-eval builds no examples, and draws nothing, at 0 shots
        if self.seed is None and not task.shuffle:
            return pool[:shots]
        docs = task.examples
        same_split = item is not None and not task.has_example_split
        drawn = self.rnd.sample(docs, shots + 1 if same_split else shots)
        return [d for d in drawn if d is not item][:shots]


def _examples(count: int) -> str:
    return "1 example" if count == 1 else f"{count} examples"


# --- loading -----------------------------------------------------------------------


def builtin_names() -> list[str]:
    folder = resources.files(_TASK_PACKAGE)
    return sorted(p.name[: -len(".jsonl")] for p in folder.iterdir() if p.name.endswith(".jsonl"))


def load_builtin(name: str) -> Task:
    names = builtin_names()
    if name not in names:
        raise UsageError(f"unknown task {name!r}; built-in tasks: {', '.join(names)}, "
                         "or give a .jsonl/.tsv file")  # fmt: skip
    text = resources.files(_TASK_PACKAGE).joinpath(f"{name}.jsonl").read_text(encoding="utf-8")
    return parse_jsonl(text, source=f"task {name}", name=name)


def load_task(
    ref: str,
    *,
    instruction: str | None = None,
    template: str | None = None,
    choices: list[str] | None = None,
) -> Task:
    """A built-in task name, or a ``.jsonl``/``.tsv`` file; flags override the header."""
    path = Path(ref)
    if ref in builtin_names() and not path.is_file():
        task = load_builtin(ref)
    elif path.suffix.lower() in (".jsonl", ".tsv", ".txt") or path.exists():
        task = load_file(path)
    else:
        task = load_builtin(ref)  # the error names the built-in tasks
    if instruction is not None:
        task.instruction = instruction
    if template is not None:
        task.template = Template(template)
    if choices is not None:
        apply_choices(task, choices)
    return task


def load_file(path: Path) -> Task:
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a task file")
    if not path.exists():
        raise InputError(f"cannot read {path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}, line {line}: not UTF-8 text") from exc
    if path.suffix.lower() == ".tsv":
        return parse_tsv(text, source=str(path), name=path.stem)
    return parse_jsonl(text, source=str(path), name=path.stem)


def parse_jsonl(text: str, *, source: str, name: str) -> Task:
    header: dict[str, object] = {}
    header_line = 1
    raw: list[tuple[int, dict[str, object]]] = []
    # Lines end at "\n" only: JSON strings may hold U+2028 or U+0085 unescaped.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}, line {number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise InputError(f"{source}, line {number}: expected a JSON object")
        if "input" not in obj and not raw and not header:
            header, header_line = obj, number
            _check_header(header, source, number)
            continue
        raw.append((number, obj))
    if not raw:
        raise InputError(f"{source} holds no items: write one JSON object per line with "
                         '"input" and "output" (or "answer")')  # fmt: skip
    task_choices = _strings(header.get("choices"), source, header_line, "choices")
    items = [_item(obj, number, source, task_choices) for number, obj in raw]
    template = header.get("template", DEFAULT_TEMPLATE)
    instruction = header.get("instruction", "")
    task = Task(
        name=str(header.get("task") or name),
        instruction=str(instruction),
        template=Template(str(template)),
        items=items,
        description=str(header.get("description", "")),
        choices=task_choices,
        shuffle=bool(header.get("shuffle", True)),
        source=source,
    )
    _check_splits(task)
    return task


def parse_tsv(text: str, *, source: str, name: str) -> Task:
    items: list[Item] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if number == 1 and [c.strip().lower() for c in cells[:2]] == ["input", "output"]:
            continue  # a header row
        if len(cells) < 2 or not cells[0].strip() or not cells[1].strip():
            raise InputError(f"{source}, line {number}: expected input<TAB>output")
        split = cells[2].strip().lower() if len(cells) > 2 and cells[2].strip() else "test"
        if split not in ("example", "test"):
            raise InputError(f"{source}, line {number}: split is 'example' or 'test'")
        items.append(Item(cells[0].strip(), (cells[1].strip(),), split=split, line=number))
    if not items:
        raise InputError(f"{source} holds no items: write input<TAB>output lines")
    task = Task(name=name, instruction="", template=Template(DEFAULT_TEMPLATE), items=items,
                source=source)  # fmt: skip
    _check_splits(task)
    return task


def _check_header(header: dict[str, object], source: str, number: int) -> None:
    known = {"task", "description", "instruction", "template", "choices", "shuffle"}
    unknown = sorted(set(header) - known)
    if unknown:
        raise InputError(
            f'{source}, line {number}: an item needs "input"; a header has only '
            f"{', '.join(sorted(known))} (found {', '.join(unknown)})"
        )
    for key in ("task", "description", "instruction", "template"):
        if key in header and not isinstance(header[key], str):
            raise InputError(f"{source}, line {number}: {key!r} is a string")


def _strings(value: object, source: str, number: int, key: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"{source}, line {number}: {key!r} is a list of non-empty strings")
    if len(value) < 2:
        raise InputError(f"{source}, line {number}: {key!r} needs at least two choices")
    if len(set(value)) != len(value):
        raise InputError(f"{source}, line {number}: {key!r} has the same choice twice")
    return tuple(value)


def _item(
    obj: dict[str, object], number: int, source: str, task_choices: tuple[str, ...] | None
) -> Item:
    where = f"{source}, line {number}"
    text = obj.get("input")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f'{where}: "input" is a non-empty string')
    split = obj.get("split", "test")
    if split not in ("example", "test"):
        raise InputError(f'{where}: "split" is "example" or "test"')
    choices = _strings(obj.get("choices"), source, number, "choices") or task_choices
    if choices is not None and ("answer" in obj or "output" not in obj):
        answer = obj.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, int | str):
            raise InputError(f'{where}: "answer" is the index or the text of the right choice')
        if isinstance(answer, str):
            if answer not in choices:
                raise InputError(f"{where}: answer {answer!r} is not one of the choices")
            index = choices.index(answer)
        else:
            if not 0 <= answer < len(choices):
                raise InputError(f"{where}: answer {answer} is out of range "
                                 f"(0..{len(choices) - 1})")  # fmt: skip
            index = answer
        return Item(text, (choices[index],), choices, index, str(split), number)
    output = obj.get("output")
    if isinstance(output, str):
        outputs: tuple[str, ...] = (output,)
    elif isinstance(output, list) and output and all(isinstance(o, str) for o in output):
        outputs = tuple(output)
    else:
        raise InputError(f'{where}: "output" is a string or a list of strings '
                         '(or give "choices" and "answer")')  # fmt: skip
    if not all(o.strip() for o in outputs):
        raise InputError(f'{where}: "output" is empty')
    if choices is not None:
        if outputs[0] not in choices:
            raise InputError(f"{where}: output {outputs[0]!r} is not one of the choices")
        return Item(text, outputs[:1], choices, choices.index(outputs[0]), str(split), number)
    return Item(text, outputs, None, None, str(split), number)


def _check_splits(task: Task) -> None:
    if task.has_example_split and not task.tests:
        raise InputError(f"{task.source}: every item is an example; mark the ones to ask "
                         'with "split": "test"')  # fmt: skip


def apply_choices(task: Task, choices: list[str]) -> None:
    """``--choices``: score every item against these answers."""
    values = tuple(c.strip() for c in choices if c.strip())
    if len(values) < 2:
        raise UsageError("--choices needs at least two answers, e.g. --choices positive,negative")
    if len(set(values)) != len(values):
        raise UsageError("--choices has the same answer twice")
    task.choices = values
    items = []
    for item in task.items:
        answer = values.index(item.output) if item.output in values else None
        items.append(Item(item.input, item.outputs, values, answer, item.split, item.line))
    task.items = items


def parse_shots(spec: str) -> list[int]:
    """``"0,1,3"`` -> [0, 1, 3]."""
    out: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise UsageError(f"--shots {spec!r}: use counts like 0,1,3") from None
        if value < 0:
            raise UsageError(f"--shots {spec!r}: a shot count is 0 or more")
        if value not in out:
            out.append(value)
    if not out:
        raise UsageError(f"--shots {spec!r}: use counts like 0,1,3")
    return out
