"""Explanation check: how faithful the report's heat maps are, against a random map and a centred blob (pure).

The score is ROAD (Rong et al., ICML 2022), made cheap enough for every run. For each removal fraction
``p`` of :data:`PERCENTILES`, the pixels a map ranks highest ("most relevant first", MoRF) and, apart,
those it ranks lowest ("least relevant first", LeRF) are replaced by the mean of the kept pixels around
them (:func:`impute`), and the model's softmax score of the explained class is read. A faithful map
loses the score when its top pixels go and keeps it when its bottom ones go, so the score is the mean
over ``p`` of ``(LeRF - MoRF) / 2`` (the library's ``ROADCombined``), in [-0.5, 0.5]; higher is more
faithful.

The library's noisy linear imputation solves a sparse system per image and removal step (3-6 s per image
on 2 cores); the local mean costs milliseconds. Like the library's, it fills from the kept pixels only, so
a removed region does not leak its own colours back (a plain blur of the image would).
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
from scipy.ndimage import uniform_filter
from scipy.stats import rankdata

PERCENTILES = (25, 50, 75)  # removal fractions, % of the pixels; the library's full ROAD uses 10 ... 90
FILL_BOXES = (1 / 8, 1 / 2)  # the imputation's box sides, fractions of the side: the first with kept pixels fills
BLOB_SIGMA = 1 / 4  # the centred blob's standard deviation, fraction of the side
Z = 2.0  # standard errors a difference must exceed to count
MIN_MARGIN = 0.01  # ... and at least this much ROAD (on a scale of -0.5 ... 0.5)
SANITY_MAX = 0.5  # mean Spearman correlation of the maps before/after randomisation above this: fails
SANITY_GRID = 28  # maps are pooled to this side before the rank correlation (the target layer is 7 x 7)
IMPUTATION = "mean of the kept pixels nearby"
# Spearman correlation of the fast score with the library's full ROAD (benchmarks/cam_faithfulness.py, README):
# (set, correlation, (image, map) pairs)
FULL_ROAD_AGREEMENT = (("food101-pss", 0.95, 4), ("clothing-mini", -0.09, 12))

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
    """``(S, S, 3)`` float ``image`` with its ``removed`` pixels replaced by the mean of the kept ones nearby.

    Nearby: in a box of :data:`FILL_BOXES`' first side that holds kept pixels; the image's kept mean where no
    box does.
    """
    keep = (~removed).astype(np.float32)
    if not keep.any():
        return np.zeros_like(image)
    side = image.shape[0]
    fill = np.broadcast_to(image[keep > 0].mean(axis=0), image.shape).copy()
    done = np.zeros(removed.shape, dtype=bool)
    for box in FILL_BOXES:
        size = max(3, int(round(box * side)) | 1)
        den = uniform_filter(keep, size=size, mode="nearest")
        num = uniform_filter(image * keep[..., None], size=(size, size, 1), mode="nearest")
        ok = (den > 1e-3) & ~done
        fill[ok] = num[ok] / den[ok, None]
        done |= ok
    return np.where(removed[..., None], fill, image)


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
        values = image.astype(np.float32)
        out += [impute(values, mask) for mask in removal_masks(cam, percentiles, rng=rng)]
    if not out:
        return np.zeros((0, *pixels.shape[1:]), np.uint8)
    return np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8)


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
