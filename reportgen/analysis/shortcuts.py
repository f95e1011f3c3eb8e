"""Shortcut check: whether a class's Grad-CAM evidence sits in a fixed, off-centre or border region.

For each class, the Grad-CAM maps of its correctly classified test images are summarised: where their
mass sits (border band, 3x3 region, centroid), how concentrated it is, and how much the individual maps
agree. A class the network recognises by a fixed-position cue (a watermark, a tray edge, the MathWorks
example's plate) has maps that agree with each other and peak at the same off-centre spot; a class
recognised by the object itself has maps that follow the object around the frame.

Every map is first divided by its own total, so each image weighs the same whatever Grad-CAM's
per-image min-max scaling did. Maps with no mass (Grad-CAM all zero) are left out and counted.

Where the evidence sits is only a reason to look: the collar of a t-shirt is where a t-shirt is told
apart, off-centre or not. A class is flagged only when the model is measured to rely on the region
(:class:`Reliance`): its class score falls when the region where the class's mean map is highest
(:data:`RELIANCE_AREA` of the image) is imputed away, by :data:`MIN_RELIANCE` more than when an equal area
of the object elsewhere (each image's own most relevant pixels outside the region) is. A class whose
position crosses a limit without that is "worth a look".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

RELIANCE_AREA = 1 / 9  # share of the image removed to measure reliance (one of the 3x3 regions' size)
MIN_RELIANCE = 0.10  # the class score's extra fall (softmax) when the region goes, beyond an equal area elsewhere
RELIANCE_IMAGES = 16  # correctly classified test images per class the reliance is measured on

REGIONS = (
    ("top-left", "top", "top-right"),
    ("left", "centre", "right"),
    ("bottom-left", "bottom", "bottom-right"),
)


@dataclass(frozen=True)
class ShortcutThresholds:
    """When a class's evidence is flagged.

    Chosen from ``benchmarks/verify_finders.py`` runs on ``food101-pss`` (EfficientNet-Lite0 fine-tuned,
    Grad-CAM of correctly classified test images). How much a model relies on the magenta top-left
    patch is measured, not assumed: the share of other classes' test images the patch alone turns into
    the patched class ("flip"). 44 class-runs had no patch or one the model ignored (flip <= 7 %):

    ==============  ================  ======================  ======================
    figure          no reliance (44)  partial, flip 13-16 %   full, flip 67-87 % (4)
    ==============  ================  ======================  ======================
    consistency     0.09 - 0.54       0.36, 0.63, 0.41        0.90 - 0.97
    peak spread     0.10 - 0.40       0.25, 0.25, 0.28        0.07 - 0.11
    centre offset   0.00 - 0.08       0.06, 0.19, 0.14        0.33 - 0.42
    border share    0.12 - 0.30       0.15, 0.27, 0.21        0.40 - 0.48
    ==============  ================  ======================  ======================

    So ``fixed_position`` catches full reliance with a wide margin, ``off_centre`` (0.12) also the
    partial runs whose evidence drifted to the patch, and no run without reliance is flagged. The one
    no-reliance class with a peak spread of 0.10 had 4 maps and a centred mean map. Food photos are
    centred; on sets whose objects are not, ``off_centre`` may need a larger limit. ``border`` is for
    frame artefacts and was not triggered by a corner patch (border shares <= 0.48).
    """

    min_maps: int = 5  # fewer usable maps than this: figures are reported, nothing is flagged
    top_fraction: float = 0.10  # concentration = map mass in this top fraction of pixels (0.10 for a flat map)
    border_width: float = 0.10  # border band width, fraction of the side (the band covers 36 % of the area)
    min_consistency: float = 0.60  # fixed_position: mean pairwise map correlation at least this ...
    max_peak_spread: float = 0.15  # ... and peaks within this RMS distance (fraction of side) of their mean ...
    # ... and the densest 3x3 region of the mean map is not the centre.
    max_border_share: float = 0.50  # border: mean-map mass in the band above this (a flat map has 0.36)
    max_centre_offset: float = 0.12  # off_centre: centroid farther than this (fraction of side) from the centre


@dataclass(frozen=True)
class ShortcutFlag:
    """One reason to suspect a shortcut: the figure, the limit it crossed, and what a reader needs to check it.

    Figures are as measured, not rounded like :class:`ClassEvidence`'s. The sentence is
    ``reportgen.narrative.audit.shortcut_reason``.
    """

    code: str  # "fixed_position" | "border" | "off_centre"
    value: float  # consistency, border share or centre offset
    threshold: float  # its limit: min_consistency, max_border_share or max_centre_offset
    n_maps: int  # usable maps the figures come from
    where: str = ""  # fixed_position: the densest 3x3 region; off_centre: the direction of the centre of mass
    peak_spread: float = 0.0  # fixed_position: the peaks' spread (at most max_peak_spread)
    band_area: float = 0.0  # border: share of the image the border band covers


@dataclass(frozen=True)
class Reliance:
    """How much the model relies on a class's evidence region: the class score's fall when it is removed."""

    drop: float  # mean fall of the class's softmax score when the region is imputed away
    control_drop: float  # ... when an equal area of the object elsewhere is
    n_images: int
    area: float  # share of the image removed (RELIANCE_AREA)

    @property
    def relied_on(self) -> bool:
        """The region matters more than the rest of the object by at least :data:`MIN_RELIANCE`."""
        return self.n_images > 0 and self.drop - self.control_drop >= MIN_RELIANCE


@dataclass(frozen=True)
class ClassEvidence:
    """Where one class's Grad-CAM evidence sits, and whether that looks like a shortcut."""

    class_idx: int
    n_maps: int  # maps given
    n_empty: int  # maps with no mass, left out of every figure below
    concentration: float  # mean per-image share of mass in the top ``top_fraction`` of pixels
    mean_map_concentration: float  # the same for the class's mean map
    border_share: float  # share of mean-map mass in the border band
    border_area: float  # share of the image the band covers (what a flat map would give)
    centroid: tuple[float, float]  # (x, y) of the mean map's mass, fractions of width and height from top-left
    centre_offset: float  # distance of the centroid from the image centre, fraction of the side
    region: str  # 3x3 region with the densest mean-map mass, e.g. "top-left", "centre"
    region_share: float  # its share of the mass (1/9 for a flat map)
    consistency: float  # mean pairwise Pearson correlation of the individual maps (0 when fewer than 2)
    peak_spread: float  # RMS distance of individual peaks from their mean position, fraction of the side
    mean_map: tuple[tuple[float, ...], ...]  # (grid, grid) pooled mean map, sums to 1
    flags: tuple[ShortcutFlag, ...]  # where the evidence sits crossed a limit
    reliance: Reliance | None = None  # measured for a class with flags; None: not measured


@dataclass(frozen=True)
class Shortcuts:
    """Shortcut check over all classes."""

    classes: tuple[ClassEvidence, ...]
    flagged: tuple[int, ...]  # class indices with a flag and a measured reliance on the region
    thresholds: ShortcutThresholds = field(default_factory=ShortcutThresholds)
    worth_a_look: tuple[int, ...] = ()  # class indices with a flag but no measured reliance


def find_shortcuts(
    maps_by_class: Sequence[np.ndarray],
    *,
    thresholds: ShortcutThresholds | None = None,
    grid: int = 16,
    reliance: Mapping[int, Reliance] | None = None,
) -> Shortcuts:
    """Summarise each class's Grad-CAM maps; flag those whose evidence sits apart and that the model relies on.

    Args:
        maps_by_class: for each class index, ``(n, S, S)`` maps in [0, 1] of its correctly classified
            test images, explaining that class (``n`` may be 0).
        thresholds: flag limits; :class:`ShortcutThresholds` defaults when None.
        grid: side of the pooled grid used for the consistency, the peaks and the stored mean map.
        reliance: class index -> the measured reliance on its region (:func:`reliance_masks`); a class
            with position flags and no reliance here is only worth a look.
    """
    limits = thresholds or ShortcutThresholds()
    measured = reliance or {}
    classes = tuple(
        dataclasses.replace(ev, reliance=measured.get(ev.class_idx)) if ev.flags else ev
        for ev in (class_evidence(maps, idx, thresholds=limits, grid=grid) for idx, maps in enumerate(maps_by_class))
    )
    flagged = tuple(c.class_idx for c in classes if c.flags and c.reliance is not None and c.reliance.relied_on)
    look = tuple(c.class_idx for c in classes if c.flags and c.class_idx not in flagged)
    return Shortcuts(classes, flagged, limits, look)


def reliance_masks(maps: np.ndarray, *, area: float = RELIANCE_AREA) -> tuple[np.ndarray, np.ndarray]:
    """The region to remove and, per image, the equal area of the object elsewhere, from ``(n, S, S)`` maps.

    The region is the ``area`` share of pixels where the class's mean map (:func:`class_mean_map`) is
    highest; each image's control is its own most relevant pixels outside the region, as many.
    Returns ``(S, S)`` and ``(n, S, S)`` bool masks.
    """
    maps = np.asarray(maps, dtype=np.float64)
    mean = class_mean_map(maps).astype(np.float64)
    k = max(1, int(round(area * mean.size)))
    region = _top_pixels(mean, k)
    controls = np.stack([_top_pixels(np.where(region, -np.inf, m), k) for m in maps]) if len(maps) else maps > 0
    return region, controls


def _top_pixels(values: np.ndarray, k: int) -> np.ndarray:
    """Bool mask of the ``k`` highest values (ties by position, stably)."""
    order = np.argsort(-values.ravel(), kind="stable")[:k]
    mask = np.zeros(values.size, dtype=bool)
    mask[order] = True
    return mask.reshape(values.shape)


def class_evidence(
    maps: np.ndarray, class_idx: int, *, thresholds: ShortcutThresholds | None = None, grid: int = 16
) -> ClassEvidence:
    """Figures and flags of one class's ``(n, S, S)`` Grad-CAM maps."""
    limits = thresholds or ShortcutThresholds()
    maps = _validate(maps, grid)
    usable = maps[maps.sum(axis=(1, 2)) > 0]
    size = maps.shape[1] if maps.ndim == 3 else grid
    if not len(usable):
        return _empty_evidence(class_idx, len(maps), size, limits, grid)
    mass = usable / usable.sum(axis=(1, 2), keepdims=True)  # (n, S, S), each sums to 1
    mean = mass.mean(axis=0)  # (S, S), sums to 1
    pooled = _pool(mass, grid)  # (n, grid, grid)
    cx, cy = _centroid(mean)
    region, region_share = _heaviest_region(mean)
    band, band_area = _border_share(mean, limits.border_width)
    figures = {
        "concentration": float(np.mean([_top_share(m, limits.top_fraction) for m in mass])),
        "consistency": _consistency(pooled),
        "peak_spread": _peak_spread(pooled),
        "centre_offset": float(np.hypot(cx - 0.5, cy - 0.5)),
        "direction": _direction(cx - 0.5, cy - 0.5),
        "border_share": band,
        "region": region,
    }
    flags = _flags(figures, len(usable), band_area, limits)
    mean_pooled = _pool(mean[None], grid)[0]
    return ClassEvidence(
        class_idx=class_idx,
        n_maps=len(maps),
        n_empty=len(maps) - len(usable),
        concentration=_r(figures["concentration"]),
        mean_map_concentration=_r(_top_share(mean, limits.top_fraction)),
        border_share=_r(band),
        border_area=_r(band_area),
        centroid=(_r(cx), _r(cy)),
        centre_offset=_r(figures["centre_offset"]),
        region=region,
        region_share=_r(region_share),
        consistency=_r(figures["consistency"]),
        peak_spread=_r(figures["peak_spread"]),
        mean_map=tuple(tuple(_r(v) for v in row) for row in mean_pooled),
        flags=flags,
    )


def class_mean_map(maps: np.ndarray) -> np.ndarray:
    """``(S, S)`` mean of the mass-normalised maps, scaled to a maximum of 1 (for a heat-map figure)."""
    maps = np.asarray(maps, dtype=np.float64)
    usable = maps[maps.sum(axis=(1, 2)) > 0] if maps.size else maps
    if not len(usable):
        return np.zeros(maps.shape[1:], dtype=np.float32)
    mean = (usable / usable.sum(axis=(1, 2), keepdims=True)).mean(axis=0)
    return (mean / mean.max()).astype(np.float32)


def _validate(maps: np.ndarray, grid: int) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float64)
    if maps.size == 0:
        return maps.reshape(0, grid, grid) if maps.ndim != 3 else maps
    if maps.ndim != 3 or maps.shape[1] != maps.shape[2]:
        raise ValueError(f"`maps` must be (n, S, S); got {maps.shape}")
    if maps.shape[1] < grid:
        raise ValueError(f"maps of side {maps.shape[1]} are smaller than the pooling `grid` {grid}")
    if maps.min() < 0 or not np.isfinite(maps).all():
        raise ValueError("`maps` must be finite and non-negative")
    return maps


def _r(value: float) -> float:
    return round(float(value), 6)


def _pool(maps: np.ndarray, grid: int) -> np.ndarray:
    """Sum ``(n, S, S)`` maps into ``(n, grid, grid)`` cells of (nearly) equal size."""
    edges = np.linspace(0, maps.shape[1], grid + 1).astype(int)[:-1]
    return np.add.reduceat(np.add.reduceat(maps, edges, axis=1), edges, axis=2)


def _centroid(mean: np.ndarray) -> tuple[float, float]:
    size = mean.shape[0]
    coords = (np.arange(size) + 0.5) / size
    return float(mean.sum(axis=0) @ coords), float(mean.sum(axis=1) @ coords)


def _heaviest_region(mean: np.ndarray) -> tuple[str, float]:
    thirds = _pool(mean[None], 3)[0]  # (3, 3) mass per region
    density = thirds / _pool(np.ones((1, *mean.shape)), 3)[0]  # regions differ by a pixel when 3 does not divide S
    if density[1, 1] >= density.max() * (1 - 1e-9):  # a tie (e.g. a flat map) goes to the centre
        return "centre", float(thirds[1, 1])
    row, col = np.unravel_index(int(density.argmax()), density.shape)
    return REGIONS[row][col], float(thirds[row, col])


def _direction(dx: float, dy: float) -> str:
    """Compass name ("top-left", "right", ...) of an offset from the centre; y grows downwards."""
    length = np.hypot(dx, dy)
    if length == 0:
        return "centre"
    vertical = "top" if dy < -0.38 * length else "bottom" if dy > 0.38 * length else ""  # sin 22.5 deg
    horizontal = "left" if dx < -0.38 * length else "right" if dx > 0.38 * length else ""
    return "-".join(part for part in (vertical, horizontal) if part)


def _border_share(mean: np.ndarray, width: float) -> tuple[float, float]:
    size = mean.shape[0]
    band = max(1, round(size * width))
    inner = np.zeros_like(mean, dtype=bool)
    inner[band : size - band, band : size - band] = True
    return float(mean[~inner].sum()), float((~inner).mean())


def _top_share(mass: np.ndarray, fraction: float) -> float:
    flat = mass.ravel()
    k = max(1, int(round(fraction * flat.size)))
    total = flat.sum()
    return float(np.partition(flat, flat.size - k)[flat.size - k :].sum() / total) if total > 0 else 0.0


def _consistency(pooled: np.ndarray) -> float:
    """Mean pairwise Pearson correlation of the ``(n, g, g)`` maps; 0 for fewer than two varying maps."""
    flat = pooled.reshape(len(pooled), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1)
    flat = flat[norms > 0] / norms[norms > 0, None]
    n = len(flat)
    if n < 2:
        return 0.0
    total = flat.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))  # sum of off-diagonal correlations / pairs


def _peak_spread(pooled: np.ndarray) -> float:
    n, grid, _ = pooled.shape
    rows, cols = np.unravel_index(pooled.reshape(n, -1).argmax(axis=1), (grid, grid))
    peaks = (np.stack([cols, rows], axis=1) + 0.5) / grid  # (n, 2) x, y fractions of the side
    return float(np.sqrt(((peaks - peaks.mean(axis=0)) ** 2).sum(axis=1).mean()))


def _flags(figures: dict, n_usable: int, band_area: float, limits: ShortcutThresholds) -> tuple[ShortcutFlag, ...]:
    if n_usable < limits.min_maps:
        return ()
    flags = []
    consistent = figures["consistency"] >= limits.min_consistency
    fixed = figures["peak_spread"] <= limits.max_peak_spread
    if consistent and fixed and figures["region"] != "centre":
        consistency, spread = figures["consistency"], figures["peak_spread"]
        flags.append(
            ShortcutFlag("fixed_position", consistency, limits.min_consistency, n_usable, figures["region"], spread)
        )
    if figures["border_share"] > limits.max_border_share:
        flags.append(
            ShortcutFlag("border", figures["border_share"], limits.max_border_share, n_usable, band_area=band_area)
        )
    if figures["centre_offset"] > limits.max_centre_offset:
        offset, direction = figures["centre_offset"], figures["direction"]
        flags.append(ShortcutFlag("off_centre", offset, limits.max_centre_offset, n_usable, direction))
    return tuple(flags)


def _empty_evidence(class_idx: int, n_maps: int, size: int, limits: ShortcutThresholds, grid: int) -> ClassEvidence:
    band_area = _border_share(np.zeros((size, size)), limits.border_width)[1]
    return ClassEvidence(
        class_idx=class_idx,
        n_maps=n_maps,
        n_empty=n_maps,
        concentration=0.0,
        mean_map_concentration=0.0,
        border_share=0.0,
        border_area=_r(band_area),
        centroid=(0.5, 0.5),
        centre_offset=0.0,
        region="centre",
        region_share=0.0,
        consistency=0.0,
        peak_spread=0.0,
        mean_map=tuple(tuple(0.0 for _ in range(grid)) for _ in range(grid)),
        flags=(),
    )
