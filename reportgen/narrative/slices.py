"""Words of "Where the model fails": a slice in one sentence with its numbers, the rule, what was tried (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reportgen.narrative.format import fmt_count, fmt_percent, fmt_plural, join_words, listed

if TYPE_CHECKING:
    from reportgen.analysis.slices import Slice, Slices

SUSPECT_EXCESS = 2.0  # a slice's suspect share this many times the rest's (and LABEL_SUSPECTS_MIN) gets the note
LABEL_SUSPECTS_MIN = 3


def fmt_p(p: float) -> str:
    """A p-value as a reader checks it against a limit: ``p < 0.001``, ``p = 0.012``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def slice_text(s: Slice, class_names: tuple[str, ...]) -> str:
    """E.g. "Images with source = phone_b: 37.2% wrong against 14.5% elsewhere, 86 validation and test images, ..."."""
    mistakes = {class_names[c]: n for c, n in enumerate(s.errors_per_class) if n}
    hits = f" Its mistakes are {listed(mistakes, '{n} {name}')} images." if mistakes else ""
    expected = ""
    if s.expected_error_rate > s.rest_error_rate:
        expected = f" (its classes: {fmt_percent(s.expected_error_rate)} elsewhere)"
    lead = f"Images in {s.description.partition(':')[0]}" if s.column == "cluster" else f"Images with {s.description}"
    return (
        f"{lead}: {fmt_percent(s.error_rate)} wrong against {fmt_percent(s.rest_error_rate)} "
        f"elsewhere{expected}, the true class scored {s.mean_score:.2f} on average against "
        f"{s.rest_mean_score:.2f}, {fmt_plural(s.evaluated, 'validation and test image')} "
        f"({fmt_count(len(s.members))} in all splits), {fmt_p(s.p_adjusted)} after correction.{hits}"
    )


def labelling_note(s: Slice) -> str:
    """Why a slice's errors may be wrong labels rather than the model's; "" when its suspects are not concentrated."""
    if s.suspects is None or s.suspect_share is None or s.rest_suspect_share is None:
        return ""
    if s.suspects < LABEL_SUSPECTS_MIN or s.suspect_share < SUSPECT_EXCESS * max(s.rest_suspect_share, 1e-9):
        return ""
    return (
        f"{fmt_percent(s.suspect_share)} of its images are suspected label errors against "
        f"{fmt_percent(s.rest_suspect_share)} elsewhere: check its labels before blaming the model."
    )


def slice_rule(found: Slices) -> str:
    """How slices are made and when one is reported, with the run's limits."""
    return (
        "Slices are groups of images sharing a metadata value, a quintile of an image property (size, aspect "
        "ratio, brightness, contrast, colourfulness, sharpness, JPEG quality) or the file format, or a k-means "
        "cluster of the pretrained features across classes. Each is scored on the validation and test images "
        f"(overall {fmt_percent(found.error_rate)} wrong, the true class scored {found.mean_score:.2f} on "
        f"average): a slice is reported when it and the rest hold at least {found.min_size} such images (the "
        "slice at most half), a one-sided Mann-Whitney U test of the model's scores for the true class, "
        f"corrected for every slice tried (Benjamini-Hochberg), gives p ≤ {found.alpha:g}, its mean score is "
        f"below both the rest's and its classes' elsewhere by at least {found.min_effect:g}, and its error rate "
        "is above both. A slice sharing half its images with a stronger one, or mostly inside or around it, is "
        "merged into it."
    )


def tried_text(found: Slices) -> str:
    """What was tried, for a run that found no slice."""
    parts = [fmt_plural(n, f"{source} slice") for source, n in found.tried.items()]
    no_meta = "" if "metadata" in found.tried else " The data set has no metadata columns."
    return (
        f"No slice found: {join_words(parts) or 'no slice'} were tried, {fmt_count(found.tested)} with enough "
        f"validation and test images to test; in none did the model score the true class significantly and by "
        f"at least {found.min_effect:g} lower than elsewhere while failing more often.{no_meta}"
    )
