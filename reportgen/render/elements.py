"""The small parts the structure is made of: tags, listings, table rows and cards (pure, shared by its modules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tag:
    """A tag or badge: its words and its tone (the CSS modifier: warn, bad, correct, wrong)."""

    text: str
    tone: str


UNDER_REPRESENTED = (Tag("under-represented", "warn"),)


@dataclass(frozen=True)
class Listing:
    """The items a list or gallery shows, how many more ``results.json`` holds, and whether a Grad-CAM note follows."""

    items: tuple[Any, ...]
    more: int = 0
    cam_note: bool = False


@dataclass(frozen=True)
class Row:
    """A table row: what it is about (``item``: a model object or a class name), its cells in column order, tags."""

    item: Any
    cells: tuple[Any, ...] = ()
    tags: tuple[Tag, ...] = ()
    note: str = ""  # a remark where an untagged row has no reasons


@dataclass(frozen=True)
class Card:
    """A gallery, probe or image-health card: the object, how many image tiles it has, its state and label."""

    item: Any
    tiles: int
    state: str = ""  # "correct" | "wrong" for a gallery image
    label: str = ""  # the top class of a probe; the failed checks of an image-health card
    badges: tuple[Tag, ...] = ()  # a gallery image: what the audit's other checks found about it
