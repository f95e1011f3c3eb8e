"""Plain records of what the model computed (scores, features, Grad-CAM maps), as numpy; no torch."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Predictions:
    """Labels, splits and softmax scores of every image of the data set."""

    class_names: tuple[str, ...]
    rel_paths: tuple[str, ...]
    labels: np.ndarray  # (N,) true class indices
    splits: np.ndarray  # (N,) "train" | "val" | "test"
    probs: np.ndarray  # (N, C) softmax scores of the fine-tuned model

    @property
    def predicted(self) -> np.ndarray:
        """``(N,)`` predicted class indices (lowest index wins a tie)."""
        return self.probs.argmax(axis=1)

    def indices(self, split: str) -> np.ndarray:
        """Indices of the images in ``split``, in data set order."""
        return np.flatnonzero(self.splits == split)

    def correct_test_images(self) -> list[tuple[int, int]]:
        """(image, class) of every correctly classified test image: the shortcut check's maps."""
        test = self.indices("test")
        correct = test[self.predicted[test] == self.labels[test]]
        return [(int(i), int(self.labels[i])) for i in correct]


@dataclass(frozen=True)
class Features:
    """Pretrained-backbone features of every image (before fine-tuning), or why there are none."""

    embeddings: np.ndarray | None  # (N, D) float32
    why_not: str = ""


@dataclass(frozen=True)
class CamMaps:
    """Grad-CAM maps keyed by (image index, explained class index)."""

    keys: tuple[tuple[int, int], ...]
    maps: np.ndarray  # (len(keys), S, S) float32, each min-max normalised to [0, 1] on its own

    def get(self, image_idx: int, class_idx: int) -> np.ndarray:
        """The map explaining ``class_idx`` for image ``image_idx``."""
        return self.maps[self._index[(image_idx, class_idx)]]

    def __contains__(self, key: tuple[int, int]) -> bool:
        return key in self._index

    @cached_property
    def _index(self) -> dict[tuple[int, int], int]:
        return {key: i for i, key in enumerate(self.keys)}


def maps_by_class(cams: CamMaps, predictions: Predictions) -> list[np.ndarray]:
    """Per class, the maps of its correctly classified test images explaining that class: ``(n, S, S)`` each."""
    size = cams.maps.shape[1] if cams.maps.ndim == 3 else 1
    by_class: list[list[np.ndarray]] = [[] for _ in predictions.class_names]
    for i, c in predictions.correct_test_images():
        if (i, c) in cams:
            by_class[c].append(cams.get(i, c))
    return [np.stack(maps) if maps else np.zeros((0, size, size), np.float32) for maps in by_class]
