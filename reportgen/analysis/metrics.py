"""Test-set metrics: accuracy, confusion matrix, per-class precision/recall/F1, split counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reportgen.data.dataset import SPLITS


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall, F1 and support of one class on the test split."""

    class_name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Metrics:
    """Everything the confusion section of the report shows."""

    accuracy: float
    confusion: tuple[tuple[int, ...], ...]  # [true][predicted] counts
    confusion_normalised: tuple[tuple[float, ...], ...]  # rows sum to 1 (0 for an empty row)
    per_class: tuple[ClassMetrics, ...]
    macro_f1: float
    split_counts: dict[str, dict[str, int]]  # split -> class name -> images


def compute_metrics(
    labels: np.ndarray, predicted: np.ndarray, splits: np.ndarray, class_names: tuple[str, ...]
) -> Metrics:
    """Metrics of ``predicted`` against ``labels`` over the test split; counts over every split."""
    test = splits == "test"
    y, p = labels[test], predicted[test]
    n = len(class_names)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (y, p), 1)
    row_sums = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, row_sums, out=np.zeros((n, n)), where=row_sums > 0)
    per_class = tuple(_class_metrics(confusion, i, name) for i, name in enumerate(class_names))
    return Metrics(
        accuracy=float((y == p).mean()) if len(y) else 0.0,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        confusion_normalised=tuple(tuple(round(float(v), 6) for v in row) for row in normalised),
        per_class=per_class,
        macro_f1=float(np.mean([m.f1 for m in per_class])),
        split_counts={
            split: {name: int(((splits == split) & (labels == i)).sum()) for i, name in enumerate(class_names)}
            for split in SPLITS
        },
    )


def _class_metrics(confusion: np.ndarray, i: int, name: str) -> ClassMetrics:
    tp = confusion[i, i]
    predicted_as = confusion[:, i].sum()
    support = confusion[i].sum()
    precision = tp / predicted_as if predicted_as else 0.0
    recall = tp / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ClassMetrics(name, float(precision), float(recall), float(f1), int(support))


def split_accuracy(labels: np.ndarray, predicted: np.ndarray, splits: np.ndarray, split: str) -> float | None:
    """Accuracy of ``predicted`` over the images of ``split``, or None when it holds none."""
    mask = splits == split
    return float((labels[mask] == predicted[mask]).mean()) if mask.any() else None
