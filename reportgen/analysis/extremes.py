"""Per-class max- and min-activating test images (the example's ``maxk`` / ``mink``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassExtremes:
    """For one class, test images of that class ranked by their score for it."""

    class_idx: int
    top: tuple[int, ...]  # image indices, highest score first
    bottom: tuple[int, ...]  # image indices, lowest score first


def find_extremes(
    probs: np.ndarray, labels: np.ndarray, candidates: np.ndarray, *, top_k: int, bottom_k: int
) -> tuple[ClassExtremes, ...]:
    """Rank each class's candidate images by their score for that class.

    For each class c: the ``top_k`` highest and ``bottom_k`` lowest ``probs[:, c]`` (``probs`` is
    ``(N, C)``) among ``candidates`` (image indices, e.g. the test split) whose true label is c.
    Ties keep data set order (stable sort), so the result is reproducible.
    """
    result = []
    for c in range(probs.shape[1]):
        members = np.sort(candidates[labels[candidates] == c])
        scores = probs[members, c]
        descending = members[np.argsort(-scores, kind="stable")]
        ascending = members[np.argsort(scores, kind="stable")]
        result.append(
            ClassExtremes(c, tuple(int(i) for i in descending[:top_k]), tuple(int(i) for i in ascending[:bottom_k]))
        )
    return tuple(result)
