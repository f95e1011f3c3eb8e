"""The class chapters of a page: which classes get one, and a table of one line per class for the others (pure).

The HTML page details every class; the PDF the ones ``--pdf-classes`` selected. Part of the report's structure
(``reportgen.render.structure.report_structure`` calls :func:`class_layout`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from reportgen.render.elements import UNDER_REPRESENTED, Listing, Row, Tag
from reportgen.render.galleries import gallery

if TYPE_CHECKING:
    from reportgen.analysis.attention import ClassAttention
    from reportgen.report import ClassSection, Confusion, Report

FLAG_TONE = "warn"  # the tone of a check's flag in the table of other classes


@dataclass(frozen=True)
class ClassEntry:
    """One class chapter: the class's section of the report, its HTML id, tags and galleries of Cards."""

    id: str
    section: ClassSection
    tags: tuple[Tag, ...]
    top: Listing | None  # None: ``--top-k 0`` and the class has enough test images for the bottom gallery
    bottom: Listing | None  # None: the class has too few test images for two galleries; ``top`` shows them all
    colour_bar: bool  # a gallery shows Grad-CAM overlays: the colour bar's key goes above the galleries


@dataclass(frozen=True)
class ClassLine:
    """A class without a chapter on this page: one line of the table, linked to its chapter in report.html."""

    id: str  # its chapter's HTML id in report.html
    section: ClassSection
    attention: ClassAttention | None  # its rank and suspects; None in a report without a selection
    confusion: Confusion | None  # the class it is most often mistaken for


@dataclass(frozen=True)
class ClassLayout:
    """The page's class chapters, in reading order, the table rows of the other classes, and the words on them."""

    entries: tuple[ClassEntry, ...]
    lines: tuple[Row, ...]  # item: ClassLine; tags: the checks that flag the class
    note: str  # "" when the page has every class


def class_layout(report: Report, *, pdf: bool) -> ClassLayout:
    """Every class in the data set's order for the HTML; for the PDF the selected classes, most in need first.

    A report without ``pdf_classes`` (written before the option existed) details every class on both pages.
    """
    ids = {s.class_name: f"class-{i}" for i, s in enumerate(report.classes, start=1)}
    sections = {s.class_name: s for s in report.classes}
    selection = report.pdf_classes
    if selection is None or selection.complete:
        return ClassLayout(tuple(class_entry(ids[s.class_name], s) for s in report.classes), (), "")
    if not pdf:
        note = selection.html_note if report.run.config.get("pdf", True) else ""
        return ClassLayout(tuple(class_entry(ids[s.class_name], s) for s in report.classes), (), note)
    ranked, detailed = {c.class_name: c for c in selection.ranking}, set(selection.detailed)
    entries = tuple(class_entry(ids[name], sections[name]) for name in selection.detailed if name in sections)
    lines = tuple(
        _line(ids[s.class_name], s, ranked.get(s.class_name)) for s in report.classes if s.class_name not in detailed
    )
    return ClassLayout(entries, lines, selection.pdf_note)


def _line(id_: str, section: ClassSection, attention: ClassAttention | None) -> Row:
    """The table row of a class without a chapter: its line, tagged with the checks that flag it."""
    tags = tuple(Tag(flag, FLAG_TONE) for flag in attention.flags) if attention else ()
    return Row(ClassLine(id_, section, attention, next(iter(section.confused_with), None)), tags=tags)


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
