"""``llmpath fewshot`` and ``llmpath next``: prompting a local model, GPT-3 style."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from llmcli.cli.options import (
    FewshotFormat,
    FewshotFormatOpt,
    ListFormat,
    ListFormatOpt,
    Output,
    Quiet,
    Running,
    WeightsModel,
    model_options,
    pick_format,
)
from llmcli.core import inputs
from llmcli.errors import UsageError
from llmcli.models.resolve import resolve
from llmcli.models.tokenizer import LoadedTokenizer
from llmcli.render.progress import RichReporter

DEFAULT_MODEL = "gemma3-270m"
DEFAULT_TASK = "gpt3-en-fr"
DEFAULT_NEXT = "The capital of France is"


Bos = Annotated[
    bool | None,
    typer.Option("--bos/--no-bos", help="Put the BOS token first. Default: as the model's "
                 "tokenizer does (Gemma adds <bos>, SmolLM2 nothing), like lm-eval.",
                 show_default=False),
]  # fmt: skip
Chat = Annotated[
    bool,
    typer.Option("--chat", help="Wrap the prompt in the model's chat template (instruct "
                 "models): each example a user turn and an assistant turn."),
]  # fmt: skip


def _unescape(value: str) -> str:
    r"""``\n``, ``\t`` and ``\\`` typed on a command line, as the characters."""
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in "nt\\":
            out.append({"n": "\n", "t": "\t", "\\": "\\"}[value[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _bos_default(bos: bool | None, tok: LoadedTokenizer, chat: bool) -> bool:
    if bos is not None:
        return bos
    if chat:
        return False  # the chat template says what comes first
    from llmcli.core.fewshot import tokenizer_adds_bos

    return tokenizer_adds_bos(tok)


@model_options
def fewshot(
    task: Annotated[
        list[str] | None,
        typer.Option(
            "--task",
            "-t",
            help="A built-in task (see --tasks), 'all', or a .jsonl "
            "or .tsv file. Repeat to run several. Default: GPT-3's English to French.",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    query: Annotated[
        list[str] | None,
        typer.Option(
            "--query",
            help="Ask this (repeatable); '-' reads one query per line "
            "from stdin. Default: the task's first test item.",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    shots: Annotated[
        str, typer.Option("--shots", "-k", help="Shot counts to run, e.g. 0,1,3.")
    ] = "0,1,3",
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Which examples are drawn (and the sampling seed); the "
            "same seed gives the same prompts. Default: 1234, or the task's order.",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    draw: Annotated[
        str,
        typer.Option(
            "--draw",
            help="How the examples are drawn: lm-eval (as "
            "lm-evaluation-harness does, so prompts and accuracies compare item by "
            "item) or nested (the k-shot examples are the first k of the (k+1)-shot "
            "ones).",
        ),
    ] = "lm-eval",  # fmt: skip
    instruction: Annotated[
        str | None,
        typer.Option(
            "--instruction",
            help="The instruction put first (replaces the task's).",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            help="How an item reads, e.g. '{input} => {output}'; the "
            "answer follows the space before {output}.",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    choices: Annotated[
        str | None,
        typer.Option(
            "--choices",
            help="Score these answers (comma-separated) by log-likelihood instead of generating.",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    evaluate: Annotated[
        bool, typer.Option("--eval", help="Ask every test item and report accuracy per shot count.")
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", help="--eval: only the first N test items.", min=1, show_default=False
        ),
    ] = None,  # fmt: skip
    list_tasks: Annotated[
        bool, typer.Option("--tasks", help="List the built-in tasks and exit.")
    ] = False,
    show_prompt: Annotated[
        bool,
        typer.Option(
            "--show-prompt",
            help="Print the exact prompts (BOS and chat template "
            "included) and exit, without running the model.",
        ),
    ] = False,  # fmt: skip
    model: WeightsModel = DEFAULT_MODEL,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="Longest answer, in tokens.", min=1)
    ] = 32,
    temperature: Annotated[
        float, typer.Option("--temperature", help="0: greedy; above 0: sampling.", min=0.0)
    ] = 0.0,
    top_k: Annotated[
        int, typer.Option("--top-k", help="Sample from the K most likely tokens (0: all).", min=0)
    ] = 0,
    top_p: Annotated[
        float,
        typer.Option(
            "--top-p",
            help="Sample from the most likely tokens holding P of the probability.",
            min=0.0,
            max=1.0,
        ),
    ] = 1.0,  # fmt: skip
    stop: Annotated[
        list[str] | None,
        typer.Option(
            "--stop",
            help="Stop the answer at this text (repeatable; \\n allowed). "
            "Default: the end of the line.",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    separator: Annotated[
        str, typer.Option("--separator", help="What joins the examples (\\n allowed).")
    ] = "\\n\\n",
    bos: Bos = None,
    chat: Chat = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Prompts run together.", min=1)
    ] = 8,
    fmt: FewshotFormatOpt = None,
    output: Output = None,
    quiet: Quiet = False,
    *,
    running: Running,
) -> None:
    """Prompt a model zero-, one- and few-shot, side by side, or measure it (--eval)."""
    from llmcli.core import fewshot as core
    from llmcli.core import tasks as task_mod
    from llmcli.render import fewshot as render

    fmt_name = pick_format(fmt, output, FewshotFormat)
    if list_tasks:
        render.emit_tasks([task_mod.load_builtin(n) for n in task_mod.builtin_names()],
                          fmt_name if fmt_name != "png" else "table", output)  # fmt: skip
        return
    if fmt_name == "png" and not evaluate:
        raise UsageError("-f png draws --eval's accuracy against shots; add --eval")
    if fmt_name == "png" and output is None:
        raise UsageError("-f png needs -o FILE.png")
    if temperature == 0 and (top_k or top_p < 1.0):
        raise UsageError("--top-k and --top-p shape sampling: add --temperature above 0")
    if draw not in task_mod.DRAWS:
        raise UsageError(f"unknown draw {draw!r}; choose from {', '.join(task_mod.DRAWS)}")
    shot_counts = task_mod.parse_shots(shots)
    names = list(task or [DEFAULT_TASK])
    if "all" in names:
        names = [n for n in task_mod.builtin_names() if n != DEFAULT_TASK]
    choice_list = choices.split(",") if choices is not None else None
    tasks = [task_mod.load_task(n, instruction=instruction, template=template,
                                choices=choice_list) for n in names]  # fmt: skip
    queries = _queries(query)
    if queries and evaluate:
        raise UsageError("--eval asks the task's own test items; drop --query")
    stops = tuple(_unescape(s) for s in stop) if stop else ("\n",)
    if any(not s for s in stops):
        raise UsageError("--stop needs some text")
    reporter = RichReporter(quiet)
    resolved = resolve(model, reporter=reporter)
    tok = LoadedTokenizer.for_model(resolved)
    style = core.Style(separator=_unescape(separator), bos=_bos_default(bos, tok, chat),
                       chat=chat, stop=stops)  # fmt: skip
    planned = []
    for t in tasks:
        if evaluate:
            most = t.max_shots()
            if max(shot_counts) > most:
                plural = "" if most == 1 else "s"
                raise UsageError(f"{max(shot_counts)} shots asked, but task {t.name!r} has "
                                 f"only {most} example{plural} to draw from")  # fmt: skip
        builder = core.PromptBuilder(t, tok, style)
        cases = core.make_cases(t, builder, shots=shot_counts, queries=queries, seed=seed,
                                draw=draw,
                                limit=limit if evaluate else (None if queries else 1))  # fmt: skip
        planned.append((t, cases))
    if show_prompt:
        render.emit_prompts([c for _, cases in planned for c in cases], fmt_name, output)
        return

    from llmcli.core.lm import LanguageModel

    loaded = running.load(resolved)
    lm = LanguageModel(loaded, tok, batch_size=batch_size)
    options: dict[str, Any] = {
        "max_new_tokens": max_new_tokens, "temperature": temperature, "top_k": top_k,
        "top_p": top_p, "seed": seed, "stop": stops,
    }  # fmt: skip
    if evaluate:
        reports = []
        for t, cases in planned:
            with reporter.step(f"{t.name} ({len(cases)} prompts)", total=len(cases),
                               unit="items") as advance:  # fmt: skip
                outcomes = list(core.run_cases(lm, cases, on_done=advance, **options))
            reports.append(render.EvalReport(t, outcomes, core.summarize(outcomes, shot_counts)))
        render.emit_eval(reports, loaded.label, fmt_name, output, style)
        return
    all_cases = [c for _, cases in planned for c in cases]
    render.emit_cases(lm, all_cases, fmt_name, output, options, loaded.label)


def _queries(query: list[str] | None) -> list[str]:
    from llmcli.core.fewshot import read_queries

    if not query:
        if not inputs.stdin_is_tty():
            return read_queries(inputs.read_stdin_or_empty())
        return []
    out: list[str] = []
    for q in query:
        if q == "-":
            out += read_queries(inputs.read_stdin_or_empty())
        elif not q.strip():
            raise UsageError("--query is empty")
        else:
            out.append(q.strip())
    if not out:
        raise UsageError("no queries on stdin: write one per line")
    return out


@model_options
def next_token(
    text: Annotated[
        list[str] | None,
        typer.Argument(
            help=f"The prompt (default: {DEFAULT_NEXT!r}); '-' or a pipe: stdin.",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    top: Annotated[
        int, typer.Option("--top", "-k", help="How many candidates to show.", min=1)
    ] = 10,
    model: WeightsModel = DEFAULT_MODEL,
    layers: Annotated[
        bool,
        typer.Option(
            "--layers",
            help="Also the logit lens: the top tokens after each layer "
            "(the final norm and unembedding applied to that layer's residual).",
        ),
    ] = False,  # fmt: skip
    bos: Bos = None,
    chat: Chat = False,
    fmt: ListFormatOpt = None,
    output: Output = None,
    quiet: Quiet = False,
    *,
    running: Running,
) -> None:
    """Show the tokens a model would choose next after a prompt, with their probabilities."""
    from llmcli.core import fewshot as core
    from llmcli.core.lm import LanguageModel, top_tokens
    from llmcli.render import fewshot as render

    fmt_name = pick_format(fmt, output, ListFormat)
    given = " ".join(text) if text else None
    if given == "-" or (given is None and not inputs.stdin_is_tty()):
        piped = inputs.read_stdin_or_empty()
        given = piped[:-1] if piped.endswith("\n") else piped
        if given == "" and text:
            raise UsageError("stdin is empty: give a prompt")
        if given == "" and not text:
            given = None  # nothing piped: the default prompt
    if given == "" and text is not None:
        raise UsageError("the prompt is empty")
    prompt = given if given is not None else DEFAULT_NEXT
    reporter = RichReporter(quiet)
    resolved = resolve(model, reporter=reporter)
    if layers:
        from llmcli.core.walk import adapter_for

        adapter_for(resolved)  # an architecture the lens knows, before the weights load
    tok = LoadedTokenizer.for_model(resolved)
    if top > tok.vocab_size:
        raise UsageError(f"--top {top} is more than the {tok.vocab_size} tokens of {tok.label}")
    use_bos = _bos_default(bos, tok, chat)
    if chat:
        template = core.load_chat_template(tok)
        prompt_text = core.render_chat(template, tok, [{"role": "user", "content": prompt}])
    else:
        prompt_text = prompt
    loaded = running.load(resolved)
    lm = LanguageModel(loaded, tok)
    ids = lm.encode(prompt_text)
    if use_bos:
        ids = [lm.prefix_id()] + ids
    if not ids:
        ids = [lm.prefix_id()]
    logprobs = lm.next_distribution(ids)
    ranked = list(top_tokens(logprobs, top))
    lens = None
    if layers:
        from llmcli.core.walk import lens_of_last

        lens = lens_of_last(loaded, ids, top)
    render.emit_next(tok, lm, prompt_text, ids, ranked, fmt_name, output, use_bos, lens)
