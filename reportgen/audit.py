"""The audit's part of the report model: the data-defect finders' results, told by file and class name.

The finders in ``reportgen.analysis`` speak in image and class indices; this module turns their results
into frozen, JSON-able views that name images by path and class by name, point to the thumbnails written
for them, and hand the class narratives their per-class facts. Renderers read only these views. The views'
texts (what a tier meant, how a check worked, its rule) come from ``reportgen.narrative.audit``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from reportgen.analysis.calibration import Calibration, CalibrationVerdict
from reportgen.analysis.duplicates import Duplicates
from reportgen.analysis.health import Health
from reportgen.analysis.label_issues import LabelIssues, LabelSuspect
from reportgen.analysis.outliers import Outliers
from reportgen.analysis.shortcuts import Shortcuts
from reportgen.analysis.stamps import Stamps
from reportgen.narrative.audit import (
    LIKELY_WRONG_MEANING,
    NO_CLASS_MEANING,
    WORTH_A_LOOK_MEANING,
    duplicate_threshold_text,
    label_caution,
    label_method_text,
    shortcut_rule,
    stamp_rule,
)

SHOWN_SUSPECTS = 24  # likely-wrong suspects with thumbnails in the report; results.json lists all
SHOWN_REVIEW = 12  # worth-a-look suspects with thumbnails
SHOWN_OUTLIERS = 12  # images that belong to no class, with thumbnails
SHOWN_PAIRS = 16  # duplicate pairs shown side by side
SHOWN_HEALTH = 24  # image-health issues with thumbnails
WEAK_AGREEMENT = 0.85  # out-of-sample agreement with the labels below which the label check warns (food9-64px: 0.72)

# (image index, class index to explain or None, prefix) -> thumbnail path, Grad-CAM overlay path or None
AssetFn = Callable[[int, int | None], tuple[str, str | None]]


@dataclass(frozen=True)
class AuditImage:
    """An image named by an audit finding."""

    image_idx: int  # row of the data set (``images`` in results.json)
    rel_path: str
    class_name: str  # its given label
    split: str
    thumbnail: str | None = None  # relative to the output folder
    cam: str | None = None  # Grad-CAM overlay for the class the finding is about


@dataclass(frozen=True)
class SuspectView:
    """A suspected label error."""

    image_idx: int
    image: AuditImage
    given_label: str
    suggested_label: str
    given_prob: float  # out-of-sample probability of the given label
    suggested_prob: float  # out-of-sample probability of the suggested label
    quality: float  # label quality: temperature-scaled probability of the given label, low = likely wrong
    predicted_label: str  # what the audited (fine-tuned) model predicts for it
    wrong_prob: float = 0.0  # posterior probability that the given label is wrong


@dataclass(frozen=True)
class LabelCheck:
    """Suspected label errors over the whole data set."""

    method: str  # "embeddings" | "finetune"
    method_text: str  # how the out-of-sample probabilities were made, for the report
    folds: int
    n_images: int
    total: int  # suspects
    noise_rate: float
    noise_rate_method: str
    probs_accuracy: float  # agreement of the out-of-sample probabilities with the given labels
    filter_by: str
    rank_by: str
    per_class: dict[str, int]  # given class -> suspects
    suggested: dict[str, dict[str, int]]  # given class -> suggested class -> suspects
    class_noise_rates: dict[str, float]
    suspects: tuple[SuspectView, ...]  # "likely wrong", most suspect first; the first ``shown`` have thumbnails
    shown: int
    caution: str = ""  # why the suspects deserve extra care, when the probabilities are weak
    worth_a_look: tuple[SuspectView, ...] = ()  # the next ones by rank; the first ``review_shown`` have thumbnails
    review_shown: int = 0
    temperature: float = 1.0  # fitted temperature of the out-of-sample probabilities
    likely_meaning: str = ""  # what the tier meant on planted data, for the report
    review_meaning: str = ""


@dataclass(frozen=True)
class OutlierView:
    """An image that seems to belong to no class."""

    image: AuditImage
    nearest_class: str  # the class it is least far from
    distance: float
    z: float


@dataclass(frozen=True)
class OutlierCheck:
    """Images far from every class ("belongs to no class?")."""

    method: str
    min_z: float
    n_images: int
    total: int
    outliers: tuple[OutlierView, ...]
    shown: int
    meaning: str


@dataclass(frozen=True)
class PairView:
    """Two copies of one picture."""

    a: AuditImage
    b: AuditImage
    kind: str  # "exact" | "near"
    similarity: float | None
    across_classes: bool
    leaks: bool  # copies in different splits


@dataclass(frozen=True)
class DuplicateCheck:
    """Exact and near-duplicates and the leakage they cause."""

    threshold: float | None
    threshold_text: str
    exact: int
    near: int
    total: int  # pairs
    across_classes: int
    across_splits: int
    leaks_by_splits: dict[str, int]
    images_involved: int
    groups: int
    pairs: tuple[PairView, ...]  # most harmful first; the first ``shown`` have thumbnails
    shown: int
    truncated: bool


@dataclass(frozen=True)
class CalibrationCheck:
    """Whether the test scores read as probabilities."""

    n_images: int
    ece: float
    ece_noise_floor: float
    mce: float
    mean_confidence: float
    accuracy: float
    brier: float
    readable_as_probabilities: bool
    direction: str
    text: str


@dataclass(frozen=True)
class ShortcutClass:
    """Where one class's evidence sits."""

    class_name: str
    n_maps: int
    concentration: float
    border_share: float
    centre_offset: float
    region: str
    consistency: float
    peak_spread: float
    flagged: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ShortcutCheck:
    """Mean Grad-CAM evidence per class over its correctly classified test images."""

    classes: tuple[ShortcutClass, ...]
    flagged: tuple[str, ...]
    min_maps: int
    rule: str


@dataclass(frozen=True)
class StampClass:
    """Whether one class's images share a fixed pixel pattern."""

    class_name: str
    n_images: int
    fixed_cells: int
    area: float  # share of the image the fixed cells cover
    region: str
    flagged: bool
    reason: str


@dataclass(frozen=True)
class StampCheck:
    """Fixed patterns (stamps, watermarks, frames) shared by one class's images, found in the pixels."""

    classes: tuple[StampClass, ...]
    flagged: tuple[str, ...]
    rule: str


@dataclass(frozen=True)
class HealthView:
    """An image failing a health check."""

    image: AuditImage
    checks: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class HealthCheck:
    """Image-health problems, counted per check and class."""

    total: int
    counts: dict[str, int]
    per_class: dict[str, dict[str, int]]
    colour_dataset: bool
    thresholds: dict[str, float]
    issues: tuple[HealthView, ...]
    shown: int


@dataclass(frozen=True)
class Audit:
    """Everything the data-defect checks found; a field is None when its check did not run."""

    label_issues: LabelCheck | None = None
    duplicates: DuplicateCheck | None = None
    calibration: CalibrationCheck | None = None
    outliers: OutlierCheck | None = None
    shortcuts: ShortcutCheck | None = None
    stamps: StampCheck | None = None
    health: HealthCheck | None = None
    not_run: dict[str, str] = field(default_factory=dict)  # check -> why it did not run


@dataclass(frozen=True)
class ClassAuditFacts:
    """What the data-defect checks found for one class; every default means "nothing found / not run"."""

    label_suspects: int = 0  # images of this class flagged as likely mislabelled by the label check
    suggested_labels: dict[str, int] = field(default_factory=dict)  # suggested class -> suspects
    leaked_test_images: int = 0  # test images of this class with an exact or near copy in the training split
    cross_class_duplicates: int = 0  # images of this class with an exact or near copy labelled as another class
    duplicate_classes: dict[str, int] = field(default_factory=dict)  # other class -> such images
    shortcut: bool = False  # the Grad-CAM shortcut check flags this class
    shortcut_reason: str = ""  # the check's reason, a sentence
    health_issues: int = 0  # images of this class failing an image-health check


@dataclass(frozen=True)
class DatasetIndex:
    """What the views need to name an image."""

    rel_paths: tuple[str, ...]
    labels: np.ndarray
    splits: np.ndarray
    class_names: tuple[str, ...]

    def image(self, idx: int, assets: tuple[str, str | None] | None = None) -> AuditImage:
        """The view of image ``idx``, with its thumbnail and overlay when written."""
        thumb, cam = assets if assets else (None, None)
        return AuditImage(
            int(idx), self.rel_paths[idx], self.class_names[int(self.labels[idx])], str(self.splits[idx]), thumb, cam
        )


def label_check_view(
    issues: LabelIssues,
    index: DatasetIndex,
    predicted: np.ndarray,
    *,
    method: str,
    folds: int,
    assets: AssetFn | None,
    shown: int = SHOWN_SUSPECTS,
    review_shown: int = SHOWN_REVIEW,
) -> LabelCheck:
    """Name the suspects of both tiers; the first of each get a thumbnail and a Grad-CAM for the suggested class."""
    names = index.class_names
    suggested: dict[str, dict[str, int]] = {}
    for given, row in enumerate(issues.suspect_flows):
        cells = {names[j]: int(n) for j, n in enumerate(row) if n}
        if cells:
            suggested[names[given]] = cells
    return LabelCheck(
        method=method,
        method_text=label_method_text(method, folds),
        folds=folds,
        n_images=issues.n_images,
        total=len(issues.suspects),
        noise_rate=round(issues.noise_rate, 4),
        noise_rate_method=issues.noise_rate_method,
        probs_accuracy=round(issues.probs_accuracy, 4),
        filter_by=issues.filter_by,
        rank_by=issues.rank_by,
        per_class={names[i]: int(n) for i, n in enumerate(issues.suspects_per_class)},
        suggested=suggested,
        class_noise_rates={names[i]: round(r, 4) for i, r in enumerate(issues.class_noise_rates)},
        suspects=_suspect_views(issues.suspects, index, predicted, assets, shown),
        shown=min(shown, len(issues.suspects)),
        caution="" if issues.probs_accuracy >= WEAK_AGREEMENT else label_caution(issues.probs_accuracy, WEAK_AGREEMENT),
        worth_a_look=_suspect_views(issues.worth_a_look, index, predicted, assets, review_shown),
        review_shown=min(review_shown, len(issues.worth_a_look)),
        temperature=round(issues.temperature, 4),
        likely_meaning=LIKELY_WRONG_MEANING,
        review_meaning=WORTH_A_LOOK_MEANING,
    )


def _suspect_views(
    suspects: tuple[LabelSuspect, ...],
    index: DatasetIndex,
    predicted: np.ndarray,
    assets: AssetFn | None,
    shown: int,
) -> tuple[SuspectView, ...]:
    names = index.class_names
    return tuple(
        SuspectView(
            s.image_idx,
            index.image(s.image_idx, assets(s.image_idx, s.suggested_idx) if assets and rank < shown else None),
            names[s.given_idx],
            names[s.suggested_idx],
            round(s.given_prob, 4),
            round(s.suggested_prob, 4),
            round(s.quality, 4),
            names[int(predicted[s.image_idx])],
            round(s.wrong_prob, 4),
        )
        for rank, s in enumerate(suspects)
    )


def outlier_view(
    outliers: Outliers, index: DatasetIndex, *, assets: AssetFn | None, shown: int = SHOWN_OUTLIERS
) -> OutlierCheck:
    """Name the images that belong to no class; the first ``shown`` get thumbnails."""
    views = tuple(
        OutlierView(
            index.image(o.image_idx, assets(o.image_idx, None) if assets and rank < shown else None),
            index.class_names[o.nearest_class_idx],
            round(o.distance, 4),
            round(o.z, 2),
        )
        for rank, o in enumerate(outliers.outliers)
    )
    return OutlierCheck(
        method=outliers.method,
        min_z=outliers.min_z,
        n_images=outliers.n_images,
        total=len(views),
        outliers=views,
        shown=min(shown, len(views)),
        meaning=NO_CLASS_MEANING,
    )


def duplicate_check_view(
    dups: Duplicates, index: DatasetIndex, *, assets: AssetFn | None, shown: int = SHOWN_PAIRS
) -> DuplicateCheck:
    """Name the pairs; the first ``shown`` get thumbnails of both copies."""
    pairs = []
    for rank, p in enumerate(dups.pairs):
        with_files = assets is not None and rank < shown
        a = index.image(p.idx_a, assets(p.idx_a, None) if with_files else None)
        b = index.image(p.idx_b, assets(p.idx_b, None) if with_files else None)
        sim = None if p.similarity is None else round(p.similarity, 4)
        pairs.append(PairView(a, b, p.kind, sim, p.across_classes, p.leaks))
    return DuplicateCheck(
        threshold=dups.threshold,
        threshold_text=duplicate_threshold_text(dups.threshold),
        exact=dups.n_exact_pairs,
        near=dups.n_near_pairs,
        total=dups.n_exact_pairs + dups.n_near_pairs,
        across_classes=dups.n_across_classes,
        across_splits=dups.n_leaking,
        leaks_by_splits=dict(dups.leaks_by_splits),
        images_involved=dups.n_images_involved,
        groups=len(dups.groups),
        pairs=tuple(pairs),
        shown=min(shown, len(pairs)),
        truncated=dups.truncated,
    )


def calibration_view(cal: Calibration, verdict: CalibrationVerdict) -> CalibrationCheck:
    """The calibration figures and their reading."""
    return CalibrationCheck(
        n_images=cal.n_images,
        ece=round(cal.ece, 4),
        ece_noise_floor=round(cal.ece_noise_floor, 4),
        mce=round(cal.mce, 4),
        mean_confidence=round(cal.mean_confidence, 4),
        accuracy=round(cal.accuracy, 4),
        brier=round(cal.brier, 4),
        readable_as_probabilities=verdict.readable_as_probabilities,
        direction=verdict.direction,
        text=verdict.text,
    )


def shortcut_view(shortcuts: Shortcuts, class_names: Sequence[str]) -> ShortcutCheck:
    """Per-class evidence figures and flags, by class name."""
    t = shortcuts.thresholds
    classes = tuple(
        ShortcutClass(
            class_names[c.class_idx],
            c.n_maps,
            round(c.concentration, 3),
            round(c.border_share, 3),
            round(c.centre_offset, 3),
            c.region,
            round(c.consistency, 3),
            round(c.peak_spread, 3),
            bool(c.flags),
            tuple(f.reason for f in c.flags),
        )
        for c in shortcuts.classes
    )
    return ShortcutCheck(classes, tuple(class_names[i] for i in shortcuts.flagged), t.min_maps, shortcut_rule(t))


def stamp_view(stamps: Stamps, class_names: Sequence[str]) -> StampCheck:
    """Per-class fixed-pattern figures and flags, by class name."""
    classes = tuple(
        StampClass(class_names[c.class_idx], c.n_images, c.fixed_cells, c.area, c.region, c.flagged, c.reason)
        for c in stamps.classes
    )
    return StampCheck(classes, tuple(class_names[i] for i in stamps.flagged), stamp_rule(stamps.thresholds))


def health_view(
    health: Health, index: DatasetIndex, *, assets: AssetFn | None, shown: int = SHOWN_HEALTH
) -> HealthCheck:
    """Name the unhealthy images; the first ``shown`` get thumbnails."""
    issues = tuple(
        HealthView(
            index.image(i.image_idx, assets(i.image_idx, None) if assets and rank < shown else None),
            i.checks,
            i.reasons,
        )
        for rank, i in enumerate(health.issues)
    )
    names = index.class_names
    t = health.thresholds
    return HealthCheck(
        total=len(health.issues),
        counts=dict(health.counts),
        per_class={names[c]: dict(counts) for c, counts in enumerate(health.counts_per_class) if counts},
        colour_dataset=health.colour_dataset,
        thresholds={k: float(v) for k, v in vars(t).items()},
        issues=issues,
        shown=min(shown, len(issues)),
    )


def class_facts(audit: Audit, class_names: Sequence[str]) -> dict[str, ClassAuditFacts]:
    """Per-class facts for the narratives and the summary's findings."""
    suspects: Counter[str] = Counter()
    suggested: dict[str, Counter[str]] = defaultdict(Counter)
    if audit.label_issues:
        for s in audit.label_issues.suspects:
            suspects[s.given_label] += 1
            suggested[s.given_label][s.suggested_label] += 1
    leaked: dict[str, set[int]] = defaultdict(set)
    crossed: dict[str, set[int]] = defaultdict(set)
    crossed_with: dict[str, Counter[str]] = defaultdict(Counter)
    if audit.duplicates:
        for p in audit.duplicates.pairs:
            for mine, other in ((p.a, p.b), (p.b, p.a)):
                if mine.split == "test" and other.split == "train":
                    leaked[mine.class_name].add(mine.image_idx)
                if p.across_classes and mine.image_idx not in crossed[mine.class_name]:
                    crossed[mine.class_name].add(mine.image_idx)
                    crossed_with[mine.class_name][other.class_name] += 1
    flagged = (
        {c.class_name: c.reasons[0] for c in audit.shortcuts.classes if c.flagged and c.reasons}
        if audit.shortcuts
        else {}
    )
    stamped = {c.class_name: c.reason for c in audit.stamps.classes if c.flagged} if audit.stamps else {}
    health = Counter(i.image.class_name for i in audit.health.issues) if audit.health else Counter()
    return {
        name: ClassAuditFacts(
            label_suspects=suspects[name],
            suggested_labels=dict(suggested[name].most_common()),
            leaked_test_images=len(leaked[name]),
            cross_class_duplicates=len(crossed[name]),
            duplicate_classes=dict(crossed_with[name].most_common()),
            shortcut=name in flagged or name in stamped,
            shortcut_reason="; ".join(r for r in (flagged.get(name), stamped.get(name)) if r),
            health_issues=health[name],
        )
        for name in class_names
    }
