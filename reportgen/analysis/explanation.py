"""Run the explanation check: score the report's maps and both baselines with the model, and the sanity check.

The arithmetic and the verdict are :mod:`reportgen.analysis.faithfulness`'s (pure); this module runs the
model on the perturbed images (``reportgen.model.predict.run_model``) and the CAM methods
(``reportgen.analysis.cams``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from reportgen.analysis.cams import compute_cams, randomised_copy
from reportgen.analysis.faithfulness import (
    PERCENTILES,
    ExplanationCheck,
    centred_blob,
    impute,
    judge,
    perturbed,
    road_scores,
    spearman_maps,
)
from reportgen.analysis.shortcuts import RELIANCE_AREA, RELIANCE_IMAGES, Reliance, reliance_masks
from reportgen.model.backbones import ModelSpec
from reportgen.model.fold import folded_copy
from reportgen.model.predict import run_model
from reportgen.model.runtime import Runtime

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)


def fast_road(
    model: nn.Module,
    spec: ModelSpec,
    pixels: np.ndarray,
    maps: np.ndarray,
    classes: Sequence[int],
    runtime: Runtime,
    *,
    batch_size: int,
    seed: int,
    percentiles: Sequence[int] = PERCENTILES,
) -> np.ndarray:
    """Per image, the fast ROAD score of its map: ``pixels`` ``(n, S, S, 3)`` uint8, ``maps`` ``(n, S, S)``."""
    if not len(pixels):
        return np.zeros(0)
    steps = 2 * len(percentiles)
    out = []
    chunk = max(1, batch_size // steps)  # images whose perturbed copies make about one batch
    for start in range(0, len(pixels), chunk):
        part = slice(start, start + chunk)
        images = perturbed(pixels[part], maps[part], percentiles, seed=seed + start)
        probs = run_model(model, spec, images, runtime, batch_size=batch_size, fold_batchnorm=False, progress=False)
        targets = np.repeat(np.asarray(classes[part]), steps)
        out.append(road_scores(probs.probs[np.arange(len(images)), targets], percentiles))
    return np.concatenate(out)


def check_explanations(
    model: nn.Module,
    spec: ModelSpec,
    pixels: np.ndarray,
    requests: Sequence[tuple[int, int]],
    maps: np.ndarray,
    runtime: Runtime,
    *,
    class_names: Sequence[str],
    method: str,
    seed: int,
    batch_size: int,
    cam_batch_size: int,
    sanity: bool = True,
) -> ExplanationCheck:
    """Score ``maps`` (one per ``(image index, class index)`` request) against a random map and a centred blob.

    With ``sanity`` the maps are recomputed on a copy of the model whose head and last blocks are
    re-initialised, and compared by rank correlation.
    """
    indices = np.array([i for i, _ in requests], dtype=np.int64)
    classes = [c for _, c in requests]
    images = pixels[indices] if len(indices) else np.zeros((0, *pixels.shape[1:]), np.uint8)
    local = [(k, c) for k, c in enumerate(classes)]  # requests into ``images``
    random = compute_cams(
        model, spec, images, local, runtime, batch_size=cam_batch_size, method="random", seed=seed, progress=False
    ).maps
    blob = np.broadcast_to(centred_blob(images.shape[1]), (len(images), images.shape[1], images.shape[1]))
    folded = folded_copy(model, spec.image_size)  # once, not per call of run_model
    scored = [
        fast_road(folded, spec, images, m, classes, runtime, batch_size=batch_size, seed=seed)
        for m in (maps, random, blob)
    ]
    correlations, names = None, ()
    if sanity and len(images):
        copy, names = randomised_copy(model, spec, seed=seed)
        after = compute_cams(
            copy, spec, images, local, runtime, batch_size=cam_batch_size, method=method, progress=False
        ).maps
        correlations = spearman_maps(maps, after)
    check = judge(
        *scored, classes, class_names=class_names, method=method, layer=spec.cam_layer, sanity=correlations,
        randomised=names,
    )  # fmt: skip
    logger.info(
        "explanation check: %s (ROAD %.3f, random %.3f, blob %.3f, %d images; sanity correlation %s)",
        check.verdict, check.maps.mean, check.random.mean, check.blob.mean, check.maps.n, check.sanity,
    )  # fmt: skip
    return check


def measure_reliance(
    model: nn.Module,
    spec: ModelSpec,
    pixels: np.ndarray,
    indices: Sequence[int],
    class_idx: int,
    maps: np.ndarray,
    runtime: Runtime,
    *,
    batch_size: int,
    limit: int = RELIANCE_IMAGES,
) -> Reliance:
    """How much ``class_idx``'s score falls when its evidence region goes, against an equal area elsewhere.

    ``indices`` are the class's correctly classified test images and ``maps`` their ``(n, S, S)`` maps
    (the region comes from all of them); the first ``limit`` images are measured.
    """
    region, controls = reliance_masks(maps)
    picked = np.asarray(indices[:limit], dtype=np.int64)
    variants = []
    for image, control in zip(pixels[picked].astype(np.float32), controls[:limit], strict=True):
        variants += [image, impute(image, region), impute(image, control)]
    if not variants:
        return Reliance(0.0, 0.0, 0, RELIANCE_AREA)
    batch = np.clip(np.rint(np.stack(variants)), 0, 255).astype(np.uint8)
    probs = run_model(model, spec, batch, runtime, batch_size=batch_size, progress=False).probs[:, class_idx]
    scores = probs.reshape(-1, 3).astype(np.float64)  # (n, [original, region removed, control removed])
    drop, control_drop = (scores[:, 0] - scores[:, 1]).mean(), (scores[:, 0] - scores[:, 2]).mean()
    return Reliance(round(float(drop), 6), round(float(control_drop), 6), len(picked), RELIANCE_AREA)
