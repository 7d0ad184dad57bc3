"""``llmcli.core.packing``: token trees, the rows of a pass and what each token sees."""

from __future__ import annotations

import numpy as np

from llmcli.core import packing


def test_common_prefix():
    assert packing.common_prefix([]) == 0
    assert packing.common_prefix([[1, 2, 3]]) == 3
    assert packing.common_prefix([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert packing.common_prefix([[1, 2], [3, 2]]) == 0


def test_tree_paths_share_their_beginnings():
    tree = packing.Tree(base=5)
    a = tree.path(-1, [7, 8, 9])
    b = tree.path(-1, [7, 8, 10])
    c = tree.path(a[-1], [11])
    assert a == [0, 1, 2] and b == [0, 1, 3] and c == [4]
    assert tree.tokens == [7, 8, 9, 10, 11]
    assert tree.parents == [-1, 0, 1, 1, 2]
    assert tree.depths == [5, 6, 7, 7, 8]  # the position each token has in its own sequence
    assert tree.path(-1, [7, 8, 9]) == a and len(tree) == 5


def test_rows_group_prompts_that_share_enough():
    shared = list(range(100, 120))
    contexts = [shared + [1, 2], [5, 6], shared + [3], shared[:4] + [9] * 10, shared + [4, 4, 4]]
    passes = packing.plan_rows(contexts, 0, batch_size=8)
    rows = [row for rows in passes for row in rows]
    assert sorted(i for row in rows for i in row) == [0, 1, 2, 3, 4]
    together = next(row for row in rows if 0 in row)
    assert sorted(together) == [0, 2, 4]  # 20 shared tokens; 3 shares only 4 of its 14
    assert [1] in rows and [3] in rows
    # A pass never holds more requests than the batch size, nor a row.
    for size in (1, 2):
        for rows in packing.plan_rows(contexts, 0, batch_size=size):
            assert sum(len(r) for r in rows) <= size


def test_each_token_sees_itself_its_ancestors_and_the_prefix():
    contexts = [[1, 2, 3], [1, 2, 4, 5]]
    conts = [[[6, 7], [8]], [[9]]]
    trees, placed = packing.build_rows(contexts, conts, [[0, 1]], skip=1)
    (tree,) = trees
    assert tree.tokens == [2, 3, 6, 4, 5]  # 1 is the prefix, held in the cache
    assert tree.depths == [1, 2, 3, 2, 3]
    # Request 0: [6, 7] is read after 3 (node 1) and after 6 (node 2); [8] after 3.
    assert placed[0].readers == [[1, 2], [1]]
    assert placed[1].readers == [[4]]
    ids, positions, allowed = packing.row_arrays(trees + [packing.Tree(base=1)], prefix=1)
    assert ids.shape == (2, 5) and allowed.shape == (2, 5, 6)
    assert positions[0].tolist() == [1, 2, 3, 2, 3]
    expected = np.array([
        # prefix, then the nodes 2 3 6 4 5
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 0, 0, 1, 0],
        [1, 1, 0, 0, 1, 1],
    ], dtype=bool)  # fmt: skip
    assert (allowed[0] == expected).all()
    # The empty row is padding: each of its places sees only itself.
    assert (allowed[1, :, 1:] == np.eye(5, dtype=bool)).all() and not allowed[1, :, 0].any()


def test_prefix_groups_share_a_long_enough_beginning():
    a = list(range(100, 130))  # 30 tokens
    b = list(range(200, 230))
    contexts = [a + [1], [5, 6], b + [2], a + [3, 3], b, a[:20] + [9], [5, 7]]
    groups = packing.prefix_groups(contexts)
    by_first = {tuple(sorted(g)): skip for g, skip in groups}
    assert by_first[(0, 3, 5)] == 20  # a[:20] is what all three share
    # b is itself a whole prompt: the group stops a token short of it.
    assert by_first[(2, 4)] == 29
    assert by_first[(1, 6)] == 0  # [5, 6] and [5, 7] share too little: the rest
    assert sorted(i for g, _ in groups for i in g) == list(range(7))
    assert packing.prefix_groups([a + [1]]) == [([0], 0)]
