"""Build the report's audit block: the finders' results (image and class indices) told by file and class name.

The finders in ``reportgen.analysis`` speak in image and class indices; the builders here turn their results
into the views of ``reportgen.report.audit``, write thumbnails for the first ones through an :data:`AssetFn`, and
hand the class narratives their per-class facts (:func:`class_facts`). The views' texts (what a tier meant,
how a check worked, its rule, the calibration verdict, why a class was flagged) come from
``reportgen.narrative.audit``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from reportgen.analysis.calibration import Calibration, CalibrationVerdict
from reportgen.analysis.checks import Findings
from reportgen.analysis.duplicates import Duplicates
from reportgen.analysis.health import Health
from reportgen.analysis.label_issues import LabelIssues, LabelSuspect
from reportgen.analysis.outliers import Outliers
from reportgen.analysis.shortcuts import Reliance, Shortcuts, find_shortcuts
from reportgen.analysis.stamps import Stamps
from reportgen.assemble.slices import slice_check_view
from reportgen.narrative.audit import (
    LIKELY_WRONG_MEANING,
    NO_CLASS_MEANING,
    WORTH_A_LOOK_MEANING,
    calibration_text,
    duplicate_threshold_text,
    label_caution,
    label_method_text,
    reliance_reason,
    shortcut_reason,
    shortcut_rule,
    stamp_reason,
    stamp_rule,
)
from reportgen.report.audit import (
    SHOWN_HEALTH,
    SHOWN_OUTLIERS,
    SHOWN_PAIRS,
    SHOWN_REVIEW,
    SHOWN_SLICE_MISTAKES,
    SHOWN_SUSPECTS,
    AssetFn,
    Audit,
    AuditImage,
    CalibrationCheck,
    ClassAuditFacts,
    DuplicateCheck,
    HealthCheck,
    HealthView,
    LabelCheck,
    OutlierCheck,
    OutlierView,
    PairView,
    ShortcutCheck,
    ShortcutClass,
    StampCheck,
    StampClass,
    SuspectView,
)

T = TypeVar("T")

MIN_MEASURED_MAPS = 2  # a class's shortcut figures need two maps (a consistency is a correlation between maps)
WEAK_AGREEMENT = 0.85  # out-of-sample agreement with the labels below which the label check warns (food9-64px: 0.72)


@dataclass(frozen=True)
class DatasetIndex:
    """What the views need to name an image."""

    rel_paths: tuple[str, ...]
    labels: np.ndarray
    splits: np.ndarray
    class_names: tuple[str, ...]

    def image(self, idx: int, assets: AssetFn | None = None, cam_class: int | None = None) -> AuditImage:
        """The view of image ``idx``; with ``assets``, its thumbnail (and overlay for ``cam_class``) are written."""
        thumb, cam = assets(idx, cam_class) if assets else (None, None)
        return AuditImage(
            int(idx), self.rel_paths[idx], self.class_names[int(self.labels[idx])], str(self.splits[idx]), thumb, cam
        )


def build_audit(
    findings: Findings,
    index: DatasetIndex,
    predicted: np.ndarray,
    *,
    maps_by_class: Sequence[np.ndarray] | None,
    assets: AssetFn,
    reliance: Mapping[int, Reliance] | None = None,
) -> Audit:
    """The report's audit block from the finders' results, with thumbnails written through ``assets``.

    ``reliance`` is the shortcut check's measured reliance per class index (``analysis.explanation``).
    """
    names = index.class_names
    not_run = dict(findings.not_run)
    shortcuts = None
    if maps_by_class is not None:
        shortcuts = shortcut_view(find_shortcuts(maps_by_class, reliance=reliance), names)
    else:
        not_run["shortcuts"] = "Grad-CAM was switched off (--no-cam)"
    label_issues = None
    if findings.label_issues is not None:
        label_issues = label_check_view(
            findings.label_issues,
            index,
            predicted,
            method=findings.label_method,
            folds=findings.label_folds,
            assets=assets,
        )
    cal, verdict = findings.calibration, findings.calibration_verdict
    return Audit(
        label_issues=label_issues,
        duplicates=None
        if findings.duplicates is None
        else duplicate_check_view(findings.duplicates, index, assets=assets),
        calibration=None if cal is None or verdict is None else calibration_view(cal, verdict),
        outliers=None if findings.outliers is None else outlier_view(findings.outliers, index, assets=assets),
        shortcuts=shortcuts,
        stamps=stamp_view(findings.stamps, names),
        health=health_view(findings.health, index, assets=assets),
        slices=None if findings.slices is None else slice_check_view(findings.slices, index, assets=assets),
        not_run=not_run,
    )


def audit_cam_requests(findings: Findings) -> list[tuple[int, int]]:
    """Grad-CAM maps the audit shows: the shown suspects of both tiers (for the suggested class) and slice mistakes.

    A slice's shown mistakes (where the model fails) are explained for their predicted class.
    """
    slices = findings.slices.slices if findings.slices else ()
    mistakes = [m for s in slices for m in s.mistakes[:SHOWN_SLICE_MISTAKES]]
    if findings.label_issues is None:
        return mistakes
    issues = findings.label_issues
    shown = (*issues.suspects[:SHOWN_SUSPECTS], *issues.worth_a_look[:SHOWN_REVIEW])
    return [(s.image_idx, s.suggested_idx) for s in shown] + mistakes


def _first_with_assets(items: Sequence[T], assets: AssetFn | None, shown: int) -> list[tuple[T, AssetFn | None]]:
    """Each item with the writer of its pictures: ``assets`` for the first ``shown``, None for the rest."""
    return [(item, assets if rank < shown else None) for rank, item in enumerate(items)]


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
    agreement = round(issues.probs_accuracy, 4)  # the card and the caution print this one value
    return LabelCheck(
        method=method,
        method_text=label_method_text(method, folds),
        folds=folds,
        n_images=issues.n_images,
        total=len(issues.suspects),
        noise_rate=round(issues.noise_rate, 4),
        noise_rate_method=issues.noise_rate_method,
        probs_accuracy=agreement,
        filter_by=issues.filter_by,
        rank_by=issues.rank_by,
        per_class={names[i]: int(n) for i, n in enumerate(issues.suspects_per_class)},
        suggested=suggested,
        class_noise_rates={names[i]: round(r, 4) for i, r in enumerate(issues.class_noise_rates)},
        suspects=_suspect_views(issues.suspects, index, predicted, assets, shown),
        shown=min(shown, len(issues.suspects)),
        caution="" if agreement >= WEAK_AGREEMENT else label_caution(agreement, WEAK_AGREEMENT),
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
            index.image(s.image_idx, writer, s.suggested_idx),
            names[s.given_idx],
            names[s.suggested_idx],
            round(s.given_prob, 4),
            round(s.suggested_prob, 4),
            round(s.quality, 4),
            names[int(predicted[s.image_idx])],
            round(s.wrong_prob, 4),
        )
        for s, writer in _first_with_assets(suspects, assets, shown)
    )


def outlier_view(
    outliers: Outliers, index: DatasetIndex, *, assets: AssetFn | None, shown: int = SHOWN_OUTLIERS
) -> OutlierCheck:
    """Name the images that belong to no class; the first ``shown`` get thumbnails."""
    views = tuple(
        OutlierView(
            index.image(o.image_idx, writer),
            index.class_names[o.nearest_class_idx],
            round(o.distance, 4),
            round(o.z, 2),
        )
        for o, writer in _first_with_assets(outliers.outliers, assets, shown)
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
    for p, writer in _first_with_assets(dups.pairs, assets, shown):
        a, b = index.image(p.idx_a, writer), index.image(p.idx_b, writer)
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
        unconfirmed=dups.n_unconfirmed,
    )


def calibration_view(cal: Calibration, verdict: CalibrationVerdict) -> CalibrationCheck:
    """The calibration figures, as the analysis gave them (the text formats the same values), and their reading."""
    return CalibrationCheck(
        n_images=cal.n_images,
        ece=cal.ece,
        ece_noise_floor=cal.ece_noise_floor,
        mce=cal.mce,
        mean_confidence=cal.mean_confidence,
        accuracy=cal.accuracy,
        brier=cal.brier,
        readable_as_probabilities=verdict.readable_as_probabilities,
        direction=verdict.direction,
        text=calibration_text(cal, verdict),
    )


def shortcut_view(shortcuts: Shortcuts, class_names: Sequence[str]) -> ShortcutCheck:
    """Per-class evidence figures and flags, by class name.

    ``n_maps`` counts the usable maps (not empty), those the figures and the flags come from; with fewer
    than ``MIN_MEASURED_MAPS`` the figures are placeholders (no consistency, no spread), so ``measured`` is False.
    """
    t = shortcuts.thresholds
    classes = tuple(
        ShortcutClass(
            class_names[c.class_idx],
            c.n_maps - c.n_empty,
            c.concentration,
            c.border_share,
            c.centre_offset,
            c.region,
            c.consistency,
            c.peak_spread,
            c.class_idx in shortcuts.flagged,
            (reliance_reason(c.reliance),) * bool(c.flags) + tuple(shortcut_reason(f, t) for f in c.flags),
            measured=c.n_maps - c.n_empty >= MIN_MEASURED_MAPS,
            worth_a_look=c.class_idx in shortcuts.worth_a_look,
            drop=c.reliance.drop if c.reliance else None,
            control_drop=c.reliance.control_drop if c.reliance else None,
        )
        for c in shortcuts.classes
    )
    names = (tuple(class_names[i] for i in idx) for idx in (shortcuts.flagged, shortcuts.worth_a_look))
    return ShortcutCheck(classes, next(names), t.min_maps, shortcut_rule(t), next(names))


def stamp_view(stamps: Stamps, class_names: Sequence[str]) -> StampCheck:
    """Per-class fixed-pattern figures and flags, by class name."""
    t = stamps.thresholds
    classes = tuple(
        StampClass(class_names[c.class_idx], c.n_images, c.fixed_cells, c.area, c.region, c.flagged, stamp_reason(c, t))
        for c in stamps.classes
    )
    return StampCheck(classes, tuple(class_names[i] for i in stamps.flagged), stamp_rule(t))


def health_view(
    health: Health, index: DatasetIndex, *, assets: AssetFn | None, shown: int = SHOWN_HEALTH
) -> HealthCheck:
    """Name the unhealthy images; the first ``shown`` get thumbnails."""
    issues = tuple(
        HealthView(index.image(i.image_idx, writer), i.checks, i.reasons)
        for i, writer in _first_with_assets(health.issues, assets, shown)
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
