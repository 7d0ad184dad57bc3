"""The attention page opened in headless Chromium: it draws, and logs no error."""

from __future__ import annotations

import pytest

from tests.cli.test_walk_page import CHROMIUM, chromium

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]


@pytest.mark.parametrize(("folder", "args"), [
    ("tiny_gpt2_dir", []), ("tiny_bert_dir", ["-a", "rollout", "-l", "1"]),
])  # fmt: skip
def test_the_attention_page_draws_without_errors(cli, request, tmp_path, folder, args):
    page = tmp_path / "attention.html"
    result = cli("attention", "The cat sat on the mat.", "-m", request.getfixturevalue(folder),
                 *args, "-o", page)  # fmt: skip
    assert result.code == 0, result.err
    run = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console  # an uncaught error would be logged here
    assert "<canvas" in run.stdout
    png = tmp_path / "attention.png"
    shot = chromium(tmp_path, f"--screenshot={png}", "--window-size=1200,900", page.as_uri())
    assert shot.returncode == 0 and png.read_bytes().startswith(b"\x89PNG")
    assert png.stat().st_size > 10_000
