"""Batch-norm folding for inference: same outputs, fewer layers, the original untouched, unsafe folds refused."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from timm.layers import BatchNormAct2d
from torch import nn

from reportgen.model.backbones import ModelSpec
from reportgen.model.fold import folded_copy
from reportgen.model.predict import run_model
from reportgen.model.runtime import resolve_runtime


def _randomise(model: nn.Module) -> nn.Module:
    """Batch-norm statistics and affine parameters far from identity, so a wrong fold shows."""
    generator = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=generator) - 0.5)
    return model.eval()


class ConvBnNet(nn.Module):
    """conv → BN → ReLU, conv (with bias) → timm BatchNormAct2d (ReLU inside), a BN after a ReLU, a head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=True)
        self.bn2 = BatchNormAct2d(8, act_layer=nn.ReLU)
        self.bn3 = nn.BatchNorm2d(8)  # its input is a ReLU's output: nothing to fold into
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(self.bn3(torch.relu(x)).mean((2, 3)))


class SkipNet(nn.Module):
    """A convolution's output feeds a BN and is also added back: folding it would change the sum."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.fc((self.bn(y) + y).mean((2, 3)))


def _bn_count(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_folded_copy_matches_and_leaves_the_model_alone() -> None:
    torch.manual_seed(0)
    model = _randomise(ConvBnNet())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    folded = folded_copy(model, 16)
    assert folded is not model
    assert _bn_count(model) == 3 and _bn_count(folded) == 1  # bn1, bn2 folded; bn3 follows a ReLU
    assert isinstance(folded.bn2, nn.Sequential) and isinstance(folded.bn2[1], nn.ReLU)  # the act survives
    assert model.training and not folded.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.randn(4, 3, 16, 16)
    model.eval()
    with torch.inference_mode():
        want, got = model(x), folded(x)
    assert torch.allclose(want, got, atol=1e-5, rtol=1e-4)


def test_a_fold_that_changes_outputs_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    model = _randomise(SkipNet())
    with caplog.at_level(logging.INFO, logger="reportgen.model.fold"):
        assert folded_copy(model, 8) is model
    assert "batch-norm folding changed outputs" in caplog.text


def test_a_model_without_batchnorm_is_returned_as_is(tiny_model: tuple[nn.Module, ModelSpec]) -> None:
    model, spec = tiny_model
    assert folded_copy(model, spec.image_size) is model


def test_run_model_scores_equal_with_and_without_folding() -> None:
    torch.manual_seed(0)
    model = _randomise(ConvBnNet())
    spec = ModelSpec("convbn", 16, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bn2", "fc", "random initialisation")
    pixels = np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    runtime = resolve_runtime("cpu", "fp32")
    kept = run_model(model, spec, pixels, runtime, batch_size=4, embeddings=True, fold_batchnorm=False, progress=False)
    folded = run_model(model, spec, pixels, runtime, batch_size=4, embeddings=True, progress=False)
    np.testing.assert_allclose(folded.probs, kept.probs, atol=1e-5)
    np.testing.assert_allclose(folded.embeddings, kept.embeddings, atol=1e-4, rtol=1e-4)
    assert _bn_count(model) == 3  # the model itself keeps its layers
