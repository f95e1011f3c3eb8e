"""The split of a data set into train, val and test, and samples of it: seeded, stratified, stable."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from reportgen.config import SplitConfig
from reportgen.data.dataset import LoadedImages
from reportgen.errors import DataError

logger = logging.getLogger(__name__)


def split_dataset(
    labels: np.ndarray, class_names: tuple[str, ...], split: SplitConfig, seed: int, root: Path
) -> np.ndarray:
    """Assign each image to train, val or test: a seeded, stratified split per class.

    Returns an ``(N,)`` array of split names. Every class gets at least one image in each split;
    a class too small for that is an error naming its folder.
    """
    if not (0 < split.train < 1 and 0 <= split.val < 1 and split.train + split.val < 1):
        raise DataError(f"split fractions train={split.train} val={split.val} must leave a test split")
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(labels), dtype=object)
    for class_idx, class_name in enumerate(class_names):
        members = np.flatnonzero(labels == class_idx)  # already in stable path order
        n_val, n_test = _split_sizes(len(members), split)
        n_train = len(members) - n_val - n_test
        if n_train < 1 or n_test < 1 or (split.val > 0 and n_val < 1):
            raise DataError(
                f"class folder '{root / class_name}' has {len(members)} readable image(s): "
                "too few for a train/val/test split (need at least 3)"
            )
        order = rng.permutation(members)
        assignment[order[:n_train]] = "train"
        assignment[order[n_train : n_train + n_val]] = "val"
        assignment[order[n_train + n_val :]] = "test"
    return assignment.astype(str)


def _split_sizes(n: int, split: SplitConfig) -> tuple[int, int]:
    n_val = max(1, round(n * split.val)) if split.val > 0 else 0
    n_test = max(1, round(n * (1 - split.train - split.val)))
    return n_val, n_test


def sample_images(images: LoadedImages, *, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """``count`` random images of the data set (in data set order) with their labels, e.g. for a montage."""
    rng = np.random.default_rng(seed)
    n = len(images.labels)
    pick = np.sort(rng.choice(n, size=min(count, n), replace=False))
    return images.pixels[pick], [images.class_names[int(images.labels[i])] for i in pick]


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded stratified K-fold ``(train, held_out)`` index pairs; K is lowered to the smallest class (>= 2)."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    splitter = StratifiedKFold(n_splits=_fold_count(labels, folds), shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def _fold_count(labels: np.ndarray, folds: int) -> int:
    smallest = int(np.bincount(labels)[np.unique(labels)].min())
    if smallest < folds:
        logger.warning("smallest class has %d image(s): out-of-fold scores use %d folds", smallest, max(2, smallest))
    return max(2, min(folds, smallest))
