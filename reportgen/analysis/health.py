"""Image health: very small, extreme aspect ratio, near-constant, very dark or bright, grayscale images.

Checks read only :class:`reportgen.data.dataset.ImageInfo` (size and mode of the file; brightness, contrast and
colourfulness of the decoded image in [0, 1]). Default thresholds sit outside everything measured on
1,725 ordinary photos (``food101-pss``, ``food9-64px``, ``clothing-mini``), so on such photos nothing is
flagged; the measured extremes are given beside each default in :class:`HealthThresholds`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reportgen.data.dataset import ImageInfo

GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
CHECKS = ("small", "aspect", "low_contrast", "dark", "bright", "grayscale")


@dataclass(frozen=True)
class HealthThresholds:
    """Limits of a healthy image; the measured extremes of 1,725 real photos in the comments."""

    min_side: int = 64  # shorter side, px, below which an image is "very small" (real photos: >= 64)
    max_aspect: float = 2.5  # longer / shorter side above which squashing to a square distorts (real: <= 2.02)
    min_contrast: float = 0.04  # luminance std below which an image is near-constant (real: >= 0.062)
    min_brightness: float = 0.08  # mean luminance below which an image is very dark (real: >= 0.083)
    max_brightness: float = 0.92  # mean luminance above which an image is very bright (real: <= 0.884)
    max_grayscale_colourfulness: float = 0.005  # mean channel difference at or below which it is gray (real: >= 0.012)
    colour_majority: float = 0.5  # the set is a colour set when more than this fraction of images is colour


@dataclass(frozen=True)
class HealthIssue:
    """One image with one or more health problems."""

    image_idx: int  # index into the data set arrays
    label: int
    checks: tuple[str, ...]  # names from CHECKS
    reasons: tuple[str, ...]  # one checkable sentence per check, e.g. "mean luminance 0.03 < 0.08 (very dark)"


@dataclass(frozen=True)
class Health:
    """Image-health problems of a data set, listed and counted."""

    issues: tuple[HealthIssue, ...]  # in data set order
    n_images: int
    counts: dict[str, int]  # check name -> images failing it
    counts_per_class: tuple[dict[str, int], ...]  # (C,) check name -> images of that class failing it
    colour_dataset: bool  # whether the grayscale check applied
    thresholds: HealthThresholds


def check_health(
    infos: Sequence[ImageInfo],
    labels: np.ndarray,
    num_classes: int,
    thresholds: HealthThresholds | None = None,
) -> Health:
    """List the images that fail a health check, with reasons, and count them per check and class.

    Args:
        infos: ``N`` image facts, in data set order (``LoadedImages.infos``).
        labels: ``(N,)`` int class indices.
        num_classes: number of classes ``C``.
        thresholds: limits; :class:`HealthThresholds` defaults when None.
    """
    limits = thresholds or HealthThresholds()
    labels = np.asarray(labels).astype(np.int64)
    if len(infos) != len(labels):
        raise ValueError(f"`infos` has {len(infos)} entries but `labels` {len(labels)}")
    gray = [_is_gray(info, limits) for info in infos]
    colour_dataset = bool(len(infos)) and bool(1 - np.mean(gray) > limits.colour_majority)
    issues = []
    for i, info in enumerate(infos):
        found = _image_checks(info, limits, colour_dataset and gray[i])
        if found:
            issues.append(HealthIssue(i, int(labels[i]), tuple(c for c, _ in found), tuple(r for _, r in found)))
    return Health(
        issues=tuple(issues),
        n_images=len(infos),
        counts={check: sum(check in issue.checks for issue in issues) for check in CHECKS},
        counts_per_class=_per_class(issues, num_classes),
        colour_dataset=colour_dataset,
        thresholds=limits,
    )


def _is_gray(info: ImageInfo, limits: HealthThresholds) -> bool:
    return info.mode in GRAYSCALE_MODES or info.colourfulness <= limits.max_grayscale_colourfulness


def _image_checks(info: ImageInfo, limits: HealthThresholds, gray_in_colour_set: bool) -> list[tuple[str, str]]:
    short, long = sorted((info.width, info.height))
    found = []
    if short < limits.min_side:
        found.append(("small", f"{info.width}x{info.height} px: shorter side {short} < {limits.min_side} px"))
    if short > 0 and long / short > limits.max_aspect:
        found.append(("aspect", f"aspect ratio {long / short:.2f} > {limits.max_aspect:g} (squashed to a square)"))
    if info.contrast < limits.min_contrast:
        found.append(("low_contrast", f"luminance std {info.contrast:.3f} < {limits.min_contrast:g} (near-constant)"))
    if info.brightness < limits.min_brightness:
        found.append(("dark", f"mean luminance {info.brightness:.3f} < {limits.min_brightness:g} (very dark)"))
    if info.brightness > limits.max_brightness:
        found.append(("bright", f"mean luminance {info.brightness:.3f} > {limits.max_brightness:g} (very bright)"))
    if gray_in_colour_set:
        found.append(("grayscale", f"grayscale ({info.mode}, colourfulness {info.colourfulness:.3f}) in a colour set"))
    return found


def _per_class(issues: list[HealthIssue], num_classes: int) -> tuple[dict[str, int], ...]:
    counts = [dict.fromkeys(CHECKS, 0) for _ in range(num_classes)]
    for issue in issues:
        for check in issue.checks:
            counts[issue.label][check] += 1
    return tuple(counts)
