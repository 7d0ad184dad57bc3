"""Stored folders checked against their manifest: ``store.verify``, its stamp, and resolve.

The folders here are built by hand the way a pull leaves them: the tiny BPE tokenizer's
files (one in a subfolder) and a manifest with the sha256 of each.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from llmcli import fsutil
from llmcli.errors import IntegrityError
from llmcli.models import convert, registry, resolve, store
from llmcli.models.registry import Distribution, ModelSpec

NAME = "tinytok"
FILES = ["1_Pooling/config.json", "config.json", "tokenizer.json", "tokenizer_config.json"]


def build(folder: Path, bpe_dir: Path) -> Path:
    """A store folder with a manifest listing the sha256 of its files."""
    folder.mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(bpe_dir / name, folder / name)
    (folder / "config.json").write_text('{"model_type": "none"}')
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    manifest = {"format": store.MANIFEST_FORMAT, "name": folder.name,
                "files": store.hash_files(folder)}  # fmt: skip
    (folder / store.MANIFEST).write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def stored(store_home, bpe_dir) -> Path:
    return build(store.model_dir(NAME), bpe_dir)


@pytest.fixture
def settled(monkeypatch):
    """Files count as written long enough before a check to be recorded in the stamp.

    (By default a file whose change time is within ``store.RACY_NS`` of the check is
    hashed again next time; the files of these tests were all written a moment ago.)
    """
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


@pytest.fixture
def tiny_spec(monkeypatch) -> ModelSpec:
    """A registry entry whose store folder is ``stored``."""
    spec = ModelSpec(
        name=NAME, kind="tokenizer", description="tiny BPE tokenizer", licence="MIT",
        source_format="hf-folder",
        distributions=(Distribution(f"{NAME}==0.1.0", f"{NAME}-0.1.0-py3-none-any.whl",
                                    "0" * 64, 1),),
        members=("tinytok/model/",), pinned_member="tokenizer.json", source_sha256="0" * 64,
        vocab_size=400, context=64,
    )  # fmt: skip
    monkeypatch.setitem(registry.REGISTRY, NAME, spec)
    return spec


def clock_past(ns: int, scratch: Path) -> None:
    """Write ``scratch`` until the file system's clock has moved past ``ns``.

    File times advance in ticks; this makes sure that a write done next gets a later
    change time than a file last written at ``ns``.
    """
    for _ in range(1_000_000):
        scratch.write_bytes(b"tick")
        if scratch.stat().st_ctime_ns > ns:
            return
    raise AssertionError("the file system clock did not move")


def flip_byte(path: Path, offset: int = 100) -> None:
    """Change one byte in place: same size, same inode."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        old = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([old[0] ^ 0x01]))


def stamp_of(key: str = NAME) -> dict:
    return json.loads(store.stamp_path(key).read_text())


# --- verify --------------------------------------------------------------------------------


def test_an_intact_folder_passes_and_gets_a_stamp(stored, settled, store_home):
    assert not store.stamp_path(NAME).exists()
    assert store.verify(stored, NAME) == []
    assert store.stamp_path(NAME) == store_home / "verified" / f"{NAME}.json"
    data = stamp_of()
    raw = (stored / store.MANIFEST).read_bytes()
    import hashlib

    assert data["manifest"] == hashlib.sha256(raw).hexdigest()
    assert sorted(data["files"]) == FILES
    st = (stored / "tokenizer.json").stat()
    assert data["files"]["tokenizer.json"] == [st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                                               st.st_ino]  # fmt: skip
    # Nothing is written into the model folder itself.
    on_disk = sorted(p.relative_to(stored).as_posix() for p in stored.rglob("*") if p.is_file())
    assert on_disk == sorted([*FILES, store.MANIFEST])


def test_an_untouched_folder_is_not_read_again(stored, settled, hashed):
    assert store.verify(stored, NAME) == []
    assert sorted(hashed) == ["config.json", "config.json", "tokenizer.json",
                              "tokenizer_config.json"]  # fmt: skip
    hashed.clear()
    for _ in range(3):
        assert store.verify(stored, NAME) == []
    assert hashed == []


def test_files_written_just_before_a_check_are_hashed_again_next_time(stored, hashed):
    # With the default margin, files changed a moment ago are not recorded: a write in
    # the same tick of the file clock would not move their times.
    assert store.verify(stored, NAME) == []
    assert not store.stamp_path(NAME).exists()  # nothing to record
    hashed.clear()
    assert store.verify(stored, NAME) == []
    assert len(hashed) == len(FILES)


def test_a_full_check_reads_every_file(stored, settled, hashed):
    assert store.verify(stored, NAME) == []
    hashed.clear()
    assert store.verify(stored, NAME, full=True) == []
    assert len(hashed) == len(FILES)


def test_a_changed_byte_is_caught_even_with_the_old_size_and_mtime(stored, settled, tmp_path,
                                                                   hashed):  # fmt: skip
    path = stored / "tokenizer.json"
    assert store.verify(stored, NAME) == []
    before = path.stat()
    clock_past(before.st_ctime_ns, tmp_path / "scratch")
    flip_byte(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    recorded = stamp_of()["files"]["tokenizer.json"]
    # Size, mtime and inode are those recorded; only the change time tells.
    assert [after.st_size, after.st_mtime_ns, after.st_ino] == [recorded[i] for i in (0, 1, 3)]
    assert after.st_ctime_ns != recorded[2]
    hashed.clear()
    assert store.verify(stored, NAME) == ["tokenizer.json: sha256 differs"]
    assert hashed == ["tokenizer.json"]  # the other files are trusted, not read


def test_a_truncated_file_is_caught(stored, settled):
    assert store.verify(stored, NAME) == []
    path = stored / "tokenizer.json"
    path.write_bytes(path.read_bytes()[:-10])
    assert store.verify(stored, NAME) == ["tokenizer.json: sha256 differs"]


def test_a_deleted_file_is_caught(stored, settled, hashed):
    assert store.verify(stored, NAME) == []
    (stored / "1_Pooling" / "config.json").unlink()
    hashed.clear()
    assert store.verify(stored, NAME) == ["1_Pooling/config.json: missing"]
    assert hashed == []


def test_a_file_the_manifest_does_not_list_is_caught(stored, settled):
    assert store.verify(stored, NAME) == []
    (stored / ".DS_Store").write_bytes(b"hidden files are not read by any loader")
    assert store.verify(stored, NAME) == []
    (stored / "model.safetensors").write_bytes(b"\0" * 16)
    (stored / "1_Pooling" / "vocab.txt").write_text("cat\n")
    assert store.verify(stored, NAME) == [
        "1_Pooling/vocab.txt: not in the manifest", "model.safetensors: not in the manifest",
    ]  # fmt: skip


def test_a_folder_replaced_by_a_directory_is_caught(stored, settled):
    (stored / "config.json").unlink()
    (stored / "config.json").mkdir()
    assert store.verify(stored, NAME) == ["config.json: not a file"]


def test_an_edited_manifest_voids_the_stamp(stored, settled, hashed):
    assert store.verify(stored, NAME) == []
    manifest = json.loads((stored / store.MANIFEST).read_text())
    manifest["files"]["config.json"] = "f" * 64
    (stored / store.MANIFEST).write_text(json.dumps(manifest))
    hashed.clear()
    assert store.verify(stored, NAME) == ["config.json: sha256 differs"]
    assert len(hashed) == len(FILES)


@pytest.mark.parametrize(
    "files",
    [None, {}, {"../outside.json": "0" * 64}, {"/etc/passwd": "0" * 64},
     {"config.json": "not a hash"}, {store.MANIFEST: "0" * 64}],
    ids=["absent", "empty", "dotdot", "absolute", "bad-hash", "itself"],
)  # fmt: skip
def test_a_manifest_without_a_valid_file_list_is_refused(stored, files):
    manifest = {"format": store.MANIFEST_FORMAT, "name": NAME}
    if files is not None:
        manifest["files"] = files
    (stored / store.MANIFEST).write_text(json.dumps(manifest))
    assert store.verify(stored, NAME) == ["llmpath.json: no valid sha256 list of the stored files"]
    assert not store.has_hashes(stored)


def test_several_problems_are_all_reported_sorted(stored):
    (stored / "tokenizer_config.json").unlink()
    (stored / "extra.json").write_text("{}")
    flip_byte(stored / "tokenizer.json")
    assert store.verify(stored, NAME, full=True) == [
        "extra.json: not in the manifest", "tokenizer.json: sha256 differs",
        "tokenizer_config.json: missing",
    ]  # fmt: skip
    assert (
        store.describe(store.verify(stored, NAME)) == "extra.json: not in the manifest, and 1 more"
    )


def test_a_store_where_no_stamp_can_be_written_still_checks(stored, settled, store_home, hashed):
    (store_home / "verified").write_text("a file where the stamps' folder would be")
    assert store.verify(stored, NAME) == []
    assert store.verify(stored, NAME) == []
    assert len(hashed) == 2 * len(FILES)  # no stamp: every check reads everything
    flip_byte(stored / "config.json", offset=2)
    assert store.verify(stored, NAME) == ["config.json: sha256 differs"]


def test_stamp_records_the_files_without_reading_them(stored, settled, hashed):
    store.stamp(stored, NAME)
    assert hashed == []
    assert sorted(stamp_of()["files"]) == FILES
    assert store.verify(stored, NAME) == []
    assert hashed == []


# --- resolve -------------------------------------------------------------------------------


def test_a_changed_registry_model_is_refused(stored, tiny_spec, settled):
    model = resolve.resolve(NAME)
    assert (model.path, model.source) == (stored, "registry")
    flip_byte(stored / "tokenizer.json")
    with pytest.raises(IntegrityError) as exc:
        resolve.resolve(NAME)
    assert str(exc.value) == (
        "the stored tinytok was changed since it was pulled (tokenizer.json: sha256 differs); "
        "run 'llmpath pull tinytok --force' to pull it again"
    )


def test_the_refusal_counts_the_other_problems(stored, tiny_spec):
    (stored / "config.json").unlink()
    (stored / "tokenizer.json").unlink()
    with pytest.raises(IntegrityError, match=r"\(config.json: missing, and 1 more\);"):
        resolve.resolve(NAME)


def test_a_folder_given_by_its_path_is_not_checked(stored, hashed):
    (stored / "extra.json").write_text("{}")
    flip_byte(stored / "tokenizer.json")
    model = resolve.resolve(str(stored))
    assert (model.path, model.source, model.spec) == (stored, "folder", None)
    assert hashed == []


# --- .gguf files converted into local/ -----------------------------------------------------


class Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)

    def step(self, description, total=None, unit="bytes"):  # type: ignore[no-untyped-def]
        from llmcli.models.progress import SilentReporter

        return SilentReporter().step(description, total, unit)


@pytest.fixture
def fake_gguf(tmp_path, bpe_dir, monkeypatch):
    """A .gguf file and a stand-in converter that counts its runs."""
    runs: list[Path] = []

    def gguf_to_folder(path: Path, out: Path) -> dict[str, object]:
        runs.append(path)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copyfile(bpe_dir / name, out / name)
        return {"architecture": "tiny"}

    monkeypatch.setattr(convert, "gguf_to_folder", gguf_to_folder)
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(range(256)))
    return gguf, runs


def test_a_converted_gguf_lists_its_hashes_and_is_checked(fake_gguf, settled, bpe_dir):
    gguf, runs = fake_gguf
    first = resolve.resolve(str(gguf))
    assert first.source == "gguf" and len(runs) == 1
    manifest = json.loads((first.path / store.MANIFEST).read_text())
    assert manifest["files"] == {
        name: fsutil.sha256_file(bpe_dir / name)
        for name in ("tokenizer.json", "tokenizer_config.json")
    }
    key = f"local-{first.path.name}"
    assert sorted(stamp_of(key)["files"]) == ["tokenizer.json", "tokenizer_config.json"]
    assert resolve.resolve(str(gguf)).path == first.path
    assert len(runs) == 1

    flip_byte(first.path / "tokenizer.json")
    rep = Notes()
    again = resolve._convert_gguf(gguf, rep)
    assert again == first.path and len(runs) == 2
    assert rep.notes == [
        "the stored conversion of tiny.gguf was changed since it was made "
        "(tokenizer.json: sha256 differs): converting it again"
    ]
    assert store.verify(again, key, full=True) == []


def test_an_older_conversion_without_hashes_is_used_as_it_is(fake_gguf):
    gguf, runs = fake_gguf
    folder = resolve.resolve(str(gguf)).path
    manifest = json.loads((folder / store.MANIFEST).read_text())
    del manifest["files"]
    (folder / store.MANIFEST).write_text(json.dumps(manifest))
    (folder / "extra.json").write_text("{}")
    assert resolve.resolve(str(gguf)).path == folder
    assert len(runs) == 1


def test_a_gguf_file_is_hashed_once_while_it_stays_the_same(fake_gguf, settled, hashed):
    gguf, runs = fake_gguf
    first = resolve.resolve(str(gguf))
    assert hashed.count("tiny.gguf") == 1
    for _ in range(3):
        assert resolve.resolve(str(gguf)).path == first.path  # the stamp stands for the hash
    assert hashed.count("tiny.gguf") == 1 and len(runs) == 1
    # A change to the file (same size, its time put back) changes its ctime: hashed again,
    # and a new content is a new conversion.
    stat = gguf.stat()
    gguf.write_bytes(b"GGUF" + bytes(reversed(range(256))))
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = resolve.resolve(str(gguf))
    assert hashed.count("tiny.gguf") == 2
    assert changed.path != first.path and len(runs) == 2
