"""Prediction stage: softmax scores (and penultimate-layer embeddings) for a set of images."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from reportgen.model.backbones import ModelSpec
from reportgen.model.fold import folded_copy
from reportgen.model.runtime import Runtime, autocast, normalise, unit_batches

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outputs:
    """Model outputs for ``N`` images, as numpy arrays."""

    probs: np.ndarray  # (N, C) float32 softmax scores
    embeddings: np.ndarray | None  # (N, D) float32 inputs of the classifier head, when asked for


def run_model(
    model: nn.Module,
    spec: ModelSpec,
    pixels: np.ndarray,
    runtime: Runtime,
    *,
    batch_size: int,
    embeddings: bool = False,
    fold_batchnorm: bool = True,
    desc: str = "Predicting",
    progress: bool = True,
) -> Outputs:
    """Run ``model`` in eval mode over ``(N, S, S, 3)`` uint8 ``pixels``.

    With ``fold_batchnorm`` the pass runs on a copy with batch-norm folded (:func:`~reportgen.model.fold.folded_copy`).
    """
    model.eval().to(
        runtime.device, memory_format=torch.channels_last if runtime.channels_last else torch.preserve_format
    )
    if fold_batchnorm:
        model = folded_copy(model, spec.image_size)
    captured: list[torch.Tensor] = []
    hook = None
    if embeddings:
        head = model.get_submodule(spec.head)
        hook = head.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0].float().cpu()))
    probs = []
    batches = [slice(i, i + batch_size) for i in range(0, len(pixels), batch_size)]
    try:
        with torch.inference_mode(), autocast(runtime, runtime.eval_dtype):
            xs = unit_batches(pixels, batches, runtime)  # on CUDA the next batch is made while this one runs
            for x in tqdm(xs, total=len(batches), desc=desc, unit="batch", disable=not progress, leave=False):
                probs.append(torch.softmax(model(normalise(x, spec, runtime)).float(), dim=1).cpu())
    finally:
        if hook is not None:
            hook.remove()
    n_classes = model.get_submodule(spec.head).out_features
    prob_array = torch.cat(probs).numpy() if probs else np.zeros((0, n_classes), np.float32)
    emb_array = torch.cat(captured).flatten(1).numpy() if captured else None
    return Outputs(prob_array.astype(np.float32), emb_array)
