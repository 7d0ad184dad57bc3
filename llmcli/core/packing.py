"""Prompts and their continuations packed into token trees, for scoring in one pass.

A row of a forward pass holds a tree of tokens: the prompts that begin alike share
their first tokens, and each choice's continuation hangs from the last token of its
prompt. A token attends to itself and to its ancestors only, at the position it would
have in its own plain sequence (its depth), so every log-probability read from the row
is the one a plain pass over that prompt + continuation gives, while a token shared by
several prompts or choices is computed once. A beginning that a group of prompts share
(``prefix_groups``) is computed once before the group's rows and read by each of them
from the key/value cache.

This module only lays the rows out (plain Python and numpy); ``core.lm`` runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SHARED_PREFIX_MIN = 16  # a common prefix shorter than this runs inside the rows
ROW_SHARE_MIN = 8  # prompts share a row when they share at least this many tokens ...
ROW_SHARE_PART = 0.5  # ... and at least this part of the later one


def common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    """The number of leading tokens that every sequence has in common."""
    if not seqs:
        return 0
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
        if n == 0:
            break
    return n


def prefix_groups(contexts: Sequence[Sequence[int]]) -> list[tuple[list[int], int]]:
    """The requests (by index) that share a beginning of at least SHARED_PREFIX_MIN
    tokens, each group with the length of that beginning; the others last, with 0.

    A group's beginning stops a token short of its shortest prompt: every prompt keeps
    its last token in its row, where it predicts the continuation.
    """
    order = sorted(range(len(contexts)), key=lambda i: list(contexts[i]))
    groups: list[tuple[list[int], int]] = []
    rest: list[int] = []

    def close(run: list[int]) -> None:
        if len(run) >= 2:
            # Sorted, the first and the last share what the whole run shares.
            shared = common_prefix([contexts[run[0]], contexts[run[-1]]])
            skip = min(shared, min(len(contexts[i]) for i in run) - 1)
            if skip >= SHARED_PREFIX_MIN:
                groups.append((run, skip))
                return
        rest.extend(run)

    run: list[int] = []
    for i in order:
        if run and common_prefix([contexts[run[0]], contexts[i]]) < SHARED_PREFIX_MIN:
            close(run)
            run = []
        run.append(i)
    if run:
        close(run)
    if rest:
        groups.append((sorted(rest), 0))
    return groups


@dataclass
class Tree:
    """The tokens of one row, each after its parent (-1: the row's root)."""

    base: int  # the depth (position) of a token whose parent is the root
    tokens: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    _children: dict[tuple[int, int], int] = field(default_factory=dict)

    def path(self, start: int, tokens: Sequence[int]) -> list[int]:
        """Nodes of ``tokens`` as a path below node ``start``, added where missing."""
        node, out = start, []
        for token in tokens:
            key = (node, token)
            child = self._children.get(key)
            if child is None:
                child = len(self.tokens)
                self.tokens.append(token)
                self.parents.append(node)
                self.depths.append(self.base if node < 0 else self.depths[node] + 1)
                self._children[key] = child
            out.append(child)
            node = child
        return out

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class Placed:
    """Where one request's log-probabilities are read: per continuation, the nodes whose
    next-token distributions give its tokens (the prompt's last node, then the
    continuation's own nodes but its last)."""

    row: int
    readers: list[list[int]]


def plan_rows(
    contexts: Sequence[Sequence[int]], skip: int, batch_size: int
) -> list[list[list[int]]]:
    """Forward passes, each a list of rows, each a list of request indices.

    Prompts are ordered by their tokens, so that prompts sharing a beginning are next to
    each other; a prompt joins the row of the one before when they share enough of it.
    A pass holds at most ``batch_size`` requests, rows of like width together.
    """
    order = sorted(range(len(contexts)), key=lambda i: list(contexts[i][skip:]))
    rows: list[list[int]] = []
    for i in order:
        row = rows[-1] if rows else None
        if row is not None and len(row) < batch_size:
            lead, own = contexts[row[0]][skip:], contexts[i][skip:]
            shared = common_prefix([lead, own])
            if shared >= ROW_SHARE_MIN and shared >= ROW_SHARE_PART * len(own):
                row.append(i)
                continue
        rows.append([i])
    width = {id(r): sum(len(contexts[i]) - skip for i in r) for r in rows}
    rows.sort(key=lambda r: width[id(r)])
    passes: list[list[list[int]]] = []
    count = 0
    for row in rows:
        if not passes or count + len(row) > batch_size:
            passes.append([])
            count = 0
        passes[-1].append(row)
        count += len(row)
    return passes


def build_rows(
    contexts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[Sequence[int]]],
    rows: Sequence[Sequence[int]],
    skip: int,
) -> tuple[list[Tree], dict[int, Placed]]:
    """The trees of one pass, and where each request (by index) is read from."""
    trees: list[Tree] = []
    placed: dict[int, Placed] = {}
    for r, members in enumerate(rows):
        tree = Tree(base=skip)
        for i in members:
            last = tree.path(-1, contexts[i][skip:])[-1]
            readers = [[last, *tree.path(last, cont[:-1])] for cont in continuations[i]]
            placed[i] = Placed(r, readers)
        trees.append(tree)
    return trees, placed


def row_arrays(trees: Sequence[Tree], prefix: int) -> tuple[Any, Any, Any]:
    """(ids, positions, allowed) for a pass: allowed[b, q, k] says whether query ``q`` of
    row ``b`` sees key ``k``, the ``prefix`` cached keys first. Padding sees only itself."""
    import numpy as np

    width = max(len(t) for t in trees)
    ids = np.zeros((len(trees), width), dtype=np.int64)
    positions = np.zeros((len(trees), width), dtype=np.int64)
    allowed = np.zeros((len(trees), width, prefix + width), dtype=bool)
    for b, tree in enumerate(trees):
        n = len(tree)
        ids[b, :n] = tree.tokens
        positions[b, :n] = tree.depths
        seen = allowed[b, :, prefix:]
        for node, parent in enumerate(tree.parents):
            if parent >= 0:
                seen[node] = seen[parent]
            seen[node, node] = True
        allowed[b, :n, :prefix] = True
        pads = np.arange(n, width)
        seen[pads, pads] = True
    return ids, positions, allowed
