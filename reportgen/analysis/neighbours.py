"""Pairs of images whose embeddings lie within a cosine similarity: exact below a size, a faiss index above it.

Below :data:`INDEX_FROM` images every pair is scored, one block of rows against the later rows at a time
(blocked matrix products, no Python loop over pairs). From :data:`INDEX_FROM` images on, a faiss inverted-file
index (``IndexIVFFlat``, inner product on unit rows) is trained on a sample, and each image's range search
visits only the :data:`PROBES` lists nearest to it; the pairs it returns are re-scored exactly and kept at
or above the threshold, so the index can miss a pair but never adds one. This is the only module that
imports faiss.

Measured by ``benchmarks/whole_set.py`` (synthetic 1280-d embeddings with class structure and planted copies
at cosine 0.91-0.995; README, "Whole-set analyses at scale"): both ways find every planted copy at every
size tried; the exact way's time grows with the square of the set, the index's about with its 1.5th power.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

# From this many images the index is used. benchmarks/whole_set.py, 2 threads on a 2-core x86_64 machine
# shared with other work, exact / index seconds (training included): 5,000 images 2.0 / 1.8, 10,000 5.7 / 6.1,
# 20,000 41.9 / 15.7; every planted copy found both ways. Below 20,000 the exact way costs at most seconds.
INDEX_FROM = 20_000
LISTS_PER_ROOT = 4  # inverted lists = 4 sqrt(N): 1,264 at 100,000 images, about 80 images a list
PROBES = 8  # lists visited per image; planted copies at 50,000 images all found at 4 and 8: 8 for margin
TRAIN_PER_LIST = 40  # k-means training sample: images per list (faiss warns below 39)
KMEANS_ITERATIONS = 10  # faiss's default is 25; with 10 every planted copy is still found at 50,000 images
SEED = 0  # the training sample and faiss's k-means start


def similar_pairs(
    unit_rows: np.ndarray, threshold: float, *, block_size: int = 1024, index_from: int = INDEX_FROM
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs ``a < b`` whose rows have an inner product of at least ``threshold``, sorted by ``(a, b)``.

    Args:
        unit_rows: ``(N, D)`` float32 L2-normalised embeddings (inner product = cosine similarity).
        threshold: cosine similarity at or above which a pair is returned.
        block_size: rows per matrix-product block of the exact way; memory about ``block_size * N * 4`` bytes.
        index_from: from this many rows the faiss index is used (see :data:`INDEX_FROM`).

    Returns:
        ``(a, b, similarity)``: int64, int64 and float32 arrays of the pairs.
    """
    z = np.ascontiguousarray(unit_rows, dtype=np.float32)
    if len(z) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    if len(z) >= index_from:
        return _indexed_pairs(z, threshold)
    return _exact_pairs(z, threshold, block_size)


def _exact_pairs(z: np.ndarray, threshold: float, block_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair scored, one block of rows against itself and the later rows at a time."""
    found_a, found_b, found_sim = [], [], []
    for start in range(0, len(z), block_size):
        stop = min(start + block_size, len(z))
        sims = z[start:stop] @ z[start:].T  # (B, N - start): this block against itself and later rows
        rows, cols = np.nonzero(sims >= threshold)
        keep = cols > rows  # column offset equals row offset on the diagonal; keep a < b only
        found_a.append(rows[keep] + start)
        found_b.append(cols[keep] + start)
        found_sim.append(sims[rows[keep], cols[keep]])
    return np.concatenate(found_a).astype(np.int64), np.concatenate(found_b).astype(np.int64), np.concatenate(found_sim)


def _indexed_pairs(z: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs from a faiss IVF range search, re-scored exactly and kept at or above ``threshold``."""
    import faiss

    n, dims = z.shape
    lists = max(1, min(n, int(LISTS_PER_ROOT * np.sqrt(n))))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dims), dims, lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = KMEANS_ITERATIONS
    index.cp.seed = SEED
    index.cp.min_points_per_centroid = 1  # the sample below is sized here; keep faiss quiet about it
    index.cp.max_points_per_centroid = TRAIN_PER_LIST
    sample = np.random.default_rng(SEED).choice(n, min(n, TRAIN_PER_LIST * lists), replace=False)
    index.train(z[np.sort(sample)])
    index.add(z)
    index.nprobe = min(PROBES, lists)
    limits, _, found = index.range_search(z, threshold - 1e-4)  # a hair below: the exact re-score decides
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(limits.astype(np.int64)))
    found = found.astype(np.int64)
    a, b = rows[rows < found], found[rows < found]
    sim = np.einsum("pd,pd->p", z[a], z[b])
    keep = sim >= threshold
    order = np.lexsort((b[keep], a[keep]))
    logger.info("near-copy search: faiss IVF index, %d lists, %d probed, %d pairs", lists, index.nprobe, keep.sum())
    return a[keep][order], b[keep][order], sim[keep][order]
