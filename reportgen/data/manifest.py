"""Label manifests: a CSV, TSV or JSON Lines table of image paths, labels, an optional split and metadata.

The path column is found by its usual names (``file_name`` as in Hugging Face's ``imagefolder``, ``path``,
``filepath``, ``image``), the label column as ``label`` or ``class`` (or named), the split column as ``split``;
every other column is metadata. A problem with the file as a whole (encoding, a broken line, no path or label
column) is a one-line :class:`DataError` naming the file and line; a row that cannot be used is a
:class:`SkippedFile` with its reason and line, never dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reportgen.data.dataset import SkippedFile
from reportgen.data.source import SPLIT_NAMES, split_name
from reportgen.errors import DataError

PATH_COLUMNS = ("file_name", "filename", "path", "filepath", "file_path", "image", "image_path")
LABEL_COLUMNS = ("label", "class")
SPLIT_COLUMN = "split"
DEFAULT_MANIFESTS = ("metadata.csv", "metadata.jsonl")  # read from DATA_DIR's root without --labels
_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_JSON_LINES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class ManifestRow:
    """One usable row: an image inside DATA_DIR, its label, its split and its metadata values."""

    line: int
    rel_path: str  # relative to DATA_DIR, '/'-separated
    label: str  # "" when the manifest has no label column
    split: str  # train, val or test; "" when it has no split column
    values: tuple[object, ...]  # one per metadata column (text from a CSV, JSON values from JSON Lines)


@dataclass(frozen=True)
class Manifest:
    """A manifest read and checked against DATA_DIR."""

    name: str  # the file's name, for messages and the report
    columns: tuple[str, ...]  # as in its header
    label_column: str  # "" when it has none
    split_column: str  # "" when it has none
    metadata_columns: tuple[str, ...]
    rows: tuple[ManifestRow, ...]
    skipped: tuple[SkippedFile, ...]  # rows that name no usable image, with their reasons and lines


def default_manifest(root: Path) -> Path | None:
    """The ``metadata.csv`` or ``metadata.jsonl`` at DATA_DIR's root, read without ``--labels``; None: neither."""
    return next((root / n for n in DEFAULT_MANIFESTS if (root / n).is_file()), None)


def read_manifest(path: Path, root: Path, *, label_column: str | None, labels_required: bool) -> Manifest:
    """Read ``path`` and check each row's image against ``root``.

    Raises:
        DataError: the file cannot be read as a table, or has no path column, or (``labels_required``) no label
            column; the message names the file and the line.
    """
    name = path.name
    header, records = _table(path)
    columns = {c.lower(): c for c in header}
    path_col = next((columns[c] for c in PATH_COLUMNS if c in columns), None)
    if path_col is None:
        raise DataError(f"{name} line 1: no path column (looked for {', '.join(PATH_COLUMNS)})")
    label_col = _label_column(name, columns, label_column, required=labels_required)
    split_col = columns.get(SPLIT_COLUMN, "")
    meta = tuple(c for c in header if c not in (path_col, label_col, split_col))
    rows, skipped = _check_rows(records, root, name, path_col=path_col, label_col=label_col, split_col=split_col)
    usable = tuple(ManifestRow(r.line, r.rel_path, r.label, r.split, tuple(r.raw.get(c) for c in meta)) for r in rows)
    return Manifest(name, tuple(header), label_col, split_col, meta, usable, tuple(skipped))


def _label_column(name: str, columns: dict[str, str], wanted: str | None, *, required: bool) -> str:
    if wanted:
        if wanted.lower() not in columns:
            raise DataError(f"{name} line 1: no column '{wanted}' (named by --label-column)")
        return columns[wanted.lower()]
    found = next((columns[c] for c in LABEL_COLUMNS if c in columns), "")
    if not found and required:
        raise DataError(
            f"{name} line 1: no label column (looked for {', '.join(LABEL_COLUMNS)}; or name it with --label-column)"
        )
    return found


@dataclass(frozen=True)
class _Record:
    line: int
    raw: dict[str, object]
    rel_path: str = ""
    label: str = ""
    split: str = ""


def _table(path: Path) -> tuple[list[str], list[_Record]]:
    """The header and the rows of a CSV, TSV or JSON Lines file, with their line numbers."""
    suffix = path.suffix.lower()
    if suffix not in _DELIMITERS and suffix not in _JSON_LINES:
        kinds = ", ".join(sorted((*_DELIMITERS, *_JSON_LINES)))
        raise DataError(f"manifest '{path.name}': unknown file type '{suffix}' (use {kinds})")
    text = _text(path)
    if suffix in _JSON_LINES:
        return _json_lines(text, path.name)
    return _delimited(text, path.name, _DELIMITERS[suffix])


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"manifest '{path}' cannot be read: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path.name} line {line}: not UTF-8 text (save the file as UTF-8)") from exc


def _delimited(text: str, name: str, delimiter: str) -> tuple[list[str], list[_Record]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[_Record] = []
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = _header([c.strip() for c in row], name)
                continue
            if len(row) != len(header):
                raise DataError(f"{name} line {line}: {len(row)} fields where the header has {len(header)}")
            records.append(_Record(line, dict(zip(header, row, strict=True))))
    except csv.Error as exc:
        raise DataError(f"{name} line {start}: broken line ({exc})") from exc
    if header is None:
        raise DataError(f"{name} line 1: empty file, no header line")
    return header, records


def _header(names: list[str], name: str) -> list[str]:
    seen: set[str] = set()
    for column in names:
        if not column or column.lower() in seen:
            raise DataError(f"{name} line 1: {'an empty' if not column else 'a repeated'} column name '{column}'")
        seen.add(column.lower())
    return names


def _json_lines(text: str, name: str) -> tuple[list[str], list[_Record]]:
    header: dict[str, None] = {}
    records = []
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            value = json.loads(content)
        except json.JSONDecodeError as exc:
            raise DataError(f"{name} line {line}: broken JSON ({exc.msg})") from exc
        if not isinstance(value, dict):
            raise DataError(f"{name} line {line}: a JSON object is expected, found {type(value).__name__}")
        header.update(dict.fromkeys(value))
        records.append(_Record(line, value))
    if not records:
        raise DataError(f"{name} line 1: empty file, no rows")
    return list(header), records


def _check_rows(
    records: list[_Record], root: Path, name: str, *, path_col: str, label_col: str, split_col: str
) -> tuple[list[_Record], list[SkippedFile]]:
    """The rows that name a usable image once, and the others as skipped files with their reasons."""
    usable: dict[str, _Record] = {}
    skipped: list[SkippedFile] = []
    conflicted: set[str] = set()
    for record in records:
        shown = _cell(record.raw.get(path_col)) or f"({name} line {record.line})"
        problem, rel_path = _row_problem(record, root, path_col=path_col, label_col=label_col, split_col=split_col)
        if problem:
            skipped.append(SkippedFile(shown, problem, record.line))
            continue
        label, split = _cell(record.raw.get(label_col)), split_name(_cell(record.raw.get(split_col)))
        row = _Record(record.line, record.raw, rel_path, label, split or "")
        first = usable.get(rel_path)
        if first is None and rel_path not in conflicted:
            usable[rel_path] = row
        elif first is not None and (first.label, first.split) != (row.label, row.split):
            del usable[rel_path]
            conflicted.add(rel_path)
            reason = f"listed twice with different labels or splits (lines {first.line} and {row.line})"
            skipped += [SkippedFile(rel_path, reason, first.line), SkippedFile(rel_path, reason, row.line)]
        else:
            skipped.append(SkippedFile(rel_path, "listed again; an earlier line already gives it", row.line))
    return list(usable.values()), skipped


def _row_problem(record: _Record, root: Path, *, path_col: str, label_col: str, split_col: str) -> tuple[str, str]:
    """Why the row cannot be used ("" when it can), and its image's path relative to ``root``."""
    problem, rel_path = inside_root(root, _cell(record.raw.get(path_col)))
    if problem:
        return problem, ""
    if label_col and not _cell(record.raw.get(label_col)):
        return "empty label", ""
    if split_col and split_name(_cell(record.raw.get(split_col))) is None:
        value = _cell(record.raw.get(split_col))
        allowed = ", ".join(SPLIT_NAMES)
        return (f"unknown split '{value}' (use {allowed})" if value else f"empty split (use {allowed})"), ""
    return "", rel_path


def inside_root(root: Path, written: str) -> tuple[str, str]:
    """Why ``written`` (relative to ``root``) names no file inside it ("" when it does), and the path, normalised."""
    if not written:
        return "empty path", ""
    posix = written.replace("\\", "/")
    pure = PurePosixPath(posix)
    if pure.is_absolute() or (len(posix) > 1 and posix[1] == ":"):
        return "absolute path: paths must be relative to DATA_DIR", ""
    if ".." in pure.parts:
        return "path leaves DATA_DIR ('..')", ""
    rel_path = "/".join(p for p in pure.parts if p != ".")
    target = root / rel_path
    try:
        resolved = target.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a link loop
        return ("file not found" if not target.is_symlink() else "broken or looping link"), ""
    if not resolved.is_relative_to(root.resolve()):
        return "link leads outside DATA_DIR", ""
    if not resolved.is_file():
        return "not a file", ""
    return "", rel_path


def _cell(value: object) -> str:
    """A cell as stripped text ("" for missing); JSON numbers as their text."""
    if value is None:
        return ""
    return (value if isinstance(value, str) else json.dumps(value)).strip()
