"""Pretrained features, the linear probe on them, and the fine-tuned label check's out-of-fold scores.

The features come from the backbone before fine-tuning: they never saw the labels the label check
tests. The linear probe (the default recipe's starting head and the model check's reference) and the
audit's label check and near-copy search are all fitted on them.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch
from torch import nn

from reportgen.config import TrainConfig
from reportgen.data.dataset import LoadedImages
from reportgen.data.splits import stratified_folds
from reportgen.errors import ReportgenError
from reportgen.model.backbones import RANDOM_INIT, ModelSpec, build_model
from reportgen.model.predict import run_model
from reportgen.model.predictions import Features
from reportgen.model.probe import LinearProbe, fit_linear_probe
from reportgen.model.runtime import Runtime
from reportgen.model.train import train_model

logger = logging.getLogger(__name__)


def pretrained_features(
    model: nn.Module,
    spec: ModelSpec,
    pixels: np.ndarray,
    runtime: Runtime,
    *,
    from_checkpoint: bool,
    weights: str,
    num_classes: int,
    batch_size: int,
    progress: bool,
) -> Features:
    """Penultimate-layer features of the pretrained backbone for every image, or why there are none.

    ``model`` is the backbone itself before training; with ``from_checkpoint`` it is already fine-tuned,
    so a fresh pretrained backbone is built from ``weights``.
    """
    if not from_checkpoint:
        if spec.weights_source == RANDOM_INIT:
            return Features(None, "the backbone has no pretrained weights (--weights none)")
        backbone = model
    else:
        try:
            backbone, _ = build_model(spec.arch, num_classes, weights)
        except ReportgenError as exc:
            return Features(None, f"the pretrained {spec.arch} backbone could not be loaded: {exc}")
    outputs = run_model(
        backbone, spec, pixels, runtime, batch_size=batch_size, embeddings=True, desc="Features", progress=progress
    )
    return Features(outputs.embeddings)


def fit_probe(
    features: Features, labels: np.ndarray, train_idx: np.ndarray, *, num_classes: int, seed: int
) -> LinearProbe | None:
    """The linear probe on the training split's pretrained features, or None without features."""
    if features.embeddings is None or len(train_idx) == 0:
        return None
    return fit_linear_probe(features.embeddings[train_idx], labels[train_idx], num_classes=num_classes, seed=seed)


def probe_validation(
    probe: LinearProbe | None, features: Features, labels: np.ndarray, val_idx: np.ndarray
) -> tuple[float, float] | None:
    """Validation loss and accuracy of the linear probe: the fine-tuning's starting model, whose head it is.

    The starting model is the pretrained backbone with the probe as its head, so its validation scores are
    the probe's on the pretrained features: a forward pass over the validation images saved. None
    without a probe or validation images.
    """
    if probe is None or features.embeddings is None or len(val_idx) == 0:
        return None
    logits = probe.logits(features.embeddings[val_idx]).astype(np.float64)
    log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    y = labels[val_idx]
    loss = float(-log_probs[np.arange(len(y)), y].mean())
    return loss, float((logits.argmax(1) == y).mean())


def usable_recipe(train: TrainConfig, probe: LinearProbe | None) -> TrainConfig:
    """The recipe, with a random head when it asks for the probe but there are no pretrained features."""
    if train.head_init == "probe" and probe is None:
        logger.warning("no pretrained features for a linear probe: the new head starts from random weights")
        return dataclasses.replace(train, head_init="random")
    return train


def finetuned_oos_probs(
    images: LoadedImages,
    features: Features,
    runtime: Runtime,
    *,
    arch: str,
    weights: str,
    recipe: TrainConfig,
    folds: int,
    seed: int,
    eval_batch_size: int,
    progress: bool,
) -> np.ndarray:
    """Out-of-sample probabilities from K fine-tunings, each on all images outside one fold (costly)."""
    folds_split = stratified_folds(images.labels, folds, seed)
    num_classes = len(images.class_names)
    probs = np.zeros((len(images.labels), num_classes), dtype=np.float32)
    for fold, (train_idx, held_out) in enumerate(folds_split):
        logger.info("label check: fine-tuning fold %d/%d on %d images", fold + 1, len(folds_split), len(train_idx))
        torch.manual_seed(seed + fold + 1)
        model, spec = build_model(arch, num_classes, weights, normalised_head=recipe.head_init == "probe")
        probe = fit_probe(features, images.labels, train_idx, num_classes=num_classes, seed=seed)
        train_model(
            model,
            spec,
            images.pixels,
            images.labels,
            train_idx=train_idx,
            val_idx=np.zeros(0, dtype=np.int64),
            config=usable_recipe(recipe, probe),
            runtime=runtime,
            seed=seed + fold + 1,
            eval_batch_size=eval_batch_size,
            probe=probe,
            progress=progress,
        )
        outputs = run_model(model, spec, images.pixels[held_out], runtime, batch_size=eval_batch_size, progress=False)
        probs[held_out] = outputs.probs
    return probs
