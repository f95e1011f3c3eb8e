"""Build the report model, once, from the stage results: facts first, then the words written on them."""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Sequence
from importlib import metadata

import numpy as np

from reportgen import __version__
from reportgen.analysis.attention import ClassSelection, rank_classes
from reportgen.analysis.classes import class_confusions, class_totals, largest_confusions, under_represented
from reportgen.analysis.embedding_map import MAX_POINTS, METHOD, EmbeddingMap, embed_2d
from reportgen.analysis.extremes import ClassExtremes
from reportgen.analysis.faithfulness import ExplanationCheck
from reportgen.analysis.metrics import Metrics
from reportgen.analysis.model_check import ModelCheck
from reportgen.assemble.audit import class_facts
from reportgen.compare.baseline import compare_results
from reportgen.compare.gates import GateSpec, evaluate_gates
from reportgen.data.dataset import LoadedImages
from reportgen.data.splits import RANDOM, SplitChoice
from reportgen.model.history import TrainingHistory
from reportgen.model.predictions import Features, Predictions
from reportgen.narrative import narrate, with_narrative
from reportgen.report import (
    FIGURE_FILES,
    FIGURES_DIR,
    FLAG_KINDS,
    SCHEMA_VERSION,
    ClassSection,
    DatasetMap,
    DatasetSummary,
    GalleryImage,
    ImageEntry,
    ImageFlag,
    MetadataField,
    ModelSummary,
    ProbeResult,
    Report,
    RunInfo,
)
from reportgen.report.audit import Audit, AuditImage


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
        true_score=round(float(probs[true]), 6),
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
                complete=ext.complete,
            )
        )
    return tuple(sections)


def build_report(
    *,
    run: RunInfo,
    dataset: DatasetSummary,
    model: ModelSummary,
    history: TrainingHistory | None,
    model_check: ModelCheck | None,
    metrics: Metrics,
    classes: tuple[ClassSection, ...],
    pdf_classes: int | None,
    explanation_check: ExplanationCheck | None = None,
    probes: tuple[ProbeResult, ...] = (),
    audit: Audit | None = None,
    images: tuple[ImageEntry, ...] = (),
    gates: Sequence[GateSpec] = (),
    previous: Report | None = None,
    baseline: str = "",
    dataset_map: DatasetMap | None = None,
) -> Report:
    """The whole report, once: the facts, the words written on them, then the comparisons that read both.

    ``pdf_classes`` is how many classes the PDF details (``--pdf-classes worst:N``; None: all of them).
    """
    facts = Report(
        schema_version=SCHEMA_VERSION,
        run=run,
        dataset=dataset,
        model=model,
        training=history.epochs if history else None,
        training_start_val_loss=history.start_val_loss if history else None,
        training_start_val_accuracy=history.start_val_accuracy if history else None,
        metrics=metrics,
        classes=classes,
        model_check=model_check,
        explanation_check=explanation_check,
        probes=probes,
        audit=audit,
        images=images,
        figures=planned_figures(trained=history is not None, audit=audit, dataset_map=dataset_map),
        dataset_map=dataset_map,
    )
    facts = with_class_selection(with_image_flags(with_class_facts(facts)), limit=pdf_classes)
    report = with_narrative(facts, narrate(facts, class_facts(audit, dataset.class_names) if audit else None))
    changes = None
    if previous is not None:
        changes = compare_results(report, previous, baseline=baseline)
    return dataclasses.replace(report, changes=changes, gates=evaluate_gates(gates, report))


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


def with_class_selection(report: Report, *, limit: int | None) -> Report:
    """A copy of ``report`` with ``pdf_classes``: its classes ranked by need of attention, the first ``limit`` detailed.

    The ranking is ``reportgen.analysis.attention``'s; it needs the class facts of :func:`with_class_facts`.
    """
    names, audit = report.dataset.class_names, report.audit
    per_class = {m.class_name: m for m in report.metrics.per_class}
    ls = audit.label_issues if audit else None
    flagged = {
        "under-represented": set(report.dataset.under_represented),
        "shortcut": set(audit.shortcuts.flagged) if audit and audit.shortcuts else set(),
        "fixed pattern": set(audit.stamps.flagged) if audit and audit.stamps else set(),
    }
    ranking = rank_classes(
        names,
        [per_class[n].recall if n in per_class and per_class[n].support else None for n in names],
        [ls.per_class.get(n, 0) if ls else 0 for n in names],
        [tuple(flag for flag, classes in flagged.items() if n in classes) for n in names],
        limit=limit,
    )
    rule = "all" if limit is None else f"worst:{limit}"
    return dataclasses.replace(report, pdf_classes=ClassSelection(rule, ranking))


def with_image_flags(report: Report) -> Report:
    """A copy of ``report`` whose gallery images carry what the audit's checks found about them (by path)."""
    if report.audit is None:
        return report
    flags = image_flags(report.audit)

    def flagged(images: tuple[GalleryImage, ...]) -> tuple[GalleryImage, ...]:
        return tuple(dataclasses.replace(g, flags=flags.get(g.rel_path, ())) for g in images)

    sections = tuple(dataclasses.replace(s, top=flagged(s.top), bottom=flagged(s.bottom)) for s in report.classes)
    return dataclasses.replace(report, classes=sections)


def image_flags(audit: Audit) -> dict[str, tuple[ImageFlag, ...]]:
    """rel_path -> the audit's findings about that image, in ``FLAG_KINDS`` order, one per kind and detail."""
    found: dict[str, list[ImageFlag]] = {}
    if ls := audit.label_issues:
        for kind, suspects in (("label_error", ls.suspects), ("label_review", ls.worth_a_look)):
            for s in suspects:
                found.setdefault(s.image.rel_path, []).append(ImageFlag(kind, s.suggested_label, s.suggested_prob))
    if dup := audit.duplicates:
        for p in dup.pairs:
            for image, other in ((p.a, p.b), (p.b, p.a)):
                kind, detail = _copy_kind(p.across_classes, p.leaks, other)
                found.setdefault(image.rel_path, []).append(ImageFlag(kind, detail, p.similarity, other.rel_path))
    if oc := audit.outliers:
        for o in oc.outliers:
            found.setdefault(o.image.rel_path, []).append(ImageFlag("outlier", o.nearest_class, o.z))
    if hc := audit.health:
        for h in hc.issues:
            found.setdefault(h.image.rel_path, []).append(ImageFlag("health", "; ".join(h.reasons)))
    return {path: _in_order(fs) for path, fs in found.items()}


def _in_order(flags: list[ImageFlag]) -> tuple[ImageFlag, ...]:
    """The flags in ``FLAG_KINDS`` order, the first of each kind and detail (copies come most harmful first)."""
    order = {kind: i for i, kind in enumerate(FLAG_KINDS)}
    first = {}
    for flag in flags:
        first.setdefault((flag.kind, flag.detail), flag)
    return tuple(sorted(first.values(), key=lambda f: order[f.kind]))


def _copy_kind(across_classes: bool, leaks: bool, other: AuditImage) -> tuple[str, str]:
    """A copy's flag kind and detail, most harmful first: another label, another split, or a plain copy."""
    if across_classes:
        return "copy_other_class", other.class_name
    return ("leak" if leaks else "copy"), other.split


def planned_figures(*, trained: bool, audit: Audit | None, dataset_map: DatasetMap | None = None) -> dict[str, str]:
    """Figure key -> file relative to the output folder, for the charts this report has."""
    shown = {
        "dataset_map": dataset_map is not None and dataset_map.points > 0,
        "training_curves": trained,
        "reliability": audit is not None and audit.calibration is not None,
        "mean_cams": audit is not None and audit.shortcuts is not None,
    }
    return {key: f"{FIGURES_DIR}/{name}" for key, name in FIGURE_FILES.items() if shown.get(key, True)}


def dataset_summary(images: LoadedImages, metrics: Metrics, split: SplitChoice | None = None) -> DatasetSummary:
    """The audited folder: its classes, split counts and skipped files; its layout, split source and manifest."""
    source = images.source
    return DatasetSummary(
        str(images.root),
        images.class_names,
        metrics.split_counts,
        len(images.rel_paths),
        images.skipped,
        layout=source.layout,
        split_source=split.source if split else RANDOM,
        split_folders=source.split_folders if split and split.source != RANDOM else (),
        manifest=source.manifest,
        manifest_columns=source.manifest_columns,
        metadata_columns=tuple(MetadataField(c.name, c.kind) for c in images.metadata.columns),
        val_carved=bool(split and split.val_carved),
        classes_without_test=split.classes_without_test if split else (),
        label_disagreements=source.label_disagreements,
    )


def map_features(
    features: Features, labels: np.ndarray, audit: Audit | None, *, seed: int
) -> tuple[EmbeddingMap | None, DatasetMap]:
    """The data-set map of the pretrained features (every image the audit marks on it), and its facts.

    Without features there are no coordinates, and the facts say why.
    """
    if features.embeddings is None:
        return None, DatasetMap("", 0, False, features.why_not or "there are no pretrained features")
    keep = {i for images in map_marks(audit)[0].values() for i in images}
    embedding = embed_2d(features.embeddings, labels, method=METHOD, max_points=MAX_POINTS, seed=seed, keep=keep)
    return embedding, DatasetMap(embedding.method, len(embedding.indices), embedding.subsampled)


def map_marks(audit: Audit | None) -> tuple[dict[str, list[int]], list[tuple[int, int]]]:
    """The images the data-set map marks, by legend entry, and the pairs of copies it joins (image indices)."""
    if audit is None:
        return {}, []
    ls, oc, dup = audit.label_issues, audit.outliers, audit.duplicates
    pairs = [(p.a.image_idx, p.b.image_idx) for p in dup.pairs] if dup else []
    marks = {
        "suspected label error": [s.image_idx for s in ls.suspects] if ls else [],
        "label worth a look": [s.image_idx for s in ls.worth_a_look] if ls else [],
        "copy": sorted({i for pair in pairs for i in pair}),
        "outlier": [o.image.image_idx for o in oc.outliers] if oc else [],
    }
    return marks, pairs


def image_entries(images: LoadedImages, splits: np.ndarray) -> tuple[ImageEntry, ...]:
    """Every image of the run with its content hash: what a later ``--baseline`` run compares against."""
    names, rows = images.class_names, zip(images.rel_paths, images.infos, images.labels, splits, strict=True)
    return tuple(
        ImageEntry(path, info.sha256, names[int(label)], str(split), info.width, info.height, images.metadata.row(i))
        for i, (path, info, label, split) in enumerate(rows)
    )


def versions() -> dict[str, str]:
    """Versions of reportgen, Python, the platform and the packages a run depends on."""
    versions = {"reportgen": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for package in ("torch", "torchvision", "timm", "grad-cam", "cleanlab", "numpy", "pillow", "weasyprint"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
