"""The audit checks' result sentences, from hand-made facts: the calibration verdict."""

from __future__ import annotations

import pytest

from reportgen.analysis.calibration import Calibration, CalibrationVerdict, ReliabilityBin
from reportgen.narrative.audit import calibration_text

BUSY = ReliabilityBin(0.8, 0.866667, 60, 0.834, 0.6)
# 80 images, 15 bins, ECE 0.1234, MCE 0.3, ECE floor 0.09, mean confidence 0.8512, accuracy 0.7, gap +0.1512,
# gap floor 0.04, Brier 0.3
CAL = Calibration(80, 15, 0.1234, 0.3, 0.09, 0.8512, 0.7, 0.1512, 0.04, 0.3, (BUSY,))
FIGURES = (
    "ECE 0.123 over 80 images (15 bins, limit 0.090); mean confidence 85.1% vs accuracy 70.0% "
    "(gap +0.151, limit ±0.050)"
)
EXAMPLE = " For example, the 60 images scored 80%–87% (mean 83%) were right 60% of the time."
ROUGH = " With so few images the estimate is rough."


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (
            CalibrationVerdict(False, "over-confident", 0.09, 0.05, True, BUSY),
            f"The scores are over-confident and should not be read as probabilities: {FIGURES}.{EXAMPLE}{ROUGH}",
        ),
        (
            CalibrationVerdict(False, "mixed", 0.09, 0.05, False, BUSY),
            "The scores are mis-calibrated, too high in some confidence ranges and too low in others, so they "
            f"should not be read as probabilities: {FIGURES}.{EXAMPLE}",
        ),
        (
            CalibrationVerdict(True, "calibrated", 0.09, 0.05, True, None),
            f"The scores can be read as probabilities: {FIGURES}.{ROUGH}",
        ),
    ],
    ids=["over-confident", "mixed", "calibrated"],
)
def test_calibration_text_gives_figures_limits_and_an_example(verdict: CalibrationVerdict, expected: str) -> None:
    assert calibration_text(CAL, verdict) == expected


def test_calibration_text_without_images() -> None:
    empty = Calibration(0, 15, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, ())
    verdict = CalibrationVerdict(False, "calibrated", 0.05, 0.05, True, None)
    assert calibration_text(empty, verdict) == "No images to measure calibration on."
