"""A map of the data set: the pretrained features of its images laid out in two dimensions.

Rows are L2-normalised first (the cosine geometry the other checks use). ``"pca"`` projects them on their
first two principal components (numpy); ``"tsne"`` reduces them to ``PCA_DIMS`` components and lays those
out with scikit-learn's Barnes-Hut t-SNE, which keeps neighbours together but gives distances between far
groups no meaning. Beyond ``max_points`` images the map shows a sample stratified by class: each class keeps
its share (at least one image), and images the caller asks to ``keep`` (the audit's marked ones) are in it.

Measured by ``benchmarks/embedding_map.py`` on a 2-core x86_64 CPU, one thread; "agreement": the share of
each point's 10 nearest neighbours on the map that have its class ("features": the same in the features'
cosine geometry); "trust": scikit-learn's trustworthiness, 10 neighbours (both on at most 2,000 points):

===================  ======  ============  ==========  =============  ===========
set (images)         method  points        CPU s       agreement      trust
===================  ======  ============  ==========  =============  ===========
food9-64px (978)     pca     978           0.3         0.420          0.725
features: 0.575      tsne    978           2.4         0.564          0.914
food101-pss (597)    pca     597           0.1         0.824          0.780
features: 0.843      tsne    597           1.4         0.866          0.914
synthetic 5,000      pca     5,000         0.7         0.208          0.701
features: 0.710      tsne    5,000         16.4        0.827          0.932
                     tsne    2,000         5.6         0.787          0.940
synthetic 20,000     pca     20,000        1.6         0.186          0.686
features: 0.713      tsne    20,000        118.9       0.841          0.921
                     tsne    2,000         6.2         0.802          0.945
===================  ======  ============  ==========  =============  ===========

PCA's two axes flatten the classes onto each other (its neighbours are often not neighbours in the
features); t-SNE keeps them as apart as the features do, for about 2.5 s per 1,000 images, so it is the
default. Its cost grows faster than the number of points while 2,000 dots already fill a column-wide
chart, so larger sets are sampled (the sample scores about as well as the whole set). On food9-64px 250
iterations (sklearn's early exaggeration alone) gave 0.455 and 0.696, 500 gave 0.564 and 0.914, 1,000
0.562 and 0.911 at twice the cost. With two BLAS and OpenMP threads on cores other processes kept busy,
t-SNE of food101-pss took 15-20 CPU seconds instead of 1.5 (the threads wait on each other), so the map
is laid out on one thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

METHODS = ("pca", "tsne")
METHOD = "tsne"  # what a run draws (module table)
MAX_POINTS = 2_000  # images a run's map shows at most; a class-stratified sample beyond (module table)
PCA_DIMS = 50  # t-SNE's input: the first principal components (the usual preprocessing; scikit-learn's advice)
PERPLEXITY = 30.0  # t-SNE's neighbourhood size, lowered for small sets (it must stay below the number of points)
TSNE_ITERATIONS = 500  # t-SNE's optimisation steps (module table)


@dataclass(frozen=True)
class EmbeddingMap:
    """2-D coordinates of the (sampled) images of a data set."""

    coords: np.ndarray  # (n, 2) float32; the axes have no meaning
    indices: np.ndarray  # (n,) int64 image indices (rows of the data set), ascending
    labels: np.ndarray  # (n,) int64 class indices of those images
    method: str  # "pca" | "tsne"
    n_images: int  # images in the data set

    @property
    def subsampled(self) -> bool:
        """True when the map shows a sample of the images, not all of them."""
        return len(self.indices) < self.n_images


def embed_2d(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    method: str,
    max_points: int,
    seed: int,
    keep: Iterable[int] = (),
) -> EmbeddingMap:
    """Lay ``features`` out in 2-D; the same inputs and ``seed`` give the same map.

    Args:
        features: ``(N, D)`` pretrained features, one row per image.
        labels: ``(N,)`` int class indices.
        method: ``"pca"`` or ``"tsne"``.
        max_points: images shown at most; beyond, a sample stratified by class (see :func:`stratified_sample`).
        seed: seeds the sample (t-SNE starts from the PCA layout, so the seed does not move its points).
        keep: image indices that must be in the sample (they count towards their class's share).
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if x.ndim != 2 or y.shape != (len(x),) or not len(x):
        raise ValueError(f"`features` must be (N, D) and `labels` (N,) with N > 0; got {x.shape} and {y.shape}")
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}; got {method!r}")
    if max_points < 1:
        raise ValueError(f"`max_points` must be at least 1; got {max_points}")
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    idx = stratified_sample(y, max_points, seed=seed, keep=keep)
    x = x[idx]
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    with threadpool_limits(limits=1):  # BLAS and OpenMP threads on busy cores: up to 10x slower (module notes)
        coords = _tsne(x, seed) if method == "tsne" else principal_components(x, 2)
    logger.info("data set map: %s of %d of %d images", method, len(idx), len(y))
    return EmbeddingMap(coords.astype(np.float32), idx, y[idx], method, len(y))


def stratified_sample(labels: np.ndarray, max_points: int, *, seed: int, keep: Iterable[int] = ()) -> np.ndarray:
    """Ascending indices of at most ``max_points`` images (all when there are no more), every class kept.

    Each class gets its share of ``max_points`` (see :func:`class_quotas`). Within a class the ``keep`` images
    come first, then the others in an order seeded by ``seed`` and the class index alone, so one class's sample
    does not change when another class's images do. More than ``max_points`` come back only when there are
    more classes than ``max_points``, or more ``keep`` images in a class than its share.
    """
    y = np.asarray(labels).astype(np.int64)
    if len(y) <= max_points:
        return np.arange(len(y), dtype=np.int64)
    classes, counts = np.unique(y, return_counts=True)
    kept = np.unique(np.fromiter(keep, dtype=np.int64))
    chosen = []
    for c, quota in zip(classes, class_quotas(counts, max_points), strict=True):
        members = np.flatnonzero(y == c)
        first = members[np.isin(members, kept)]
        rest = np.random.default_rng([seed % 2**32, int(c)]).permutation(members[~np.isin(members, kept)])
        chosen.append(np.concatenate([first, rest])[: max(quota, len(first))])
    return np.sort(np.concatenate(chosen))


def class_quotas(counts: np.ndarray, max_points: int) -> list[int]:
    """Places per class: ``max_points`` shared in proportion to ``counts``, at least one place per class.

    A class whose share is below one gets one place and leaves the rest to be shared again among the others;
    each share is rounded down and the places left go to the largest remainders, ties to the lower class.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if len(counts) >= max_points:
        return [1] * len(counts)
    fixed = np.zeros(len(counts), dtype=bool)
    share = max_points * counts / counts.sum()
    while (small := ~fixed & (share < 1)).any():  # the others' shares always sum to more than their number
        fixed |= small
        share = np.where(fixed, 1.0, (max_points - fixed.sum()) * counts / counts[~fixed].sum())
    quota = np.floor(share).astype(np.int64)
    left = max_points - int(quota.sum())
    by_remainder = np.argsort(-np.where(fixed, -1.0, share - quota), kind="stable")
    quota[by_remainder[:left]] += 1
    return [int(q) for q in quota]


def principal_components(x: np.ndarray, k: int) -> np.ndarray:
    """``(N, k)``: the centred rows of ``x`` on their first ``k`` principal axes, each axis's sign fixed.

    The sign makes the largest-magnitude coordinate of each axis positive, so the result does not depend on
    the eigensolver. Columns beyond the rank of ``x`` are zero.
    """
    x = x - x.mean(axis=0)
    n, d = x.shape
    small_side = x.T @ x if d <= n else x @ x.T  # eigenvectors of the smaller Gram matrix
    values, vectors = np.linalg.eigh(small_side)
    order = np.argsort(values)[::-1][: min(k, len(values))]
    scores = x @ vectors[:, order] if d <= n else vectors[:, order] * np.sqrt(np.maximum(values[order], 0.0))
    scores = np.where(np.abs(scores).max(axis=0, initial=0.0) > 1e-9, scores, 0.0)
    peak = scores[np.abs(scores).argmax(axis=0), np.arange(scores.shape[1])]
    scores = scores * np.where(peak < 0, -1.0, 1.0)
    return np.pad(scores, ((0, 0), (0, k - scores.shape[1])))


def _tsne(x: np.ndarray, seed: int) -> np.ndarray:
    """Barnes-Hut t-SNE of the first ``PCA_DIMS`` principal components of ``x`` (PCA alone below 4 points).

    The layout is turned (not stretched) so that its widest spread lies along the first axis, as a
    landscape chart shows it best.
    """
    if len(x) < 4:
        return principal_components(x, 2)
    from sklearn.manifold import TSNE

    reduced = principal_components(x, min(PCA_DIMS, x.shape[1]))
    tsne = TSNE(
        n_components=2,
        perplexity=min(PERPLEXITY, (len(x) - 1) / 3),
        init="pca",
        learning_rate="auto",
        max_iter=TSNE_ITERATIONS,
        random_state=seed % 2**32,
    )
    return principal_components(tsne.fit_transform(reduced), 2)
