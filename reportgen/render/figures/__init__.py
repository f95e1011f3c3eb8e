"""The report's charts: ``report.figures`` names them, this draws them; ``plots`` holds the matplotlib code."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reportgen.analysis.shortcuts import class_mean_map
from reportgen.assemble.report import map_marks
from reportgen.data.dataset import LoadedImages
from reportgen.data.splits import sample_images
from reportgen.model.predictions import CamMaps, Predictions, maps_by_class
from reportgen.render.figures.maps import MAP_LEGEND_CLASSES, plot_embedding_map
from reportgen.render.figures.plots import (
    plot_class_histogram,
    plot_confusion,
    plot_mean_cams,
    plot_montage,
    plot_reliability,
    plot_training_curves,
)

if TYPE_CHECKING:
    from reportgen.analysis.calibration import Calibration
    from reportgen.analysis.checks import Findings
    from reportgen.analysis.embedding_map import EmbeddingMap
    from reportgen.report import Report

MAP_METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE"}
MONTAGE_IMAGES = 9  # the example's 3x3 montage of random images


def draw_run_figures(
    report: Report,
    out_dir: Path,
    images: LoadedImages,
    predictions: Predictions,
    findings: Findings | None,
    cams: CamMaps | None,
    embedding: EmbeddingMap | None,
    *,
    seed: int,
) -> None:
    """Draw the report's charts from a run's stage results: :func:`draw_report_figures` with its inputs.

    The montage is ``MONTAGE_IMAGES`` images drawn with ``seed``; the mean Grad-CAM maps are those of each
    class's correctly classified test images in ``cams``; ``embedding`` is the data-set map's coordinates.
    """
    draw_report_figures(
        report,
        out_dir,
        montage=sample_images(images, count=MONTAGE_IMAGES, seed=seed),
        calibration=findings.calibration if findings else None,
        maps_by_class=maps_by_class(cams, predictions) if cams is not None else None,
        embedding=embedding,
    )


def draw_report_figures(
    report: Report,
    out_dir: Path,
    *,
    montage: tuple[np.ndarray, Sequence[str]],
    calibration: Calibration | None = None,
    maps_by_class: Sequence[np.ndarray] | None = None,
    embedding: EmbeddingMap | None = None,
) -> None:
    """Draw every chart that ``report.figures`` names, to its path under ``out_dir``.

    ``montage`` is ``(n, S, S, 3)`` uint8 sample images and their labels; ``calibration`` holds the test
    scores' reliability bins; ``maps_by_class`` holds, per class, the Grad-CAM maps of its correctly
    classified test images (for the mean maps); ``embedding`` the data-set map's coordinates.
    """
    ds, metrics = report.dataset, report.metrics
    drawers: dict[str, Callable[[Path], None]] = {
        "montage": lambda p: plot_montage(*montage, p),
        "class_histogram": lambda p: plot_class_histogram(ds.split_counts, ds.under_represented, p),
        "dataset_map": lambda p: _dataset_map(report, embedding, p),
        "training_curves": lambda p: _training_curves(report, p),
        "confusion_matrix": lambda p: plot_confusion(
            metrics.confusion, metrics.confusion_normalised, ds.class_names, p
        ),
        "reliability": lambda p: _reliability(calibration, p),
        "mean_cams": lambda p: _mean_cams(report, maps_by_class, p),
    }
    for key, rel in report.figures.items():
        target = Path(out_dir) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        drawers[key](target)


def _dataset_map(report: Report, embedding: EmbeddingMap | None, path: Path) -> None:
    if embedding is None:
        raise ValueError("the report has a data-set map but no coordinates were given")
    row = {int(i): k for k, i in enumerate(embedding.indices)}  # image index -> point of the map
    marks, pairs = map_marks(report.audit)
    on_map = {entry: [row[i] for i in images if i in row] for entry, images in marks.items()}
    n, names = len(row), report.dataset.class_names
    shown = f"{n:,} of {embedding.n_images:,} images, sampled per class" if embedding.subsampled else f"{n:,} images"
    unnamed = f"\n{len(names)} classes: too many to name, colours only" if len(names) > MAP_LEGEND_CLASSES else ""
    method = MAP_METHOD_NAMES.get(embedding.method, embedding.method)
    plot_embedding_map(
        embedding.coords,
        embedding.labels,
        names,
        path,
        marks=on_map,
        pairs=[(row[a], row[b]) for a, b in pairs if a in row and b in row],
        title=f"{method} of the pretrained features: {shown}{unnamed}",
    )


def _training_curves(report: Report, path: Path) -> None:
    check = report.model_check
    plot_training_curves(
        report.training or (),
        path,
        start=(report.training_start_val_loss, report.training_start_val_accuracy),
        references={
            "linear probe": check.probe.val_accuracy if check and check.probe else None,
            "majority class": check.majority.val_accuracy if check else None,
        },
        kept=check.kept_epoch if check else None,
    )


def _reliability(cal: Calibration | None, path: Path) -> None:
    if cal is None:
        raise ValueError("the report has a reliability diagram but no calibration bins were given")
    bins = cal.bins
    plot_reliability(
        [b.mean_confidence for b in bins], [b.accuracy for b in bins], [b.count for b in bins], cal.ece, path
    )


def _mean_cams(report: Report, maps_by_class: Sequence[np.ndarray] | None, path: Path) -> None:
    shortcuts = report.audit.shortcuts if report.audit else None
    if maps_by_class is None or shortcuts is None:
        raise ValueError("the report has a mean Grad-CAM figure but no maps were given")
    maps = np.stack([class_mean_map(m) for m in maps_by_class])
    plot_mean_cams(maps, report.dataset.class_names, [c.flagged for c in shortcuts.classes], path)
