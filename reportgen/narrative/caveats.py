"""What the reader should keep in mind, as sentences with this report's numbers (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reportgen.narrative.format import has_have, join_words

if TYPE_CHECKING:
    from reportgen.report import Report

GRAD_CAM_CAVEAT = (
    "Grad-CAM maps are min–max normalised per image: the hottest colour marks the strongest evidence within "
    "that image only, so colours cannot be compared across images."
)
LIMITS_CAVEAT = (
    "The report ranks images by the model's scores; it cannot tell a wrong label from a hard or ambiguous "
    "image without a human look at the images."
)


def caveats(report: Report, *, calibrated: bool | None = None) -> tuple[str, ...]:
    """What the reader should keep in mind, as sentences with this report's numbers, the most important first.

    Page 1 shows the first few: how coarse the test metrics are, classes without test images, scores that are
    not probabilities, and that one split was audited come before what holds for every report (scores that
    the calibration check found readable, the limits of ranking, the Grad-CAM normalisation).

    Args:
        report: the report, with metrics filled in.
        calibrated: the calibration check's verdict (``readable_as_probabilities``); None when it did not run.
    """
    score = _score_caveat(calibrated)
    found = (
        _test_size_caveat(report),
        _empty_class_caveat(report),
        None if calibrated else score,
        _one_run_caveat(report),
        LIMITS_CAVEAT,
        score if calibrated else None,
        GRAD_CAM_CAVEAT,
    )
    return tuple(s for s in found if s)


def _points(per_image: float) -> str:
    return f"{per_image:.0f}" if per_image >= 10 else f"{per_image:.1f}"


def _test_size_caveat(report: Report) -> str | None:
    sized = [(m.support, i, m.class_name) for i, m in enumerate(report.metrics.per_class) if m.support > 0]
    if not sized:
        return None
    support, _, name = min(sized)
    total = sum(s for s, _, _ in sized)
    if support == 1:
        head = f"{name} has a single test image, so its recall can only be 0% or 100%"
    else:
        per_image = _points(100 / support)
        head = (
            f"{name}, the class with the fewest test images ({support}), changes recall by {per_image} points per image"
        )
    return (
        f"Per-class metrics are coarse on small test sets: {head}; overall accuracy over {total} test images "
        f"changes by {_points(100 / total)} points per image."
    )


def _empty_class_caveat(report: Report) -> str | None:
    empty = [m.class_name for m in report.metrics.per_class if m.support == 0]
    if not empty:
        return None
    return (
        f"{join_words(empty)} {has_have(len(empty))} no test images: "
        f"{'its' if len(empty) == 1 else 'their'} recall, precision and F1 show 0 by convention, not a measurement."
    )


def _score_caveat(calibrated: bool | None) -> str:
    if calibrated is None:
        return (
            "Scores are softmax outputs, not calibrated probabilities: a score of 0.9 does not mean the model "
            "is right 9 times in 10."
        )
    if calibrated:
        return (
            "Scores are softmax outputs; the calibration check found them readable as probabilities on this test set."
        )
    return (
        "Scores are softmax outputs and the calibration check found them mis-calibrated: read them as a ranking, "
        "not as probabilities."
    )


def _one_run_caveat(report: Report) -> str:
    model = "one fine-tuned model" if report.model.trained else "one model loaded from a checkpoint"
    return (
        f"The report audits {model} on one split of the data (seed {report.run.seed}); another split or seed "
        "can change the metrics and which images appear at the extremes."
    )
