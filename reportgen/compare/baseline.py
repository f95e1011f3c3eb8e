"""Changes since the last audit: this run's Report compared with a previous run's (``--baseline``).

The previous run is read from its results.json through ``Report.from_dict``, so only the layout this
reportgen writes is accepted. Images are matched by content (``sha256``, from ``Report.images``), so a
renamed file is not a change and a file moved to another class folder is a relabelling. Classes may
have been added or removed: their metrics show ``None`` on the side where they did not exist, and
confusions are compared only between classes present in both runs.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reportgen.analysis.metrics import ClassMetrics
from reportgen.errors import ReportgenError
from reportgen.report import SCHEMA_VERSION, ImageEntry, Report
from reportgen.report.comparison import (
    ADDED,
    KEPT,
    REMOVED,
    Changes,
    ClassImageChanges,
    ClassMetricChanges,
    ConfusionChange,
    DatasetChanges,
    Delta,
    ImageRef,
    LabelErrorChanges,
)
from reportgen.report.serialize import SchemaError

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
EXAMPLE_LIMIT = 50  # image lists in the block are cut to this many; the counts are complete
CONFUSION_LIMIT = 10


def load_baseline(path: Path) -> Report:
    """Read a previous run's Report: ``path`` is its output folder or its results.json.

    Raises:
        ReportgenError: one line naming the file: it is missing, not JSON, not a reportgen results.json, of
            another layout (naming the field) or written by a newer reportgen.
    """
    path = Path(path).expanduser()
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        where = f"'{path}' has no {RESULTS_FILE}" if path.is_dir() else f"'{path}' does not exist"
        raise ReportgenError(f"baseline {where}; pass a previous output folder or its {RESULTS_FILE}")
    try:
        data = json.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportgenError(f"cannot read baseline '{file}': {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ReportgenError(f"baseline '{file}' is not valid JSON: {exc}") from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise ReportgenError(f"baseline '{file}' is not a reportgen results.json (no schema_version)")
    if version > SCHEMA_VERSION:
        raise ReportgenError(
            f"baseline '{file}' has results schema {version}, newer than this reportgen's {SCHEMA_VERSION}; "
            "upgrade reportgen"
        )
    try:
        return Report.from_dict(data)
    except SchemaError as exc:
        raise ReportgenError(f"baseline '{file}' is not a results.json of this reportgen's layout: {exc}") from exc


def compare_results(current: Report, previous: Report, *, baseline: str) -> Changes:
    """Compare this run's report with the baseline's; ``baseline`` says where the baseline was read."""
    return Changes(
        baseline=baseline,
        baseline_started_at=previous.run.started_at,
        accuracy=_delta(previous.metrics.accuracy, current.metrics.accuracy),
        macro_f1=_delta(previous.metrics.macro_f1, current.metrics.macro_f1),
        dataset=dataset_changes(current, previous),
        per_class=class_metric_changes(current, previous),
        label_errors=label_error_changes(current, previous),
        confusions_grown=grown_confusions(current, previous),
    )


def dataset_changes(current: Report, previous: Report) -> DatasetChanges:
    """Images added, removed and relabelled per class, matched by content hash."""
    names_now, names_then = current.dataset.class_names, previous.dataset.class_names
    added_classes = tuple(n for n in names_now if n not in names_then)
    removed_classes = tuple(n for n in names_then if n not in names_now)
    then, now = _index(previous.images), _index(current.images)
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


def _index(images: tuple[ImageEntry, ...]) -> _Index:
    by_class: dict[str, Counter[str]] = {}
    paths: dict[tuple[str, str], list[str]] = {}
    classes_of: dict[str, list[str]] = {}
    for img in images:
        label, sha = img.label, img.sha256
        by_class.setdefault(label, Counter())[sha] += 1
        paths.setdefault((label, sha), []).append(img.rel_path)
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


def class_metric_changes(current: Report, previous: Report) -> tuple[ClassMetricChanges, ...]:
    """Precision, recall and F1 of every class in either run, before and now."""
    rows_now = {m.class_name: m for m in current.metrics.per_class}
    rows_then = {m.class_name: m for m in previous.metrics.per_class}
    changes = []
    for name in _union(current.dataset.class_names, previous.dataset.class_names):
        now, then = rows_now.get(name), rows_then.get(name)
        status = KEPT if now is not None and then is not None else (ADDED if now is not None else REMOVED)
        changes.append(
            ClassMetricChanges(
                name,
                status,
                precision=_class_delta(then, now, lambda m: m.precision),
                recall=_class_delta(then, now, lambda m: m.recall),
                f1=_class_delta(then, now, lambda m: m.f1),
            )
        )
    return tuple(changes)


def label_error_changes(current: Report, previous: Report) -> LabelErrorChanges:
    """Suspected label errors new in this run and gone since the baseline."""
    now, then = _suspects(current), _suspects(previous)
    if now is None or then is None:
        missing = "this run" if now is None else "the baseline"
        return LabelErrorChanges(False, "", (), (), 0, note=f"{missing} has no audit.label_issues.suspects list")
    by_content = all(ref.sha256 for ref in now + then)
    key = (lambda ref: ref.sha256) if by_content else (lambda ref: ref.rel_path)
    keys_now, keys_then = {key(ref) for ref in now}, {key(ref) for ref in then}
    new = tuple(ref for ref in now if key(ref) not in keys_then)
    resolved = tuple(ref for ref in then if key(ref) not in keys_now)
    return LabelErrorChanges(True, "sha256" if by_content else "rel_path", new, resolved, len(keys_now & keys_then))


def grown_confusions(current: Report, previous: Report) -> tuple[ConfusionChange, ...]:
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


def _confusions(report: Report) -> dict[tuple[str, str], tuple[int, float]]:
    """Off-diagonal cells as (true, predicted) -> (count, fraction of the row); {} when the matrix is not n x n."""
    names, matrix = report.dataset.class_names, report.metrics.confusion
    if len(matrix) != len(names) or any(len(row) != len(names) for row in matrix):
        return {}
    cells = {}
    for t, row in enumerate(matrix):
        total = sum(row)
        for p, count in enumerate(row):
            if p != t:
                cells[(names[t], names[p])] = (count, round(count / total, 6) if total else 0.0)
    return cells


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return first + tuple(n for n in second if n not in first)


def _delta(before: float | None, after: float | None) -> Delta:
    b = None if before is None else float(before)
    a = None if after is None else float(after)
    return Delta(b, a, round(a - b, 6) if a is not None and b is not None else None)


def _class_delta(then: ClassMetrics | None, now: ClassMetrics | None, read: Callable[[ClassMetrics], float]) -> Delta:
    """``read`` of a class's test metrics before and now; None on a side where the class did not exist."""
    return _delta(None if then is None else read(then), None if now is None else read(now))


def _suspects(report: Report) -> tuple[ImageRef, ...] | None:
    """The suspected label errors, each with its content hash from ``images``; None when the check did not run."""
    checks = report.audit.label_issues if report.audit else None
    if checks is None:
        return None
    images = report.images
    return tuple(
        ImageRef(
            s.image.rel_path,
            images[s.image_idx].sha256 if 0 <= s.image_idx < len(images) else None,
            s.given_label,
        )
        for s in checks.suspects
    )
