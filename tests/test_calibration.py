from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from reportgen.analysis.calibration import calibration_verdict, compute_calibration
from reportgen.narrative.audit import calibration_text


def _scores(conf: np.ndarray, right: np.ndarray, n_classes: int = 3, seed: int = 0):
    """Probabilities whose top score is ``conf``; the top class is the label where ``right``."""
    rng = np.random.default_rng(seed)
    n = len(conf)
    labels = rng.integers(0, n_classes, n)
    predicted = np.where(right, labels, (labels + rng.integers(1, n_classes, n)) % n_classes)
    probs = np.zeros((n, n_classes))
    probs[np.arange(n), predicted] = conf
    probs[np.arange(n), (predicted + 1) % n_classes] = 1 - conf
    return probs, labels


def test_hand_computed_ece_and_bins():
    # Two images at 0.8 (one right), two at 0.6 (both right): ECE = (2*|0.5-0.8| + 2*|1.0-0.6|) / 4 = 0.35.
    probs, labels = _scores(np.array([0.8, 0.8, 0.6, 0.6]), np.array([True, False, True, True]))
    cal = compute_calibration(probs, labels, n_bins=5, seed=0)
    assert cal.ece == pytest.approx(0.35)
    assert cal.mce == pytest.approx(0.4)
    assert [b.count for b in cal.bins] == [0, 0, 2, 2, 0]
    assert cal.bins[0].mean_confidence is None and cal.bins[0].accuracy is None
    assert sum(b.count for b in cal.bins) == 4
    assert cal.mean_confidence == pytest.approx(0.7) and cal.accuracy == pytest.approx(0.75)


def test_bin_edges_are_upper_inclusive():
    probs, labels = _scores(np.array([0.6, 0.8, 1.0]), np.array([True, True, True]))
    cal = compute_calibration(probs, labels, n_bins=5, seed=0)
    assert [b.count for b in cal.bins] == [0, 0, 1, 1, 1]  # 0.6 in (0.4, 0.6], 0.8 in (0.6, 0.8], 1.0 in the last
    assert cal.bins[-1].upper == 1.0


def test_perfect_predictions_are_calibrated():
    labels = np.arange(30) % 3
    probs = np.eye(3)[labels]
    cal = compute_calibration(probs, labels, seed=0)
    assert cal.ece == 0.0 and cal.brier == 0.0 and cal.ece_noise_floor == 0.0
    verdict = calibration_verdict(cal)
    assert verdict.readable_as_probabilities and verdict.direction == "calibrated"


@pytest.mark.parametrize(
    ("shift", "direction"), [(0.0, "calibrated"), (-0.15, "over-confident"), (0.15, "under-confident")]
)
def test_verdict_recovers_known_calibration(shift, direction):
    rng = np.random.default_rng(5)
    conf = rng.uniform(0.5, 1.0, 3000)
    right = rng.random(3000) < np.clip(conf + shift, 0, 1)
    cal = compute_calibration(*_scores(conf, right), seed=0)
    verdict = calibration_verdict(cal)
    assert verdict.direction == direction
    assert verdict.readable_as_probabilities == (direction == "calibrated")
    assert f"{cal.ece:.3f}" in calibration_text(cal, verdict)


def test_noise_floor_shrinks_with_more_images():
    rng = np.random.default_rng(6)
    floors = []
    for n in (50, 5000):
        conf = rng.uniform(0.5, 1.0, n)
        floors.append(compute_calibration(*_scores(conf, rng.random(n) < conf), seed=0).ece_noise_floor)
    assert floors[0] > 2 * floors[1] > 0


def test_small_sample_is_called_rough_and_result_is_json_able():
    probs, labels = _scores(np.full(20, 0.99), np.arange(20) < 10)
    cal = compute_calibration(probs, labels, seed=0)
    verdict = calibration_verdict(cal)
    assert verdict.direction == "over-confident" and verdict.small_sample and "rough" in calibration_text(cal, verdict)
    json.dumps(dataclasses.asdict(cal), allow_nan=False)
    json.dumps(dataclasses.asdict(verdict), allow_nan=False)


def test_empty_input_and_validation():
    cal = compute_calibration(np.zeros((0, 3)), np.zeros(0, int), seed=0)
    assert cal.n_images == 0 and cal.ece == 0.0
    assert not calibration_verdict(cal).readable_as_probabilities
    assert calibration_text(cal, calibration_verdict(cal)) == "No images to measure calibration on."
    with pytest.raises(ValueError, match="probs"):
        compute_calibration(np.zeros((3, 3)), np.zeros(2, int), seed=0)


def test_signed_gap_catches_bias_on_a_small_test_split():
    """On ~120 images the ECE floor is about 0.1, but an 11-point mean gap is still clear."""
    rng = np.random.default_rng(7)
    conf = rng.uniform(0.6, 0.95, 120)
    cal = compute_calibration(*_scores(conf, rng.random(120) < conf + 0.12), seed=0)
    assert cal.ece_noise_floor > 0.07
    assert cal.confidence_gap < -cal.gap_noise_floor
    assert calibration_verdict(cal).direction == "under-confident"


def test_errors_that_cancel_on_average_are_mixed():
    conf = np.array([0.55] * 200 + [0.95] * 200)
    right = np.array([True] * 200 + [True] * 100 + [False] * 100)  # 100 % right at 0.55, 50 % at 0.95
    cal = compute_calibration(*_scores(conf, right), seed=0)
    assert abs(cal.confidence_gap) < 0.01 and cal.ece > 0.4
    verdict = calibration_verdict(cal)
    assert verdict.direction == "mixed" and not verdict.readable_as_probabilities
    assert verdict.example is not None and verdict.example.count == 200 and verdict.example.upper == 1.0
