"""What ``llmpath models`` says, and what the pulled store folders hold."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

MODELS = ("gpt2", "minilm", "smollm2", "gemma3-270m")
WITH_WEIGHTS = ("minilm", "smollm2", "gemma3-270m")
# kind, layers, heads, vocabulary size
EXPECTED = {
    "gpt2": ("tokenizer", 0, 0, 50257),
    "minilm": ("encoder", 6, 12, 30522),
    "smollm2": ("decoder", 30, 9, 49152),
    "gemma3-270m": ("decoder", 18, 4, 262144),
}
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "llmpath.json").read_text(encoding="utf-8"))


def _safetensors_header(path: Path) -> dict:
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    header.pop("__metadata__", None)
    return header


def test_models_json(llmpath, real_store: Path, reference):
    rows = json.loads(llmpath(["models", "-f", "json"]).stdout)
    assert [r["name"] for r in rows] == list(MODELS)
    for row in rows:
        kind, layers, heads, vocab = EXPECTED[row["name"]]
        assert row["installed"] is True
        assert (row["kind"], row["layers"], row["heads"], row["vocab_size"]) == (
            kind, layers, heads, vocab
        )  # fmt: skip
        assert Path(row["path"]) == real_store / "models" / row["name"]
        assert row["vocab_size"] == reference(row["name"]).get_vocab_size(with_added_tokens=True)
        stored = sum(p.stat().st_size for p in Path(row["path"]).rglob("*") if p.is_file())
        assert row["stored_size"] == stored


def test_models_jsonl_matches_json(llmpath):
    as_json = json.loads(llmpath(["models", "-f", "json"]).stdout)
    assert llmpath(["models", "-f", "jsonl"]).records() == as_json


@pytest.mark.parametrize("name", MODELS)
def test_manifest_hashes_match_the_files(model_dir, name):
    folder = model_dir(name)
    manifest = _manifest(folder)
    assert manifest["format"] == 1
    assert manifest["name"] == name
    assert manifest["kind"] == EXPECTED[name][0]
    files = manifest["files"]
    on_disk = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != "llmpath.json"
    }
    assert set(files) == on_disk
    for rel, sha in files.items():
        assert _sha256(folder / rel) == sha, rel


# sha256 of the file each model comes from (for gemma, its four parts joined).
PINNED = {
    "gpt2": "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    "minilm": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "smollm2": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    "gemma3-270m": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
}


@pytest.mark.parametrize("name", MODELS)
def test_stored_from_the_pinned_source(model_dir, name):
    assert _manifest(model_dir(name))["source"]["sha256"] == PINNED[name]


def test_files_taken_as_they_are_keep_their_pinned_hash(model_dir):
    assert _manifest(model_dir("gpt2"))["files"]["gpt2.tiktoken"] == PINNED["gpt2"]
    assert _manifest(model_dir("minilm"))["files"]["model.safetensors"] == PINNED["minilm"]


@pytest.mark.parametrize("name", MODELS)
def test_manifest_names_its_source(model_dir, name):
    from llmcli.models import registry

    spec = registry.get(name)
    source = _manifest(model_dir(name))["source"]
    assert source["sha256"] == spec.source_sha256
    assert source["distributions"] == {d.requirement: d.sha256 for d in spec.distributions}
    assert source["members"] == list(spec.members)


def test_weights_are_safetensors_only(real_store: Path, model_dir):
    for name in WITH_WEIGHTS:
        assert (model_dir(name) / "model.safetensors").is_file(), name
    assert not list(model_dir("gpt2").glob("*.safetensors"))
    pickles = [p for p in (real_store / "models").rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES]
    assert pickles == []


@pytest.mark.parametrize(
    ("name", "layers", "heads", "kv_heads", "vocab"),
    [
        ("minilm", 6, 12, None, 30522),
        ("smollm2", 30, 9, 3, 49152),
        ("gemma3-270m", 18, 4, 1, 262144),
    ],
)
def test_config_and_weights(model_dir, name, layers, heads, kv_heads, vocab):
    folder = model_dir(name)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert "quantization_config" not in config
    assert config["num_hidden_layers"] == layers
    assert config["num_attention_heads"] == heads
    assert config.get("num_key_value_heads") == kv_heads
    assert config["vocab_size"] == vocab
    header = _safetensors_header(folder / "model.safetensors")
    # Floating-point weights are float32 (dequantized 4-bit values are exact there).
    assert {t["dtype"] for t in header.values()} - {"I64"} == {"F32"}
    embeddings = [t for k, t in header.items() if k.endswith("embed_tokens.weight")
                  or k.endswith("word_embeddings.weight")]  # fmt: skip
    assert len(embeddings) == 1
    assert embeddings[0]["shape"] == [vocab, config["hidden_size"]]
    layer_ids = {int(k.split("layers." if "layers." in k else "layer.")[1].split(".")[0])
                 for k in header if ".layers." in k or ".layer." in k}  # fmt: skip
    assert layer_ids == set(range(layers))


@pytest.mark.parametrize("name", ("smollm2", "gemma3-270m"))
def test_decoders_say_their_weights_are_dequantized(model_dir, name):
    manifest = _manifest(model_dir(name))
    assert "dequantized" in manifest["weights"]
    assert "not the original checkpoint" in manifest["weights"]
