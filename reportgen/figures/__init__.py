"""The report's charts: ``report.figures`` names them, this draws them; ``plots`` holds the matplotlib code."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reportgen.analysis.shortcuts import class_mean_map
from reportgen.figures.plots import (
    plot_class_histogram,
    plot_confusion,
    plot_mean_cams,
    plot_montage,
    plot_reliability,
    plot_training_curves,
)

if TYPE_CHECKING:
    from reportgen.analysis.calibration import Calibration
    from reportgen.report import Report


def draw_report_figures(
    report: Report,
    out_dir: Path,
    *,
    montage: tuple[np.ndarray, Sequence[str]],
    calibration: Calibration | None = None,
    maps_by_class: Sequence[np.ndarray] | None = None,
) -> None:
    """Draw every chart that ``report.figures`` names, to its path under ``out_dir``.

    ``montage`` is ``(n, S, S, 3)`` uint8 sample images and their labels; ``calibration`` holds the test
    scores' reliability bins; ``maps_by_class`` holds, per class, the Grad-CAM maps of its correctly
    classified test images (for the mean maps).
    """
    ds, metrics = report.dataset, report.metrics
    drawers: dict[str, Callable[[Path], None]] = {
        "montage": lambda p: plot_montage(*montage, p),
        "class_histogram": lambda p: plot_class_histogram(ds.split_counts, ds.under_represented, p),
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
