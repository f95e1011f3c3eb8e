"""What a comparison found: the changes since a baseline run and the quality gates' results.

The report model carries these; ``reportgen.compare`` computes them from typed Reports.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class GateResult:
    """One gate checked against a run's results."""

    spec: str
    metric: str
    class_name: str | None
    op: str
    threshold: float
    actual: float | None  # None when the results do not hold the metric
    passed: bool
    reason: str  # one line, e.g. "recall of sushi is 0.62, under the minimum 0.7"
