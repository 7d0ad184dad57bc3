"""The registry, the store, model resolution and atomic writes (no real model needed)."""

from __future__ import annotations

import json
import os
import re
import threading

import pytest

from llmcli import fsutil
from llmcli.errors import ModelError, OfflineError, OutputError
from llmcli.models import registry, resolve, store
from llmcli.models.pull import _unsafe

NAMES = ["gpt2", "minilm", "smollm2", "gemma3-270m"]


# --- registry ------------------------------------------------------------------------------


def test_registry_has_the_four_models():
    assert list(registry.REGISTRY) == NAMES


@pytest.mark.parametrize("spec", list(registry.REGISTRY.values()), ids=NAMES)
def test_registry_entries_are_pinned(spec):
    for dist in spec.distributions:
        assert re.fullmatch(r"[0-9a-f]{64}", dist.sha256)
        assert "==" in dist.requirement and dist.size > 0
    assert re.fullmatch(r"[0-9a-f]{64}", spec.source_sha256)
    assert spec.download_size == sum(d.size for d in spec.distributions)
    assert spec.members and spec.vocab_size > 0
    assert spec.source_format in {"tiktoken", "hf-folder", "gguf", "gguf-parts"}


def test_registry_shapes_and_weights():
    reg = registry.REGISTRY
    assert reg["gpt2"].shape == "" and not reg["gpt2"].has_weights
    assert reg["minilm"].shape == "6 x 12"
    assert reg["smollm2"].shape == "30 x 9 (3 KV)"
    assert reg["gemma3-270m"].shape == "18 x 4 (1 KV)"
    assert reg["gemma3-270m"].has_weights


def test_lookup_and_get():
    assert registry.lookup("gemma") is registry.REGISTRY["gemma3-270m"]
    assert registry.lookup("nope") is None
    with pytest.raises(ModelError) as exc:
        registry.get("nope")
    assert str(exc.value) == f"unknown model 'nope'; registry models are: {', '.join(NAMES)}"


# --- store ---------------------------------------------------------------------------------


def test_store_home_is_the_isolated_folder(store_home):
    assert store.home() == store_home
    assert store.model_dir("gpt2") == store_home / "models" / "gpt2"
    assert store.offline()


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("LLMPATH_OFFLINE", "1", True), ("LLMPATH_OFFLINE", "yes", True),
        ("LLMPATH_OFFLINE", " TRUE ", True), ("LLMPATH_OFFLINE", "0", False),
        ("LLMPATH_OFFLINE", "", False), ("HF_HUB_OFFLINE", "1", True),
        ("HF_HUB_OFFLINE", "off", False),
    ],
)  # fmt: skip
def test_offline_variables(monkeypatch, var, value, expected):
    monkeypatch.delenv("LLMPATH_OFFLINE")
    monkeypatch.setenv(var, value)
    assert store.offline() is expected


def test_a_folder_is_installed_only_with_a_valid_manifest(store_home):
    folder = store.model_dir("gpt2")
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text("{}")
    assert not store.is_installed("gpt2")
    (folder / store.MANIFEST).write_text("{broken")
    assert not store.is_installed("gpt2")
    (folder / store.MANIFEST).write_text(json.dumps({"format": 99}))
    assert not store.is_installed("gpt2")
    (folder / store.MANIFEST).write_text(json.dumps({"format": store.MANIFEST_FORMAT}))
    assert store.is_installed("gpt2")
    assert store.folder_size(folder) == 2 + len(json.dumps({"format": 1}))


def test_clean_stale_removes_only_that_models_leftovers(store_home):
    for path in ("tmp/tiny.abc", "tmp/other.abc", "models/.tiny.old-123", "models/tiny"):
        (store_home / path).mkdir(parents=True)
    store.clean_stale("tiny")
    left = sorted(str(p.relative_to(store_home)) for p in store_home.glob("*/*"))
    assert left == ["models/tiny", "tmp/other.abc"]


def test_workdir_is_removed_afterwards(store_home):
    with store.workdir("tiny") as work:
        (work / "file").write_text("x")
        assert work.parent == store_home / "tmp"
    assert not work.exists()


def test_a_second_holder_of_the_lock_waits():
    waiting = threading.Event()
    entered = threading.Event()

    def second() -> None:
        with store.locked("tiny", on_wait=waiting.set):
            entered.set()

    with store.locked("tiny"):
        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(30)
        assert not entered.is_set()
    thread.join(30)
    assert entered.is_set()


# --- resolve -------------------------------------------------------------------------------


def test_resolve_a_folder(bpe_dir):
    model = resolve.resolve(str(bpe_dir))
    assert (model.label, model.path, model.spec, model.source) == (
        "tinybpe", bpe_dir, None, "folder",
    )  # fmt: skip
    assert not model.has_weights


def test_resolve_refuses_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="is a folder but not a Hugging Face model"):
        resolve.resolve(str(tmp_path))


def test_resolve_unknown_names(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'nosuch'"):
        resolve.resolve("nosuch")
    with pytest.raises(ModelError, match="cannot read .*missing.gguf: no such file"):
        resolve.resolve(str(tmp_path / "missing.gguf"))
    with pytest.raises(OfflineError, match="looks like a hub id, but downloads are off"):
        resolve.resolve("someorg/somemodel")


@pytest.mark.parametrize("name", NAMES)
def test_resolve_a_missing_registry_model_offline_names_the_pull_command(store_home, name):
    with pytest.raises(OfflineError) as exc:
        resolve.resolve(name)
    assert f"run 'llmpath pull {name}' first" in str(exc.value)
    assert not (store_home / "models").exists()


# --- safe archive names and atomic writes -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "unsafe"),
    [
        ("pkg/model/tokenizer.json", False), ("a/../b", True), ("../evil", True),
        ("/etc/passwd", True), ("C:/x", True), ("a\\..\\..\\b", True), ("a..b/c", False),
    ],
)  # fmt: skip
def test_unsafe_member_names(name, unsafe):
    assert _unsafe(name) is unsafe


def test_atomic_open_replaces_the_file_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), fsutil.atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("stop")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with fsutil.atomic_open(target) as fh:
        fh.write("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_open_into_a_missing_folder_is_an_output_error(tmp_path):
    with (
        pytest.raises(OutputError, match="does not exist"),
        fsutil.atomic_open(tmp_path / "no" / "out.txt"),
    ):
        pass


def test_replace_dir_swaps_folders(tmp_path):
    old, new = tmp_path / "model", tmp_path / "work"
    old.mkdir()
    (old / "a").write_text("old")
    new.mkdir()
    (new / "a").write_text("new")
    fsutil.replace_dir(new, old)
    assert (old / "a").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_sha256_file(tmp_path):
    import hashlib

    path = tmp_path / "f"
    data = os.urandom(3 * fsutil.CHUNK + 5)
    path.write_bytes(data)
    seen: list[int] = []
    assert fsutil.sha256_file(path, seen.append) == hashlib.sha256(data).hexdigest()
    assert sum(seen) == len(data)
