"""Metadata beside each image (annotator, source, camera, date, ...): typed columns, one value per image."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

CATEGORY, NUMBER, DATE = "category", "number", "date"  # the kinds of a column
SUBFOLDER = "subfolder"  # the column of a class folder's first sub-folder
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


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

    def select(self, rows: Sequence[int]) -> Metadata:
        """The same columns with the values of ``rows`` only, in that order."""
        return Metadata(tuple(MetadataColumn(c.name, c.kind, tuple(c.values[i] for i in rows)) for c in self.columns))

    def row(self, index: int) -> dict[str, str | float | None]:
        """Image ``index``'s values by column name."""
        return {c.name: c.values[index] for c in self.columns}


def typed_column(name: str, raw: Sequence[object]) -> MetadataColumn:
    """A column from raw values (text from a CSV, or JSON values): numbers when all are, ISO dates when all are.

    Empty text and None are missing values; anything else that is neither is a category, as text.
    """
    present = [v for v in (_clean(v) for v in raw) if v is not None]
    if present and all(_number(v) is not None for v in present):
        return MetadataColumn(name, NUMBER, tuple(_number(v) if _clean(v) is not None else None for v in raw))
    texts = tuple(_text(v) for v in raw)
    if present and all(isinstance(v, str) and _is_date(v) for v in present):
        return MetadataColumn(name, DATE, texts)
    return MetadataColumn(name, CATEGORY, texts)


def _clean(value: object) -> object:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _is_date(text: str) -> bool:
    if not _ISO_DATE.match(text):
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _text(value: object) -> str | None:
    value = _clean(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)  # a number in a text column, a list, an object
