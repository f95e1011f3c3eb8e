"""Real photos and their pretrained embeddings for the finders' e2e tests, computed once per session."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_set(name: str) -> Path:
    """The folder of a shared photo set, or skip the test when the shared folder is absent."""
    root = SHARED_DATA / name
    if not root.is_dir():
        pytest.skip(f"shared photo set not found at {root} (the ../shared folder beside the repo is absent)")
    return root


@lru_cache(maxsize=4)
def loaded(name: str):
    """Every image of a shared set, decoded at 224 px like the pipeline."""
    from reportgen.data.dataset import load_images, scan_dataset

    return load_images(scan_dataset(shared_set(name)), 224, progress=False)


def embed(pixels: np.ndarray, num_classes: int) -> np.ndarray:
    """Pretrained EfficientNet-Lite0 embeddings (the new head's inputs) of ``(N, 224, 224, 3)`` pixels."""
    from reportgen.model.backbones import build_model
    from reportgen.model.predict import run_model
    from reportgen.model.runtime import resolve_runtime

    model, spec = build_model("efficientnet_lite0", num_classes, "DEFAULT")
    return run_model(
        model, spec, pixels, resolve_runtime("cpu"), batch_size=32, embeddings=True, progress=False
    ).embeddings


@lru_cache(maxsize=4)
def embeddings(name: str) -> np.ndarray:
    """``(N, 1280)`` pretrained embeddings of every image of a shared set."""
    images = loaded(name)
    return embed(images.pixels, len(images.class_names))
