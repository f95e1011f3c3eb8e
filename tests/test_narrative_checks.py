"""The audit checks' result sentences, from hand-made facts: calibration verdict, shortcut and stamp reasons."""

from __future__ import annotations

import pytest

from reportgen.analysis.calibration import Calibration, CalibrationVerdict, ReliabilityBin
from reportgen.analysis.shortcuts import ShortcutFlag, ShortcutThresholds
from reportgen.analysis.stamps import ClassStamp, StampThresholds
from reportgen.narrative.audit import calibration_text, shortcut_reason, stamp_reason

BUSY = ReliabilityBin(0.8, 0.866667, 60, 0.834, 0.6)
# 80 images, 15 bins, ECE 0.1234, MCE 0.3, ECE floor 0.09, mean confidence 0.8512, accuracy 0.7, gap +0.1512,
# gap floor 0.04, Brier 0.3
CAL = Calibration(80, 15, 0.1234, 0.3, 0.09, 0.8512, 0.7, 0.1512, 0.04, 0.3, (BUSY,))
FIGURES = (
    "ECE 0.123 over 80 images (15 bins, limit 0.090); mean confidence 85.1% vs accuracy 70.0% "
    "(gap +0.151, limit ±0.050)"
)
EXAMPLE = " For example, the 60 images scored 80%–87% (mean 83.4%) were right 60.0% of the time."
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


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (
            ShortcutFlag("fixed_position", 0.9349, 0.6, 12, "top-left", peak_spread=0.0712),
            "the 12 maps agree (mean pairwise correlation 0.93 >= 0.6) and peak at the same spot (spread 0.07 "
            "<= 0.15 of the side), in the top-left region, not the centre",
        ),
        (
            ShortcutFlag("border", 0.614, 0.5, 12, band_area=0.36),
            "61.4% of the evidence lies in the outer 10% band (> 50%; the band is 36.0% of the image)",
        ),
        (
            ShortcutFlag("off_centre", 0.2049, 0.12, 12, "bottom-right"),
            "the evidence's centre of mass is 0.20 of the side from the image centre (> 0.12), towards the "
            "bottom-right",
        ),
    ],
    ids=lambda v: v.code if isinstance(v, ShortcutFlag) else "",
)
def test_shortcut_reason_names_figure_limit_and_place(flag: ShortcutFlag, expected: str) -> None:
    assert shortcut_reason(flag, ShortcutThresholds()) == expected


def test_stamp_reason_for_flagged_unflagged_and_unmeasured_classes() -> None:
    limits = StampThresholds(grid=56)
    flagged = ClassStamp(2, 40, True, 49, 0.0156, "top-left", 0.95, 0.912, 0.031, True)
    assert stamp_reason(flagged, limits) == (
        "91.2% of its 40 images show the same colours over 1.6% of the image in the top-left (only 3.1% of other "
        "classes' images do): a stamp, watermark, frame or backdrop the model could learn instead of the object"
    )
    assert stamp_reason(ClassStamp(0, 40, True, 2, 0.0006, "top", 0.6, 0.6, 0.1, False), limits) == ""
    unmeasured = ClassStamp(1, 1, False, 0, 0.0, "", 0.0, 0.0, 0.0, False)
    assert stamp_reason(unmeasured, limits) == "too few images to measure"


def test_the_label_cards_agreement_and_its_caution_print_one_value() -> None:
    """The card prints the view's agreement; the caution is written from that same value, not the raw one."""
    import numpy as np

    from reportgen.analysis.label_issues import LabelIssues
    from reportgen.assemble.audit import DatasetIndex, label_check_view
    from reportgen.narrative.format import fmt_percent

    issues = LabelIssues((), (), 10, (0, 0), ((0, 0), (0, 0)), 0.05, (0.0, 0.1), "fit", 0.4014999, 1.0, "n", "r")
    index = DatasetIndex(("a/1.jpg",), np.zeros(1, int), np.array(["train"]), ("a", "b"))
    view = label_check_view(issues, index, np.zeros(1, int), method="embeddings", folds=5, assets=None)
    assert f"agree with only {fmt_percent(view.probs_accuracy)} of the given labels" in view.caution
