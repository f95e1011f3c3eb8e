"""Calibration: can the classifier's scores be read as probabilities? ECE, reliability bins, a verdict.

The confidence of an image is its highest softmax score; it is "right" when that class is the label.
Expected calibration error (ECE) is the image-weighted mean, over equal-width confidence bins, of
``|accuracy - mean confidence|`` (Guo et al., 2017). A finite test set gives a perfectly calibrated
model a non-zero ECE too (about 0.1 for 120 images in 15 bins), so :func:`compute_calibration` also
measures that sampling floor: the 95th percentile of the ECE when each image is right with probability
equal to its own confidence. The same draws give a floor for the signed gap between mean confidence and
accuracy, which is far less noisy than the ECE on a small test split and says over- or under-confident.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_BINS = 15  # Guo et al.'s choice; with a few hundred test images most bins above 0.5 stay populated
DEFAULT_TOLERANCE = 0.05  # an ECE at most this is read as calibrated whatever the sample size
SMALL_SAMPLE = 100  # fewer images than this: the estimate is called rough


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of the reliability diagram."""

    lower: float  # bin edges; the first bin includes 0, every bin includes its upper edge
    upper: float
    count: int
    mean_confidence: float | None  # None for an empty bin
    accuracy: float | None


@dataclass(frozen=True)
class Calibration:
    """Calibration figures of a set of predictions."""

    n_images: int
    n_bins: int
    ece: float  # expected calibration error, in [0, 1]
    mce: float  # largest |accuracy - confidence| over non-empty bins
    ece_noise_floor: float  # 95th percentile of the ECE a perfectly calibrated model shows on these images
    mean_confidence: float
    accuracy: float
    confidence_gap: float  # mean_confidence - accuracy: > 0 over-confident, < 0 under-confident
    gap_noise_floor: float  # 95th percentile of |confidence_gap| for a perfectly calibrated model
    brier: float  # multi-class Brier score: mean over images of sum_c (p_c - onehot_c)^2, in [0, 2]
    bins: tuple[ReliabilityBin, ...]


@dataclass(frozen=True)
class CalibrationVerdict:
    """Whether a :class:`Calibration`'s scores read as probabilities, with the limits the figures were held to.

    The sentence that says it is ``reportgen.narrative.audit.calibration_text``.
    """

    readable_as_probabilities: bool
    direction: str  # "calibrated" | "over-confident" | "under-confident" | "mixed" ("calibrated" with no images)
    ece_limit: float  # the ECE passes at most this: max(tolerance, ECE noise floor)
    gap_limit: float  # |mean confidence - accuracy| passes at most this: max(tolerance, gap noise floor)
    small_sample: bool  # fewer than SMALL_SAMPLE images: the estimate is rough
    example: ReliabilityBin | None  # when not readable: the most populated bin, an example of the error


def compute_calibration(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    n_bins: int = DEFAULT_BINS,
    noise_draws: int = 500,
    seed: int,
) -> Calibration:
    """ECE, reliability-diagram bins and Brier score of ``probs`` against ``labels``.

    Args:
        probs: ``(N, C)`` softmax scores (e.g. of the test split).
        labels: ``(N,)`` int true class indices.
        n_bins: number of equal-width confidence bins over [0, 1].
        noise_draws: simulated perfectly calibrated label draws for the ECE sampling floor.
        seed: seed of those draws.

    Returns:
        The calibration figures; all zero with empty bins when ``N`` is 0.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if probs.ndim != 2 or labels.shape != (len(probs),):
        raise ValueError(f"`probs` must be (N, C) and `labels` (N,); got {probs.shape} and {labels.shape}")
    if n_bins < 1:
        raise ValueError(f"`n_bins` must be at least 1, not {n_bins}")
    confidence = probs.max(axis=1) if len(probs) else np.zeros(0)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64) if len(probs) else np.zeros(0)
    bin_idx = _bin_index(confidence, n_bins)
    bins = _reliability_bins(confidence, correct, bin_idx, n_bins)
    gaps = [abs(b.accuracy - b.mean_confidence) for b in bins if b.count]
    ece_floor, gap_floor = _noise_floors(confidence, bin_idx, n_bins, noise_draws, seed)
    return Calibration(
        n_images=len(probs),
        n_bins=n_bins,
        ece=round(_ece(confidence, correct[None, :], bin_idx, n_bins)[0], 6) if len(probs) else 0.0,
        mce=round(max(gaps), 6) if gaps else 0.0,
        ece_noise_floor=round(ece_floor, 6),
        mean_confidence=round(float(confidence.mean()), 6) if len(probs) else 0.0,
        accuracy=round(float(correct.mean()), 6) if len(probs) else 0.0,
        confidence_gap=round(float(confidence.mean() - correct.mean()), 6) if len(probs) else 0.0,
        gap_noise_floor=round(gap_floor, 6),
        brier=round(_brier(probs, labels), 6),
        bins=bins,
    )


def _bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each confidence: bins are (lo, hi], the first one [0, hi]."""
    return np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def _reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, bin_idx: np.ndarray, n_bins: int
) -> tuple[ReliabilityBin, ...]:
    counts = np.bincount(bin_idx, minlength=n_bins)
    conf_sum = np.bincount(bin_idx, weights=confidence, minlength=n_bins)
    correct_sum = np.bincount(bin_idx, weights=correct, minlength=n_bins)
    return tuple(
        ReliabilityBin(
            lower=round(k / n_bins, 6),
            upper=round((k + 1) / n_bins, 6),
            count=int(counts[k]),
            mean_confidence=round(float(conf_sum[k] / counts[k]), 6) if counts[k] else None,
            accuracy=round(float(correct_sum[k] / counts[k]), 6) if counts[k] else None,
        )
        for k in range(n_bins)
    )


def _ece(confidence: np.ndarray, correct: np.ndarray, bin_idx: np.ndarray, n_bins: int) -> np.ndarray:
    """ECE of each row of ``correct`` (``(R, N)`` 0/1) against one ``(N,)`` confidence vector."""
    onehot = np.eye(n_bins)[bin_idx]  # (N, n_bins)
    gap = np.abs(correct @ onehot - confidence @ onehot)  # (R, n_bins) summed differences per bin
    return gap.sum(axis=1) / len(confidence)


def _noise_floors(
    confidence: np.ndarray, bin_idx: np.ndarray, n_bins: int, draws: int, seed: int
) -> tuple[float, float]:
    """95th percentiles of the ECE and of |mean confidence - accuracy| under perfect calibration."""
    if not len(confidence) or draws < 1:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    simulated = (rng.random((draws, len(confidence))) < confidence).astype(np.float64)  # right w.p. confidence
    ece = _ece(confidence, simulated, bin_idx, n_bins)
    gap = np.abs(confidence.mean() - simulated.mean(axis=1))
    return float(np.quantile(ece, 0.95)), float(np.quantile(gap, 0.95))


def _brier(probs: np.ndarray, labels: np.ndarray) -> float:
    if not len(probs):
        return 0.0
    onehot = np.eye(probs.shape[1])[labels]
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def calibration_verdict(cal: Calibration, *, tolerance: float = DEFAULT_TOLERANCE) -> CalibrationVerdict:
    """Say whether the scores can be read as probabilities and, if not, in which direction they err.

    A figure passes when it is at most ``max(tolerance, its noise floor)``: within what a reader would not
    act on, or within what sampling alone produces on this many images. Calibrated means both the ECE and
    the signed gap ``mean_confidence - accuracy`` pass. Otherwise a failing gap says over- or
    under-confident (with the most populated bin as an example); a passing gap with a failing ECE says
    the errors cancel out on average ("mixed").

    Args:
        cal: figures from :func:`compute_calibration`.
        tolerance: error a reader may ignore (default 0.05: scores off by 5 points).
    """
    ece_limit = max(tolerance, cal.ece_noise_floor)
    gap_limit = max(tolerance, cal.gap_noise_floor)
    small = cal.n_images < SMALL_SAMPLE
    if cal.n_images == 0:
        return CalibrationVerdict(False, "calibrated", ece_limit, gap_limit, small, None)
    if abs(cal.confidence_gap) > gap_limit:
        direction = "over-confident" if cal.confidence_gap > 0 else "under-confident"
        return CalibrationVerdict(False, direction, ece_limit, gap_limit, small, _busiest(cal))
    if cal.ece > ece_limit:
        return CalibrationVerdict(False, "mixed", ece_limit, gap_limit, small, _busiest(cal))
    return CalibrationVerdict(True, "calibrated", ece_limit, gap_limit, small, None)


def _busiest(cal: Calibration) -> ReliabilityBin:
    """The most populated bin (the higher one on a tie)."""
    return max((b for b in cal.bins if b.count), key=lambda b: (b.count, b.upper))
