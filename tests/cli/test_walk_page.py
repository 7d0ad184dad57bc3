"""The HTML page of ``llmpath walk``: self-contained, injection-safe, and it draws.

The walks are of the tiny models of ``tests/conftest.py``; the page is opened in
headless Chromium where it is installed (``--dump-dom`` to read what the scripts
drew, ``--screenshot`` for a picture), and its scripts are parsed by node.
"""

from __future__ import annotations

import copy
import html
import json
import math
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmcli.core.walk import STEPS
from llmcli.render import walk_page

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = "It's a blue sundress."
NASTY = "</script><b>x</b> <!-- a"
DATA_BLOCK = re.compile(r'<script type="application/json" id="walk-data">(.*?)</script>', re.DOTALL)
SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NODE = shutil.which("node")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


@pytest.fixture(scope="module")
def walk_of() -> Iterator[Callable[..., tuple[Any, Any]]]:
    """``walk_of(folder, text)``: the walk (lens "all") and tokenizer, made once."""
    from llmcli.core.walk import plan_walk, run_walk
    from llmcli.models.loader import load_model
    from llmcli.models.resolve import resolve
    from llmcli.models.tokenizer import LoadedTokenizer

    cache: dict[tuple[str, str], tuple[Any, Any]] = {}

    def make(folder: Path, text: str = TEXT) -> tuple[Any, Any]:
        key = (str(folder), text)
        if key not in cache:
            resolved = resolve(str(folder))
            tok = LoadedTokenizer.for_model(resolved)
            ids = tok.hf.encode(text, add_special_tokens=True).ids
            plan = plan_walk(resolved, ids, layer=None, head=None, token=None)
            loaded = load_model(resolved, attention="eager")
            walk = run_walk(loaded, tok, plan, dims=8, top=5, lens="all")
            cache[key] = (walk, tok)
        return cache[key]

    yield make


def data_of(page: str) -> dict[str, Any]:
    blocks = DATA_BLOCK.findall(page)
    assert len(blocks) == 1
    return dict(json.loads(blocks[0]))


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def body_attributes(dom: str) -> dict[str, str]:
    match = re.search(r"<body([^>]*)>", dom)
    assert match, dom[:500]
    return {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', match.group(1))}


# --- the page as text ----------------------------------------------------------------


def test_page_is_self_contained(walk_of, tiny_gpt2_dir):
    walk, tok = walk_of(tiny_gpt2_dir)
    page = walk_page.html_page(walk, tok.describe)
    assert page.startswith("<!doctype html>")
    for outside in ("http://", "https://", "//cdn", "src=", "<link", "@import", "url(",
                    "fetch(", "XMLHttpRequest", "import("):  # fmt: skip
        assert outside not in page, outside
    assert not re.search(r"/\*__[A-Z]+__\*/", page)  # every placeholder is filled
    assert "<title>walk · " in page


def test_assets_are_package_data():
    for name in ("page.html", "walk.html", "page.css", "walk.css", "components.js", "walk.js"):
        assert walk_page.asset(name).strip()
    for name in ("page.css", "walk.css", "components.js", "walk.js"):
        assert not re.search(r"</(script|style)", walk_page.asset(name), re.IGNORECASE)


def test_data_block_holds_the_same_numbers(walk_of, tiny_gpt2_dir):
    walk, tok = walk_of(tiny_gpt2_dir)
    data = data_of(walk_page.html_page(walk, tok.describe))
    assert data["header"] == json.loads(json.dumps(walk_page.plain(walk.header())))
    assert [s["step"] for s in data["steps"]] == list(STEPS)
    for got, step in zip(data["steps"], walk.steps):
        want = step.to_dict()
        assert got["title"] == want["title"] and got["explain"] == want["explain"]
        assert got["ok"] == want["ok"]
        for a, b in zip(got["checks"], want["checks"]):
            assert a["what"] == b["what"] and a["ok"] == b["ok"]
            assert a["max_abs_diff"] == pytest.approx(b["max_abs_diff"])
        for a, b in zip(got["vectors"], want["vectors"]):
            assert a["values"] == pytest.approx(b["values"])
    arrays = walk.arrays
    att = data["attention"]
    assert (att["layer"], att["head"]) == (walk.layer, walk.head)
    weights = np.array(att["weights"], dtype=np.float64)
    assert weights.shape == arrays["weights"].shape
    assert np.allclose(weights, arrays["weights"], atol=0.5e-4 + 1e-9)
    scores = arrays["scores"]
    got_scores = np.array([[[math.nan if v is None else v for v in row] for row in head]
                           for head in att["scores"]])  # fmt: skip
    assert (np.isnan(got_scores) == np.isneginf(scores)).all()  # masked: null
    assert np.isneginf(scores).any()  # a decoder masks the future
    finite = np.isfinite(scores)
    assert np.allclose(got_scores[finite], scores[finite], atol=0.5e-4 + 1e-9)
    assert data["lens"]["ids"] == arrays["lens_ids"].tolist()
    assert np.allclose(data["lens"]["probs"], arrays["lens_probs"], atol=0.5e-4 + 1e-9)
    assert data["next"]["ids"] == arrays["next_ids"].tolist()
    assert data["next"]["token"] == walk.token
    for token_id in {*arrays["lens_ids"].ravel().tolist(), *arrays["next_ids"].tolist()}:
        entry = data["vocab"][str(token_id)]
        assert entry["token"] == tok.describe(token_id).token
    assert data["labels"] == [walk_page.token_label(r) for r in walk.tokens]


def test_an_encoder_has_no_lens_but_a_pooled_vector(walk_of, tiny_bert_dir):
    walk, tok = walk_of(tiny_bert_dir)
    data = data_of(walk_page.html_page(walk, tok.describe))
    assert "lens" not in data and "next" not in data
    assert data["pooled"] == pytest.approx(walk.arrays["pooled"].tolist(), abs=1e-6)
    assert data["steps"][-1]["title"].startswith("pooling")
    assert all(v is not None for head in data["attention"]["scores"] for row in head
               for v in row)  # fmt: skip


def test_markup_in_the_text_cannot_leave_the_data_block(walk_of, tiny_gpt2_dir):
    walk, tok = walk_of(tiny_gpt2_dir, NASTY)
    walk = copy.deepcopy(walk)  # the cached walk stays as it was
    walk.notes.append(NASTY)  # the whole of it in one string
    page = walk_page.html_page(walk, tok.describe)
    # Three script tags (data, components, walk), each closed once.
    assert page.count("<script") == 3
    assert page.count("</script>") == 3
    assert page.lower().count("</script") == 3
    assert "<b>" not in page and "<!--" not in page
    data = data_of(page)
    assert data["header"]["notes"][-1] == NASTY
    assert "".join(t["text"] for t in data["header"]["tokens"]) == NASTY


def test_non_finite_numbers_become_null():
    assert walk_page.plain({"a": float("inf"), "b": [float("nan"), np.float32(1.5)],
                            "c": (np.int64(3),)}) == {"a": None, "b": [None, 1.5],
                                                      "c": [3]}  # fmt: skip
    assert walk_page.grid(np.array([[-np.inf, 0.123456]])) == [[None, 0.1235]]
    assert walk_page.grid(np.array([0.5, 1.0])) == [0.5, 1.0]


@needs_node
def test_scripts_parse_and_format_in_node(walk_of, tiny_gpt2_dir, tmp_path):
    walk, tok = walk_of(tiny_gpt2_dir)
    page = walk_page.html_page(walk, tok.describe)
    scripts = SCRIPT.findall(page)
    assert len(scripts) == 2  # components.js, walk.js
    for k, script in enumerate(scripts):
        path = tmp_path / f"script{k}.js"
        path.write_text(script, encoding="utf-8")
        check = subprocess.run([NODE, "--check", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    # The components' number formatting and colours, without a browser.
    probe = tmp_path / "probe.js"
    probe.write_text(
        "global.window = {};\n" + scripts[0] + "\nconst L = window.LLM;\n"
        "console.log(JSON.stringify([L.num(49152), L.num(30, true), L.num(0.1234567),"
        " L.num(1.433e-5), L.num(true), L.num(null), L.delta(0), L.delta(1.9073e-6),"
        " L.delta(null), L.group(1560832), L.si(1560832), L.visible(' a\\n\\t'),"
        " L.scale('weights', 1).colour(0), L.scale('signed', 2).colour(0),"
        " L.scale('weights', 1, {sqrt: true}).pos(0.25)]));\n",
        encoding="utf-8",
    )
    run = subprocess.run([NODE, str(probe)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [
        "49,152", "30", "0.12346", "1.43e-5", "yes", "\u2014", "0", "1.9e-6", "not finite",
        "1,560,832", "1.56 M", "\u00b7a\u21b5\u2192", [68, 1, 84], [247, 247, 247], 0.5,
    ]  # fmt: skip


# --- the page in a browser -----------------------------------------------------------

# Run after walk.js: hover the followed head's weights (last query, first key) and a
# cell of the logit lens, pick head 1, and keep what the tooltip and page said.
PROBE = """<script>
(() => {
  const out = {};
  try {
    const L = window.LLM;
    const move = (target, x, y) => target.dispatchEvent(new MouseEvent("mousemove",
      { clientX: x, clientY: y, bubbles: true }));
    const heats = document.querySelectorAll("#step-head .heat");
    out.heats = heats.length;
    const weights = heats[heats.length - 1];
    const g = weights.geometry;
    const r = weights.canvas.getBoundingClientRect();
    const n = document.querySelectorAll("#step-tokens .tok").length;
    move(weights.canvas, r.left + g.x0 + 0.5 * g.cs, r.top + g.y0 + (n - 0.5) * g.cs);
    out.weightTip = L.tipText();
    const cell = document.querySelector("#step-layers table.lens td");
    if (cell) { move(cell, 5, 5); out.lensTip = L.tipText(); }
    document.querySelectorAll("#step-head .pick button")[1].click();
    out.picked = document.querySelector("#step-head figcaption").textContent;
    out.sections = [...document.querySelectorAll("section.step")].map((s) => s.id);
    out.canvases = document.querySelectorAll("canvas").length;
    out.bars = document.querySelectorAll(".bars .fill").length;
    out.checks = document.querySelectorAll("ul.checks li").length;
    out.marks = document.querySelectorAll("ul.checks .ok").length;
  } catch (e) {
    out.error = String(e && e.stack || e);
  }
  document.body.dataset.probe = JSON.stringify(out);
})();
</script>
</body>"""


@needs_chromium
@pytest.mark.parametrize("folder", ["tiny_gpt2_dir", "tiny_llama_dir", "tiny_bert_dir"])
def test_page_draws_in_chromium(walk_of, request, folder, tmp_path):
    walk, tok = walk_of(request.getfixturevalue(folder))
    page = walk_page.html_page(walk, tok.describe)
    file = tmp_path / "walk.html"
    file.write_text(page.replace("</body>", PROBE), encoding="utf-8")
    run = chromium(tmp_path, "--dump-dom", file.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    attrs = body_attributes(run.stdout)
    assert "data-error" not in attrs, attrs["data-error"]
    assert attrs.get("data-ready") == "1"
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console  # the page logs nothing, and nothing is thrown
    probe = json.loads(attrs["data-probe"])
    assert "error" not in probe, probe["error"]
    assert probe["sections"] == [f"step-{s.name}" for s in walk.steps]
    for step in walk.steps:
        assert f'id="step-{step.name}"' in run.stdout
    assert probe["heats"] == 3  # scores, mask, weights
    assert probe["checks"] == sum(len(s.checks) for s in walk.steps)
    assert probe["marks"] == sum(c.ok for s in walk.steps for c in s.checks)
    data = data_of(page)
    labels, last = data["labels"], len(data["labels"]) - 1
    weight = data["attention"]["weights"][walk.head][last][0]
    main, sub = probe["weightTip"]
    assert main == f"{labels[last]} \u2192 {labels[0]}: {weight:.4f}"
    assert f"query {last} \u2192 key 0" in sub
    assert probe["picked"].startswith("scores = q\u00b7k \u00d7 scale (head 1)")
    if walk.kind == "decoder":
        top = data["vocab"][str(data["lens"]["ids"][0][0][0])]["label"]
        assert probe["lensTip"][0].startswith(f"1. {top}")
        assert probe["bars"] == 5
    else:
        assert "lensTip" not in probe and probe["bars"] == 0


@needs_chromium
def test_markup_stays_text_and_a_failure_shows_in_chromium(walk_of, tiny_gpt2_dir, tmp_path):
    walk, tok = walk_of(tiny_gpt2_dir, NASTY)
    walk = copy.deepcopy(walk)  # the cached walk stays as it was
    walk.notes.append(NASTY)
    walk.steps[1].checks[0].max_abs_diff = float("inf")  # a check that fails
    total = sum(len(s.checks) for s in walk.steps)
    file = tmp_path / "walk.html"
    file.write_text(walk_page.html_page(walk, tok.describe), encoding="utf-8")
    run = chromium(tmp_path, "--dump-dom", file.as_uri())
    attrs = body_attributes(run.stdout)
    assert attrs.get("data-ready") == "1" and "data-error" not in attrs
    # The note is shown as text, and no element was made of it.
    assert "Note: &lt;/script&gt;&lt;b&gt;x&lt;/b&gt; &lt;!-- a" in run.stdout
    assert "</script><b>x</b>" not in run.stdout and "<!-- a" not in run.stdout
    assert run.stdout.count("<section") == len(walk.steps)
    assert f"\u2717 1 of {total} checks fail" in run.stdout
    assert "max |\u0394| not finite &gt; " in run.stdout
    assert run.stdout.count('<span class="bad">\u2717</span>') == 2  # the list, the contents


@needs_chromium
def test_screenshot_is_a_picture(walk_of, tiny_gpt2_dir, tmp_path):
    walk, tok = walk_of(tiny_gpt2_dir)
    file = tmp_path / "walk.html"
    file.write_text(walk_page.html_page(walk, tok.describe), encoding="utf-8")
    png = tmp_path / "walk.png"
    run = chromium(tmp_path, f"--screenshot={png}", "--window-size=1280,4000",
                   "--hide-scrollbars", file.as_uri())  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == (1280, 4000)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200  # text, heatmaps, strips
