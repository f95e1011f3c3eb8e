"""Exact and near-duplicate images, and the ones that straddle classes or splits (leakage).

Exact duplicates share the SHA-256 of their file bytes. Near-duplicates are pairs whose embeddings
(pooled pretrained-backbone features, L2-normalised) have a cosine similarity of at least a threshold
(``--near-duplicate-threshold``, ``RunConfig.near_duplicate_threshold``, 0.90 by default), found with blocked
matrix products (no Python loop over pairs), or on large sets with a faiss index
(:mod:`reportgen.analysis.neighbours`).

How 0.90 was chosen — EfficientNet-Lite0 ImageNet embeddings (1280-d) of images decoded at 224 px:

* Different photos (every pair of distinct files): ``food101-pss`` 177,906 pairs, max 0.816;
  ``food9-64px`` 477,753 pairs, max 0.852; ``clothing-mini`` 11,175 pairs, max 0.888 (two pairs of
  jeans on the same floor). None of the 666,834 pairs reaches 0.90; 4 reach 0.85.
* A photo and its altered copy (100 ``food101-pss`` photos, 512 px): share of copies at >= 0.90 —
  half-size + JPEG q85 98 %, JPEG q40 96 %, brightness +15 % 100 %, mirror 100 %, PNG re-save 100 %,
  5 % crop per side 87 %, 10 % crop 20 %, 15 % crop 0 %.
  On 64 px photos (``food9-64px``) a copy loses more: JPEG q40 62 %, 5 % crop 76 %, half size 1 %.

So 0.90 has no false pair in three real sets and catches re-encoded, resized, mirrored and lightly
cropped copies of ordinary photos; heavier crops are different framings and are missed by design.

Degraded photos are another matter: heavily blurred, dark photos lie close together in the features whatever
they show (a held-out set with 20 % of its photos degraded gave 56 pairs at >= 0.90, 55 of them two different
photos). So, given the decoded pixels, a near pair is kept only when the pixels confirm it
(:mod:`reportgen.analysis.pixel_match`); the pairs the pixels refuse are counted, not listed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reportgen.analysis.neighbours import INDEX_FROM, similar_pairs
from reportgen.analysis.pixel_match import MIN_PIXEL_CORRELATION, pixel_correlation
from reportgen.data.dataset import SPLITS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DuplicatePair:
    """Two images that are the same picture, by file hash or by embedding similarity."""

    idx_a: int  # index into the data set arrays; idx_a < idx_b
    idx_b: int
    kind: str  # "exact" (same file bytes) | "near" (cosine >= threshold)
    similarity: float | None  # embedding cosine; None for an exact pair without embeddings
    label_a: int
    label_b: int
    split_a: str | None  # "train" | "val" | "test", None when splits are unknown
    split_b: str | None
    across_classes: bool  # the same picture carries two labels
    leaks: bool  # the two copies sit in different splits


@dataclass(frozen=True)
class Duplicates:
    """Every duplicate pair of a data set, counted, with the most harmful listed first."""

    pairs: tuple[DuplicatePair, ...]  # at most max_pairs: across classes, then leaking, exact, most similar
    n_exact_pairs: int
    n_near_pairs: int
    n_across_classes: int  # pairs (exact or near) whose labels differ
    n_leaking: int  # pairs whose copies sit in different splits
    leaks_by_splits: dict[str, int]  # e.g. {"train-test": 3}; split names in SPLITS order
    groups: tuple[tuple[int, ...], ...]  # connected sets of duplicate images, largest first
    n_images_involved: int
    threshold: float | None  # cosine threshold used; None when no embeddings were given
    truncated: bool  # more pairs exist than listed in ``pairs``
    n_unconfirmed: int = 0  # near pairs by the features that the pixels refused (two different pictures)


def find_duplicates(
    hashes: Sequence[str],
    labels: np.ndarray,
    embeddings: np.ndarray | None = None,
    splits: np.ndarray | None = None,
    *,
    threshold: float,
    block_size: int = 1024,
    max_pairs: int = 500,
    index_from: int = INDEX_FROM,
    pixels: np.ndarray | None = None,
) -> Duplicates:
    """Find exact duplicates by file hash and near-duplicates by embedding cosine similarity.

    Args:
        hashes: ``N`` SHA-256 hex digests of the files' bytes (``ImageInfo.sha256``).
        labels: ``(N,)`` int class indices.
        embeddings: ``(N, D)`` float features, or None to look for exact duplicates only.
        splits: ``(N,)`` split names, or None when the images are not split (no leakage check).
        threshold: cosine similarity at or above which two images are near-duplicates (see module docstring).
        block_size: rows per matrix-product block; memory is about ``block_size * N * 4`` bytes.
        max_pairs: most pairs listed; the counts always cover every pair.
        index_from: from this many images near-duplicates are sought with a faiss index, not every pair
            (:data:`reportgen.analysis.neighbours.INDEX_FROM`).
        pixels: ``(N, S, S, 3)`` decoded images; given, a near pair must be confirmed by them
            (:mod:`reportgen.analysis.pixel_match`).

    Returns:
        The pairs, their counts by kind, class and split, and the duplicate groups.
    """
    labels = np.asarray(labels).astype(np.int64)
    n = len(labels)
    if (
        len(hashes) != n
        or (embeddings is not None and len(embeddings) != n)
        or (splits is not None and len(splits) != n)
    ):
        raise ValueError("`hashes`, `labels`, `embeddings` and `splits` must describe the same N images")
    exact = _exact_pairs(hashes)
    near_a, near_b, near_sim = _near_pairs(embeddings, threshold, block_size, index_from)
    near_a, near_b, near_sim = _drop_exact(near_a, near_b, near_sim, exact)
    unconfirmed = 0
    if pixels is not None and len(near_a):
        confirmed = pixel_correlation(pixels, near_a, near_b) >= MIN_PIXEL_CORRELATION
        unconfirmed = int((~confirmed).sum())
        near_a, near_b, near_sim = near_a[confirmed], near_b[confirmed], near_sim[confirmed]
    ia = np.concatenate([exact[:, 0], near_a])
    ib = np.concatenate([exact[:, 1], near_b])
    is_exact = np.arange(len(ia)) < len(exact)
    sims = np.concatenate([_pair_cosines(embeddings, exact), near_sim])
    found = _summarise(ia, ib, is_exact, sims, labels, splits, embeddings is not None, threshold, max_pairs)
    return dataclasses.replace(found, n_unconfirmed=unconfirmed)


def _exact_pairs(hashes: Sequence[str]) -> np.ndarray:
    """``(P, 2)`` int64 index pairs ``a < b`` of files with the same hash."""
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, digest in enumerate(hashes):
        by_hash[digest].append(i)
    pairs = [(a, b) for members in by_hash.values() for k, a in enumerate(members) for b in members[k + 1 :]]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _near_pairs(
    embeddings: np.ndarray | None, threshold: float, block_size: int, index_from: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs ``a < b`` with cosine >= ``threshold`` (:func:`reportgen.analysis.neighbours.similar_pairs`)."""
    if embeddings is None or len(embeddings) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return similar_pairs(_unit_rows(embeddings), threshold, block_size=block_size, index_from=index_from)


def _unit_rows(embeddings: np.ndarray) -> np.ndarray:
    z = np.asarray(embeddings, dtype=np.float32)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def _drop_exact(
    a: np.ndarray, b: np.ndarray, sim: np.ndarray, exact: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not len(exact) or not len(a):
        return a, b, sim
    exact_keys = set(map(tuple, exact.tolist()))
    keep = np.array([(x, y) not in exact_keys for x, y in zip(a.tolist(), b.tolist(), strict=True)], dtype=bool)
    return a[keep], b[keep], sim[keep]


def _pair_cosines(embeddings: np.ndarray | None, pairs: np.ndarray) -> np.ndarray:
    if embeddings is None or not len(pairs):
        return np.full(len(pairs), np.nan, dtype=np.float32)
    z = _unit_rows(embeddings)
    return np.einsum("pd,pd->p", z[pairs[:, 0]], z[pairs[:, 1]]).astype(np.float32)


def _summarise(
    ia: np.ndarray,
    ib: np.ndarray,
    is_exact: np.ndarray,
    sims: np.ndarray,
    labels: np.ndarray,
    splits: np.ndarray | None,
    have_embeddings: bool,
    threshold: float,
    max_pairs: int,
) -> Duplicates:
    across = labels[ia] != labels[ib]
    leaks = np.zeros(len(ia), dtype=bool) if splits is None else np.asarray(splits)[ia] != np.asarray(splits)[ib]
    # Most harmful first: two labels on one picture, then leakage, then exact copies, then similarity.
    order = np.lexsort((ib, ia, -np.nan_to_num(sims, nan=1.0), ~is_exact, ~leaks, ~across))[:max_pairs]
    pairs = tuple(_pair(int(ia[k]), int(ib[k]), bool(is_exact[k]), sims[k], labels, splits) for k in order)
    groups = _groups(ia, ib, len(labels))
    return Duplicates(
        pairs=pairs,
        n_exact_pairs=int(is_exact.sum()),
        n_near_pairs=int((~is_exact).sum()),
        n_across_classes=int(across.sum()),
        n_leaking=int(leaks.sum()),
        leaks_by_splits=_leak_counts(ia[leaks], ib[leaks], splits),
        groups=groups,
        n_images_involved=sum(len(g) for g in groups),
        threshold=threshold if have_embeddings else None,
        truncated=len(ia) > len(pairs),
    )


def _pair(a: int, b: int, exact: bool, sim: float, labels: np.ndarray, splits: np.ndarray | None) -> DuplicatePair:
    split_a = None if splits is None else str(splits[a])
    split_b = None if splits is None else str(splits[b])
    return DuplicatePair(
        idx_a=a,
        idx_b=b,
        kind="exact" if exact else "near",
        similarity=None if np.isnan(sim) else round(float(sim), 6),
        label_a=int(labels[a]),
        label_b=int(labels[b]),
        split_a=split_a,
        split_b=split_b,
        across_classes=bool(labels[a] != labels[b]),
        leaks=split_a is not None and split_a != split_b,
    )


def _leak_counts(ia: np.ndarray, ib: np.ndarray, splits: np.ndarray | None) -> dict[str, int]:
    if splits is None or not len(ia):
        return {}
    rank = {name: k for k, name in enumerate(SPLITS)}
    counts: dict[str, int] = defaultdict(int)
    for a, b in zip(np.asarray(splits)[ia].tolist(), np.asarray(splits)[ib].tolist(), strict=True):
        first, second = sorted((a, b), key=lambda s: (rank.get(s, len(rank)), s))
        counts[f"{first}-{second}"] += 1
    return dict(sorted(counts.items()))


def _groups(ia: np.ndarray, ib: np.ndarray, n: int) -> tuple[tuple[int, ...], ...]:
    """Connected components (size >= 2) of the duplicate graph, by union-find."""
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(ia.tolist(), ib.tolist(), strict=True):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = defaultdict(list)
    for i in sorted(set(ia.tolist()) | set(ib.tolist())):
        members[root(i)].append(i)
    return tuple(sorted((tuple(m) for m in members.values()), key=lambda g: (-len(g), g[0])))
