"""Few-shot benchmark: scoring against lm-evaluation-harness, generation against transformers.

    python bench/bench_fewshot.py                       # smollm2, the full run
    python bench/bench_fewshot.py --quick               # fewer items, one repeat
    python bench/bench_fewshot.py --model gemma3-270m --quick

Run it with the interpreter llmpath and lm_eval are installed in. The store
(``$LLMPATH_HOME``) must hold the model; it is only read (``LLMPATH_OFFLINE=1``).
Nothing is downloaded: lm_eval runs with ``HF_HUB_OFFLINE=1`` and
``HF_DATASETS_OFFLINE=1`` on local files, and every measured process refuses (and
counts) any attempt to open a network connection.

1. Scoring (log-likelihood of the choices, as lm-evaluation-harness computes it).
   The built-in multiple-choice tasks sentiment, animal-class (task-level choices)
   and bigger (per-item choices), and the bench's own long-answers
   (bench/tasks/long-answers.jsonl: capitals such as "Kuala Lumpur" and opposite
   phrases such as "the bottom of the mountain", 4 choices of 1 to 8 tokens each, so
   that scoring the later tokens of a choice counts), at 0, 1 and 3 shots
   (``--shots``), the same model, on the CPU, for each shot count K:

   a) llmpath end to end, the command line ``llmpath fewshot --eval -t FILE -t FILE
      -t FILE -f json --shots K --draw DRAW --seed 1234 -m MODEL --device cpu
      --batch-size 8 -o OUT``. FILE is the task file;
   b) lm-evaluation-harness itself: ``python -m lm_eval --model hf --model_args
      pretrained=FOLDER,dtype=float32 --device cpu --tasks ... --include_path DIR
      --num_fewshot K --batch_size 8 --seed 0,1234,1234,1234 --log_samples
      --output_path ...`` (the seeds are lm_eval's defaults, written out). DIR holds a
      task YAML and JSON Lines data (test and fewshot splits) made from the same
      built-in file: description = instruction + "\\n\\n", doc_to_text = the
      template's prompt part ("Review: {{input}}\\nSentiment:"), target_delimiter,
      fewshot_delimiter "\\n\\n", doc_to_choice / doc_to_target from the item,
      metrics acc and acc_norm, and lm_eval's own ``default`` fewshot sampler: lm_eval
      draws its examples itself.

   ``--draw`` (bench): ``lm-eval`` (default) runs llmpath with its default draw, which
   must give lm_eval's own examples item by item; ``first`` gives both the first K
   examples in file order (``"shuffle": false`` in llmpath's file, ``first_n`` in
   lm_eval's); ``nested`` runs llmpath with ``--draw nested`` (other examples than
   lm_eval's, so only the speed is compared).

   Where the draws are the same, both see the same prompts, which is checked: every
   context lm_eval logged must be llmpath's prompt (less the BOS text llmpath writes
   in front for Gemma, which lm_eval adds as a token), and every continuation the
   same. Each run is a fresh process started through a small hook (HOOK below) that
   runs the tool's own entry point (``llmcli.cli.main`` or
   ``lm_eval.__main__.cli_evaluate``) with the arguments above, after wrapping the
   one function that does the scoring (``llmcli.core.fewshot.run_cases``;
   ``HFLM.loglikelihood``) with a timer. The timed part is that call: tokenizing the
   continuations and the forward passes, not the start-up, the model load, building
   the prompts or writing the results. Before the first timed call both run one
   untimed forward pass of 8 tokens, so that neither timing holds the first call's
   one-off costs. A request is one (context, choice) pair, lm_eval's count;
   requests/s = requests / scoring time. The wall time and peak RSS of the whole
   process are recorded too, and a forward hook on the model counts what the scoring
   runs through it (calls, rows, tokens with padding, positions that get full-
   vocabulary logits). The per-choice log-likelihoods, acc and acc_norm of every item
   are compared. Median of 3 rounds (``--quick``: 1 and the first 16 items of each
   task), one run of each tool per round, the order reversed every other round.

2. Generation (greedy, tokens/s). The prompts are the first test items of the
   built-in en-fr task, 3 shots, built by llmpath's PromptBuilder (token IDs), the
   same IDs for everyone; stop strings off, at most N new tokens (EOS still ends a
   row). Each method runs in a fresh process (GEN_WORKER below), batch 1 and batch 8:

   a) llmpath ``LanguageModel.generate(prompts, max_new_tokens=N, stop=())``;
   b) the anchor: a plain loop written directly against transformers:
      ``AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)``, a
      left-padded prompt pass (``logits_to_keep=1``), then one token at a time fed
      back with the cache, the argmax taken;
   c) for reference: ``model.generate(do_sample=False, max_new_tokens=N)``.

   In each process: the load, one untimed warm-up generation (4 tokens), then one
   timed run over all the prompts (prompt passes included, and decoding the IDs to
   text: llmpath decodes as it goes, the transformers scripts at the end, with the
   ``tokenizers`` library they load too). Every (method, batch) runs once per round,
   in 3 rounds (``--quick``: 1), the order reversed every other round, so that
   changes in the machine's load spread over all of them. tokens/s = tokens
   produced / seconds (median of the rounds). The generated IDs of (a) must equal the
   anchor's, and every round's IDs the first's. Peak RSS (VmHWM) of each process.

Targets: generation within 1.1x of the direct code in time and 1.3x in peak memory;
scoring at least 2x lm-evaluation-harness's requests/s at 0 and 3 shots with lm_eval's
draw, and 4x at 3 shots where the prompts share their examples (``--draw first``) and
with ``--draw nested`` (SCORING_TARGETS; a nested draw is per item, so its prompts
share little).

The tables are printed, and written to bench/results-fewshot.md as this model's
sections, one for scoring and one for generation (``--only`` runs one part; the
other sections in that file are kept). Exit status 1 if a
check fails (a command that fails, prompts, scores or IDs that differ, a network
attempt), 2 if the run cannot start.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from _report import Report, Run, fmt_s, run_child, spread, warm_cache

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
MODELS = ("smollm2", "gemma3-270m")
SCORE_TASKS = ("sentiment", "animal-class", "bigger", "long-answers")
GEN_TASK = "en-fr"
SHOTS = (0, 1, 3)  # scoring
GEN_SHOTS = 3
DRAWS = ("lm-eval", "first", "nested")
GEN_METHODS = ("loop", "llmpath", "generate", "stream")
TIME_TARGET = 1.1  # llmpath's time at most this times the direct transformers code's
MEMORY_TARGET = 1.3  # llmpath's peak RSS at most this times the direct code's
# Scoring rate against lm_eval's, by (draw, shots); 1x (faster) where none is named.
# With ``first`` every prompt has the same examples, which are then computed once.
SCORING_TARGETS = {("lm-eval", 0): 2.0, ("lm-eval", 3): 2.0, ("first", 3): 4.0,
                   ("nested", 3): 4.0}  # fmt: skip
LOGPROB_TOLERANCE = 1e-4  # largest accepted |difference| of a choice's log-likelihood

# Runs a tool's own entry point with its scoring call timed. argv: timing file, tool,
# then the tool's arguments. Any network connection attempt is refused and counted.
HOOK = r"""
import json, os, socket, sys, time

started = time.perf_counter()
timing_file, tool, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
state = {"scoring_s": 0.0, "scoring_cpu_s": 0.0, "requests": 0, "calls": 0, "network": [],
         "first_call_at_s": None, "warmup_s": 0.0}

def save():
    state["process_s"] = time.perf_counter() - started
    with open(timing_file, "w") as fh:
        json.dump(state, fh)

def refuse(self, address, *args, **kwargs):
    state["network"].append(repr(address))
    save()
    raise OSError("network access refused by the benchmark")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse

def count(module, args, kwargs, output):
    ids = kwargs.get("input_ids", args[0] if args else None)
    state["forward_calls"] += 1
    state["rows"] += int(ids.shape[0])
    state["tokens"] += int(ids.numel())
    # [batch, positions, vocab], or [positions, vocab] where only some were kept
    state["logit_positions"] += int(output.logits.shape[:-1].numel())

def warm_up(model, token_id):
    import torch
    t = time.perf_counter()
    with torch.inference_mode():
        model(input_ids=torch.full((1, 8), int(token_id), dtype=torch.long))
    state["warmup_s"] += time.perf_counter() - t
    # From here on, count what goes through the model (the warm-up is not counted).
    state.update(forward_calls=0, rows=0, tokens=0, logit_positions=0)
    model.register_forward_hook(count, with_kwargs=True)

if tool == "llmpath":
    import llmcli.core.fewshot as fewshot
    original = fewshot.run_cases

    def timed_run_cases(lm, cases, **kwargs):
        if state["calls"] == 0:
            warm_up(lm.model, lm.prefix_id())
        state["calls"] += 1
        if state["first_call_at_s"] is None:
            state["first_call_at_s"] = time.perf_counter() - started
        state["requests"] += sum(len(c.choices or ()) for c in cases)
        start, cpu = time.perf_counter(), time.process_time()
        outcomes = list(original(lm, cases, **kwargs))
        state["scoring_s"] += time.perf_counter() - start
        state["scoring_cpu_s"] += time.process_time() - cpu
        save()
        yield from outcomes

    fewshot.run_cases = timed_run_cases
    from llmcli.cli import main
    try:
        main(argv)
    finally:
        save()
else:
    from lm_eval.models.huggingface import HFLM
    original = HFLM.loglikelihood

    def timed_loglikelihood(self, requests, *args, **kwargs):
        if state["calls"] == 0:
            warm_up(self.model, self.prefix_token_id)
        state["calls"] += 1
        if state["first_call_at_s"] is None:
            state["first_call_at_s"] = time.perf_counter() - started
        state["requests"] += len(requests)
        start, cpu = time.perf_counter(), time.process_time()
        result = original(self, requests, *args, **kwargs)
        state["scoring_s"] += time.perf_counter() - start
        state["scoring_cpu_s"] += time.process_time() - cpu
        save()
        return result

    HFLM.loglikelihood = timed_loglikelihood
    sys.argv = ["lm_eval", *argv]
    from lm_eval.__main__ import cli_evaluate
    try:
        cli_evaluate()
    finally:
        save()
"""

# One generation method in a process of its own. argv: a JSON file with the job; the
# result (timings, IDs, peak RSS) is written to the job's "result" path.
GEN_WORKER = r"""
import json, socket, statistics, sys, time

job = json.load(open(sys.argv[1]))
network = []

def refuse(self, address, *args, **kwargs):
    network.append(repr(address))
    raise OSError("network access refused by the benchmark")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
started = time.perf_counter()
import torch

method, batch, new_tokens = job["method"], job["batch"], job["new_tokens"]
prompts = job["prompts"]

if method == "llmpath":
    from llmcli.core.lm import LanguageModel
    from llmcli.models.loader import load_model
    from llmcli.models.resolve import resolve
    from llmcli.models.tokenizer import LoadedTokenizer

    resolved = resolve(job["model"])
    loaded = load_model(resolved, device="cpu", dtype="float32")
    lm = LanguageModel(loaded, LoadedTokenizer.for_model(resolved), batch_size=batch)

    def run(ps, n):
        return [g.tokens for g in lm.generate(ps, max_new_tokens=n, stop=())]
else:
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    # A script would tokenize its prompts and print the answers: it loads the tokenizer.
    tok = Tokenizer.from_file(job["folder"] + "/tokenizer.json")
    model = AutoModelForCausalLM.from_pretrained(job["folder"], dtype=torch.float32)
    model.eval()
    config = model.generation_config
    eos = config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    pad = config.pad_token_id if config.pad_token_id is not None else min(eos)

    def padded(chunk):
        width = max(len(p) for p in chunk)
        ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in chunk])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
        return ids, mask

    def loop(chunk, n):
        # The plain way: a prompt pass, then one token at a time with the cache.
        ids, mask = padded(chunk)
        out_ids = [[] for _ in chunk]
        done = [False] * len(chunk)
        with torch.inference_mode():
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                        use_cache=True, logits_to_keep=1)
            positions = positions[:, -1:]
            for step in range(n):
                chosen = out.logits[:, -1, :].argmax(-1)
                for row, token in enumerate(chosen.tolist()):
                    if done[row]:
                        continue
                    if token in eos:
                        done[row] = True
                    else:
                        out_ids[row].append(token)
                if all(done) or step == n - 1:
                    break
                mask = torch.cat([mask, torch.ones((len(chunk), 1), dtype=mask.dtype)], dim=1)
                positions = positions + 1
                out = model(input_ids=chosen[:, None], attention_mask=mask,
                            position_ids=positions, past_key_values=out.past_key_values,
                            use_cache=True)
        return out_ids

    def new_ids(got, width):
        # What generate made after each prompt, up to its first EOS.
        out_ids = []
        for row in got[:, width:].tolist():
            kept = []
            for token in row:
                if token in eos:
                    break
                kept.append(token)
            out_ids.append(kept)
        return out_ids

    def hf_generate(chunk, n):
        ids, mask = padded(chunk)
        with torch.inference_mode():
            got = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                 max_new_tokens=n, pad_token_id=pad)
        return new_ids(got, ids.shape[1])

    if method == "stream":
        # What a terminal command would do with generate: a streamer that decodes each
        # step as it comes, and a stop-string criterion (one that never matches here, so
        # that every method produces the same tokens; its check still runs each step).
        from transformers import AutoTokenizer
        from transformers.generation.streamers import BaseStreamer

        hf_tok = AutoTokenizer.from_pretrained(job["folder"])

        class Sink(BaseStreamer):
            def __init__(self):
                self.texts = []

            def put(self, value):
                self.texts.append(tok.decode(value.reshape(-1).tolist()))

            def end(self):
                pass

        def hf_stream(chunk, n):
            ids, mask = padded(chunk)
            with torch.inference_mode():
                got = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                     max_new_tokens=n, pad_token_id=pad, streamer=Sink(),
                                     stop_strings=["\x00\x00"], tokenizer=hf_tok)
            return new_ids(got, ids.shape[1])

    step_fn = {"loop": loop, "generate": hf_generate}.get(method) or hf_stream

    def run(ps, n):
        out = []
        for start in range(0, len(ps), batch):
            out += step_fn(ps[start:start + batch], n)
        texts = [tok.decode(ids) for ids in out]
        return out

load_s = time.perf_counter() - started
t = time.perf_counter()
run(prompts[:batch], 4)  # warm-up, untimed
warmup_s = time.perf_counter() - t
times, cpu_times = [], []
tokens = None
for _ in range(job["repeat"]):
    t, cpu = time.perf_counter(), time.process_time()
    tokens = run(prompts, new_tokens)
    times.append(time.perf_counter() - t)
    cpu_times.append(time.process_time() - cpu)
with open("/proc/self/status") as fh:
    hwm_kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
json.dump({"times": times, "cpu_times": cpu_times, "tokens": tokens, "load_s": load_s,
           "warmup_s": warmup_s, "peak_rss_mb": hwm_kb / 1024, "threads": torch.get_num_threads(),
           "network": network}, open(job["result"], "w"))
"""


class BenchError(Exception):
    """The run cannot start (a missing model, a missing tool)."""


# --- scoring: the inputs of both tools ----------------------------------------------


def builtin_text(name: str) -> str:
    """A task file: the bench's own (bench/tasks/), else llmpath's built-in one."""
    own = BENCH / "tasks" / f"{name}.jsonl"
    if own.is_file():
        return own.read_text(encoding="utf-8")
    return resources.files("llmcli.tasks").joinpath(f"{name}.jsonl").read_text(encoding="utf-8")


def write_task_inputs(name: str, folder: Path, draw: str) -> tuple[Path, Path, str, int]:
    """llmpath's task file and lm_eval's YAML and data for one built-in task.

    Returns (llmpath file, YAML file, lm_eval task name, number of test items).
    """
    from llmcli.core.tasks import parse_jsonl

    text = builtin_text(name)
    lines = text.splitlines()
    header = json.loads(lines[0])
    if "input" in header:
        raise BenchError(f"task {name} has no header line")
    if draw == "first":
        header["shuffle"] = False  # every item gets the first examples, in file order
    llmpath_file = folder / f"{name}.jsonl"
    llmpath_file.write_text(
        json.dumps(header, ensure_ascii=False) + "\n" + "\n".join(lines[1:]) + "\n",
        encoding="utf-8",
    )
    task = parse_jsonl(text, source=name, name=name)
    if not task.multiple_choice or not task.has_example_split:
        raise BenchError(f"task {name} is not multiple choice with an example split")

    def row(item: Any) -> str:
        doc = {"input": item.input, "choices": list(item.choices), "answer": item.answer}
        return json.dumps(doc, ensure_ascii=False) + "\n"

    test_file, shot_file = folder / f"{name}.test.jsonl", folder / f"{name}.fewshot.jsonl"
    test_file.write_text("".join(row(i) for i in task.tests), encoding="utf-8")
    shot_file.write_text("".join(row(i) for i in task.examples), encoding="utf-8")
    lm_name = "llmpath_" + re.sub(r"\W", "_", name)
    prompt = task.template.prompt("\x00")
    if "{{" in prompt or "{%" in prompt or "{#" in prompt:
        raise BenchError(f"task {name}: its template reads as Jinja; cannot write doc_to_text")
    config = {
        "task": lm_name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(test_file), "fewshot": str(shot_file)}},
        "test_split": "test",
        "fewshot_split": "fewshot",
        "output_type": "multiple_choice",
        "description": task.instruction + "\n\n" if task.instruction else "",
        "doc_to_text": prompt.replace("\x00", "{{input}}"),
        "doc_to_target": "answer",
        "doc_to_choice": "choices",
        "target_delimiter": task.template.delimiter,
        "fewshot_delimiter": "\n\n",
        "fewshot_config": {"sampler": "first_n" if draw == "first" else "default"},
        "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}],
    }
    yaml_file = folder / f"{lm_name}.yaml"
    # JSON is YAML: no quoting rules to get wrong for "\n" and ":".
    yaml_file.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return llmpath_file, yaml_file, lm_name, len(task.tests)


# --- scoring: the runs ----------------------------------------------------------------


@dataclass
class ScoreRun:
    run: Run
    timing: dict[str, Any]


def score_runs(
    report: Report, args: argparse.Namespace, env: dict[str, str], tmp: Path, loads: list[float],
    shots: int,
) -> tuple[dict[str, list[ScoreRun]], dict[str, Any]]:  # fmt: skip
    """Run llmpath and lm_eval ``repeat`` times each at ``shots``, in alternating rounds."""
    py = sys.executable
    tmp = tmp / f"shots-{shots}"
    folder = tmp / "tasks"
    folder.mkdir(parents=True)
    names, files, tests = [], [], 0
    for name in args.tasks:
        llmpath_file, _, lm_name, n = write_task_inputs(name, folder, args.draw)
        names.append(lm_name)
        files.append(llmpath_file)
        tests += min(n, args.limit) if args.limit else n
    limit = ["--limit", str(args.limit)] if args.limit else []
    model_folder = args.folder
    commands: dict[str, Any] = {}

    def llmpath_cmd(out: Path) -> list[str]:
        draw = ["--draw", "nested" if args.draw == "nested" else "lm-eval"]
        seed = [] if args.draw == "first" else ["--seed", "1234"]
        cmd = ["fewshot", "--eval", *[a for f in files for a in ("-t", str(f))], "-f", "json",
               "--shots", str(shots), *draw, *seed, "-m", args.model, "--device", "cpu",
               "--batch-size", str(args.batch_size), "-q", "-o", str(out), *limit]  # fmt: skip
        return cmd

    def lm_eval_cmd(out: Path) -> list[str]:
        return [
            "--model", "hf", "--model_args", f"pretrained={model_folder},dtype=float32",
            "--device", "cpu", "--tasks", ",".join(names), "--include_path", str(folder),
            "--num_fewshot", str(shots), "--batch_size", str(args.batch_size),
            "--seed", "0,1234,1234,1234", "--log_samples", "--output_path", str(out), *limit,
        ]  # fmt: skip

    commands["llmpath"] = llmpath_cmd
    commands["lm_eval"] = lm_eval_cmd
    results: dict[str, list[ScoreRun]] = {}
    first: dict[str, Any] = {}
    for r in range(args.repeat):
        order = ["llmpath", "lm_eval"] if r % 2 == 0 else ["lm_eval", "llmpath"]
        for who in order:
            work = tmp / f"{who}-{r}"
            work.mkdir()
            out = work / ("out.json" if who == "llmpath" else "out")
            timing_file = work / "timing.json"
            run_env = dict(env, HF_HOME=str(work / "hf"))
            cmd = [py, "-c", HOOK, str(timing_file), who, *commands[who](out)]
            try:
                got = run_child(cmd, run_env, cwd=work, log=work / "log.txt")
            except RuntimeError as exc:
                report.check(False, f"{who} scoring run {r + 1}: {exc}")
                continue
            loads.append(got.load)
            timing = json.loads(timing_file.read_text())
            results.setdefault(who, []).append(ScoreRun(got, timing))
            report.check(not timing["network"], f"{who}: no network connection attempted "
                         f"({len(timing['network'])} refused)")  # fmt: skip
            print(
                f"  {shots} shots, round {r + 1}/{args.repeat} {who:8} "
                f"scoring {timing['scoring_s']:6.2f} s "
                f"({timing['requests']} requests, {timing['requests'] / timing['scoring_s']:.1f}/s)"
                f"  process {got.wall:6.2f} s  peak RSS {got.maxrss_mb:5.0f} MB  "
                f"(load average {got.load:.2f})",
                flush=True,
            )
            if r == 0:
                first[who] = out
    first["tests"] = tests
    first["names"] = dict(zip(names, args.tasks))
    return results, first


def compare_scores(
    report: Report, first: dict[str, Any], bos_text: str, shots: int
) -> list[list[Any]]:
    """llmpath's prompts, log-likelihoods and answers against lm_eval's, item by item."""
    if "llmpath" not in first or "lm_eval" not in first:
        return []
    mine = json.loads(Path(first["llmpath"]).read_text(encoding="utf-8"))
    by_task: dict[str, list[dict[str, Any]]] = {}
    for item in mine["items"]:
        by_task.setdefault(item["task"], []).append(item)
    rows = []
    for lm_name, name in first["names"].items():
        found = glob.glob(str(Path(first["lm_eval"]) / "*" / f"samples_{lm_name}_*.jsonl"))
        if not report.check(len(found) == 1, f"{name}: lm_eval wrote its samples"):
            continue
        samples = [json.loads(line) for line in Path(found[0]).read_text().splitlines() if line]
        samples.sort(key=lambda s: s["doc_id"])
        items = by_task.get(name, [])
        report.check(len(items) == len(samples),
                     f"{name}: both scored {len(samples)} items")  # fmt: skip
        same_prompts = same_conts = True
        diffs: list[float] = []
        acc_same = norm_same = greedy_same = pred_same = 0
        acc_mine = acc_ref = norm_mine = norm_ref = 0
        n = 0
        for item, sample in zip(items, samples):
            n += 1
            keys = sorted(sample["arguments"], key=lambda k: int(k.rsplit("_", 1)[1]))
            args = [sample["arguments"][k] for k in keys]
            prompt = item["prompt"]
            if bos_text and prompt.startswith(bos_text):
                prompt = prompt[len(bos_text) :]
            same_prompts &= all(a["arg_0"] == prompt for a in args)
            same_conts &= [a["arg_1"] for a in args] == [s["continuation"] for s in item["scores"]]
            ref = [float(r[0][0]) for r in sample["resps"]]
            ref_greedy = [r[0][1] in (True, "True") for r in sample["resps"]]
            got = [s["logprob"] for s in item["scores"]]
            diffs += [abs(a - b) for a, b in zip(got, ref)]
            pred_same += max(range(len(got)), key=got.__getitem__) == max(
                range(len(ref)), key=ref.__getitem__
            )
            greedy_same += [s["greedy"] for s in item["scores"]] == ref_greedy
            acc_same += bool(item["correct"]) == (sample["acc"] == 1.0)
            norm_same += bool(item["correct_norm"]) == (sample["acc_norm"] == 1.0)
            acc_mine += bool(item["correct"])
            acc_ref += sample["acc"] == 1.0
            norm_mine += bool(item["correct_norm"])
            norm_ref += sample["acc_norm"] == 1.0
        worst = max(diffs) if diffs else math.nan
        what = f"{shots} shots, {name}"
        report.check(same_prompts, f"{what}: every lm_eval context is llmpath's prompt")
        report.check(same_conts, f"{what}: the same continuations")
        report.check(worst <= LOGPROB_TOLERANCE,
                     f"{what}: log-likelihoods agree (max |diff| {worst:.2g})")  # fmt: skip
        report.check(pred_same == n, f"{what}: the same prediction item by item")
        report.check(acc_same == n and norm_same == n, f"{what}: the same acc and acc_norm "
                     "item by item")  # fmt: skip
        rows.append([
            shots, name, n, len(diffs), "yes" if same_prompts and same_conts else "NO",
            f"{worst:.2g}", f"{statistics.median(diffs):.2g}" if diffs else "",
            f"{pred_same}/{n}", f"{acc_same}/{n}", f"{norm_same}/{n}", f"{greedy_same}/{n}",
            agree(acc_mine, acc_ref, n), agree(norm_mine, norm_ref, n),
        ])  # fmt: skip
    return rows


def agree(mine: int, ref: int, n: int) -> str:
    return f"{mine}/{n} = {ref}/{n}" if mine == ref else f"{mine}/{n} vs {ref}/{n}"


def summarize_scoring(
    report: Report, results: dict[str, list[ScoreRun]], args: argparse.Namespace, tests: int,
    shots: int,
) -> None:  # fmt: skip
    rows = []
    rate: dict[str, float] = {}
    for who in ("lm_eval", "llmpath"):
        runs = results.get(who)
        what = (
            f"lm-evaluation-harness `python -m lm_eval --model hf ... --batch_size "
            f"{args.batch_size}` (anchor)"
            if who == "lm_eval"
            else f"`llmpath fewshot --eval -t ... -f json --shots {shots} "
            f"--draw {'nested' if args.draw == 'nested' else 'lm-eval'} -m {args.model} "
            f"--device cpu --batch-size {args.batch_size}`"
        )
        if not runs:
            rows.append([what, "failed", "", "", "", "", "", "", ""])
            continue
        requests = runs[0].timing["requests"]
        rates = [x.timing["requests"] / x.timing["scoring_s"] for x in runs]
        rate[who] = statistics.median(rates)
        before = statistics.median(x.timing["first_call_at_s"] or 0 for x in runs)
        rows.append([
            what, requests, spread([x.timing["scoring_s"] for x in runs]),
            fmt_s(statistics.median(x.timing.get("scoring_cpu_s", math.nan) for x in runs)),
            spread(rates, "", 1),
            f"{rate[who] / rate['lm_eval']:.2f}x" if "lm_eval" in rate else "",
            fmt_s(before), spread([x.run.wall for x in runs]),
            f"{statistics.median(x.run.maxrss_mb for x in runs):.0f} MB",
        ])  # fmt: skip
    report.table(
        f"Scoring: {args.model}, {', '.join(args.tasks)}, {tests} items, {shots} shots, "
        f"draw {args.draw} "
        f"(median of {args.repeat}; min-max in brackets)",
        ["command", "requests", "scoring time", "scoring CPU", "requests/s", "vs lm_eval",
         "start-up + load + prompts (before scoring)", "process wall", "peak RSS"],
        rows,
    )  # fmt: skip
    if "llmpath" in rate and "lm_eval" in rate:
        ratio = rate["llmpath"] / rate["lm_eval"]
        report.check(
            results["llmpath"][0].timing["requests"] == results["lm_eval"][0].timing["requests"],
            "both scored the same number of requests",
        )
        target = SCORING_TARGETS.get((args.draw, shots), 1.0)
        verdict = "met" if ratio >= target else "NOT met"
        pairs = [
            (b.timing["requests"] / b.timing["scoring_s"])
            / (a.timing["requests"] / a.timing["scoring_s"])
            for a, b in zip(results["lm_eval"], results["llmpath"], strict=False)
        ]
        report.note(
            f"At {shots} shots llmpath scores {ratio:.2f}x as many requests per second as lm_eval "
            f"(target: at least {target:g}x: {verdict}); round by round: "
            + ", ".join(f"{p:.2f}x" for p in pairs)
            + "."
        )


# --- generation -----------------------------------------------------------------------


def gen_prompts(model: str, count: int) -> tuple[list[list[int]], str]:
    """Token IDs of the first ``count`` en-fr test items, 3 shots, llmpath's prompts."""
    from llmcli.core.fewshot import PromptBuilder, Style, make_cases, tokenizer_adds_bos
    from llmcli.core.tasks import load_builtin
    from llmcli.models.resolve import resolve
    from llmcli.models.tokenizer import LoadedTokenizer

    tok = LoadedTokenizer.for_model(resolve(model))
    task = load_builtin(GEN_TASK)
    style = Style(bos=tokenizer_adds_bos(tok))
    cases = make_cases(task, PromptBuilder(task, tok, style), shots=[GEN_SHOTS], queries=None,
                       seed=None, limit=count)  # fmt: skip
    return [c.ids for c in cases], cases[0].prompt


def gen_runs(
    report: Report, args: argparse.Namespace, env: dict[str, str], tmp: Path,
    prompts: list[list[int]], loads: list[float],
) -> dict[tuple[str, int], dict[str, Any]]:  # fmt: skip
    """Every (method, batch) once per round, each in a fresh process; the order alternates."""
    results: dict[tuple[str, int], dict[str, Any]] = {}
    jobs = [(m, b) for b in (1, 8) for m in GEN_METHODS]
    for r in range(args.repeat):
        for method, batch in jobs if r % 2 == 0 else list(reversed(jobs)):
            work = tmp / f"gen-{method}-{batch}-{r}"
            work.mkdir()
            job = {
                "method": method, "batch": batch, "new_tokens": args.new_tokens,
                "prompts": prompts, "repeat": 1, "model": args.model,
                "folder": str(args.folder), "result": str(work / "result.json"),
            }  # fmt: skip
            (work / "job.json").write_text(json.dumps(job))
            cmd = [sys.executable, "-c", GEN_WORKER, str(work / "job.json")]
            try:
                got = run_child(cmd, env, cwd=work, log=work / "log.txt")
            except RuntimeError as exc:
                report.check(False, f"generation {method} batch {batch}: {exc}")
                continue
            loads.append(got.load)
            out = json.loads((work / "result.json").read_text())
            report.check(not out["network"], f"generation {method} batch {batch}: no network "
                         "connection attempted")  # fmt: skip
            seen = results.setdefault((method, batch), {
                "times": [], "cpu_times": [], "rss": [], "tokens": out["tokens"],
            })  # fmt: skip
            if r > 0:
                report.check(out["tokens"] == seen["tokens"], f"{method} batch {batch}: the "
                             f"same IDs in round {r + 1} as in round 1")  # fmt: skip
            seen["times"] += out["times"]
            seen["cpu_times"] += out["cpu_times"]
            seen["rss"].append(out["peak_rss_mb"])
            seen["peak_rss_mb"] = statistics.median(seen["rss"])
            produced = sum(len(t) for t in out["tokens"])
            print(
                f"  round {r + 1}/{args.repeat} {method:8} batch {batch}: {produced} tokens in "
                f"{out['times'][0]:6.2f} s ({produced / out['times'][0]:.1f} tokens/s, CPU "
                f"{out['cpu_times'][0]:.2f} s)  peak RSS {out['peak_rss_mb']:5.0f} MB  "
                f"(load average {got.load:.2f})",
                flush=True,
            )
    return results


def summarize_generation(
    report: Report, results: dict[tuple[str, int], dict[str, Any]], args: argparse.Namespace,
    prompts: list[list[int]],
) -> None:  # fmt: skip
    names = {
        "loop": "transformers, plain loop with the cache (anchor)",
        "llmpath": "llmpath `LanguageModel.generate(..., stop=())`",
        "generate": "transformers `model.generate(do_sample=False)` (reference)",
        "stream": "transformers `model.generate(..., streamer=..., stop_strings=[...])`",
    }
    rows, id_rows, notes = [], [], []
    for batch in (1, 8):
        anchor = results.get(("loop", batch))
        for method in GEN_METHODS:
            got = results.get((method, batch))
            if got is None:
                rows.append([names[method], batch, "failed", "", "", "", "", "", "", ""])
                continue
            produced = sum(len(t) for t in got["tokens"])
            seconds = statistics.median(got["times"])
            row = [names[method], batch, produced, spread(got["times"]),
                   fmt_s(statistics.median(got.get("cpu_times") or [math.nan])),
                   f"{produced / seconds:.1f}"]  # fmt: skip
            if anchor is None or method == "loop":
                rows.append([*row, "1.00x" if method == "loop" else "",
                             f"{got['peak_rss_mb']:.0f} MB", "1.00x" if method == "loop" else "",
                             ""])  # fmt: skip
                continue
            t_ratio = seconds / statistics.median(anchor["times"])
            m_ratio = got["peak_rss_mb"] / anchor["peak_rss_mb"]
            verdict = ""
            if method == "llmpath":
                verdict = (
                    f"time ≤ {TIME_TARGET}x: {'met' if t_ratio <= TIME_TARGET else 'NOT met'}; "
                    f"memory ≤ {MEMORY_TARGET}x: "
                    f"{'met' if m_ratio <= MEMORY_TARGET else 'NOT met'}"
                )
            rows.append([*row, f"{t_ratio:.2f}x", f"{got['peak_rss_mb']:.0f} MB",
                         f"{m_ratio:.2f}x", verdict])  # fmt: skip
            if method == "llmpath" and len(got["times"]) == len(anchor["times"]) > 1:
                pairs = [b / a for a, b in zip(anchor["times"], got["times"], strict=True)]
                notes.append(f"batch {batch}: llmpath/anchor time round by round: "
                             + ", ".join(f"{p:.2f}x" for p in pairs))  # fmt: skip
        ref = results.get(("loop", batch))
        for method in GEN_METHODS[1:]:
            got = results.get((method, batch))
            if ref is None or got is None:
                continue
            same = sum(a == b for a, b in zip(got["tokens"], ref["tokens"]))
            first_diff = [
                next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                for a, b in zip(got["tokens"], ref["tokens"])
                if a != b
            ]  # fmt: skip
            if method == "llmpath":
                report.check(same == len(prompts), f"batch {batch}: llmpath's IDs are the "
                             f"plain loop's ({same}/{len(prompts)} prompts)")  # fmt: skip
            id_rows.append([
                names[method], batch, f"{same}/{len(prompts)}",
                ", ".join(str(i) for i in first_diff) if first_diff else "",
            ])  # fmt: skip
    for method in ("llmpath", "loop"):
        one, eight = results.get((method, 1)), results.get((method, 8))
        if one and eight:
            same = sum(a == b for a, b in zip(one["tokens"], eight["tokens"]))
            id_rows.append([f"{names[method]}: batch 8 against batch 1", "8 vs 1",
                            f"{same}/{len(prompts)}", ""])  # fmt: skip
    lengths = [len(p) for p in prompts]
    report.table(
        f"Generation: {args.model}, {len(prompts)} {GEN_TASK} prompts of {GEN_SHOTS} shots "
        f"({min(lengths)}-{max(lengths)} tokens), greedy, at most {args.new_tokens} new tokens "
        f"each (median of {args.repeat}; min-max in brackets)",
        ["method", "batch", "tokens produced", "time (prompt passes included)", "CPU", "tokens/s",
         "time vs anchor", "peak RSS", "RSS vs anchor", "target"],
        rows,
    )  # fmt: skip
    if notes:
        report.note("\n".join(notes))
    report.table(
        "Generated token IDs against the plain loop's (same batch size)",
        ["method", "batch", "prompts with identical IDs", "first differing position"],
        id_rows,
    )  # fmt: skip


# --- the run --------------------------------------------------------------------------


SECTION = re.compile(
    r"<!-- bench_fewshot: (?P<key>[\w.-]+ [\w -]+?) -->\n.*?<!-- /bench_fewshot -->\n", re.S
)
PARTS = ("scoring", "generation")


def write_section(path: Path, key: str, body: str) -> None:
    """Put one section ("MODEL PART") in ``path``, keeping the other sections."""
    title = "# Few-shot benchmark results (`bench/bench_fewshot.py`)\n\nSee bench/README.md.\n\n"
    sections: dict[str, str] = {}
    if path.is_file():
        for m in SECTION.finditer(path.read_text(encoding="utf-8")):
            sections[m.group("key")] = m.group(0)
    sections[key] = f"<!-- bench_fewshot: {key} -->\n{body}\n<!-- /bench_fewshot -->\n"
    known = [f"{m} {p}" for m in MODELS for p in PARTS]
    order = [k for k in known if k in sections] + sorted(set(sections) - set(known))
    path.write_text(title + "\n".join(sections[k] for k in order), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="smollm2 (default) or gemma3-270m")
    parser.add_argument("--quick", action="store_true",
                        help="16 items a task, 8 prompts of 16 new tokens, one repeat")  # fmt: skip
    parser.add_argument("--repeat", type=int, help="repeats (default 3; quick 1)")
    parser.add_argument("--limit", type=int, help="scoring: the first N test items of each "
                        "task (default all; quick 16)")  # fmt: skip
    parser.add_argument("--prompts", type=int, help="generation prompts (default 16; quick 8)")
    parser.add_argument("--new-tokens", type=int, help="new tokens (default 32; quick 16)")
    parser.add_argument("--batch-size", type=int, default=8, help="scoring batch size")
    parser.add_argument("--tasks", nargs="+", default=list(SCORE_TASKS))
    parser.add_argument(
        "--shots",
        default=",".join(map(str, SHOTS)),
        help="scoring: the shot counts, each run on its own (default 0,1,3)",
    )
    parser.add_argument("--draw", choices=DRAWS, default="lm-eval",
                        help="scoring: how the examples are drawn (see above)")  # fmt: skip
    parser.add_argument("--only", choices=("scoring", "generation"))
    parser.add_argument("--threads", type=int, help="torch threads in every measured process "
                        "(OMP_NUM_THREADS; default: torch's own choice)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=BENCH / "results-fewshot.md")
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.limit = args.limit or (16 if args.quick else None)
    args.prompts = args.prompts or (8 if args.quick else 16)
    args.new_tokens = args.new_tokens or (16 if args.quick else 32)
    try:
        args.shots = [int(k) for k in args.shots.split(",")]
    except ValueError:
        parser.error("--shots takes counts separated by commas: 0,1,3")

    if shutil.which("llmpath", path=str(Path(sys.executable).parent)) is None:
        print("llmpath is not installed next to this interpreter", file=sys.stderr)
        return 2
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        print("lm_eval is not installed in this interpreter (pip install lm_eval)",
              file=sys.stderr)  # fmt: skip
        return 2
    from llmcli.models import store

    env = dict(
        os.environ, LLMPATH_HOME=str(store.home()), LLMPATH_OFFLINE="1", HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TRANSFORMERS_VERBOSITY="error",
        TQDM_DISABLE="1", TOKENIZERS_PARALLELISM="false",
    )  # fmt: skip
    if args.threads:
        env |= {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    args.folder = store.models_dir() / args.model
    weights = args.folder / "model.safetensors"
    if not weights.is_file() or not (args.folder / "tokenizer.json").is_file():
        print(f"the store {store.home()} lacks {args.model}: llmpath pull {args.model}",
              file=sys.stderr)  # fmt: skip
        return 2
    started = time.time()
    DATA.mkdir(parents=True, exist_ok=True)

    # Warm up: the weights in the page cache.
    warm_cache(weights)
    versions = subprocess.run(
        [sys.executable, "-c",
         "import importlib.metadata as m, torch, transformers, datasets, tokenizers;"
         "print(torch.__version__, transformers.__version__, m.version('lm_eval'),"
         " datasets.__version__, tokenizers.__version__, torch.get_num_threads())"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    with open("/proc/meminfo") as fh:
        mem_gib = int(fh.readline().split()[1]) / 2**20
    given = list(sys.argv[1:] if argv is None else argv)
    command = "`" + " ".join(["python bench/bench_fewshot.py", *map(shlex.quote, given)]) + "`"
    from llmcli.core.fewshot import tokenizer_adds_bos
    from llmcli.models.resolve import resolve
    from llmcli.models.tokenizer import LoadedTokenizer

    tok = LoadedTokenizer.for_model(resolve(args.model))
    bos_text = tok.token(tok.bos_id) if tokenizer_adds_bos(tok) and tok.bos_id is not None else ""
    failures: list[str] = []
    for part in PARTS:
        if args.only not in (None, part):
            continue
        report = Report()
        part_started = time.time()
        loads = [os.getloadavg()[0]]
        report.note(
            f"## {args.model}: {part}{' (--quick)' if args.quick else ''}\n\n"
            f"Run {datetime.date.today().isoformat()}: {os.cpu_count()} CPUs, {mem_gib:.0f} GiB, "
            f"{platform.python_implementation()} {platform.python_version()}, torch "
            f"{versions[0]} ({versions[5]} threads), transformers {versions[1]}, lm_eval "
            f"{versions[2]}, datasets {versions[3]}, tokenizers {versions[4]}; load average at "
            f"start {loads[0]:.2f}. Every measured command in a fresh process, float32 on the "
            f"CPU, the weights in the page cache.\n\nCommand: {command}\n"
        )
        try:
            with tempfile.TemporaryDirectory(dir=DATA) as tmpdir:
                if part == "scoring":
                    run_scoring(report, args, env, Path(tmpdir), loads, bos_text)
                else:
                    prompts, example = gen_prompts(args.model, args.prompts)
                    report.note(f"Prompts: the first {len(prompts)} test items of {GEN_TASK}, "
                                f"the first of them: {example!r}\n")  # fmt: skip
                    gen = gen_runs(report, args, env, Path(tmpdir), prompts, loads)
                    summarize_generation(report, gen, args, prompts)
        except BenchError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
        loads.append(os.getloadavg()[0])
        report.note(
            f"Load average (1 min) seen before each command: {min(loads):.2f} to "
            f"{max(loads):.2f}; this part took {time.time() - part_started:.0f} s."
        )
        report.note_failures()
        failures += report.failures
        # A draw other than lm-eval's has a section of its own beside the default's.
        key = f"{args.model} {part}"
        if part == "scoring" and args.draw != "lm-eval":
            key += f" draw {args.draw}"
        write_section(args.output, key, "\n".join(report.sections))
        print(f"\nwritten to {args.output} (section {key})")
    print(f"the whole run took {time.time() - started:.0f} s")
    return 1 if failures else 0


def run_scoring(
    report: Report, args: argparse.Namespace, env: dict[str, str], tmp: Path,
    loads: list[float], bos_text: str,
) -> None:  # fmt: skip
    if bos_text:
        report.note(f"{args.model}'s tokenizer adds {bos_text} in front: llmpath writes it as "
                    "the prompt's first token, lm_eval lets the tokenizer add it.\n")  # fmt: skip
    equal_rows: list[list[Any]] = []
    work = []
    for shots in args.shots:
        results, first = score_runs(report, args, env, tmp, loads, shots)
        summarize_scoring(report, results, args, first["tests"], shots)
        if args.draw != "nested":
            equal_rows += compare_scores(report, first, bos_text, shots)
        for who in ("lm_eval", "llmpath"):
            runs = results.get(who)
            if runs and "rows" in runs[0].timing:
                t = runs[0].timing
                work.append([shots, who, f"{t['forward_calls']:,}", f"{t['rows']:,}",
                             f"{t['tokens']:,}", f"{t['logit_positions']:,}"])  # fmt: skip
    if args.draw == "nested":
        report.note("llmpath draws with --draw nested, lm_eval its own way: the prompts differ, "
                    "so only the speed is compared.\n")  # fmt: skip
    report.table(
        "llmpath's scores against lm_eval's, item by item (first round)",
        ["shots", "task", "items", "requests", "same prompts and continuations",
         "max abs diff of log-likelihood", "median abs diff", "same prediction", "same acc",
         "same acc_norm", "same is_greedy", "acc: llmpath = lm_eval",
         "acc_norm: llmpath = lm_eval"],
        equal_rows,
    )  # fmt: skip
    report.table(
        "What went through the model while scoring (counted by a forward hook, first round)",
        ["shots", "tool", "forward calls", "rows", "tokens (padding included)",
         "positions given full-vocabulary logits"],
        work,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
