"""The class chapters' galleries: which galleries a class shows, their cards and the cards' badges (pure).

Part of the report's structure (``reportgen.render.structure.report_structure`` calls :func:`class_entry`);
kept apart so that the structure module stays within its size limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from reportgen.render.structure import UNDER_REPRESENTED, Card, ClassEntry, Listing, Tag

if TYPE_CHECKING:
    from reportgen.report import ClassSection, GalleryImage, ImageFlag

FLAG_BADGES = {  # ImageFlag.kind -> (badge text, with the flag's {detail}, and its tone)
    "label_error": ("label error? likely {detail}", "bad"),
    "label_review": ("label worth a look: {detail}?", "warn"),
    "copy_other_class": ("copy labelled {detail}", "bad"),
    "leak": ("copy in {detail} split: leak", "bad"),
    "copy": ("duplicate", "warn"),
    "outlier": ("belongs to no class?", "warn"),
    "health": ("image health", "warn"),
}


def class_entry(id_: str, section: ClassSection) -> ClassEntry:
    """A class chapter: the top gallery (unless ``--top-k 0`` left it empty), then the bottom one.

    With too few test images for two galleries (``section.complete``) the top one shows them all and there is
    no bottom one.
    """
    top = gallery(section.top) if section.top or section.complete else None
    bottom = None if section.complete else gallery(section.bottom)
    tags = UNDER_REPRESENTED if section.under_represented else ()
    colour_bar = any(g is not None and g.cam_note for g in (top, bottom))
    return ClassEntry(id_, section, tags, top, bottom, colour_bar)


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
