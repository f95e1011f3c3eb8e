"""Fixed pixel patterns one class shares: stamps, watermarks, logos and frames a model could key on.

The Grad-CAM shortcut check (``shortcuts.py``) sees a shortcut only once the model has learned it.
This check looks at the data itself: for each cell of a fine grid, the share of a class's images whose
colour there is the class's typical (median) colour, against the share of the other classes' images
with that same colour there. Photos differ everywhere; a patch stamped at one spot on most images of a
class makes that share high for the class and low for the rest. Such a region is a shortcut waiting to
be learned (and a sign the class was collected differently), whether or not this run's model uses it.
Matching shares instead of spreads keep the check working when the patch moves a little with the
photos' aspect ratios (a patch sized by the shorter side lands on different cells of a squashed image).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reportgen.analysis.shortcuts import REGIONS


@dataclass(frozen=True)
class StampThresholds:
    """When a class's images are said to share a fixed pattern."""

    grid: int = 56  # cells per side (4 px cells at 224 px input)
    tolerance: float = 0.08  # a cell matches the class's typical colour when every channel is this close (of 1)
    min_share: float = 0.5  # a cell is fixed when at least this share of the class's images match there ...
    min_excess: float = 0.4  # ... and that share exceeds the other classes' share by at least this much
    min_cells: int = 6  # fixed cells needed to flag a class (6 of 3,136 cells: 0.2 % of the image)
    min_images: int = 8  # classes with fewer images are measured but not flagged


@dataclass(frozen=True)
class ClassStamp:
    """How much of one class's image area is the same on every image.

    The sentence for a flagged class is ``reportgen.narrative.audit.stamp_reason``.
    """

    class_idx: int
    n_images: int
    measured: bool  # False when the class or the other classes have fewer than 2 images: nothing below is measured
    fixed_cells: int  # cells that barely vary within the class although they vary elsewhere
    area: float  # share of the image those cells cover
    region: str  # 3x3 region of their centre of mass, e.g. "top-left"; "" when there are none
    max_share: float  # largest share of the class's images matching its typical colour in any one cell
    match_share: float  # mean over the fixed cells of that share (0 when there are none), not rounded
    other_share: float  # the same share for the other classes' images, not rounded
    flagged: bool


@dataclass(frozen=True)
class Stamps:
    """The fixed-pattern check over all classes."""

    classes: tuple[ClassStamp, ...]
    flagged: tuple[int, ...]
    thresholds: StampThresholds


def find_stamps(
    pixels: np.ndarray, labels: np.ndarray, num_classes: int, *, thresholds: StampThresholds | None = None
) -> Stamps:
    """Flag classes whose images share a fixed pixel pattern at one place.

    Args:
        pixels: ``(N, S, S, 3)`` uint8 images (S divisible by ``thresholds.grid`` is not required).
        labels: ``(N,)`` int class indices.
        num_classes: number of classes ``C``.
        thresholds: limits; :class:`StampThresholds` defaults when None.
    """
    limits = thresholds or StampThresholds()
    cells = _pool(pixels, limits.grid)  # (N, g, g, 3) in [0, 1]
    labels = np.asarray(labels)
    classes = tuple(_class_stamp(cells, labels, c, limits) for c in range(num_classes))
    return Stamps(classes, tuple(c.class_idx for c in classes if c.flagged), limits)


def _pool(pixels: np.ndarray, grid: int, chunk: int = 128) -> np.ndarray:
    """Mean of each grid cell, per channel, computed in chunks to keep memory small."""
    n, size = len(pixels), pixels.shape[1]
    edges = np.linspace(0, size, grid + 1).astype(int)
    out = np.empty((n, grid, grid, 3), dtype=np.float32)
    for start in range(0, n, chunk):
        block = pixels[start : start + chunk].astype(np.float32) / 255.0
        rows = np.add.reduceat(block, edges[:-1], axis=1)
        sums = np.add.reduceat(rows, edges[:-1], axis=2)
        areas = np.outer(np.diff(edges), np.diff(edges))[None, :, :, None]
        out[start : start + chunk] = sums / areas
    return out


def _class_stamp(cells: np.ndarray, labels: np.ndarray, class_idx: int, limits: StampThresholds) -> ClassStamp:
    mine, others = cells[labels == class_idx], cells[labels != class_idx]
    n = len(mine)
    if n < 2 or len(others) < 2:
        return ClassStamp(class_idx, n, False, 0, 0.0, "", 0.0, 0.0, 0.0, False)
    typical = np.median(mine, axis=0)  # (g, g, 3): the class's typical colour of every cell
    share = _matching_share(mine, typical, limits.tolerance)
    other_share = _matching_share(others, typical, limits.tolerance)
    fixed = (share >= limits.min_share) & (share - other_share >= limits.min_excess)
    count = int(fixed.sum())
    return ClassStamp(
        class_idx,
        n,
        measured=True,
        fixed_cells=count,
        area=round(count / fixed.size, 4),
        region=_region(fixed) if count else "",
        max_share=round(float(share.max()), 4),
        match_share=float(share[fixed].mean()) if count else 0.0,
        other_share=float(other_share[fixed].mean()) if count else 0.0,
        flagged=count >= limits.min_cells and n >= limits.min_images,
    )


def _matching_share(cells: np.ndarray, typical: np.ndarray, tolerance: float, chunk: int = 256) -> np.ndarray:
    """Share of ``cells`` images whose every channel is within ``tolerance`` of ``typical``, per cell."""
    hits = np.zeros(typical.shape[:2], dtype=np.float64)
    for start in range(0, len(cells), chunk):
        close = np.abs(cells[start : start + chunk] - typical[None]).max(axis=-1) <= tolerance
        hits += close.sum(axis=0)
    return hits / len(cells)


def _region(mask: np.ndarray) -> str:
    ys, xs = np.nonzero(mask)
    g = mask.shape[0]
    row = min(2, int(ys.mean() * 3 // g))
    col = min(2, int(xs.mean() * 3 // g))
    return REGIONS[row][col]
