"""Per-class max- and min-activating test images (the example's ``maxk`` / ``mink``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassExtremes:
    """For one class, test images of that class ranked by their score for it.

    No image is in both galleries: when the class has fewer candidates than ``top_k + bottom_k``, ``top``
    holds every one of them once, highest score first, ``bottom`` is empty and ``complete`` is True.
    """

    class_idx: int
    top: tuple[int, ...]  # image indices, highest score first
    bottom: tuple[int, ...]  # image indices, lowest score first
    complete: bool = False  # ``top`` is every candidate of the class (too few for two galleries)


def find_extremes(
    probs: np.ndarray, labels: np.ndarray, candidates: np.ndarray, *, top_k: int, bottom_k: int
) -> tuple[ClassExtremes, ...]:
    """Rank each class's candidate images by their score for that class.

    For each class c: the ``top_k`` highest and ``bottom_k`` lowest ``probs[:, c]`` (``probs`` is
    ``(N, C)``) among ``candidates`` (image indices, e.g. the test split) whose true label is c. No image is in
    both: a class with fewer than ``top_k + bottom_k`` such images (or none) gets all of them in ``top``,
    highest first, and an empty ``bottom``; otherwise ``bottom`` leaves out ``top``'s images (which a tie at the
    boundary could bring in). Ties keep data set order (stable sort), so the result is reproducible.
    """
    result = []
    for c in range(probs.shape[1]):
        members = np.sort(candidates[labels[candidates] == c])
        scores = probs[members, c]
        descending = tuple(int(i) for i in members[np.argsort(-scores, kind="stable")])
        if len(members) < top_k + bottom_k:
            result.append(ClassExtremes(c, descending, (), complete=True))
            continue
        top = descending[:top_k]
        ascending = (int(i) for i in members[np.argsort(scores, kind="stable")] if int(i) not in top)
        result.append(ClassExtremes(c, top, tuple(ascending)[:bottom_k]))  # not in top: ties could overlap
    return tuple(result)
