"""Inference copies of a model with each batch-norm layer folded into the convolution that feeds it.

In eval mode a batch-norm layer is a fixed per-channel scale and shift, so it can be folded into the
weights and bias of the convolution before it: one pass over the activations less per layer. On this
project's 2-core CPU that makes EfficientNet-Lite0 inference 25-40 % faster (``benchmarks/throughput.py``),
and it changes the outputs only by float rounding. Used for the passes that neither train nor take
gradients (features, validation, predictions), on a copy, never on the model being trained or saved.
Training keeps the layers: folding them would change what the optimiser steps. Grad-CAM keeps them too:
measured, folding did not make it reliably faster.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)

TOLERANCE = 1e-3  # largest output difference, relative to the largest output, a folded copy may show


def folded_copy(model: nn.Module, image_size: int) -> nn.Module:
    """An eval-mode copy of ``model`` with batch-norm folded into convolutions; ``model`` when nothing folds.

    The conv → batch-norm pairs are found by running one random image (a batch-norm layer whose input is
    exactly a convolution's output), and the copy is checked on the same image: a copy whose output differs
    by more than :data:`TOLERANCE` is dropped, with a log line, and ``model`` is returned. Two passes of one
    image in all, so that a validation pass per epoch can afford it.
    """
    if not any(_foldable(module) for module in model.modules()):
        return model
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    probe = torch.rand(1, 3, image_size, image_size, generator=torch.Generator().manual_seed(0)).to(device)
    pairs, want = _conv_bn_pairs(model, probe)
    model.train(was_training)
    if not pairs:
        return model
    folded = copy.deepcopy(model).eval()
    for conv_name, bn_name in pairs:
        _fold(folded, conv_name, bn_name)
    with torch.inference_mode():
        got = folded(probe).float()
    error = float((want - got).abs().max() / want.abs().max().clamp_min(1e-12))
    if not error <= TOLERANCE:
        logger.info("batch-norm folding changed outputs by %.2g (relative); inference uses the model as is", error)
        return model
    return folded


def _conv_bn_pairs(model: nn.Module, image: torch.Tensor) -> tuple[list[tuple[str, str]], torch.Tensor]:
    """The model's pairs and its output for ``image``.

    A pair is the (convolution, batch-norm) module names where the batch-norm layer takes exactly the
    convolution's output.
    """
    outputs: list[tuple[str, torch.Tensor]] = []  # every convolution's output, kept alive so ids stay unique
    pairs: list[tuple[str, str]] = []

    def note_input(name: str, tensor: torch.Tensor) -> None:
        pairs.extend((conv, name) for conv, out in outputs if out is tensor)

    hooks = []
    for name, module in model.named_modules():
        if type(module) is nn.Conv2d:
            hooks.append(module.register_forward_hook(lambda _m, _i, out, name=name: outputs.append((name, out))))
        elif _foldable(module):
            hooks.append(module.register_forward_pre_hook(lambda _m, inputs, name=name: note_input(name, inputs[0])))
    try:
        with torch.inference_mode():
            output = model(image).float()
    finally:
        for hook in hooks:
            hook.remove()
    return pairs, output


def _foldable(module: nn.Module) -> bool:
    """A plain ``BatchNorm2d`` with running statistics, or timm's ``BatchNormAct2d`` (batch-norm, drop, act)."""
    if not isinstance(module, nn.BatchNorm2d) or module.running_mean is None:
        return False
    return type(module) is nn.BatchNorm2d or type(module).__name__ == "BatchNormAct2d"


@torch.no_grad()
def _fold(model: nn.Module, conv_name: str, bn_name: str) -> None:
    """Scale ``conv``'s filters and set its bias so that it computes conv then batch-norm; drop the norm."""
    conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
    weight = bn.weight if bn.affine else torch.ones_like(bn.running_var)
    shift = bn.bias if bn.affine else torch.zeros_like(bn.running_var)
    scale = weight / torch.sqrt(bn.running_var + bn.eps)
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
    bias = shift - bn.running_mean * scale
    conv.bias = nn.Parameter(bias if conv.bias is None else conv.bias * scale + bias, requires_grad=False)
    after = nn.Sequential(getattr(bn, "drop", nn.Identity()), getattr(bn, "act", nn.Identity()))
    parent, _, leaf = bn_name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, after)
