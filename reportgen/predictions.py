"""The predictions record: labels, splits and scores of every image, as numpy (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

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
