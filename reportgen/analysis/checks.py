"""The whole-data-set checks that need no Grad-CAM: one stage, raw results (indices, not names)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import numpy as np

from reportgen.analysis.calibration import Calibration, CalibrationVerdict, calibration_verdict, compute_calibration
from reportgen.analysis.duplicates import Duplicates, find_duplicates
from reportgen.analysis.health import Health, check_health
from reportgen.analysis.label_issues import LabelIssues, cross_val_probs, find_label_issues
from reportgen.analysis.outliers import Outliers, find_outliers
from reportgen.analysis.slice_candidates import cluster_candidates, metadata_candidates, property_candidates
from reportgen.analysis.slices import Slices, find_slices
from reportgen.analysis.stamps import Stamps, find_stamps
from reportgen.data.dataset import LoadedImages
from reportgen.model.predictions import Features, Predictions

logger = logging.getLogger(__name__)

Timed = Callable[[str], AbstractContextManager[None]]


@dataclass(frozen=True)
class Findings:
    """The finders' raw results and why a check did not run."""

    label_issues: LabelIssues | None = None
    label_method: str = ""  # embeddings | finetune | off
    label_folds: int = 0
    duplicates: Duplicates | None = None
    calibration: Calibration | None = None
    calibration_verdict: CalibrationVerdict | None = None
    health: Health | None = None
    stamps: Stamps | None = None
    outliers: Outliers | None = None
    slices: Slices | None = None
    not_run: dict[str, str] = field(default_factory=dict)  # check -> why it did not run


def _untimed(_stage: str) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


def run_checks(
    images: LoadedImages,
    splits: np.ndarray,
    predictions: Predictions,
    features: Features,
    *,
    label_check: str,
    folds: int,
    threshold: float,
    seed: int,
    slice_rules: SliceRules,
    finetuned_probs: np.ndarray | None = None,
    timed: Timed = _untimed,
) -> Findings:
    """Label errors, copies and leakage, outliers, calibration, image health and stamps.

    ``label_check`` says where the label check's out-of-sample probabilities come from: ``embeddings``
    (``folds``-fold cross-validation on ``features``), ``finetune`` (``finetuned_probs``, computed by the
    caller) or ``off``. ``threshold`` is the cosine similarity of pretrained features at or above which two
    images are near copies; ``seed`` drives the folds and the calibration's noise floor; ``timed`` is a
    context-manager factory that times each named sub-stage; ``slice_rules`` are the slice finder's rules.
    """
    not_run: dict[str, str] = {}
    num_classes = len(images.class_names)
    with timed("label_check"):
        label_issues = _label_issues(
            images.labels, num_classes, features, label_check, finetuned_probs, folds, seed, not_run
        )
    with timed("duplicates"):
        duplicates = _duplicates(images, splits, features, threshold, not_run)
    outliers = None
    if features.embeddings is None:
        not_run["outliers"] = features.why_not
    else:
        with timed("outliers"):
            outliers = find_outliers(features.embeddings, images.labels, num_classes=num_classes)
    calibration = None
    test = predictions.indices("test")
    if len(test):
        calibration = compute_calibration(predictions.probs[test], predictions.labels[test], seed=seed)
    else:
        not_run["calibration"] = "the test split is empty"
    health = check_health(images.infos, images.labels, num_classes)
    with timed("stamps"):
        stamps = find_stamps(images.pixels, images.labels, num_classes)
    with timed("slices"):
        slices = _slices(images, predictions, features, label_issues, slice_rules, seed)
    return Findings(
        label_issues=label_issues,
        label_method=label_check,
        label_folds=folds,
        duplicates=duplicates,
        calibration=calibration,
        calibration_verdict=None if calibration is None else calibration_verdict(calibration),
        health=health,
        stamps=stamps,
        outliers=outliers,
        slices=slices,
        not_run=not_run,
    )


def _duplicates(
    images: LoadedImages, splits: np.ndarray, features: Features, threshold: float, not_run: dict[str, str]
) -> Duplicates:
    """Exact copies by file hash, near copies by features confirmed in the pixels (or why they were not sought)."""
    if features.embeddings is None:
        not_run["near_duplicates"] = f"only exact copies were sought: {features.why_not}"
    hashes = [info.sha256 for info in images.infos]
    return find_duplicates(
        hashes, images.labels, features.embeddings, splits, threshold=threshold, pixels=images.pixels
    )


@dataclass(frozen=True)
class SliceRules:
    """When a slice is reported (``RunConfig.slice_min_size``, ``slice_min_effect``, ``slice_alpha``)."""

    min_size: int
    min_effect: float
    alpha: float


def _slices(
    images: LoadedImages,
    predictions: Predictions,
    features: Features,
    label_issues: LabelIssues | None,
    rules: SliceRules,
    seed: int,
) -> Slices:
    """Slices from the metadata, the image properties and the feature clusters, scored against the model's errors."""
    candidates = [
        *metadata_candidates(images.metadata, len(images.labels)),
        *property_candidates(images.infos),
        *cluster_candidates(features.embeddings, images.labels, seed=seed),
    ]
    return find_slices(
        candidates,
        predictions.labels,
        predictions.probs,
        predictions.splits,
        suspects=None if label_issues is None else [s.image_idx for s in label_issues.suspects],
        min_size=rules.min_size,
        min_effect=rules.min_effect,
        alpha=rules.alpha,
    )


def _label_issues(
    labels: np.ndarray,
    num_classes: int,
    features: Features,
    label_check: str,
    finetuned_probs: np.ndarray | None,
    folds: int,
    seed: int,
    not_run: dict[str, str],
) -> LabelIssues | None:
    """Find suspected label errors from out-of-sample probabilities, or note why the check did not run."""
    oos = None
    if label_check == "off":
        not_run["label_issues"] = "switched off (--label-check off)"
    elif label_check == "finetune":
        oos = finetuned_probs
    elif features.embeddings is None:
        not_run["label_issues"] = features.why_not
    else:
        oos = cross_val_probs(features.embeddings, labels, num_classes=num_classes, folds=folds, seed=seed)
    if oos is None:
        return None
    issues = find_label_issues(labels, oos)
    logger.info("label check: %d likely wrong labels, %d worth a look", len(issues.suspects), len(issues.worth_a_look))
    return issues
