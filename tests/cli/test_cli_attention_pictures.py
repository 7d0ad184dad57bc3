"""``llmpath attention -f html`` and ``-f png`` on tiny models with weights.

The page must stand alone (no network), carry the same weights as ``-f json``,
and never let token text become markup; the PNG must be a real picture.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from llmcli.core.attention import AttentionMap, AttentionRun
from llmcli.core.tokenize import TokenRecord
from llmcli.errors import UsageError
from llmcli.render import attention_pictures as pictures
from llmcli.render import attention_png

TEXT = "The cat sat on the mat."
MARKUP = "</script><script>alert(1)</script> <b>bold</b> & <!-- x -->"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_BLOCK = re.compile(r'<script type="application/json" id="attention-data">(.*?)</script>', re.S)


def page_of(path):
    page = path.read_text(encoding="utf-8")
    found = DATA_BLOCK.findall(page)
    assert len(found) == 1
    return page, json.loads(found[0])


def json_of(cli, *args):
    result = cli("attention", *args, "-f", "json")
    assert result.code == 0, result.err
    return json.loads(result.out)


# --- html ---------------------------------------------------------------------------------


def test_html_holds_the_maps_of_json(cli, tiny_gpt2_dir, tmp_path):
    out = tmp_path / "attention.html"
    result = cli("attention", TEXT, "-m", tiny_gpt2_dir, "-f", "html", "-o", out)
    assert result.code == 0, result.err
    assert result.out == ""
    page, data = page_of(out)
    expected = json_of(cli, TEXT, "-m", tiny_gpt2_dir)

    assert data["model"] == expected["model"]
    assert data["kind"] == expected["kind"] == "decoder"
    assert data["dims"] == ["layer", "head", "query", "key"]
    assert data["tokens"] == expected["tokens"]
    n = len(expected["tokens"])
    assert data["shape"] == [2, 2, n, n]
    assert [(m["layer"], m["head"]) for m in data["maps"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [(m["layer"], m["head"]) for m in expected["maps"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for got, want in zip(data["maps"], expected["maps"]):
        assert len(got["matrix"]) == n and all(len(row) == n for row in got["matrix"])
        for got_row, want_row in zip(got["matrix"], want["matrix"]):
            assert got_row == pytest.approx(want_row, abs=6e-5)
            assert all(round(w, 4) == w for w in got_row)
            assert sum(got_row) == pytest.approx(1.0, abs=1e-3)
        # A decoder's token does not see later tokens.
        assert all(got["matrix"][i][j] == 0 for i in range(n) for j in range(i + 1, n))
    # The page says what it shows.
    assert "tinygpt2 is a decoder: masked (causal) attention" in page
    assert "2 layers x 2 heads" in page
    assert "[layer, head, query, key]" in page
    assert f"2 × 2 × {n} × {n}" in page


def test_html_loads_nothing_from_outside(cli, tiny_gpt2_dir, tmp_path):
    out = tmp_path / "page.html"
    assert cli("attention", TEXT, "-m", tiny_gpt2_dir, "-o", out).code == 0  # -f from the suffix
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert "http://" not in page and "https://" not in page
    assert re.search(r"\b(src|href)\s*=", page) is None
    assert "@import" not in page and "url(" not in page
    # The style and the script are inline.
    assert page.count("<style>") == 1
    assert re.findall(r"<script[^>]*>", page) == [
        '<script type="application/json" id="attention-data">',
        "<script>",
    ]


def test_html_escapes_markup_in_the_tokens(cli, tiny_gpt2_dir, tmp_path):
    out = tmp_path / "markup.html"
    result = cli("attention", MARKUP, "-m", tiny_gpt2_dir, "-f", "html", "-o", out)
    assert result.code == 0, result.err
    page, data = page_of(out)
    # Only the page's own two script blocks open and close; no token became a tag.
    assert page.count("<script") == 2
    assert page.count("</script>") == 2
    assert "alert(1)" not in page
    assert "<b>" not in page and "<!-- x" not in page
    block = DATA_BLOCK.search(page).group(1)
    assert "<" not in block and ">" not in block and "&" not in block
    assert "\\u003c" in block and "\\u0026" in block
    # Escaped, the text is all still there.
    assert "".join(t["text"] for t in data["tokens"]) == MARKUP
    assert any("<" in label for label in data["labels"])


def test_script_json_escapes_what_could_close_the_block():
    text = pictures.script_json({"t": "</script><b>&\u2028"})
    assert text == '{"t":"\\u003c/script\\u003e\\u003cb\\u003e\\u0026\\u2028"}'
    assert json.loads(text) == {"t": "</script><b>&\u2028"}


@pytest.mark.parametrize(
    ("folder", "kind", "says"),
    [
        ("tiny_gpt2_dir", "decoder", "a decoder: masked (causal) attention"),
        ("tiny_bert_dir", "encoder", "an encoder: each token attends in both directions"),
    ],
)
def test_html_states_the_kind(cli, tmp_path, request, folder, kind, says):
    out = tmp_path / "kind.html"
    model = request.getfixturevalue(folder)
    result = cli("attention", TEXT, "-m", model, "-l", "-1", "-f", "html", "-o", out)
    assert result.code == 0, result.err
    page, data = page_of(out)
    assert data["kind"] == kind
    assert says in page
    assert {m["layer"] for m in data["maps"]} == {1}
    n = len(data["tokens"])
    if kind == "encoder":  # both directions: weights above the diagonal too
        assert any(data["maps"][0]["matrix"][0][j] > 0 for j in range(1, n))


@pytest.mark.parametrize(
    ("aggregate", "labels"),
    [("mean", [(0, "mean"), (1, "mean")]), ("rollout", [("rollout", "rollout")])],
)
def test_html_keeps_aggregate_labels(cli, tiny_gpt2_dir, tmp_path, aggregate, labels):
    out = tmp_path / "agg.html"
    result = cli("attention", TEXT, "-m", tiny_gpt2_dir, "-a", aggregate, "-o", out)
    assert result.code == 0, result.err
    _, data = page_of(out)
    assert [(m["layer"], m["head"]) for m in data["maps"]] == labels
    assert data["aggregate"] == aggregate
    expected = json_of(cli, TEXT, "-m", tiny_gpt2_dir, "-a", aggregate)
    for got, want in zip(data["maps"], expected["maps"]):
        assert got["matrix"][-1] == pytest.approx(want["matrix"][-1], abs=6e-5)


def test_html_too_large_is_refused_before_writing(cli, tiny_gpt2_dir, tmp_path, monkeypatch,
                                                  one_error):  # fmt: skip
    monkeypatch.setattr(pictures, "HTML_MAX_VALUES", 100)
    out = tmp_path / "big.html"
    result = cli("attention", TEXT, "-m", tiny_gpt2_dir, "-f", "html", "-o", out)
    one_error(result, 2, "would hold", "at most 100", "--layer")
    assert not out.exists()


def test_html_weight_count_counts_the_weights():
    tokens = [TokenRecord(i, i, "a", "a", i, i + 1, "61", False) for i in range(7)]
    run = AttentionRun("m", "decoder", tokens, [0, 1], list(range(9)), 30, 9, "none")
    assert pictures.html_weight_count(run) == 2 * 9 * 7 * 7
    run.aggregate = "rollout"
    assert pictures.html_weight_count(run) == 7 * 7


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_html_script_parses_in_node(cli, tiny_gpt2_dir, tmp_path):
    out = tmp_path / "page.html"
    assert cli("attention", MARKUP, "-m", tiny_gpt2_dir, "-o", out).code == 0
    page = out.read_text(encoding="utf-8")
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    (tmp_path / "page.js").write_text(script, encoding="utf-8")
    check = subprocess.run(["node", "--check", str(tmp_path / "page.js")], capture_output=True)
    assert check.returncode == 0, check.stderr
    (tmp_path / "data.json").write_text(DATA_BLOCK.search(page).group(1), encoding="utf-8")
    shapes = subprocess.run(
        ["node", "-e", "const D = JSON.parse(require('fs').readFileSync(process.argv[1]));"
         "console.log(JSON.stringify([D.tokens.length, D.maps.map(m => m.matrix.length)]))",
         str(tmp_path / "data.json")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert shapes.returncode == 0, shapes.stderr
    n, rows = json.loads(shapes.stdout)
    assert rows == [n] * 4


# --- png ----------------------------------------------------------------------------------


def read_png(path):
    import matplotlib.image

    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    return matplotlib.image.imread(io.BytesIO(data), format="png")


def test_png_is_a_grid_of_maps(cli, tiny_gpt2_dir, tmp_path):
    grid = tmp_path / "grid.png"
    result = cli("attention", TEXT, "-m", tiny_gpt2_dir, "-o", grid)  # -f from the suffix
    assert result.code == 0, result.err
    assert result.out == "" and result.err == ""
    image = read_png(grid)
    height, width, channels = image.shape
    assert channels in (3, 4)
    # Two layers of two heads: a 2 x 2 grid, a few hundred pixels each way, not huge.
    assert 400 < width < 3000 and 400 < height < 3000

    one = tmp_path / "one.png"
    assert cli("attention", TEXT, "-m", tiny_gpt2_dir, "-l", "0", "--head", "0",
               "-f", "png", "-o", one).code == 0  # fmt: skip
    small = read_png(one)
    assert small.shape[0] < height and small.shape[1] < width
    # Not a blank picture: the heatmap has many colours.
    assert len({tuple(px) for px in small.reshape(-1, small.shape[2])[::7].round(2)}) > 20


def test_png_of_an_encoder_and_of_rollout(cli, tiny_bert_dir, tmp_path):
    for args in ([], ["-a", "rollout"]):
        out = tmp_path / f"bert{len(args)}.png"
        result = cli("attention", TEXT, "-m", tiny_bert_dir, *args, "-f", "png", "-o", out)
        assert result.code == 0, result.err
        assert read_png(out).shape[0] > 200


def test_png_with_too_many_maps_is_refused(cli, tiny_gpt2_dir, tmp_path, monkeypatch, one_error):
    monkeypatch.setattr(attention_png, "PNG_MAX_PANELS", 3)
    out = tmp_path / "many.png"
    result = cli("attention", TEXT, "-m", tiny_gpt2_dir, "-f", "png", "-o", out)
    line = one_error(result, 2, "at most 3 maps", "4 (2 layers x 2 heads)", "--layer")
    assert "\n" not in line
    assert not out.exists()


def test_png_grid_refuses_too_many_maps_itself():
    tokens = [TokenRecord(i, i, "a", "a", i, i + 1, "61", False) for i in range(3)]
    run = AttentionRun("m", "encoder", tokens, list(range(30)), list(range(9)), 30, 9, "none")
    maps = [AttentionMap(layer, head, np.full((3, 3), 1 / 3, dtype="float32"))
            for layer in range(30) for head in range(9)]  # fmt: skip
    with pytest.raises(UsageError, match="270 .30 layers x 9 heads.*--layer"):
        attention_png.png_grid(run, maps, io.BytesIO())


# --- needs -o -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["html", "png"])
def test_pictures_need_an_output_file(cli, tiny_gpt2_dir, one_error, fmt):
    result = cli("attention", TEXT, "-m", tiny_gpt2_dir, "-f", fmt)
    one_error(result, 2, f"-f {fmt} needs -o FILE.{fmt}")
