"""Words of the audit chapter: what each tier meant, how a check worked, its rule and its results (pure).

``reportgen.assemble.audit`` builds the chapter's views and takes their texts from here: the rules, the
calibration verdict, and the reasons a class was flagged by the shortcut and fixed-pattern checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reportgen.analysis.shortcuts import MIN_RELIANCE, RELIANCE_AREA, RELIANCE_IMAGES
from reportgen.narrative.format import fmt_number, fmt_percent, fmt_plural

if TYPE_CHECKING:
    from reportgen.analysis.calibration import Calibration, CalibrationVerdict, ReliabilityBin
    from reportgen.analysis.shortcuts import Reliance, ShortcutFlag, ShortcutThresholds
    from reportgen.analysis.stamps import ClassStamp, StampThresholds

# What each tier meant on planted data (benchmarks/planted_labels.py; README "Benchmark"): 5 % of the labels
# flipped in food9-64px, clothing-mini and food101-pss, three draws each, means over the three sets.
LIKELY_WRONG_MEANING = (
    "On planted 5 % label noise, about 8 of 10 images in this tier were planted wrong labels, and 9 of 10 "
    "counting the data sets' own real errors; the tier held about 3 in 4 of the planted ones."
)
WORTH_A_LOOK_MEANING = (
    "On planted 5 % label noise, only 1 or 2 of 10 images in this tier were wrong labels; the rest were hard "
    "or ambiguous images."
)
NO_CLASS_MEANING = (
    "With 2 % photos of another domain planted, about 8 of 10 images in this tier were planted ones (9 in 10 "
    "of them were listed); the rest were the data set's own odd images."
)
HEALTH_CHECK_TITLES = {  # reportgen.analysis.health.CHECKS in words
    "small": "very small",
    "aspect": "extreme aspect ratio",
    "low_contrast": "near-constant (low contrast)",
    "dark": "very dark",
    "bright": "very bright",
    "grayscale": "grayscale in a colour set",
}
_SIZING = (
    "A temperature and the share of wrong labels are then fitted together, so that each image gets the "
    'probability that its label is wrong; the "likely wrong" tier holds as many images as that estimate '
    'expects wrong labels, most likely first, and "worth a look" the next ones by rank.'
)


def label_caution(agreement: float, weak: float) -> str:
    """Why the label check's suspects deserve extra care when the probabilities agree with only ``agreement``.

    Args:
        agreement: share of the given labels the out-of-sample probabilities agree with.
        weak: the agreement below which the check warns.
    """
    return (
        f"The out-of-sample probabilities agree with only {fmt_percent(agreement)} of the given labels (below "
        f"{fmt_percent(weak, 0)}): the features separate these classes poorly, so the likely-wrong tier misses more "
        'of the wrong labels and "worth a look" holds mostly hard or ambiguous images. Look before relabelling.'
    )


def label_method_text(method: str, folds: int) -> str:
    """How the label check made its out-of-sample probabilities (``method`` "finetune" or "embeddings")."""
    if method == "finetune":
        return (
            f"{folds}-fold cross-validation of the fine-tuned model: each image is scored by a model trained "
            "without it. " + _SIZING
        )
    return (
        f"{folds}-fold cross-validated logistic regression on features of the pretrained backbone before "
        "fine-tuning (the features never saw these labels). " + _SIZING
    )


def duplicate_threshold_text(threshold: float | None) -> str:
    """What counts as a copy: exact by file bytes, and near above ``threshold`` (None: no embeddings)."""
    if threshold is None:
        return "exact copies by SHA-256 of the file bytes only (no embeddings in this run)"
    return (
        f"exact copies by SHA-256 of the file bytes; near copies when the cosine similarity of the "
        f"pretrained backbone's features is at least {threshold:g} (resized, re-encoded or lightly cropped "
        "copies of one photo score above it; different photos of similar things rarely do) and small grayscale "
        "thumbnails of the two images correlate (blurred or dark photos can be close in the features alone)"
    )


def shortcut_rule(t: ShortcutThresholds) -> str:
    """When the Grad-CAM shortcut check flags a class, with its thresholds."""
    return (
        f"A class is flagged when its maps agree (mean pairwise correlation >= {t.min_consistency:g}) and peak "
        f"at one spot (spread <= {t.max_peak_spread:g} of the side) outside the centre; when more than "
        f"{fmt_percent(t.max_border_share, 0)} of the mean map lies in the outer {fmt_percent(t.border_width, 0)} "
        f"band; or when the mean map's centre of mass is more than {t.max_centre_offset:g} of the side from the "
        f"image centre. Such a position is only worth a look: a class is flagged when, besides, its score falls by "
        f"at least {MIN_RELIANCE:g} more when the {fmt_percent(RELIANCE_AREA, 0)} of the image where its mean map "
        "is highest is filled from the pixels around it than when an equal area of each image's own evidence "
        f"elsewhere is (measured on up to {RELIANCE_IMAGES} test images). Classes with fewer than {t.min_maps} "
        "correctly classified test images are measured but not flagged."
    )


def stamp_rule(t: StampThresholds) -> str:
    """When the fixed-pattern check flags a class, with its thresholds."""
    return (
        f"The image is cut into a {t.grid}x{t.grid} grid. A cell is fixed for a class when at least "
        f"{fmt_percent(t.min_share, 0)} of the class's images have its typical colour there (every channel within "
        f"{t.tolerance:g}) and that share exceeds the other classes' by {fmt_percent(t.min_excess, 0)} or more; a "
        f"class with at least {t.min_cells} fixed cells and {t.min_images} images is flagged."
    )


def calibration_text(cal: Calibration, verdict: CalibrationVerdict) -> str:
    """The calibration verdict in one or two sentences, with the figures and the limits they were held to."""
    if cal.n_images == 0:
        return "No images to measure calibration on."
    figures = (
        f"ECE {fmt_number(cal.ece)} over {cal.n_images} images ({cal.n_bins} bins, limit "
        f"{fmt_number(verdict.ece_limit)}); mean confidence {fmt_percent(cal.mean_confidence)} vs accuracy "
        f"{fmt_percent(cal.accuracy)} (gap {cal.confidence_gap:+.3f}, limit ±{fmt_number(verdict.gap_limit)})"
    )
    rough = " With so few images the estimate is rough." if verdict.small_sample else ""
    if verdict.readable_as_probabilities:
        return f"The scores can be read as probabilities: {figures}.{rough}"
    if verdict.direction == "mixed":
        opening = (
            "The scores are mis-calibrated, too high in some confidence ranges and too low in others, "
            "so they should not be read as probabilities"
        )
    else:
        opening = f"The scores are {verdict.direction} and should not be read as probabilities"
    example = "" if verdict.example is None else _calibration_example(verdict.example)
    return f"{opening}: {figures}.{example}{rough}"


def _calibration_example(b: ReliabilityBin) -> str:
    """How one bin's scores compare with how often they were right."""
    return (
        f" For example, the {b.count} images scored {fmt_percent(b.lower, 0)}–{fmt_percent(b.upper, 0)} "
        f"(mean {fmt_percent(b.mean_confidence)}) were right {fmt_percent(b.accuracy)} of the time."
    )


def reliance_reason(reliance: Reliance | None) -> str:
    """Whether the model relies on a class's evidence region, with the measured fall of its score."""
    if reliance is None or not reliance.n_images:
        return "its evidence sits apart, but how much the model relies on it was not measured: worth a look"
    area = f"the {fmt_percent(reliance.area, 0)} of the image where its evidence is densest"
    drops = (
        f"removing {area} lowers its score by {fmt_number(reliance.drop, 2)} on average, against "
        f"{fmt_number(reliance.control_drop, 2)} for an equal area of the object elsewhere "
        f"({fmt_plural(reliance.n_images, 'test image')})"
    )
    if reliance.relied_on:
        return f"the model relies on that region: {drops}"
    return f"worth a look, not a shortcut: {drops}, so the model does not rely on that region alone"


def shortcut_reason(flag: ShortcutFlag, t: ShortcutThresholds) -> str:
    """Why the Grad-CAM shortcut check flagged a class, as a clause a reader can check against the figures."""
    if flag.code == "fixed_position":
        return (
            f"the {flag.n_maps} maps agree (mean pairwise correlation {fmt_number(flag.value, 2)} >= "
            f"{flag.threshold:g}) and peak at the same spot (spread {fmt_number(flag.peak_spread, 2)} <= "
            f"{t.max_peak_spread:g} of the side), in the "
            f"{flag.where} region, not the centre"
        )
    if flag.code == "border":
        return (
            f"{fmt_percent(flag.value)} of the evidence lies in the outer {fmt_percent(t.border_width, 0)} band "
            f"(> {fmt_percent(flag.threshold, 0)}; the band is {fmt_percent(flag.band_area)} of the image)"
        )
    return (
        f"the evidence's centre of mass is {fmt_number(flag.value, 2)} of the side from the image centre "
        f"(> {flag.threshold:g}), towards the {flag.where}"
    )


def stamp_reason(stamp: ClassStamp, t: StampThresholds) -> str:
    """Why the fixed-pattern check flagged a class; "" for a class it did not flag, or why it could not measure."""
    if not stamp.measured:
        return "too few images to measure"
    if not stamp.flagged:
        return ""
    return (
        f"{fmt_percent(stamp.match_share)} of its {stamp.n_images} images show the same colours over "
        f"{fmt_percent(stamp.fixed_cells / t.grid**2)} of the image in the {stamp.region} (only "
        f"{fmt_percent(stamp.other_share)} of other classes' images do): a stamp, watermark, frame or "
        "backdrop the model could learn instead of the object"
    )
