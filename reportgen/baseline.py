"""Changes since the last audit: this run's results.json compared with a previous one (``--baseline``).

Images are matched by content (``sha256``), so a renamed file is not a change and a file moved to
another class folder is a relabelling. Where either run lacks the per-image list (``images``), the
data set part falls back to per-class counts. Classes may have been added or removed: their metrics
show ``None`` on the side where they did not exist, and confusions are compared only between classes
present in both runs. Every lookup in the results is defensive; only an unreadable or foreign baseline
is an error.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reportgen.errors import ReportgenError

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
EXAMPLE_LIMIT = 50  # image lists in the block are cut to this many; the counts are complete
CONFUSION_LIMIT = 10
KEPT, ADDED, REMOVED = "kept", "added", "removed"  # a class in both runs / only this run / only the baseline


@dataclass(frozen=True)
class Delta:
    """A number in the baseline and now; None on a side that does not have it."""

    before: float | None
    after: float | None
    delta: float | None  # after - before


@dataclass(frozen=True)
class ImageRef:
    """An image named in the changes."""

    rel_path: str | None
    sha256: str | None
    class_name: str | None  # its class (label) in the run it comes from
    previous_class: str | None = None  # for a relabelled image: its class in the baseline


@dataclass(frozen=True)
class ClassImageChanges:
    """How one class's images changed; the four movements are None when only counts could be compared."""

    class_name: str
    status: str  # KEPT, ADDED or REMOVED
    before: int
    after: int
    added: int | None  # images whose content is new to the data set
    removed: int | None  # images whose content left the data set
    moved_in: int | None  # content that was in another class in the baseline (relabelled to this one)
    moved_out: int | None  # content now in another class


@dataclass(frozen=True)
class DatasetChanges:
    """Images added, removed and relabelled, per class and in total."""

    by_content: bool  # False: a run lacks per-image hashes, so only counts were compared
    classes_added: tuple[str, ...]
    classes_removed: tuple[str, ...]
    per_class: tuple[ClassImageChanges, ...]
    images_added: int | None
    images_removed: int | None
    images_moved: int | None
    added: tuple[ImageRef, ...] = ()  # the first EXAMPLE_LIMIT of each list
    removed: tuple[ImageRef, ...] = ()
    moved: tuple[ImageRef, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class ClassMetricChanges:
    """Test-split metrics of one class, before and now."""

    class_name: str
    status: str  # KEPT, ADDED or REMOVED
    precision: Delta
    recall: Delta
    f1: Delta


@dataclass(frozen=True)
class LabelErrorChanges:
    """Suspected label errors that appeared or went away."""

    available: bool  # False when a run has no audit.label_issues.suspects list
    matched_by: str  # "sha256" or "rel_path"
    new: tuple[ImageRef, ...]
    resolved: tuple[ImageRef, ...]
    still_suspected: int
    note: str = ""


@dataclass(frozen=True)
class ConfusionChange:
    """A confusion (true class predicted as another) that became more frequent."""

    true_class: str
    predicted_class: str
    count: Delta
    fraction: Delta  # of the true class's test images


@dataclass(frozen=True)
class Changes:
    """The report's "Changes since the last audit" block."""

    baseline: str  # where the previous results.json was read
    baseline_started_at: str | None
    accuracy: Delta
    macro_f1: Delta
    dataset: DatasetChanges
    per_class: tuple[ClassMetricChanges, ...]
    label_errors: LabelErrorChanges
    confusions_grown: tuple[ConfusionChange, ...]  # largest rise in fraction first, at most CONFUSION_LIMIT


def load_baseline(path: Path) -> dict[str, Any]:
    """Read a previous run's results: ``path`` is its output folder or its results.json.

    Raises:
        ReportgenError: the path is missing, not JSON, or not a reportgen results.json.
    """
    path = Path(path).expanduser()
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        where = f"'{path}' has no {RESULTS_FILE}" if path.is_dir() else f"'{path}' does not exist"
        raise ReportgenError(f"baseline {where}; pass a previous output folder or its {RESULTS_FILE}")
    try:
        results = json.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportgenError(f"cannot read baseline '{file}': {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ReportgenError(f"baseline '{file}' is not valid JSON: {exc}") from exc
    _check_results(results, file)
    return results


def _check_results(results: Any, file: Path) -> None:
    if not isinstance(results, dict) or not isinstance(results.get("schema_version"), int):
        raise ReportgenError(f"baseline '{file}' is not a reportgen results.json (no schema_version)")
    if not isinstance(_get(results, "metrics.accuracy"), (int, float)) or not _class_names(results):
        raise ReportgenError(f"baseline '{file}' lacks metrics.accuracy or dataset.class_names")


def compare_results(current: dict[str, Any], previous: dict[str, Any], *, baseline: str = "") -> Changes:
    """Compare this run's results with the baseline's (both as in results.json).

    Raises:
        ReportgenError: the baseline was written by a newer reportgen (a higher ``schema_version``).
    """
    now, then = current.get("schema_version", 0), previous.get("schema_version", 0)
    if isinstance(then, int) and isinstance(now, int) and then > now:
        raise ReportgenError(
            f"baseline '{baseline}' has results schema {then}, newer than this reportgen's {now}; upgrade reportgen"
        )
    return Changes(
        baseline=baseline,
        baseline_started_at=_get(previous, "run.started_at"),
        accuracy=_delta(_get(previous, "metrics.accuracy"), _get(current, "metrics.accuracy")),
        macro_f1=_delta(_get(previous, "metrics.macro_f1"), _get(current, "metrics.macro_f1")),
        dataset=dataset_changes(current, previous),
        per_class=class_metric_changes(current, previous),
        label_errors=label_error_changes(current, previous),
        confusions_grown=grown_confusions(current, previous),
    )


def changes_to_dict(changes: Changes) -> dict[str, Any]:
    """The block as JSON-able primitives (tuples become lists)."""
    return json.loads(json.dumps(asdict(changes)))


def dataset_changes(current: dict[str, Any], previous: dict[str, Any]) -> DatasetChanges:
    """Images added, removed and relabelled per class, by content hash when both runs list their images."""
    names_now, names_then = _class_names(current), _class_names(previous)
    added_classes = tuple(n for n in names_now if n not in names_then)
    removed_classes = tuple(n for n in names_then if n not in names_now)
    after, before = _images(current), _images(previous)
    if after is None or before is None:
        return _count_changes(current, previous, added_classes, removed_classes)
    then, now = _index(before), _index(after)
    rows, added, removed, moved = [], [], [], []
    for name in _union(names_now, names_then):
        status = ADDED if name in added_classes else (REMOVED if name in removed_classes else KEPT)
        row, refs = _class_content_changes(name, status, then, now)
        rows.append(row)
        added += refs[0]
        removed += refs[1]
        moved += refs[2]
    return DatasetChanges(
        True,
        added_classes,
        removed_classes,
        tuple(rows),
        images_added=sum(r.added or 0 for r in rows),
        images_removed=sum(r.removed or 0 for r in rows),
        images_moved=sum(r.moved_in or 0 for r in rows),
        added=tuple(added[:EXAMPLE_LIMIT]),
        removed=tuple(removed[:EXAMPLE_LIMIT]),
        moved=tuple(moved[:EXAMPLE_LIMIT]),
    )


@dataclass(frozen=True)
class _Index:
    """One run's images, indexed by content."""

    by_class: dict[str, Counter[str]]  # class -> content hash -> copies
    paths: dict[tuple[str, str], list[str]]  # (class, content hash) -> rel_paths
    classes_of: dict[str, list[str]]  # content hash -> classes holding it, first seen first

    def other_class(self, sha: str, name: str) -> str | None:
        """A class other than ``name`` holding content ``sha``, or None."""
        return next((c for c in self.classes_of.get(sha, ()) if c != name), None)

    def refs(self, name: str, sha: str, n: int, *, avoid: _Index) -> list[ImageRef]:
        """``n`` images of class ``name`` with content ``sha``, preferring paths ``avoid`` does not have."""
        known = set(avoid.paths.get((name, sha), ()))
        paths = sorted(self.paths.get((name, sha), ()), key=lambda p: p in known)  # stable: new paths first
        return [ImageRef(p, sha, name) for p in paths[:n]]


def _index(images: list[dict[str, Any]]) -> _Index:
    by_class: dict[str, Counter[str]] = {}
    paths: dict[tuple[str, str], list[str]] = {}
    classes_of: dict[str, list[str]] = {}
    for img in images:
        label, sha = img["label"], img["sha256"]
        by_class.setdefault(label, Counter())[sha] += 1
        paths.setdefault((label, sha), []).append(img["rel_path"])
        if label not in classes_of.setdefault(sha, []):
            classes_of[sha].append(label)
    return _Index(by_class, paths, classes_of)


def _class_content_changes(
    name: str, status: str, then: _Index, now: _Index
) -> tuple[ClassImageChanges, tuple[list[ImageRef], list[ImageRef], list[ImageRef]]]:
    """One class's row, and its added, removed and moved-in images."""
    before, after = then.by_class.get(name, Counter()), now.by_class.get(name, Counter())
    added, moved_in, removed, moved_out = [], [], [], 0
    for sha, n in (after - before).items():  # multiset difference: copies gained
        previous_class = then.other_class(sha, name)
        refs = now.refs(name, sha, n, avoid=then)
        if previous_class is None:
            added += refs
        else:
            moved_in += [ImageRef(r.rel_path, sha, name, previous_class) for r in refs]
    for sha, n in (before - after).items():  # copies lost
        if now.other_class(sha, name) is None:
            removed += then.refs(name, sha, n, avoid=now)
        else:
            moved_out += n
    row = ClassImageChanges(
        name,
        status,
        before=before.total(),
        after=after.total(),
        added=len(added),
        removed=len(removed),
        moved_in=len(moved_in),
        moved_out=moved_out,
    )
    return row, (added, removed, moved_in)


def _count_changes(
    current: dict[str, Any], previous: dict[str, Any], added: tuple[str, ...], removed: tuple[str, ...]
) -> DatasetChanges:
    counts_now, counts_then = _class_counts(current), _class_counts(previous)
    rows = []
    for name in _union(_class_names(current), _class_names(previous)):
        status = REMOVED if name in removed else (ADDED if name in added else KEPT)
        before, after = counts_then.get(name, 0), counts_now.get(name, 0)
        rows.append(ClassImageChanges(name, status, before, after, None, None, None, None))
    missing = "this run" if _images(current) is None else "the baseline"
    note = f"{missing} has no per-image list with content hashes; only image counts per class were compared"
    return DatasetChanges(False, added, removed, tuple(rows), None, None, None, note=note)


def class_metric_changes(current: dict[str, Any], previous: dict[str, Any]) -> tuple[ClassMetricChanges, ...]:
    """Precision, recall and F1 of every class in either run, before and now."""
    rows_now, rows_then = _per_class(current), _per_class(previous)
    changes = []
    for name in _union(_class_names(current), _class_names(previous)):
        now, then = rows_now.get(name, {}), rows_then.get(name, {})
        status = KEPT if name in rows_now and name in rows_then else (ADDED if name in rows_now else REMOVED)
        deltas = {f: _delta(then.get(f), now.get(f)) for f in ("precision", "recall", "f1")}
        changes.append(ClassMetricChanges(name, status, **deltas))
    return tuple(changes)


def label_error_changes(current: dict[str, Any], previous: dict[str, Any]) -> LabelErrorChanges:
    """Suspected label errors new in this run and gone since the baseline."""
    now, then = _suspects(current), _suspects(previous)
    if now is None or then is None:
        missing = "this run" if now is None else "the baseline"
        return LabelErrorChanges(False, "", (), (), 0, note=f"{missing} has no audit.label_issues.suspects list")
    key = "sha256" if all(s.get("sha256") for s in now + then) else "rel_path"
    if not all(s.get(key) for s in now + then):
        note = "suspects carry no sha256 or rel_path (nor an image_idx into the per-image list)"
        return LabelErrorChanges(False, "", (), (), 0, note=note)
    keys_now, keys_then = {s.get(key) for s in now}, {s.get(key) for s in then}
    new = tuple(_suspect_ref(s, current) for s in now if s.get(key) not in keys_then)
    resolved = tuple(_suspect_ref(s, previous) for s in then if s.get(key) not in keys_now)
    return LabelErrorChanges(True, key, new, resolved, len(keys_now & keys_then))


def grown_confusions(current: dict[str, Any], previous: dict[str, Any]) -> tuple[ConfusionChange, ...]:
    """Confusions between classes of both runs whose share of the true class's test images rose."""
    now, then = _confusions(current), _confusions(previous)
    grown = []
    for pair, (count, fraction) in now.items():
        if pair not in then:  # a class new in this run: nothing to compare with
            continue
        count_then, fraction_then = then[pair]
        if count > 0 and fraction > fraction_then + 1e-9:
            grown.append(ConfusionChange(*pair, _delta(count_then, count), _delta(fraction_then, fraction)))
    grown.sort(key=lambda c: (-(c.fraction.delta or 0.0), -(c.count.after or 0), c.true_class, c.predicted_class))
    return tuple(grown[:CONFUSION_LIMIT])


def _confusions(results: dict[str, Any]) -> dict[tuple[str, str], tuple[int, float]]:
    """Off-diagonal cells as (true, predicted) -> (count, fraction of the row); {} when unusable."""
    names, matrix = _class_names(results), _get(results, "metrics.confusion")
    if not isinstance(matrix, list) or len(matrix) != len(names):
        return {}
    cells = {}
    for t, row in enumerate(matrix):
        if not isinstance(row, list) or len(row) != len(names):
            return {}
        total = sum(v for v in row if isinstance(v, (int, float)))
        for p, count in enumerate(row):
            if p != t and isinstance(count, (int, float)):
                cells[(names[t], names[p])] = (int(count), round(count / total, 6) if total else 0.0)
    return cells


def _get(results: Any, dotted: str) -> Any:
    value = results
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _class_names(results: dict[str, Any]) -> tuple[str, ...]:
    names = _get(results, "dataset.class_names")
    return tuple(str(n) for n in names) if isinstance(names, list) else ()


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return first + tuple(n for n in second if n not in first)


def _delta(before: Any, after: Any) -> Delta:
    b = float(before) if isinstance(before, (int, float)) and not isinstance(before, bool) else None
    a = float(after) if isinstance(after, (int, float)) and not isinstance(after, bool) else None
    return Delta(b, a, round(a - b, 6) if a is not None and b is not None else None)


def _images(results: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The per-image list with labels as class names, or None when absent or incomplete."""
    images = results.get("images", _get(results, "dataset.images"))
    if not isinstance(images, list):
        return None
    names = _class_names(results)
    plain = []
    for img in images:
        if not isinstance(img, dict) or not img.get("sha256") or "label" not in img:
            return None
        label = img["label"]
        if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(names):
            label = names[label]
        plain.append({"rel_path": img.get("rel_path"), "sha256": img["sha256"], "label": str(label)})
    return plain


def _class_counts(results: dict[str, Any]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    split_counts = _get(results, "dataset.split_counts")
    for per_class in split_counts.values() if isinstance(split_counts, dict) else ():
        if isinstance(per_class, dict):
            counts.update({str(k): int(v) for k, v in per_class.items() if isinstance(v, int)})
    return dict(counts)


def _per_class(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rows = _get(results, "metrics.per_class")
    if not isinstance(rows, list):
        return {}
    return {str(r["class_name"]): r for r in rows if isinstance(r, dict) and "class_name" in r}


def _suspects(results: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The suspects, each with its rel_path and sha256 filled in from ``images`` through ``image_idx``."""
    suspects = _get(results, "audit.label_issues.suspects")
    if not isinstance(suspects, list):
        return None
    images = _images(results) or []
    filled = []
    for suspect in (s for s in suspects if isinstance(s, dict)):
        idx = suspect.get("image_idx")
        if isinstance(idx, int) and 0 <= idx < len(images):
            suspect = {"rel_path": images[idx]["rel_path"], "sha256": images[idx]["sha256"], **suspect}
        filled.append(suspect)
    return filled


def _suspect_ref(suspect: dict[str, Any], results: dict[str, Any]) -> ImageRef:
    keys = ("given_label", "given_idx", "label", "true_class", "class_name")
    label = next((suspect[k] for k in keys if k in suspect), None)
    names = _class_names(results)
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(names):
        label = names[label]
    return ImageRef(suspect.get("rel_path"), suspect.get("sha256"), None if label is None else str(label))
