"""Words of a class's galleries: their headings and leads, saying what is shown and how many are mistakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reportgen.narrative.format import fmt_plural

if TYPE_CHECKING:
    from reportgen.report import ClassSection, GalleryImage


@dataclass(frozen=True)
class GalleryWords:
    """A class's gallery headings and leads; the bottom ones are empty when one gallery shows every image.

    The fields are ``ClassSection``'s of the same names.
    """

    top_title: str
    top_lead: str
    bottom_title: str = ""
    bottom_lead: str = ""


def gallery_words(section: ClassSection) -> GalleryWords:
    """The headings and leads of a class's galleries: what they show and how many of the shown are mistakes."""
    name, top, bottom = section.class_name, section.top, section.bottom
    reading = (
        f"Each card gives the image's {name} score (the model's softmax score for {name}) and, for a mistake, "
        "the class predicted and its score."
    )
    if section.complete:
        if not top:
            return GalleryWords(f"No test images of {name}", "The test split holds no image of this class.")
        n = len(top)
        title = f"All {n} test images of {name}, by score" if n > 1 else f"The single test image of {name}"
        lead = (
            f"With {fmt_plural(n, 'test image')}, {name} gets one gallery instead of one of the highest- and one of "
            f"the lowest-scoring: each image is shown once, highest {name} score first."
        )
        return GalleryWords(title + _mistakes(top), f"{lead} {reading}")
    wrong = sum(not g.correct for g in top)
    top_lead = f"The test images of {name} with the highest {name} score, highest first: "
    top_lead += f"those the model finds most like {name}"
    top_lead += f", though it predicts another class for {wrong} of them." if wrong else "."
    bottom_lead = f"The test images of {name} with the lowest {name} score, lowest first: "
    bottom_lead += f"where the model is least sure of {name}."
    return GalleryWords(
        f"Highest-scoring test {_images(len(top))} of {name}" + _mistakes(top),
        f"{top_lead} {reading}",
        f"Lowest-scoring test {_images(len(bottom))} of {name}" + _mistakes(bottom),
        bottom_lead if top else f"{bottom_lead} {reading}",  # the reading once, above the first gallery shown
    )


def _images(n: int) -> str:
    return "image" if n == 1 else "images"


def _mistakes(images: Sequence[GalleryImage]) -> str:
    """The heading's clause on mistakes, e.g. ' — 3 of 4 are mistakes' or ' — all correct'; empty without images."""
    n, wrong = len(images), sum(not g.correct for g in images)
    if n == 0:
        return ""
    if wrong == 0:
        return " — correct" if n == 1 else " — all correct"
    if wrong == n:
        return " — a mistake" if n == 1 else f" — all {n} are mistakes"
    return f" — {wrong} of {n} {'is a mistake' if wrong == 1 else 'are mistakes'}"
