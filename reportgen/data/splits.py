"""The split of a data set into train, val and test, and samples of it: seeded, stratified, stable."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reportgen.config import SplitConfig
from reportgen.data.dataset import SPLITS, LoadedImages
from reportgen.errors import DataError

logger = logging.getLogger(__name__)

RANDOM = "random"  # split_source of a split made here


@dataclass(frozen=True)
class SplitChoice:
    """The split of each image and where it came from."""

    splits: np.ndarray  # (N,) "train" | "val" | "test"
    source: str  # RANDOM, or the data set's given split's source ("folders", "manifest")
    val_carved: bool = False  # no val split was given: it was carved from train
    classes_without_test: tuple[str, ...] = ()  # classes the given test split has no image of


def choose_split(images: LoadedImages, split: SplitConfig, *, seed: int) -> SplitChoice:
    """The split given with the data set (``split.source`` auto or given), or a random one (random, or none given).

    A given split without val gets val carved from train (seeded, stratified, in the fractions' proportion).

    Raises:
        DataError: ``given`` and no split is given; or a class has no training image left.
    """
    given = images.source.split_source if images.given_splits else ""
    if split.source == "given" and not given:
        raise DataError(f"--split given: '{images.root}' has no train/ test/ folders and no manifest split column")
    if split.source == RANDOM or not given:
        return SplitChoice(split_dataset(images.labels, images.class_names, split, seed, images.root), RANDOM)
    splits = np.array(images.given_splits, dtype=object)
    counts = {s: np.bincount(images.labels[splits == s], minlength=len(images.class_names)) for s in SPLITS}
    untrained = [n for n, c in zip(images.class_names, counts["train"], strict=True) if c == 0]
    if untrained:
        raise DataError(f"class(es) with no readable training image in the given split: {', '.join(untrained)}")
    carved = not counts["val"].any()
    if carved:
        share = split.val / (split.train + split.val)
        splits = _carve_val(splits, images.labels, share, seed)
        logger.warning("no val split given: %.0f %% of each class's training images became val", share * 100)
    no_test = tuple(n for n, c in zip(images.class_names, counts["test"], strict=True) if c == 0)
    if no_test:
        logger.warning("the given test split has no image of: %s", ", ".join(no_test))
    return SplitChoice(splits.astype(str), given, carved, no_test)


def _carve_val(splits: np.ndarray, labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Move ``share`` of each class's training images (seeded; at least one, never the last) to val."""
    rng = np.random.default_rng(seed)
    carved = splits.copy()
    for class_idx in np.unique(labels):
        train = np.flatnonzero((labels == class_idx) & (splits == "train"))
        n_val = min(len(train) - 1, max(1, round(len(train) * share)))
        carved[rng.permutation(train)[:n_val]] = "val"
    return carved


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
