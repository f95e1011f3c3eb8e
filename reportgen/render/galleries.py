"""The class chapters' galleries: which galleries a class shows, their cards, the cards' badges and metadata (pure).

Part of the report's structure (``reportgen.render.classes.class_entry`` calls :func:`gallery`); kept apart
so that the structure module stays within its size limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from reportgen.render.elements import Card, Listing, Tag

if TYPE_CHECKING:
    from reportgen.report import GalleryImage, ImageFlag, Report

CARD_METADATA, CARD_VALUE_CHARS = 3, 24  # metadata columns shown on an image's card, and characters per value

FLAG_BADGES = {  # ImageFlag.kind -> (badge text, with the flag's {detail}, and its tone)
    "label_error": ("label error? likely {detail}", "bad"),
    "label_review": ("label worth a look: {detail}?", "warn"),
    "copy_other_class": ("copy labelled {detail}", "bad"),
    "leak": ("copy in {detail} split: leak", "bad"),
    "copy": ("duplicate", "warn"),
    "outlier": ("belongs to no class?", "warn"),
    "health": ("image health", "warn"),
}


def gallery(images: Sequence[GalleryImage]) -> Listing:
    """The Cards of a gallery: tiles, right or wrong, and a badge per finding of the audit's other checks."""
    cards = tuple(
        Card(g, 1 + bool(g.cam) + bool(g.cam_true), "correct" if g.correct else "wrong", badges=badges(g.flags))
        for g in images
    )
    return Listing(cards, cam_note=any(g.cam for g in images))


def badges(flags: Sequence[ImageFlag]) -> tuple[Tag, ...]:
    """One badge per flag, in the flags' order."""
    return tuple(Tag(FLAG_BADGES[f.kind][0].format(detail=f.detail), FLAG_BADGES[f.kind][1]) for f in flags)


def card_metadata(report: Report) -> dict[str, tuple[tuple[str, str], ...]]:
    """Each image's first metadata values, short, for its cards: the missing ones left out."""
    columns = [c.name for c in report.dataset.metadata_columns[:CARD_METADATA]]
    shown = {}
    for image in report.images if columns else ():
        pairs = tuple((c, _short(image.metadata.get(c))) for c in columns if image.metadata.get(c) is not None)
        if pairs:
            shown[image.rel_path] = pairs
    return shown


def _short(value: str | float | None) -> str:
    """A metadata value in a few characters: whole numbers without '.0', long text cut with an ellipsis."""
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else f"{value:.4g}"
    text = str(value)
    return text if len(text) <= CARD_VALUE_CHARS else text[: CARD_VALUE_CHARS - 1] + "…"
