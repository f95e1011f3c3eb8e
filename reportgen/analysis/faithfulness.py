"""Explanation check: how faithful the report's heat maps are, against a random map and a centred blob (pure).

The score is ROAD (Rong et al., ICML 2022), made cheap enough for every run. For each removal fraction
``p`` of :data:`PERCENTILES`, the pixels a map ranks highest ("most relevant first", MoRF) and, apart,
those it ranks lowest ("least relevant first", LeRF) are imputed from the kept pixels around them
(:func:`impute`), and the model's softmax score of the explained class is read. A faithful map
loses the score when its top pixels go and keeps it when its bottom ones go, so the score is the mean
over ``p`` of ``(LeRF - MoRF) / 2`` (the library's ``ROADCombined``), in [-0.5, 0.5]; higher is more
faithful.

The library's noisy linear imputation solves a sparse system per image and removal step (3-6 s per image
on 2 cores); :func:`impute` reaches nearly the same fill coarse to fine in tens of milliseconds. Like the
library's, it fills from the kept pixels only, so a removed region does not leak its own colours back (a
plain blur of the image would). It adds no noise (the library's is 0.01 of the normalised range).
``benchmarks/cam_faithfulness.py`` measures how well the fast score ranks images and methods as the
library's full ROAD does (the README quotes it).

Two baselines are scored on the same images and classes: a random map (``RandomCAM``: random weights on
the target layer's channels) and a centred Gaussian blob, the same for every image, which knows nothing of
the image but that photos are centred. The verdict:

* ``faithful`` — the maps beat the blob by more than :data:`MIN_MARGIN` and by :data:`Z` standard errors
  of the paired difference;
* ``weak`` — better than the random map so, but not clearly better than the blob;
* ``not_informative`` — not clearly better than a random map, or the maps fail the sanity check: they
  barely change when the model's head and last blocks are re-initialised (Adebayo et al., NeurIPS 2018),
  a Spearman correlation of the maps before and after above :data:`SANITY_MAX`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

PERCENTILES = (25, 50, 75)  # removal fractions, % of the pixels; the library's full ROAD uses 10 ... 90
NEIGHBOUR_WEIGHTS = (1 / 6, 1 / 12)  # the library's imputation: each axial neighbour, each diagonal one
SWEEPS = (4, 16, 64)  # Jacobi sweeps per pyramid level, finest first (the last for all coarser)
COARSEST = 8  # the pyramid halves the side while it is above this
BLOB_SIGMA = 1 / 4  # the centred blob's standard deviation, fraction of the side
Z = 2.0  # standard errors a difference must exceed to count
MIN_MARGIN = 0.01  # ... and at least this much ROAD (on a scale of -0.5 ... 0.5)
SANITY_MAX = 0.5  # mean Spearman correlation of the maps before/after randomisation above this: fails
SANITY_GRID = 28  # maps are pooled to this side before the rank correlation (the target layer is 7 x 7)
IMPUTATION = "weighted mean of their neighbours, as the library's linear imputation fills them"
# Agreement of the fast score with the library's full ROAD (benchmarks/cam_faithfulness.py, README): Spearman
# correlation over (image, map) pairs of three photo sets, and per set over the images (12 each) of the maps'
# lead over the blob, the difference the verdict rests on
FULL_ROAD_PAIRS = (0.96, 144)
FULL_ROAD_LEAD = (("food9-64px", 0.94), ("clothing-mini", 0.86), ("food101-pss", 0.35))

FAITHFUL, WEAK, NOT_INFORMATIVE, UNCHECKED = "faithful", "weak", "not_informative", "unchecked"


@dataclass(frozen=True)
class Score:
    """A mean over images and its standard error (0 for one image)."""

    mean: float
    se: float
    n: int


@dataclass(frozen=True)
class ClassExplanation:
    """One class's scores: the maps, the random map and the blob on the same images."""

    class_name: str
    maps: Score
    random: Score
    blob: Score


@dataclass(frozen=True)
class ExplanationCheck:
    """How faithful the report's heat maps are, the baselines, the sanity check and the verdict."""

    verdict: str  # faithful | weak | not_informative | unchecked (no map to score)
    method: str  # the CAM method that drew the maps, e.g. "gradcam"
    layer: str  # its target layer
    maps: Score  # fast ROAD of the maps
    random: Score  # ... of the random maps (RandomCAM)
    blob: Score  # ... of the centred blob
    vs_random: Score  # paired difference maps - random
    vs_blob: Score  # paired difference maps - blob (a gate metric: ``explanation_vs_blob``)
    per_class: tuple[ClassExplanation, ...]
    sanity: float | None  # mean Spearman correlation of the maps before/after randomising the last layers
    sanity_passed: bool
    percentiles: tuple[int, ...] = PERCENTILES
    imputation: str = IMPUTATION
    randomised: tuple[str, ...] = ()  # the modules the sanity check re-initialised


def score(values: np.ndarray) -> Score:
    """Mean and standard error of a 1-D array."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return Score(0.0, 0.0, 0)
    se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return Score(round(float(values.mean()), 6), round(se, 6), len(values))


def centred_blob(size: int) -> np.ndarray:
    """``(size, size)`` Gaussian of standard deviation :data:`BLOB_SIGMA` of the side, peak 1 at the centre."""
    coords = (np.arange(size) + 0.5) / size - 0.5
    blob = np.exp(-(coords[:, None] ** 2 + coords[None, :] ** 2) / (2 * BLOB_SIGMA**2))
    return (blob / blob.max()).astype(np.float32)


def impute(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """``(..., S, S, 3)`` float images with their ``removed`` ``(..., S, S)`` pixels filled by linear imputation.

    Each removed pixel becomes the weighted mean of its 8 neighbours (:data:`NEIGHBOUR_WEIGHTS`), kept pixels
    fixed: the harmonic fill the library's ``NoisyLinearImputer`` solves as one sparse system. Here it is
    relaxed coarse to fine (:func:`_pyramid`, Jacobi sweeps of :data:`SWEEPS` at each level, each level
    starting from the coarser one's fill), all images at once: tens of milliseconds an image instead of a
    second, within a few grey levels of the exact solution. An image with no kept pixel becomes black.
    """
    shape = np.shape(image)
    images = np.asarray(image, dtype=np.float32).reshape(-1, *shape[-3:])
    gone = np.asarray(removed, dtype=bool).reshape(images.shape[:3])
    keep = ~gone
    kept_mean = (images * keep[..., None]).sum(axis=(1, 2)) / np.maximum(keep.sum(axis=(1, 2)), 1)[:, None]
    levels = _pyramid(images, keep)
    fill = np.broadcast_to(kept_mean[:, None, None, :], levels[-1][0].shape)
    for depth in reversed(range(len(levels))):
        values, known = levels[depth]
        side = values.shape[1]
        start = np.repeat(np.repeat(fill, 2, axis=1), 2, axis=2)[:, :side, :side] if fill.shape[1] < side else fill
        fill = _relax(np.where(known[..., None], values, start), values, known, SWEEPS[min(depth, len(SWEEPS) - 1)])
    return np.where(gone[..., None], fill, images).reshape(shape)


def _pyramid(images: np.ndarray, keep: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(values, known)`` per level, finest first, halving the side down to :data:`COARSEST`.

    A coarse pixel is the mean of its kept pixels, and known when at least half of them are kept.
    """
    levels = [(images, keep)]
    weight = keep.astype(np.float32)
    while levels[-1][0].shape[1] > COARSEST:
        values, _ = levels[-1]
        total = _halved(values * weight[..., None])
        weight = _halved(weight)
        levels.append((total / np.maximum(weight, 1e-9)[..., None], weight >= 0.5))
        weight = (weight >= 0.5).astype(np.float32)
    return levels


def _halved(values: np.ndarray) -> np.ndarray:
    """Mean over 2 x 2 blocks of axes 1 and 2 (an odd side repeats its last row and column)."""
    side = values.shape[1]
    half = -(-side // 2)
    if 2 * half != side:
        values = np.pad(values, ((0, 0), (0, 1), (0, 1)) + ((0, 0),) * (values.ndim - 3), mode="edge")
    return values.reshape(len(values), half, 2, half, 2, *values.shape[3:]).mean(axis=(2, 4))


def _relax(x: np.ndarray, values: np.ndarray, known: np.ndarray, sweeps: int) -> np.ndarray:
    """``sweeps`` Jacobi sweeps: each unknown pixel of ``(n, S, S, C)`` ``x`` becomes its neighbours' mean."""
    side = x.shape[1]
    ones = np.zeros((1, side + 2, side + 2, 1), np.float32)
    ones[:, 1:-1, 1:-1] = 1
    norm = _neighbour_sum(ones)  # fewer neighbours at the border
    grid = np.zeros((len(x), side + 2, side + 2, x.shape[3]), np.float32)  # zero border, filled each sweep
    for _ in range(sweeps):
        grid[:, 1:-1, 1:-1] = x
        x = np.where(known[..., None], values, _neighbour_sum(grid) / norm)
    return x


def _neighbour_sum(grid: np.ndarray) -> np.ndarray:
    """Per pixel inside the zero border of ``(n, S + 2, S + 2, C)`` ``grid``, its 8 neighbours' weighted sum."""
    axial, diagonal = NEIGHBOUR_WEIGHTS
    total = axial * (grid[:, :-2, 1:-1] + grid[:, 2:, 1:-1] + grid[:, 1:-1, :-2] + grid[:, 1:-1, 2:])
    return total + diagonal * (grid[:, :-2, :-2] + grid[:, :-2, 2:] + grid[:, 2:, :-2] + grid[:, 2:, 2:])


def removal_masks(cam: np.ndarray, percentiles: Sequence[int], *, rng: np.random.Generator) -> np.ndarray:
    """``(2P, S, S)`` bool: for each ``p``, the ``p`` % of pixels the map ranks highest (MoRF), then lowest (LeRF).

    Ties (Grad-CAM's zeros) are broken in a random order drawn from ``rng``, so equal pixels go together in
    no fixed direction.
    """
    flat = np.asarray(cam, dtype=np.float64).ravel()
    order = np.lexsort((rng.random(flat.size), -flat))  # most relevant first
    rank = np.empty(flat.size, dtype=np.int64)
    rank[order] = np.arange(flat.size)
    masks = []
    for p in percentiles:
        k = int(round(flat.size * p / 100))
        masks += [rank < k, rank >= flat.size - k]
    return np.stack(masks).reshape(-1, *cam.shape)


def perturbed(pixels: np.ndarray, maps: np.ndarray, percentiles: Sequence[int], *, seed: int) -> np.ndarray:
    """``(n * 2P, S, S, 3)`` uint8: each image with each of :func:`removal_masks` of its map imputed."""
    rng = np.random.default_rng(seed)
    out = []
    for image, cam in zip(pixels, maps, strict=True):
        masks = removal_masks(cam, percentiles, rng=rng)
        out.append(impute(np.broadcast_to(image, (len(masks), *image.shape)), masks))
    if not out:
        return np.zeros((0, *pixels.shape[1:]), np.uint8)
    return np.clip(np.rint(np.concatenate(out)), 0, 255).astype(np.uint8)


def road_scores(target_probs: np.ndarray, percentiles: Sequence[int]) -> np.ndarray:
    """Per image, ROAD combined from ``(n * 2P,)`` target-class probabilities in :func:`perturbed`'s order."""
    probs = np.asarray(target_probs, dtype=np.float64).reshape(-1, len(percentiles), 2)  # (n, P, [MoRF, LeRF])
    return ((probs[..., 1] - probs[..., 0]) / 2).mean(axis=1)


def spearman_maps(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per pair of ``(n, S, S)`` maps, the Spearman rank correlation (pooled to :data:`SANITY_GRID`; 0 if flat)."""
    out = []
    for a, b in zip(_pooled(before), _pooled(after), strict=True):
        ra, rb = rankdata(a.ravel()), rankdata(b.ravel())
        ra, rb = ra - ra.mean(), rb - rb.mean()
        norm = np.linalg.norm(ra) * np.linalg.norm(rb)
        out.append(float(ra @ rb / norm) if norm > 0 else 0.0)
    return np.asarray(out)


def _pooled(maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float64)
    side = maps.shape[1]
    if side <= SANITY_GRID:
        return maps
    edges = np.linspace(0, side, SANITY_GRID + 1).astype(int)[:-1]
    return np.add.reduceat(np.add.reduceat(maps, edges, axis=1), edges, axis=2)


def judge(
    maps: np.ndarray,
    random: np.ndarray,
    blob: np.ndarray,
    classes: Sequence[int],
    *,
    class_names: Sequence[str],
    method: str,
    layer: str,
    sanity: np.ndarray | None = None,
    randomised: tuple[str, ...] = (),
) -> ExplanationCheck:
    """The verdict from per-image ROAD scores of the maps, the random maps and the blob (same images, in order).

    ``classes`` holds each image's explained class; ``sanity`` the per-image Spearman correlations of the
    maps before and after randomisation (None: not run, which passes).
    """
    maps, random, blob = (np.asarray(v, dtype=np.float64) for v in (maps, random, blob))
    classes = np.asarray(classes)
    sanity_mean = round(float(np.mean(sanity)), 6) if sanity is not None and len(sanity) else None
    passed = sanity_mean is None or sanity_mean <= SANITY_MAX
    vs_random, vs_blob = score(maps - random), score(maps - blob)
    per_class = tuple(
        ClassExplanation(
            class_names[c], score(maps[classes == c]), score(random[classes == c]), score(blob[classes == c])
        )
        for c in sorted(set(classes.tolist()))
    )
    if not len(maps):
        verdict = UNCHECKED
    elif not passed or not _clearly_above(vs_random):
        verdict = NOT_INFORMATIVE
    elif _clearly_above(vs_blob):
        verdict = FAITHFUL
    else:
        verdict = WEAK
    return ExplanationCheck(
        verdict, method, layer, score(maps), score(random), score(blob), vs_random, vs_blob, per_class,
        sanity_mean, passed, randomised=randomised,
    )  # fmt: skip


def _clearly_above(diff: Score) -> bool:
    return diff.n > 1 and diff.mean > MIN_MARGIN and diff.mean > Z * diff.se
