"""The output folder: built in a hidden sibling, swapped in whole only when the run succeeds."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from reportgen.errors import OutputError

logger = logging.getLogger(__name__)

MARKER = "results.json"  # a folder holding this was written by reportgen and may be replaced
_stop_requested = False  # set by the CLI's SIGTERM handler, see request_stop


def request_stop(requested: bool = True) -> None:
    """Record (or clear) that this process was asked to stop; a staged output is then never published.

    The CLI's SIGTERM handler raises KeyboardInterrupt, but an exception raised while a weakref callback
    or ``__del__`` runs is only printed ("Exception ignored in ...") and dropped, and the run would go on
    to replace the previous output. With this flag set, ``staged_output`` discards the staging folder.
    """
    global _stop_requested
    _stop_requested = requested


def stop_requested() -> bool:
    """Whether this process was asked to stop (see :func:`request_stop`)."""
    return _stop_requested


@contextlib.contextmanager
def staged_output(out_dir: Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``out_dir`` in two renames.

    On any exception (Ctrl-C and SIGTERM included, see ``cli``) the staging folder is removed and
    an earlier ``out_dir`` stays as it was. After SIGKILL the next run cleans up what was left.
    """
    out_dir = Path(out_dir).expanduser().absolute()
    parent = out_dir.parent
    _prepare_parent(parent)
    _recover(out_dir)
    _check_replaceable(out_dir)
    stage = _make_stage(out_dir)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if _stop_requested:  # the interrupt was swallowed on its way up: still keep the previous output
        shutil.rmtree(stage, ignore_errors=True)
        raise KeyboardInterrupt
    _publish(stage, out_dir)


def _prepare_parent(parent: Path) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder '{parent}': {_why_not_created(parent, exc)}") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output folder '{parent}' is not writable")


def _why_not_created(parent: Path, exc: OSError) -> str:
    blocker = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        return f"'{blocker}' is a file, not a folder"
    return exc.strerror or str(exc)


def _make_stage(out_dir: Path) -> Path:
    """Create the hidden staging folder beside ``out_dir`` (root passes ``os.access`` even where it cannot write)."""
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent))
        stage.chmod(0o777 & ~_umask())  # mkdtemp makes it private (0700); the report folder is not secret
        return stage
    except OSError as exc:
        raise OutputError(f"cannot write in output folder '{out_dir.parent}': {exc.strerror or exc}") from exc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_replaceable(out_dir: Path) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise OutputError(f"output path '{out_dir}' exists and is not a folder")
    if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise OutputError(f"output folder '{out_dir}' is not empty and was not written by reportgen; not replacing it")


def _publish(stage: Path, out_dir: Path) -> None:
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-{os.getpid()}-", dir=out_dir.parent))
        os.rename(out_dir, old / "previous")
    os.rename(stage, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("wrote %s", out_dir)


def _recover(out_dir: Path) -> None:
    """Remove staging folders of dead runs; restore a previous output lost between two renames."""
    for leftover in sorted(out_dir.parent.glob(f".{out_dir.name}.*-*-*")):
        kind, pid = _leftover_kind_and_pid(leftover, out_dir.name)
        if kind is None or _alive(pid):
            continue
        previous = leftover / "previous"
        if kind == "old" and previous.is_dir() and not out_dir.exists():
            os.rename(previous, out_dir)
            logger.warning("restored the previous output from %s", leftover)
        shutil.rmtree(leftover, ignore_errors=True)


def _leftover_kind_and_pid(path: Path, name: str) -> tuple[str | None, int]:
    rest = path.name[len(name) + 2 :]  # after ".NAME."
    kind, _, tail = rest.partition("-")
    pid = tail.partition("-")[0]
    if kind not in ("tmp", "old") or not pid.isdigit():
        return None, 0
    return kind, int(pid)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as sorted, strict JSON (NaN is an error, not a silent token)."""
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n", "utf-8")


def write_predictions_csv(path: Path, predictions: Any, metadata: ImageMetadata | None = None) -> None:
    """One row per image: path, split, true and predicted label, one score column per class, then its metadata."""
    import csv

    names = predictions.class_names
    meta_names, by_path = metadata or ((), {})
    taken = {"path", "split", "true_label", "predicted_label", *(f"score_{n}" for n in names)}
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        header = ["path", "split", "true_label", "predicted_label", *(f"score_{n}" for n in names)]
        writer.writerow([safe_cell(h) for h in [*header, *metadata_headers(meta_names, taken)]])
        for i, rel_path in enumerate(predictions.rel_paths):
            probs = predictions.probs[i]
            labels = (names[predictions.labels[i]], names[int(probs.argmax())])
            row = [rel_path, predictions.splits[i], *labels]
            values = metadata_cells(by_path.get(rel_path, {}), meta_names)
            writer.writerow([*(safe_cell(c) for c in row), *(f"{p:.6f}" for p in probs), *map(safe_cell, values)])


ImageMetadata = tuple[tuple[str, ...], Mapping[str, Mapping[str, Any]]]  # (column names, rel_path -> values)


def metadata_headers(names: Sequence[str], taken: set[str], suffix: str = "") -> list[str]:
    """The CSV headers of metadata columns: their names, ``meta_`` in front where a table's column has the name."""
    return [(f"meta_{n}" if n + suffix in taken else n) + suffix for n in names]


def metadata_cells(values: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """An image's metadata as CSV text: whole numbers without '.0', missing values empty."""
    cells = []
    for name in names:
        value = values.get(name)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        cells.append("" if value is None else str(value))
    return cells


SUSPECT_COLUMNS = (
    "path",
    "split",
    "given_label",
    "suggested_label",
    "label_quality",
    "wrong_label_prob",
    "tier",
    "given_prob",
    "suggested_prob",
    "outlier_z",
    "decision",
)
DUPLICATE_COLUMNS = ("path_a", "path_b", "split_a", "split_b", "label_a", "label_b", "kind", "similarity", "leaks")


def write_suspects_csv(path: Path, audit: Any, metadata: ImageMetadata | None = None) -> None:
    """One row per image in a review tier ("likely_wrong", "worth_a_look", "no_class", or two joined by "+").

    ``decision`` is left empty for the reviewer (``relabel:CLASS``, ``remove`` or ``keep``; see README).
    """
    rows: dict[str, dict[str, str]] = {}
    checks = audit.label_issues
    tiers = (("likely_wrong", checks.suspects), ("worth_a_look", checks.worth_a_look)) if checks else ()
    for tier, suspects in tiers:
        for s in suspects:
            rows[s.image.rel_path] = {
                "path": s.image.rel_path,
                "split": s.image.split,
                "given_label": s.given_label,
                "suggested_label": s.suggested_label,
                "label_quality": f"{s.quality:.4f}",
                "wrong_label_prob": f"{s.wrong_prob:.4f}",
                "tier": tier,
                "given_prob": f"{s.given_prob:.4f}",
                "suggested_prob": f"{s.suggested_prob:.4f}",
            }
    for o in audit.outliers.outliers if audit.outliers else ():
        row = rows.setdefault(
            o.image.rel_path, {"path": o.image.rel_path, "split": o.image.split, "given_label": o.image.class_name}
        )
        row["tier"] = f"{row['tier']}+no_class" if "tier" in row else "no_class"
        row["outlier_z"] = f"{o.z:.2f}"
    names, by_path = metadata or ((), {})
    headers = metadata_headers(names, set(SUSPECT_COLUMNS))
    for row in rows.values():
        row.update(zip(headers, metadata_cells(by_path.get(row["path"], {}), names), strict=True))
    _write_rows(path, (*SUSPECT_COLUMNS, *headers), rows.values())


def write_duplicates_csv(path: Path, audit: Any, metadata: ImageMetadata | None = None) -> None:
    """One row per pair of copies, most harmful first (as in the report), with each image's metadata."""
    pairs = audit.duplicates.pairs if audit.duplicates else ()
    names, by_path = metadata or ((), {})
    heads = [metadata_headers(names, set(DUPLICATE_COLUMNS), s) for s in ("_a", "_b")]
    rows = (
        {
            "path_a": p.a.rel_path,
            "path_b": p.b.rel_path,
            "split_a": p.a.split,
            "split_b": p.b.split,
            "label_a": p.a.class_name,
            "label_b": p.b.class_name,
            "kind": p.kind,
            "similarity": "" if p.similarity is None else f"{p.similarity:.4f}",
            "leaks": "yes" if p.leaks else "no",
            **dict(zip(heads[0], metadata_cells(by_path.get(p.a.rel_path, {}), names), strict=True)),
            **dict(zip(heads[1], metadata_cells(by_path.get(p.b.rel_path, {}), names), strict=True)),
        }
        for p in pairs
    )
    columns = (*DUPLICATE_COLUMNS, *(h for pair in zip(*heads, strict=True) for h in pair))
    _write_rows(path, columns, rows)


SLICE_COLUMNS = ("slice", "source", "description", "images", "evaluated", "error_rate", "rest_error_rate")
SLICE_COLUMNS += ("mean_score", "rest_mean_score", "p_adjusted", "suspect_share", "members")


def write_slices_csv(path: Path, audit: Any) -> None:
    """One row per slice where the model fails, strongest first; ``members``: its image paths joined by ``;``."""
    slices = audit.slices.slices if audit.slices else ()
    rows = (
        {
            "slice": rank,
            "source": s.source,
            "description": s.description,
            "images": s.images,
            "evaluated": s.evaluated,
            "error_rate": f"{s.error_rate:.4f}",
            "rest_error_rate": f"{s.rest_error_rate:.4f}",
            "mean_score": f"{s.mean_score:.4f}",
            "rest_mean_score": f"{s.rest_mean_score:.4f}",
            "p_adjusted": f"{s.p_adjusted:.3g}",
            "suspect_share": "" if s.suspect_share is None else f"{s.suspect_share:.4f}",
            "members": ";".join(s.members),
        }
        for rank, s in enumerate(slices, 1)
    )
    _write_rows(path, SLICE_COLUMNS, rows)


def safe_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting ``= + - @`` (a formula) gets a leading quote.

    File and folder names are the user's, and ``=HYPERLINK(...)`` is a valid file name; numbers pass as they are.
    """
    if not isinstance(value, str) or not value.startswith(_FORMULA_STARTS):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value  # a negative number, not a formula


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _write_rows(path: Path, columns: tuple[str, ...], rows: Any) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows({key: safe_cell(value) for key, value in row.items()} for row in rows)
