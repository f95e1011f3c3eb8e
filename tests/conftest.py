"""Shared fixtures: tiny synthetic image folders, a tiny CNN, and the real photos beside the repo."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from reportgen.model.backbones import ModelSpec

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_WEIGHTS = REPO.parent / "shared" / "weights"
EXAMPLE = REPO / "examples" / "clothing-mini"

COLOURS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}


def write_image(
    path: Path, colour: tuple[int, int, int], *, size: int = 32, seed: int = 0, fmt: str | None = None
) -> Path:
    """Write a noisy solid-colour image (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 20, (size, size, 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, format=fmt)
    return path


def make_dataset(root: Path, per_class: int = 8, classes: dict[str, tuple[int, int, int]] | None = None) -> Path:
    """A folder-per-class data set of noisy colour squares."""
    for c, (name, colour) in enumerate((classes or COLOURS).items()):
        for i in range(per_class):
            write_image(root / name / f"img_{i:02d}.png", colour, seed=100 * c + i)
    return root


@pytest.fixture
def colour_dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "colours")


class TinyNet(nn.Module):
    """A 2-conv CNN with a linear head: enough to train, explain and checkpoint in milliseconds."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


@pytest.fixture
def tiny_model() -> tuple[nn.Module, ModelSpec]:
    torch.manual_seed(0)
    spec = ModelSpec("tiny", 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "features", "fc", "random initialisation")
    return TinyNet(3), spec


def shared_data(name: str) -> Path:
    """Path of a real photo set beside the repo, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real photos not available: {path} is absent (it lies beside the repo on dev and CI machines)")
    return path


def subset(src: Path, dst: Path, per_class: int) -> Path:
    """Copy the first ``per_class`` images of each class folder of ``src`` into ``dst``."""
    for class_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        files = sorted(p for p in class_dir.iterdir() if p.is_file())[:per_class]
        (dst / class_dir.name).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(f, dst / class_dir.name / f.name)
    return dst
