"""Metadata beside each image (annotator, source, camera, date, ...): typed columns, one value per image."""

from __future__ import annotations

from dataclasses import dataclass

CATEGORY, NUMBER, DATE = "category", "number", "date"  # the kinds of a column


@dataclass(frozen=True)
class MetadataColumn:
    """One metadata column: its name, its kind, and a value per image in ``LoadedImages`` order (None: missing)."""

    name: str
    kind: str  # CATEGORY, NUMBER or DATE (dates as ISO-8601 strings)
    values: tuple[str | float | None, ...]


@dataclass(frozen=True)
class Metadata:
    """The metadata columns of a data set; empty when it has none."""

    columns: tuple[MetadataColumn, ...] = ()

    def column(self, name: str) -> MetadataColumn | None:
        """The column called ``name``, or None."""
        return next((c for c in self.columns if c.name == name), None)
