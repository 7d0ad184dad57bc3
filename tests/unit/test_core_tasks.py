"""Few-shot task files in ``llmcli.core.tasks``: parsing, messages, templates and shots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmcli.core import tasks as core
from llmcli.core.tasks import Item, Task, Template
from llmcli.errors import InputError, UsageError

BUILTIN = [
    "animal-class",
    "antonyms",
    "arithmetic",
    "bigger",
    "capitals",
    "en-fr",
    "gpt3-en-fr",
    "past-tense",
    "plurals",
    "sentiment",
]


def jsonl(*objects: object) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects)


def parse(text: str) -> Task:
    return core.parse_jsonl(text, source="t.jsonl", name="t")


def parse_error(text: str) -> str:
    with pytest.raises(InputError) as exc:
        parse(text)
    return str(exc.value)


def simple_task(n_examples: int, n_tests: int, *, shuffle: bool = True) -> Task:
    items = [Item(f"e{i}", (f"E{i}",), split="example", line=i + 1) for i in range(n_examples)]
    items += [Item(f"t{i}", (f"T{i}",), split="test") for i in range(n_tests)]
    return Task("simple", "", Template(core.DEFAULT_TEMPLATE), items, shuffle=shuffle)


# --- JSON Lines --------------------------------------------------------------------------


def test_header_and_generation_items():
    task = parse(
        jsonl(
            {"task": "fr", "description": "words", "instruction": "Translate:",
             "template": "{input} -> {output}", "shuffle": False},
            {"input": "dog", "output": "chien", "split": "example"},
            {"input": "big", "output": ["grand", "gros"], "split": "test"},
            {"input": "cat", "output": "chat"},
        )
    )  # fmt: skip
    assert task.name == "fr"
    assert task.description == "words"
    assert task.instruction == "Translate:"
    assert task.template.text == "{input} -> {output}"
    assert task.shuffle is False
    assert task.choices is None
    assert not task.multiple_choice
    assert [i.input for i in task.examples] == ["dog"]
    assert [i.input for i in task.tests] == ["big", "cat"]
    big = task.tests[0]
    assert big.outputs == ("grand", "gros")
    assert big.output == "grand"
    assert big.choices is None and big.answer is None
    assert big.line == 3
    assert task.tests[1].split == "test"  # the default split
    assert task.source == "t.jsonl"


def test_without_header_the_defaults_apply():
    task = parse(jsonl({"input": "a", "output": "b"}, {"input": "c", "output": "d"}))
    assert task.name == "t"
    assert task.instruction == ""
    assert task.template.text == core.DEFAULT_TEMPLATE
    assert task.shuffle is True
    # No example split: every item is both a possible example and a test.
    assert not task.has_example_split
    assert [i.input for i in task.examples] == ["a", "c"]
    assert [i.input for i in task.tests] == ["a", "c"]


def test_multiple_choice_with_task_choices_answer_as_index_or_text():
    task = parse(
        jsonl(
            {"choices": ["positive", "negative"]},
            {"input": "Great.", "answer": 0, "split": "example"},
            {"input": "Dull.", "answer": 1},
            {"input": "Fine.", "answer": "positive"},
            {"input": "Bad.", "output": "negative"},
        )
    )
    assert task.choices == ("positive", "negative")
    assert task.multiple_choice
    got = [(i.input, i.choices, i.answer, i.outputs) for i in task.items]
    assert got == [
        ("Great.", ("positive", "negative"), 0, ("positive",)),
        ("Dull.", ("positive", "negative"), 1, ("negative",)),
        ("Fine.", ("positive", "negative"), 0, ("positive",)),
        ("Bad.", ("positive", "negative"), 1, ("negative",)),
    ]


def test_item_choices_override_the_task_choices():
    task = parse(
        jsonl(
            {"choices": ["yes", "no"]},
            {"input": "Which is bigger?", "choices": ["elephant", "mouse"], "answer": 1},
            {"input": "Is it?", "answer": "no"},
        )
    )
    first, second = task.items
    assert first.choices == ("elephant", "mouse")
    assert first.answer == 1
    assert first.output == "mouse"
    assert second.choices == ("yes", "no")
    assert second.output == "no"


def test_blank_lines_are_skipped_and_line_numbers_kept():
    text = (
        "\n" + jsonl({"input": "a", "output": "b"}) + "\n\n" + jsonl({"input": "c", "output": "d"})
    )
    task = parse(text)
    assert [i.line for i in task.items] == [2, 5]


def test_a_utf8_bom_and_windows_line_ends_are_read(tmp_path):
    path = tmp_path / "win.jsonl"
    body = jsonl({"input": "a", "output": "b"}, {"input": "c", "output": "d"})
    path.write_bytes(b"\xef\xbb\xbf" + body.replace("\n", "\r\n").encode())
    task = core.load_file(path)
    assert [(i.input, i.output) for i in task.items] == [("a", "b"), ("c", "d")]


def test_line_separators_inside_json_strings_stay_in_their_item():
    # A JSON writer leaves U+2028 and U+0085 unescaped: they are not line ends in JSON Lines.
    text = jsonl(
        {"input": "one\u2028two", "output": "x\x85y"},
        {"input": "three", "output": "z"},
    )
    task = parse(text)
    assert [(i.input, i.output, i.line) for i in task.items] == [
        ("one\u2028two", "x\x85y", 1),
        ("three", "z", 2),
    ]


# --- TSV ---------------------------------------------------------------------------------


def test_tsv_items_header_row_and_split_column():
    text = "input\toutput\ndog\tchien\texample\ncat\tchat\n\nbig\tgrand\ttest\n"
    task = core.parse_tsv(text, source="t.tsv", name="words")
    assert task.name == "words"
    assert task.template.text == core.DEFAULT_TEMPLATE
    got = [(i.input, i.outputs, i.split, i.line) for i in task.items]
    assert got == [
        ("dog", ("chien",), "example", 2),
        ("cat", ("chat",), "test", 3),
        ("big", ("grand",), "test", 5),
    ]
    assert [i.input for i in task.examples] == ["dog"]


def test_tsv_first_row_is_an_item_when_it_is_not_a_header():
    task = core.parse_tsv("dog\tchien\ncat\tchat\n", source="t.tsv", name="w")
    assert [i.input for i in task.items] == ["dog", "cat"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dog\tchien\ncat\n", "t.tsv, line 2: expected input<TAB>output"),
        ("dog\tchien\n\t chat\n", "t.tsv, line 2: expected input<TAB>output"),
        ("dog\tchien\ncat\tchat\tmaybe\n", "t.tsv, line 2: split is 'example' or 'test'"),
        ("input\toutput\n\n", "t.tsv holds no items"),
        ("dog\tchien\texample\n", "every item is an example"),
    ],
)
def test_tsv_errors(text, message):
    with pytest.raises(InputError) as exc:
        core.parse_tsv(text, source="t.tsv", name="w")
    assert message in str(exc.value)


def test_load_file_reads_tsv_by_its_suffix(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("dog\tchien\tEXAMPLE\ncat\tchat\n", encoding="utf-8")
    task = core.load_task(str(path))
    assert task.name == "pairs"
    assert [(i.input, i.split) for i in task.items] == [("dog", "example"), ("cat", "test")]


# --- JSON Lines errors -------------------------------------------------------------------


def test_bad_json_names_its_line():
    text = jsonl({"input": "a", "output": "b"}) + '{"input": "c", "output": \n'
    message = parse_error(text)
    assert message.startswith("t.jsonl, line 2: not valid JSON")


def test_a_non_object_names_its_line():
    text = jsonl({"input": "a", "output": "b"}, {"input": "c", "output": "d"}, ["e", "f"])
    assert parse_error(text) == "t.jsonl, line 3: expected a JSON object"


def test_an_item_without_input_names_its_line():
    text = jsonl({"task": "x"}, {"input": "a", "output": "b"}, {"output": "d"})
    assert parse_error(text) == 't.jsonl, line 3: "input" is a non-empty string'


def test_a_first_line_that_is_neither_header_nor_item():
    message = parse_error(jsonl({"prompt": "a", "output": "b"}, {"input": "c", "output": "d"}))
    assert message.startswith('t.jsonl, line 1: an item needs "input"')
    assert "found output, prompt" in message


@pytest.mark.parametrize("value", ["", "   ", 3, None])
def test_an_empty_or_non_string_input(value):
    text = jsonl({"input": "a", "output": "b"}, {"input": value, "output": "d"})
    assert parse_error(text) == 't.jsonl, line 2: "input" is a non-empty string'


def test_a_header_field_of_the_wrong_type():
    message = parse_error(jsonl({"instruction": 3}, {"input": "a", "output": "b"}))
    assert message == "t.jsonl, line 1: 'instruction' is a string"


def test_a_bad_split_names_its_line():
    text = jsonl({"input": "a", "output": "b"}, {"input": "c", "output": "d", "split": "train"})
    assert parse_error(text) == 't.jsonl, line 2: "split" is "example" or "test"'


def test_an_answer_out_of_range():
    text = jsonl(
        {"choices": ["yes", "no"]}, {"input": "a", "answer": 1}, {"input": "b", "answer": 2}
    )
    assert parse_error(text) == "t.jsonl, line 3: answer 2 is out of range (0..1)"


def test_a_negative_answer_is_out_of_range():
    text = jsonl({"choices": ["yes", "no"]}, {"input": "a", "answer": -1})
    assert parse_error(text) == "t.jsonl, line 2: answer -1 is out of range (0..1)"


def test_an_answer_text_not_among_the_choices():
    text = jsonl({"choices": ["yes", "no"]}, {"input": "a", "answer": "maybe"})
    assert parse_error(text) == "t.jsonl, line 2: answer 'maybe' is not one of the choices"


def test_an_output_not_among_the_choices():
    text = jsonl({"choices": ["yes", "no"]}, {"input": "a", "output": "maybe"})
    assert parse_error(text) == "t.jsonl, line 2: output 'maybe' is not one of the choices"


@pytest.mark.parametrize("answer", [True, 1.0, None, [0]])
def test_an_answer_that_is_neither_index_nor_text(answer):
    obj: dict[str, object] = {"input": "a", "choices": ["x", "y"]}
    if answer is not None:
        obj["answer"] = answer
    text = jsonl({"input": "z", "output": "w"}, obj)
    message = parse_error(text)
    assert message == 't.jsonl, line 2: "answer" is the index or the text of the right choice'


def test_a_single_item_choice():
    text = jsonl({"input": "a", "output": "b"}, {"input": "c", "choices": ["x"], "answer": 0})
    assert parse_error(text) == "t.jsonl, line 2: 'choices' needs at least two choices"


def test_a_single_task_choice_names_the_header_line():
    assert parse_error(jsonl({"choices": ["x"]}, {"input": "c", "answer": 0})) == (
        "t.jsonl, line 1: 'choices' needs at least two choices"
    )


def test_a_task_choice_error_names_the_header_line_after_blank_lines():
    text = "\n\n" + jsonl({"choices": ["x", "x"]}, {"input": "c", "answer": 0})
    assert parse_error(text) == "t.jsonl, line 3: 'choices' has the same choice twice"


def test_duplicate_choices():
    text = jsonl({"input": "a", "output": "b"}, {"input": "c", "choices": ["x", "y", "x"]})
    assert parse_error(text) == "t.jsonl, line 2: 'choices' has the same choice twice"


@pytest.mark.parametrize("choices", ["xy", ["x", ""], ["x", 2]])
def test_choices_that_are_not_strings(choices):
    text = jsonl({"input": "a", "output": "b"}, {"input": "c", "choices": choices, "answer": 0})
    assert parse_error(text) == "t.jsonl, line 2: 'choices' is a list of non-empty strings"


@pytest.mark.parametrize("output", [None, 3, [], ["a", 1]])
def test_a_missing_or_malformed_output(output):
    obj: dict[str, object] = {"input": "c"}
    if output is not None:
        obj["output"] = output
    message = parse_error(jsonl({"input": "a", "output": "b"}, obj))
    assert message.startswith('t.jsonl, line 2: "output" is a string or a list of strings')


def test_an_empty_output():
    text = jsonl({"input": "a", "output": "b"}, {"input": "c", "output": ["d", " "]})
    assert parse_error(text) == 't.jsonl, line 2: "output" is empty'


@pytest.mark.parametrize("text", ["", "\n\n  \n", jsonl({"task": "only a header"})])
def test_an_empty_file(text):
    assert parse_error(text).startswith("t.jsonl holds no items")


def test_every_item_an_example():
    text = jsonl({"input": "a", "output": "b", "split": "example"})
    message = parse_error(text)
    assert message.startswith("t.jsonl: every item is an example")


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    data = jsonl({"input": "a", "output": "b"}, {"input": "c", "output": "d"}).encode()
    path.write_bytes(data + '{"input": "café", "output": "x"}\n'.encode("latin-1"))
    with pytest.raises(InputError) as exc:
        core.load_file(path)
    assert str(exc.value) == f"{path}, line 3: not UTF-8 text"


def test_a_folder_or_a_missing_file(tmp_path):
    with pytest.raises(InputError, match="is a folder, not a task file"):
        core.load_file(tmp_path)
    with pytest.raises(InputError, match="cannot read"):
        core.load_file(tmp_path / "absent.jsonl")


# --- templates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delimiter", "prompt", "example"),
    [
        ("{input} => {output}", " ", "cheese =>", "cheese => fromage"),
        ("Q: {input}\nA: {output}", " ", "Q: cheese\nA:", "Q: cheese\nA: fromage"),
        ("{input}\n{output}", "\n", "cheese", "cheese\nfromage"),
        ("{input} =  {output}", "  ", "cheese =", "cheese =  fromage"),
        ("{input}:{output}", "", "cheese:", "cheese:fromage"),
    ],
)
def test_template_delimiter_prompt_and_example(text, delimiter, prompt, example):
    template = Template(text)
    assert template.delimiter == delimiter
    assert template.prompt("cheese") == prompt
    assert template.example(Item("cheese", ("fromage", "other"))) == example


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{input} =>", "needs both {input} and {output}"),
        ("=> {output}", "needs both {input} and {output}"),
        ("{output} <= {input}", "{input} comes before {output}"),
        ("{input} => {output}.", "ends with {output}"),
    ],
)
def test_template_errors(text, fragment):
    with pytest.raises(UsageError) as exc:
        Template(text)
    assert fragment in str(exc.value)


def test_a_bad_template_in_a_file_is_an_error():
    with pytest.raises(UsageError, match="ends with"):
        parse(jsonl({"template": "{input}: {output}!"}, {"input": "a", "output": "b"}))


# --- drawing shots -----------------------------------------------------------------------


def test_the_same_seed_draws_the_same_examples():
    task = simple_task(10, 3)
    query = task.tests[0]
    first = task.draw(query, 4, 7, 0)
    assert first == task.draw(query, 4, 7, 0)
    assert len(first) == 4
    assert len({e.input for e in first}) == 4
    assert all(e.split == "example" for e in first)


def test_other_seeds_and_queries_draw_other_examples():
    task = simple_task(10, 3)
    query = task.tests[0]
    draws = {tuple(e.input for e in task.draw(query, 5, seed, 0)) for seed in range(6)}
    assert len(draws) > 1
    by_index = {tuple(e.input for e in task.draw(query, 5, 7, i)) for i in range(6)}
    assert len(by_index) > 1


def test_draws_are_nested():
    task = simple_task(10, 3)
    query = task.tests[1]
    for seed in (None, 0, 99):
        draws = [task.draw(query, k, seed, 2) for k in range(11)]
        for k in range(10):
            assert draws[k] == draws[k + 1][:k]


def test_the_default_seed_is_used_without_one():
    task = simple_task(10, 3)
    query = task.tests[0]
    assert task.draw(query, 6, None, 1) == task.draw(query, 6, core.DEFAULT_SEED, 1)


def test_a_query_is_never_its_own_example():
    # No example split: every item is drawn from the others.
    items = [Item(f"w{i}", (f"W{i}",), line=i + 1) for i in range(6)]
    task = Task("pool", "", Template(core.DEFAULT_TEMPLATE), items)
    assert task.max_shots() == 5
    for index, item in enumerate(task.tests):
        for seed in range(5):
            drawn = task.draw(item, 5, seed, index)
            assert item not in drawn
            assert sorted(e.input for e in drawn) == sorted(i.input for i in items if i is not item)
    with pytest.raises(UsageError):
        task.draw(items[0], 6, 0, 0)


def test_an_example_with_the_query_text_is_not_drawn():
    task = simple_task(4, 0)
    free = Item("e2", ("",))  # a free query that reads like an example
    for seed in range(5):
        assert "e2" not in [e.input for e in task.draw(free, 3, seed, 0)]


def test_no_shuffle_keeps_the_file_order():
    task = simple_task(6, 2, shuffle=False)
    query = task.tests[0]
    assert [e.input for e in task.draw(query, 4, None, 0)] == ["e0", "e1", "e2", "e3"]
    assert [e.input for e in task.draw(query, 4, None, 5)] == ["e0", "e1", "e2", "e3"]
    shuffled = {tuple(e.input for e in task.draw(query, 6, seed, 0)) for seed in range(5)}
    assert shuffled != {("e0", "e1", "e2", "e3", "e4", "e5")}  # a seed shuffles anyway


def test_more_shots_than_examples():
    task = simple_task(3, 2)
    assert task.max_shots() == 3
    assert len(task.draw(task.tests[0], 3, 0, 0)) == 3
    with pytest.raises(UsageError) as exc:
        task.draw(task.tests[0], 4, 0, 0)
    assert str(exc.value) == "4 shots asked, but task 'simple' has only 3 examples for 't0'"


def test_zero_shots_draws_nothing():
    task = simple_task(3, 1)
    assert task.draw(task.tests[0], 0, 0, 0) == []


# --- shots -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0,1,3", [0, 1, 3]),
        ("5", [5]),
        (" 0 , 2 ", [0, 2]),
        ("3,1,3,0", [3, 1, 0]),
        ("1,", [1]),
        ("0010", [10]),
    ],
)
def test_parse_shots(spec, expected):
    assert core.parse_shots(spec) == expected


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "use counts like 0,1,3"),
        (",", "use counts like 0,1,3"),
        ("one", "use counts like 0,1,3"),
        ("1.5", "use counts like 0,1,3"),
        ("0,-1", "a shot count is 0 or more"),
    ],
)
def test_parse_shots_errors(spec, fragment):
    with pytest.raises(UsageError) as exc:
        core.parse_shots(spec)
    assert fragment in str(exc.value)
    assert repr(spec) in str(exc.value)


# --- flags over a task -------------------------------------------------------------------


def test_load_task_overrides_instruction_template_and_choices(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(
        jsonl(
            {"instruction": "Old."}, {"input": "a", "output": "yes"}, {"input": "b", "output": "x"}
        ),
        encoding="utf-8",
    )
    task = core.load_task(str(path), instruction="New:", template="Q {input}\n{output}",
                          choices=[" yes", "no ", ""])  # fmt: skip
    assert task.instruction == "New:"
    assert task.template.delimiter == "\n"
    assert task.choices == ("yes", "no")
    assert [(i.choices, i.answer) for i in task.items] == [
        (("yes", "no"), 0),
        (("yes", "no"), None),
    ]


@pytest.mark.parametrize(
    ("choices", "fragment"),
    [(["yes"], "needs at least two answers"), (["yes", " ", ""], "needs at least two answers"),
     (["a", "b", "a"], "same answer twice")],
)  # fmt: skip
def test_apply_choices_errors(choices, fragment):
    task = simple_task(2, 2)
    with pytest.raises(UsageError, match=fragment):
        core.apply_choices(task, choices)


def test_an_unknown_task_names_the_built_in_ones():
    with pytest.raises(UsageError) as exc:
        core.load_task("no-such-task")
    message = str(exc.value)
    assert message.startswith("unknown task 'no-such-task'")
    for name in BUILTIN:
        assert name in message


def test_a_missing_jsonl_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        core.load_task(str(tmp_path / "nothing.jsonl"))


# --- built-in tasks ----------------------------------------------------------------------


def test_builtin_names():
    assert core.builtin_names() == BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_task_loads(name):
    task = core.load_builtin(name)
    assert task.name == name
    assert task.description
    assert task.instruction
    assert task.has_example_split
    assert task.tests
    assert task.examples
    example_inputs = {e.input for e in task.examples}
    assert not example_inputs & {t.input for t in task.tests}
    # The inputs are unique, so every test item may be shown all the examples.
    assert task.max_shots() == len(task.examples)
    assert len({i.input for i in task.items}) == len(task.items)
    for item in task.items:
        if item.choices is not None:
            assert item.answer is not None
            assert item.choices[item.answer] == item.output


def test_builtin_task_kinds():
    kinds = {n: core.load_builtin(n).multiple_choice for n in BUILTIN}
    assert {n for n, choice in kinds.items() if choice} == {"animal-class", "bigger", "sentiment"}


def test_gpt3_task_is_the_papers_example():
    task = core.load_builtin("gpt3-en-fr")
    assert task.shuffle is False
    assert [(e.input, e.output) for e in task.draw(task.tests[0], 3, None, 0)] == [
        ("sea otter", "loutre de mer"),
        ("peppermint", "menthe poivrée"),
        ("plush girafe", "girafe peluche"),
    ]
    assert [t.input for t in task.tests] == ["cheese"]


def test_a_file_named_like_a_builtin_task_is_read_as_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("sentiment").write_text(jsonl({"input": "a", "output": "b"}), encoding="utf-8")
    task = core.load_task("sentiment")
    assert [i.input for i in task.items] == ["a"]
