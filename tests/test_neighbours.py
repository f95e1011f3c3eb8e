"""The faiss index finds the pairs the exact blocked search finds (issue 12): forced on small synthetic sets."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.analysis.neighbours import INDEX_FROM, similar_pairs

THRESHOLD = 0.9


def _clustered_with_copies(n: int = 3000, dim: int = 64, copies: int = 40, seed: int = 0):
    """Unit rows of 10 overlapping clusters, ``copies`` of them replaced by near copies (cosine 0.91-0.995)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(10, dim))[rng.integers(0, 10, n)] + 1.5 * rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    chosen = rng.permutation(n)[: 2 * copies]
    sources, targets = chosen[:copies], chosen[copies:]
    away = rng.normal(size=(copies, dim))
    away -= (away * x[sources]).sum(axis=1, keepdims=True) * x[sources]
    away /= np.linalg.norm(away, axis=1, keepdims=True)
    cos = rng.uniform(0.91, 0.995, (copies, 1))
    x[targets] = cos * x[sources] + np.sqrt(1 - cos**2) * away
    planted = {(min(a, b), max(a, b)) for a, b in zip(sources.tolist(), targets.tolist(), strict=True)}
    return x.astype(np.float32), planted


def test_index_and_exact_search_return_the_same_pairs():
    z, planted = _clustered_with_copies()
    exact = similar_pairs(z, THRESHOLD, index_from=len(z) + 1)
    indexed = similar_pairs(z, THRESHOLD, index_from=0)
    assert set(zip(exact[0].tolist(), exact[1].tolist(), strict=True)) == planted  # nothing else reaches 0.9
    np.testing.assert_array_equal(indexed[0], exact[0])
    np.testing.assert_array_equal(indexed[1], exact[1])
    np.testing.assert_allclose(indexed[2], exact[2], atol=1e-5)
    assert indexed[0].dtype == indexed[1].dtype == np.int64 and indexed[2].dtype == np.float32


def test_index_keeps_groups_of_copies_and_only_pairs_at_the_threshold():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(400, 16)).astype(np.float32)
    z[10:15] = z[3] + 0.05 * rng.normal(size=(5, 16))  # a group of six: 15 pairs
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    exact = similar_pairs(z, 0.8, index_from=len(z) + 1)
    indexed = similar_pairs(z, 0.8, index_from=0)
    assert len(exact[0]) >= 15
    assert set(zip(*indexed[:2], strict=True)) == set(zip(*exact[:2], strict=True))
    assert (indexed[2] >= 0.8).all() and (indexed[0] < indexed[1]).all()


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_rows_have_no_pairs(n):
    a, b, sim = similar_pairs(np.ones((n, 8), np.float32), THRESHOLD, index_from=0)
    assert len(a) == len(b) == len(sim) == 0


def test_small_sets_stay_exact():
    assert INDEX_FROM >= 10_000  # the shipped sets and tests never reach the index
