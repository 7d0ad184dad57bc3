"""Small pieces of the render layer: format choice, TSV cells, visible whitespace, one-hot cells."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from llmcli.core.onehot import OneHot
from llmcli.errors import UsageError
from llmcli.render import output
from llmcli.render.onehot import compact
from llmcli.render.tokens import visible

FORMATS = ["table", "jsonl", "json", "npy", "npz"]


def test_choose_format(monkeypatch):
    monkeypatch.setattr(output, "stdout_is_tty", lambda: False)
    assert output.choose_format(None, None, FORMATS) == "jsonl"
    assert output.choose_format("json", None, FORMATS) == "json"
    assert output.choose_format(None, Path("out.NPZ"), FORMATS) == "npz"
    assert output.choose_format(None, Path("out.table"), FORMATS) == "jsonl"
    assert output.choose_format(None, Path("out.txt"), FORMATS) == "jsonl"
    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
    assert output.choose_format(None, None, FORMATS) == "table"
    with pytest.raises(UsageError, match="unknown format 'tsv'; choose from table, jsonl"):
        output.choose_format("tsv", None, FORMATS)


def test_tsv_cells_stay_on_one_line():
    assert output.tsv_cell("a\tb\nc\\d\r") == "a\\tb\\nc\\\\d\\r"
    assert output.tsv_cell(True) == "true" and output.tsv_cell(7) == "7"
    buf = io.StringIO()
    output.write_tsv(buf, ["x", "y"], [["a\tb", False], ["\n", 3]])
    assert buf.getvalue() == "x\ty\na\\tb\tfalse\n\\n\t3\n"


def test_write_jsonl_keeps_non_ascii():
    buf = io.StringIO()
    rows = [{"text": "日本 🙂", "i": i} for i in range(3000)]
    assert output.write_jsonl(buf, rows) == 3000
    lines = buf.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert "日本 🙂" in lines[0]


def test_visible_whitespace():
    assert visible("a b\nc\td\re\x00\x7f") == "a·b↵c→d␍e\\x00\\x7f"


def test_compact_one_hot_cell():
    assert compact(OneHot(0, 5, "x", 10)) == "[0 ×5 [bold yellow]1[/] 0 ×4]"
    assert compact(OneHot(0, 0, "x", 3)) == "[[bold yellow]1[/] 0 0]"
    assert compact(OneHot(0, 2, "x", 3)) == "[0 0 [bold yellow]1[/]]"
