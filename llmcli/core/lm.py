"""A causal language model at work: next-token probabilities, scoring and generation.

Log-likelihoods follow lm-evaluation-harness: a continuation is tokenized by encoding
context + continuation together and keeping the tokens after the context's own
encoding (trailing whitespace of the context moves onto the continuation), and it is
scored as the sum of its tokens' log-probabilities given everything before them.

Speed: nothing is computed twice. The prompts of a batch and their choices run as
token trees (``core.packing``): a prompt's choices hang from its last token, prompts
that begin alike share those tokens, and a beginning that a group of prompts share (the
instruction, and the examples where every item has the same ones) is computed once and
read from the key/value cache by each of the group's rows. Each token sees only its
ancestors, at its own position, so the log-likelihoods are those of a plain pass
(within float rounding, 1e-4 in the tests). Where the model cannot take such a mask
(an attention kernel other than eager or sdpa, a chunked window), the prompts run as a
left-padded batch and each choice's later tokens on a copy of its prompt's cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmcli.core.numbers import require_finite
from llmcli.errors import InputError, ModelError
from llmcli.models.loader import LoadedModel
from llmcli.models.tokenizer import LoadedTokenizer


@dataclass
class ChoiceScore:
    """How likely the model finds one continuation after a context."""

    choice: str  # the answer text, without the delimiter
    continuation: str  # what was scored: delimiter + choice
    tokens: list[int]
    token_logprobs: list[float]
    greedy: bool  # every token was the model's top choice (lm-eval's is_greedy)

    @property
    def logprob(self) -> float:
        return math.fsum(self.token_logprobs)

    @property
    def per_char(self) -> float:
        """lm-eval's acc_norm: the log-likelihood over the answer's length in characters."""
        return self.logprob / max(len(self.choice), 1)

    @property
    def per_token(self) -> float:
        return self.logprob / max(len(self.tokens), 1)


@dataclass
class Request:
    """One context and the continuations to score after it."""

    context: list[int]
    continuations: list[list[int]]
    choices: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


@dataclass
class Generation:
    text: str  # up to (not including) the stop sequence
    tokens: list[int]
    stopped: str  # "stop" (a stop sequence), "eos", or "length"


class LanguageModel:
    """A loaded causal model and its tokenizer, with the operations few-shot needs."""

    def __init__(self, loaded: LoadedModel, tok: LoadedTokenizer, *, batch_size: int = 8):
        if not loaded.decoder:
            raise ModelError(
                f"{loaded.label} is an encoder; prompting needs a decoder (causal language "
                "model) such as smollm2 or gemma3-270m"
            )
        self.loaded = loaded
        self.model = loaded.model
        self.tok = tok
        self.batch_size = max(1, batch_size)
        config = self.model.config
        text_config = getattr(config, "get_text_config", lambda: config)()
        self.max_length: int = int(getattr(text_config, "max_position_embeddings", 0) or 2048)
        eos = {tok.eos_id} if tok.eos_id is not None else set()
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            eos.add(gen_eos)
        elif isinstance(gen_eos, list):
            eos.update(int(e) for e in gen_eos)
        self.eos_ids: frozenset[int] = frozenset(eos)
        pad = tok.config.get("pad_token")
        pad_id = tok.hf.token_to_id(pad) if isinstance(pad, str) else None
        self.pad_id: int = int(pad_id if pad_id is not None else (tok.eos_id or 0))
        # transformers renamed ``past_key_values`` to ``cache`` (5.x); accept either.
        import inspect

        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    # --- tokens ---------------------------------------------------------------------

    def encode(self, text: str, *, special: bool = False) -> list[int]:
        """Token IDs of ``text``; ``special`` adds what the tokenizer's template adds."""
        return list(self.tok.hf.encode(text, add_special_tokens=special).ids)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of generated IDs; an unfinished character shows as U+FFFD."""
        if self.tok.byte_level or self.tok.byte_fallback:
            data = b"".join(self.tok.token_bytes(i) for i in ids)
            return data.decode("utf-8", errors="replace")
        return str(self.tok.hf.decode(list(ids), skip_special_tokens=False))

    def prefix_id(self) -> int:
        """The token an empty context is scored after (BOS, else EOS), as lm-eval does."""
        for candidate in (self.tok.bos_id, self.tok.eos_id):
            if candidate is not None:
                return candidate
        raise ModelError(f"{self.loaded.label} has no BOS or EOS token to start an empty prompt")

    def split_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's ``_encode_pair``: (context tokens, continuation tokens).

        Special tokens written in the text (``<bos>``) are read as themselves.
        """
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        cont = whole[len(ctx) :]
        if not ctx:
            ctx = [self.prefix_id()]
        if not cont:
            raise InputError(f"the answer {continuation!r} gives no tokens to score")
        return ctx, cont

    def check_length(self, n_tokens: int, what: str = "the prompt") -> None:
        if n_tokens > self.max_length:
            raise InputError(
                f"{what} is {n_tokens} tokens, past {self.loaded.label}'s context of "
                f"{self.max_length}; use fewer shots"
            )

    # --- forward passes -------------------------------------------------------------

    def _prompt_pass(self, contexts: Sequence[Sequence[int]]) -> tuple[Any, Any, Any, Any]:
        """Left-padded batch over the prompts: (last logits, cache, mask, lengths)."""
        import torch

        device = self.loaded.device
        width = max(len(c) for c in contexts)
        ids = torch.full((len(contexts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(contexts), width), dtype=torch.long)
        for row, ctx in enumerate(contexts):
            ids[row, width - len(ctx) :] = torch.tensor(ctx, dtype=torch.long)
            mask[row, width - len(ctx) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=True, logits_to_keep=1)  # fmt: skip
        logits = out.logits[:, -1, :].float()
        lengths = mask.sum(-1)
        return logits, self._cache_of(out), mask, lengths

    def _cache_of(self, out: Any) -> Any:
        cache = getattr(out, "cache", None)
        return cache if cache is not None else out.past_key_values

    def next_distribution(self, context: Sequence[int]) -> Any:
        """Log-probabilities of the next token after ``context`` (a 1-D float tensor)."""
        import torch

        self.check_length(len(context))
        with torch.inference_mode():
            logits, _, _, _ = self._prompt_pass([list(context)])
        require_finite(logits[0], "the next-token logits", self.loaded.label, allow_neg_inf=True)
        return torch.log_softmax(logits[0], dim=-1).cpu()

    def score(
        self, requests: Sequence[Request], *, on_batch: Callable[[int], None] | None = None
    ) -> list[list[ChoiceScore]]:
        """Score every continuation of every request; see the module docstring."""
        for req in requests:
            longest = max(len(c) for c in req.continuations)
            self.check_length(len(req.context) + longest - 1)
        if not requests:
            return []
        packs, window = self._windows(requests)
        if not packs:
            results: list[list[ChoiceScore]] = []
            for start in range(0, len(requests), self.batch_size):
                batch = requests[start : start + self.batch_size]
                results.extend(self._score_batch(batch))
                if on_batch is not None:
                    on_batch(len(batch))
            return results
        return self._score_packed(requests, window, on_batch)

    def _windows(self, requests: Sequence[Request]) -> tuple[bool, int | None]:
        """Whether the model takes the tree rows of ``core.packing``, and the sliding
        window its sliding layers need in their own mask (None: one mask for all).

        The rows need attention that reads a 4-D mask (eager or sdpa). A sliding window
        is written into a second mask where the config names its layers' kinds (the
        models then take a mask per kind); otherwise no prompt may reach the window.
        """
        config = self.model.config
        text = getattr(config, "get_text_config", lambda: config)()
        if getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
            return False, None
        if getattr(text, "attention_chunk_size", None):
            return False, None
        kinds = set(getattr(text, "layer_types", None) or ())
        window = getattr(text, "sliding_window", None)
        if kinds - {"full_attention", "sliding_attention"}:
            return False, None
        if "sliding_attention" in kinds and window:
            return True, int(window)
        if window:
            deepest = max(len(r.context) + max(len(c) for c in r.continuations) - 2
                          for r in requests)  # fmt: skip
            return deepest < int(window), None
        return True, None

    def _score_packed(
        self,
        requests: Sequence[Request],
        window: int | None,
        on_batch: Callable[[int], None] | None,
    ) -> list[list[ChoiceScore]]:
        """All requests as token trees (``core.packing``): one forward pass per batch;
        a beginning that a group of prompts share is computed once for the group."""
        import torch

        from llmcli.core import packing

        per_token: list[list[list[float]]] = [[] for _ in requests]
        greedy: list[list[bool]] = [[] for _ in requests]
        with torch.inference_mode():
            for group, skip in packing.prefix_groups([r.context for r in requests]):
                contexts = [requests[i].context for i in group]
                conts = [requests[i].continuations for i in group]
                prefix = self._prefix_states(contexts[0][:skip]) if skip else None
                for rows in packing.plan_rows(contexts, skip, self.batch_size):
                    trees, placed = packing.build_rows(contexts, conts, rows, skip)
                    logprobs, flat, best = self._tree_pass(trees, placed, skip, prefix, window)
                    for i, where in placed.items():
                        for nodes, cont in zip(where.readers, conts[i]):
                            at = flat[where.row, nodes]
                            targets = torch.tensor(cont, device=logprobs.device)
                            picked = logprobs[at.to(logprobs.device), targets]
                            per_token[group[i]].append(picked.tolist())
                            greedy[group[i]].append(best[at].tolist() == list(cont))
                    if on_batch is not None:
                        on_batch(sum(len(r) for r in rows))
        return [self._choice_scores(req, per_token[i], greedy[i])
                for i, req in enumerate(requests)]  # fmt: skip

    def _tree_pass(
        self, trees: Any, placed: Any, skip: int, prefix: Any, window: int | None
    ) -> tuple[Any, Any, Any]:
        """One forward pass over tree rows: (log-probabilities of the read nodes, the
        [row, node] index of each into them, each one's most likely token)."""
        import numpy as np
        import torch

        from llmcli.core import packing

        device = self.loaded.device
        ids, positions, allowed = packing.row_arrays(trees, skip)
        keep = torch.zeros(ids.shape, dtype=torch.bool)
        for where in placed.values():
            for nodes in where.readers:
                keep[where.row, nodes] = True
        flat = keep.flatten().cumsum(0).view(keep.shape) - 1
        mask: Any = self._additive(allowed)
        if window is not None:
            # A key is in a query's window when their positions differ by less.
            keys = np.concatenate(
                [np.broadcast_to(np.arange(skip), (len(trees), skip)), positions], axis=1
            )
            near = positions[:, :, None] - keys[:, None, :] < window
            mask = {"full_attention": mask,
                    "sliding_attention": self._additive(allowed & near)}  # fmt: skip
        extra: dict[str, Any] = {}
        if prefix is not None:
            from transformers import DynamicCache

            b = ids.shape[0]
            extra[self._cache_kw] = DynamicCache(ddp_cache_data=[
                (k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)) for k, v in prefix
            ])  # fmt: skip
        out = self.model(
            input_ids=torch.from_numpy(ids).to(device),
            position_ids=torch.from_numpy(positions).to(device),
            attention_mask=mask,
            logits_to_keep=keep.to(device),
            use_cache=prefix is not None,
            **extra,
        )
        logits = out.logits
        if logits.dim() == 3:  # a model that kept every position
            logits = logits[keep.to(logits.device)]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        return logprobs, flat, logprobs.argmax(-1).cpu()

    def _additive(self, allowed: Any) -> Any:
        """A [batch, 1, query, key] mask to add to the attention scores: 0 or the least."""
        import torch

        dtype = self.model.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype)
        mask.masked_fill_(~torch.from_numpy(allowed), torch.finfo(dtype).min)
        return mask[:, None].to(self.loaded.device)

    def _prefix_states(self, prefix: Sequence[int]) -> list[tuple[Any, Any]]:
        """The keys and values of every layer for ``prefix`` (batch 1, positions 0..)."""
        import torch
        from transformers import DynamicCache

        cache = DynamicCache()  # full layers: the tree masks stand for any window
        ids = torch.tensor([list(prefix)], device=self.loaded.device)
        self.model(input_ids=ids, position_ids=torch.arange(len(prefix), device=ids.device)[None],
                   use_cache=True, logits_to_keep=1, **{self._cache_kw: cache})  # fmt: skip
        layers: list[Any] = list(cache.layers)
        return [(layer.keys, layer.values) for layer in layers]

    def _choice_scores(
        self, req: Request, per_token: list[list[float]], greedy: list[bool]
    ) -> list[ChoiceScore]:
        scores = []
        for j, cont in enumerate(req.continuations):
            choice = req.choices[j] if j < len(req.choices) else ""
            text = req.texts[j] if j < len(req.texts) else choice
            require_finite(per_token[j], f"the log-likelihood of {text!r}", self.loaded.label,
                           allow_neg_inf=True)  # fmt: skip
            scores.append(ChoiceScore(choice, text, cont, per_token[j], greedy[j]))
        return scores

    def _score_batch(self, batch: Sequence[Request]) -> list[list[ChoiceScore]]:
        """The padded route: the prompts as one left-padded batch, then the continuations'
        later tokens on copies of their prompt's cache."""
        import torch

        with torch.inference_mode():
            logits, cache, mask, lengths = self._prompt_pass([r.context for r in batch])
            first = torch.log_softmax(logits, dim=-1)
            # Every continuation's first token is predicted by its prompt's last position.
            rows: list[int] = []
            conts: list[list[int]] = []
            for r, req in enumerate(batch):
                for cont in req.continuations:
                    rows.append(r)
                    conts.append(cont)
            per_token: list[list[float]] = [[float(first[r, c[0]])] for r, c in zip(rows, conts)]
            greedy = [int(first[r].argmax()) == c[0] for r, c in zip(rows, conts)]
            longer = [i for i, c in enumerate(conts) if len(c) > 1]
            if longer:
                self._score_rest(cache, mask, lengths, rows, conts, longer, per_token, greedy)
        out: list[list[ChoiceScore]] = []
        k = 0
        for req in batch:
            n = len(req.continuations)
            out.append(self._choice_scores(req, per_token[k : k + n], greedy[k : k + n]))
            k += n
        return out

    def _score_rest(
        self,
        cache: Any,
        mask: Any,
        lengths: Any,
        rows: list[int],
        conts: list[list[int]],
        longer: list[int],
        per_token: list[list[float]],
        greedy: list[bool],
    ) -> None:
        """Tokens 2.. of the longer continuations, on the prompts' shared cache."""
        import torch

        device = mask.device
        index = torch.tensor([rows[i] for i in longer], device=device)
        cache.batch_select_indices(index)
        width = max(len(conts[i]) for i in longer) - 1
        ids = torch.full((len(longer), width), self.pad_id, dtype=torch.long)
        for row, i in enumerate(longer):
            tail = conts[i][:-1]  # token j is fed to predict token j + 1
            ids[row, : len(tail)] = torch.tensor(tail, dtype=torch.long)
        ids = ids.to(device)
        # Right padding after the continuation is never attended to by its real tokens.
        full_mask = torch.cat(
            [mask.index_select(0, index), torch.ones_like(ids, device=device)], dim=1
        )
        positions = lengths.index_select(0, index)[:, None] + torch.arange(width, device=device)
        out = self.model(input_ids=ids, attention_mask=full_mask, position_ids=positions,
                         use_cache=True, **{self._cache_kw: cache})  # fmt: skip
        logprobs = torch.log_softmax(out.logits.float(), dim=-1)
        for row, i in enumerate(longer):
            targets = conts[i][1:]
            lp = logprobs[row, : len(targets)]
            picked = lp.gather(-1, torch.tensor(targets, device=device)[:, None])[:, 0]
            per_token[i].extend(float(v) for v in picked)
            if greedy[i]:
                best = lp.argmax(-1).tolist()
                greedy[i] = best == targets

    # --- generation -----------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int = 32,
        stop: Sequence[str] = ("\n",),
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        keys: Sequence[int] | None = None,
        on_text: Callable[[int, str], None] | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[Generation]:
        """Continue each prompt, greedy unless ``temperature`` > 0; a batch at a time.

        Sampling gives each prompt a generator of its own, seeded from ``seed`` and the
        prompt's key (its place in ``prompts``, unless ``keys`` says otherwise): the same
        seed gives a prompt the same sample whatever the batch size and whatever else is
        in its batch.

        Why a loop of our own rather than transformers' ``generate``: with what this needs
        (a streamer for ``on_text``, a stop-string criterion), ``generate`` was slower.
        Two runs of ``bench/bench_fewshot.py --only generation --quick`` (smollm2, 8 en-fr
        prompts, 16 new tokens, CPU, 2026-12-02; the second is in bench/results-fewshot.md):
        ``generate(streamer=..., stop_strings=[...])`` took 1.20x and 1.30x this loop's time
        at batch 1, 1.06x and 1.41x at batch 8, with the same IDs for every prompt: outside
        the 5% within which ``generate`` would replace it.
        """
        results: list[Generation] = []
        keys = list(range(len(prompts))) if keys is None else list(keys)
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]

            def relay(row: int, text: str, offset: int = start) -> None:
                if on_text is not None:
                    on_text(offset + row, text)

            generators = None
            if temperature > 0:
                generators = [_generator(seed, key) for key in keys[start : start + len(batch)]]
            results.extend(
                self._generate_batch(
                    batch, max_new_tokens, stop, temperature, top_k, top_p, generators, relay
                )  # fmt: skip
            )
            if on_batch is not None:
                on_batch(len(batch))
        return results

    def _generate_batch(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int,
        stop: Sequence[str],
        temperature: float,
        top_k: int,
        top_p: float,
        generators: list[Any] | None,
        on_text: Callable[[int, str], None],
    ) -> list[Generation]:
        import torch

        for p in prompts:
            self.check_length(len(p) + max_new_tokens - 1, "the prompt plus --max-new-tokens")
        device = self.loaded.device
        n = len(prompts)
        tokens: list[list[int]] = [[] for _ in range(n)]
        texts = [""] * n
        shown = [0] * n
        stopped = [""] * n
        with torch.inference_mode():
            logits, cache, mask, lengths = self._prompt_pass([list(p) for p in prompts])
            positions = lengths.clone()
            active = list(range(n))  # the prompt of each batch row still generating
            for step_no in range(max_new_tokens):
                rows_gens = [generators[r] for r in active] if generators is not None else None
                chosen = self._choose(logits, temperature, top_k, top_p, rows_gens)
                for i, row in enumerate(active):
                    token = int(chosen[i])
                    if token in self.eos_ids:
                        stopped[row] = "eos"
                        continue
                    tokens[row].append(token)
                    text = self.decode(tokens[row])
                    cut = _first_stop(text, stop)
                    if cut is not None:
                        texts[row] = text[:cut]
                        stopped[row] = "stop"
                    else:
                        texts[row] = text
                    # Hold back a partial character or a possible start of a stop string.
                    safe = _safe_prefix(texts[row], stop) if not stopped[row] else texts[row]
                    if len(safe) > shown[row]:
                        on_text(row, safe[shown[row] :])
                        shown[row] = len(safe)
                keep = [i for i, row in enumerate(active) if not stopped[row]]
                if not keep or step_no == max_new_tokens - 1:
                    break  # no forward pass for a token that will not be chosen
                if len(keep) < len(active):
                    # Finished rows leave the batch: the others run on without them.
                    index = torch.tensor(keep, device=mask.device)
                    cache.batch_select_indices(index)
                    mask, positions = mask.index_select(0, index), positions.index_select(0, index)
                    chosen = chosen[keep]
                    active = [active[i] for i in keep]
                step = chosen.to(device)[:, None]
                mask = torch.cat([mask, torch.ones_like(step)], dim=1)
                out = self.model(input_ids=step, attention_mask=mask,
                                 position_ids=positions[:, None], use_cache=True,
                                 **{self._cache_kw: cache})  # fmt: skip
                positions = positions + 1
                logits = out.logits[:, -1, :].float()
                cache = self._cache_of(out)
        for row in range(n):
            if not stopped[row]:
                stopped[row] = "length"
            if len(texts[row]) > shown[row]:
                on_text(row, texts[row][shown[row] :])
        return [Generation(texts[r], tokens[r], stopped[r]) for r in range(n)]

    @staticmethod
    def _choose(
        logits: Any, temperature: float, top_k: int, top_p: float, generators: list[Any] | None
    ) -> Any:
        import torch

        if temperature <= 0:
            return logits.argmax(-1).cpu()
        scores = logits / temperature
        if top_k > 0:
            kth = torch.topk(scores, min(top_k, scores.shape[-1]), dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if top_p < 1.0:
            ordered, order = torch.sort(scores, descending=True, dim=-1)
            cumulative = torch.softmax(ordered, dim=-1).cumsum(-1)
            # Keep the smallest set whose probability reaches top_p (always the first).
            drop = cumulative - torch.softmax(ordered, dim=-1) >= top_p
            drop[:, 0] = False  # top_p 0: the first still stays
            ordered = ordered.masked_fill(drop, float("-inf"))
            scores = torch.full_like(scores, float("-inf")).scatter(-1, order, ordered)
        probs = torch.softmax(scores, dim=-1).cpu()
        assert generators is not None and len(generators) == probs.shape[0]
        return torch.cat([torch.multinomial(row, 1, generator=g)
                          for row, g in zip(probs, generators)])  # fmt: skip


def _generator(seed: int | None, key: int) -> Any:
    """A CPU generator for one prompt: the run's seed and the prompt's key together."""
    import torch

    generator = torch.Generator(device="cpu")
    generator.manual_seed(((0 if seed is None else seed) * 1_000_003 + key) % (2**63))
    return generator


def _first_stop(text: str, stop: Sequence[str]) -> int | None:
    cuts = [text.find(s) for s in stop if s and s in text]
    return min(cuts) if cuts else None


def _safe_prefix(text: str, stop: Sequence[str]) -> str:
    """``text`` without an ending that could still grow into a stop string or a character."""
    end = len(text)
    if text.endswith("\ufffd"):
        end = len(text.rstrip("\ufffd"))
    for s in stop:
        for k in range(min(len(s) - 1, end), 0, -1):
            if text[:end].endswith(s[:k]):
                end -= k
                break
    return text[:end]


def top_tokens(logprobs: Any, k: int) -> Iterator[tuple[int, float]]:
    """The ``k`` most likely next tokens: (id, log-probability), best first."""
    import torch

    values, ids = torch.topk(logprobs, k)
    for v, i in zip(values.tolist(), ids.tolist()):
        yield int(i), float(v)
