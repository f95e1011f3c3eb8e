"""The report model: JSON-able frozen dataclasses built from the stage results; renderers read only this."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reportgen.analysis.classes import (
    Confusion,  # re-exported: ``report.Confusion`` is part of the report model
    class_confusions,
    class_totals,
    largest_confusions,
    under_represented,
)
from reportgen.analysis.extremes import ClassExtremes
from reportgen.analysis.metrics import ClassMetrics, Metrics
from reportgen.analysis.model_check import ModelCheck
from reportgen.audit import Audit
from reportgen.baseline import Changes
from reportgen.data import SkippedFile
from reportgen.gates import GateResult
from reportgen.history import EpochStats
from reportgen.predict import Predictions

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RunInfo:
    """Provenance of the run."""

    started_at: str  # ISO 8601, UTC
    versions: dict[str, str]  # package -> version
    device: str
    seed: int
    timings: dict[str, float]  # stage -> seconds
    config: dict[str, Any]


@dataclass(frozen=True)
class DatasetSummary:
    """The audited folder."""

    root: str
    class_names: tuple[str, ...]
    split_counts: dict[str, dict[str, int]]  # split -> class name -> images
    total_images: int
    skipped: tuple[SkippedFile, ...]
    under_represented: tuple[str, ...] = ()  # class names marked by the rule below
    under_represented_rule: str = ""  # the rule, in words, for the report


@dataclass(frozen=True)
class ModelSummary:
    """The classifier that was audited."""

    arch: str
    weights_source: str
    image_size: int
    cam_layer: str
    trained: bool  # False when loaded from --checkpoint
    checkpoint: str | None


@dataclass(frozen=True)
class GalleryImage:
    """One image of a max/min activating gallery."""

    rel_path: str
    split: str
    true_class: str
    predicted_class: str
    score: float  # score for the gallery's class
    predicted_score: float  # score of the predicted class
    correct: bool
    thumbnail: str | None = None  # image file relative to the output folder
    cam: str | None = None  # Grad-CAM overlay for the predicted class
    cam_true: str | None = None  # Grad-CAM overlay for the true class (misclassified images only)


@dataclass(frozen=True)
class ClassSection:
    """Everything the report says about one class."""

    class_name: str
    metrics: ClassMetrics
    split_counts: dict[str, int]
    top: tuple[GalleryImage, ...]
    bottom: tuple[GalleryImage, ...]
    confused_with: tuple[Confusion, ...] = ()  # this class's test images predicted as other classes
    under_represented: bool = False
    narrative: tuple[str, ...] = ()  # sentences


@dataclass(frozen=True)
class ProbeResult:
    """An image from outside the data set, classified and explained (``--probe``)."""

    name: str  # file name as given
    top_classes: tuple[tuple[str, float], ...]  # (class name, score), best first
    thumbnail: str | None = None
    cam: str | None = None  # Grad-CAM overlay for the top class


@dataclass(frozen=True)
class Report:
    """The whole audit; ``results.json`` is ``to_dict(report)``."""

    schema_version: int
    run: RunInfo
    dataset: DatasetSummary
    model: ModelSummary
    training: tuple[EpochStats, ...] | None  # None when loaded from a checkpoint
    metrics: Metrics
    classes: tuple[ClassSection, ...]
    model_check: ModelCheck | None = None  # the model against a linear probe and the majority class
    top_confusions: tuple[Confusion, ...] = ()  # largest off-diagonal cells, largest first
    model_verdict: str = ""  # one sentence: how far the model can be trusted (from model_check)
    model_notes: tuple[str, ...] = ()  # one sentence per problem the model check found
    findings: tuple[str, ...] = ()  # 3-5 key findings for the summary, in plain sentences
    figures: dict[str, str] = field(default_factory=dict)  # figure name -> file relative to the output folder
    probes: tuple[ProbeResult, ...] = ()
    caveats: tuple[str, ...] = ()
    audit: Audit | None = None  # data-defect checks; None with --no-audit
    changes: Changes | None = None  # with --baseline
    gates: tuple[GateResult, ...] = ()  # with --fail-under / --fail-over


def gallery_image(predictions: Predictions, image_idx: int, class_idx: int) -> GalleryImage:
    """Describe image ``image_idx`` as seen from class ``class_idx``'s gallery."""
    probs = predictions.probs[image_idx]
    predicted = int(np.argmax(probs))
    true = int(predictions.labels[image_idx])
    names = predictions.class_names
    return GalleryImage(
        rel_path=predictions.rel_paths[image_idx],
        split=str(predictions.splits[image_idx]),
        true_class=names[true],
        predicted_class=names[predicted],
        score=round(float(probs[class_idx]), 6),
        predicted_score=round(float(probs[predicted]), 6),
        correct=predicted == true,
    )


def class_sections(
    predictions: Predictions, metrics: Metrics, extremes: tuple[ClassExtremes, ...]
) -> tuple[ClassSection, ...]:
    """One section per class with its metrics and galleries (no pictures yet)."""
    sections = []
    for ext in extremes:
        name = predictions.class_names[ext.class_idx]
        sections.append(
            ClassSection(
                class_name=name,
                metrics=metrics.per_class[ext.class_idx],
                split_counts={split: counts[name] for split, counts in metrics.split_counts.items()},
                top=tuple(gallery_image(predictions, i, ext.class_idx) for i in ext.top),
                bottom=tuple(gallery_image(predictions, i, ext.class_idx) for i in ext.bottom),
            )
        )
    return tuple(sections)


def with_class_facts(report: Report) -> Report:
    """A copy of ``report`` with the class facts its sentences rest on.

    Sets ``dataset.under_represented``, each section's ``under_represented`` and (when empty)
    ``confused_with``, and (when empty) ``top_confusions``, from the split counts and the confusion matrix.
    """
    names = report.dataset.class_names
    totals = class_totals(report.dataset.split_counts)
    flagged = under_represented({n: totals.get(n, 0) for n in names}).flagged
    confusion = report.metrics.confusion
    sections = tuple(
        dataclasses.replace(
            s,
            under_represented=s.class_name in flagged,
            confused_with=s.confused_with or class_confusions(confusion, names, names.index(s.class_name)),
        )
        for s in report.classes
    )
    return dataclasses.replace(
        report,
        dataset=dataclasses.replace(report.dataset, under_represented=flagged),
        classes=sections,
        top_confusions=report.top_confusions or largest_confusions(confusion, names),
    )


def to_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-able primitives (tuples become lists)."""
    return _plain(dataclasses.asdict(report))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
