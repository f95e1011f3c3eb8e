"""What the benchmarks share: where the data sets are, reportgen run's defaults, and stages called as a run calls them.

Torch is imported only inside :func:`load_features`, so a benchmark can set its thread count first.
"""

from __future__ import annotations

import dataclasses
import io
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from reportgen.analysis.label_issues import cross_val_probs
from reportgen.config import RunConfig, TrainConfig
from reportgen.data.dataset import DatasetScan, LoadedImages, load_images

if TYPE_CHECKING:
    from torch import nn

    from reportgen.model.backbones import ModelSpec
    from reportgen.model.history import TrainingHistory
    from reportgen.model.predictions import Features
    from reportgen.model.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
REPO_EXAMPLE = REPO / "examples" / "clothing-mini"
PRODUCT = RunConfig(data_dir=Path("DATA"), out_dir=Path("OUT"))  # every default of `reportgen run` (paths unused)


def load_features(scan: DatasetScan, runtime: Runtime) -> tuple[LoadedImages, Features, float]:
    """Decode a set and compute its pretrained features as a run does; the seconds of the features pass.

    The default backbone and weights, decoded at its input size, then the pipeline's features stage
    (:func:`reportgen.model.features.pretrained_features`) with the run's evaluation batch size.
    """
    from reportgen.model.backbones import build_model
    from reportgen.model.features import pretrained_features

    model, spec = build_model(PRODUCT.model, len(scan.class_names), PRODUCT.weights)
    images = load_images(scan, spec.image_size, progress=False)
    start = time.perf_counter()
    features = pretrained_features(
        model,
        spec,
        images.pixels,
        runtime,
        from_checkpoint=False,
        weights=PRODUCT.weights,
        num_classes=len(images.class_names),
        batch_size=runtime.eval_batch_size,
        progress=False,
    )
    if features.embeddings is None:
        raise SystemExit(f"no pretrained features: {features.why_not}")
    return images, features, time.perf_counter() - start


def label_probs(embeddings: np.ndarray, labels: np.ndarray, *, num_classes: int, seed: int = 0) -> np.ndarray:
    """The label check's out-of-sample probabilities, as ``run_checks`` computes them (``--label-check embeddings``).

    ``run_checks`` hands them to ``find_label_issues(labels, probs)`` with its defaults; the benchmarks call it
    themselves, to time the two steps apart and to reuse the probabilities.
    """
    return cross_val_probs(embeddings, labels, num_classes=num_classes, folds=PRODUCT.label_folds, seed=seed)


@dataclasses.dataclass(frozen=True)
class TrainingRates:
    """Training images/s of the same model and batch, measured back to back in one process."""

    loop: float  # one epoch of train_model, no validation: shuffling, augmentation, step, bookkeeping
    epoch: float  # one epoch as a run trains it: the loop, then a validation pass on a third as many images
    bare: float  # forward, loss, backward and SGD step on one fixed batch (mean of before and after)


def training_rates(scan: DatasetScan, *, images: int = 200) -> TrainingRates:
    """Images/s of the default recipe's training loop, of a whole training epoch and of a bare loop.

    ``images`` images of ``scan``, evenly spread over its files, are decoded as a run decodes them. The loop
    is ``train_model`` on all of them with no validation split. The epoch is ``train_model`` on about 3/4 of
    them with a third as many others as validation images (the default split's 60:20), timed by the epoch's own clock
    (training and its validation pass, as the training stage runs each epoch), images/s counted over the
    training images. The bare loop is forward, loss, backward and SGD step on one fixed random batch of the
    same size, memory layout and batch-norm mode, as many steps; it runs before and after the others, on
    the same model, and counts the mean of the two, so that a change of machine load shows as a gap.
    """
    from reportgen.model.backbones import build_model
    from reportgen.model.runtime import resolve_runtime
    from reportgen.model.train import train_model

    runtime = resolve_runtime(PRODUCT.device, PRODUCT.precision)
    recipe = dataclasses.replace(PRODUCT.train, epochs=1, head_init="random")  # no linear probe to fit first
    num_classes = len(scan.class_names)
    model, spec = build_model(PRODUCT.model, num_classes, PRODUCT.weights, normalised_head=True)
    spread = np.unique(np.linspace(0, len(scan.records) - 1, images).round().astype(int))  # every class
    sub_scan = DatasetScan(scan.root, scan.class_names, tuple(scan.records[i] for i in spread))
    sample = load_images(sub_scan, spec.image_size, progress=False)
    n = len(sample.labels) // recipe.batch_size * recipe.batch_size
    n_train = n * 3 // 4 // recipe.batch_size * recipe.batch_size
    n_val = n_train // 3  # the default split's 60:20
    order = np.random.default_rng(0).permutation(n)  # the classes mixed between training and validation

    def train(train_idx: np.ndarray, val_idx: np.ndarray) -> TrainingHistory:
        return train_model(
            model,
            spec,
            sample.pixels,
            sample.labels,
            train_idx=train_idx,
            val_idx=val_idx,
            config=recipe,
            runtime=runtime,
            seed=0,
            eval_batch_size=runtime.eval_batch_size,
            progress=False,
        )

    before = bare_loop_rate(model, spec, runtime, recipe, num_classes=num_classes, steps=n // recipe.batch_size)
    start = time.perf_counter()
    train(np.arange(n), np.arange(0))
    loop = n / (time.perf_counter() - start)
    epoch = n_train / train(order[:n_train], order[n_train : n_train + n_val]).epochs[0].seconds
    after = bare_loop_rate(model, spec, runtime, recipe, num_classes=num_classes, steps=n // recipe.batch_size)
    return TrainingRates(loop, epoch, (before + after) / 2)


def bare_loop_rate(
    model: nn.Module, spec: ModelSpec, runtime: Runtime, recipe: TrainConfig, *, num_classes: int, steps: int
) -> float:
    """Images/s of forward, loss, backward and SGD step on one fixed random batch (after two warm-up steps)."""
    import torch

    from reportgen.model.runtime import autocast

    layout = torch.channels_last if runtime.channels_last else torch.contiguous_format
    model.to(runtime.device, memory_format=layout)
    model.train()
    if recipe.batchnorm == "frozen":  # as the training loop runs them: batch-norm layers keep their statistics
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(recipe.batch_size, 3, spec.image_size, spec.image_size, generator=generator)
    x = x.to(runtime.device).contiguous(memory_format=layout)
    y = torch.randint(0, num_classes, (recipe.batch_size,), generator=generator).to(runtime.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    for step in range(steps + 2):
        if step == 2:
            start = time.perf_counter()
        with autocast(runtime, runtime.train_dtype):
            loss = criterion(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if runtime.device.type == "cuda":
        torch.cuda.synchronize()
    return steps * recipe.batch_size / (time.perf_counter() - start)


def jpeg_bytes(img: Image.Image, quality: int) -> bytes:
    """``img`` encoded as an RGB JPEG."""
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def with_patch(img: Image.Image, size: float) -> Image.Image:
    """A magenta square of ``size`` x the shorter side, 8 % of it in from the top-left corner."""
    img = img.copy()
    side = max(4, int(size * min(img.size)))
    off = int(0.08 * min(img.size))
    img.paste((255, 0, 255), (off, off, off + side, off + side))
    return img


def stamp_file(path: Path, size: float) -> None:
    """Rewrite the image at ``path`` with the patch (JPEG, quality 95)."""
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    path.write_bytes(jpeg_bytes(with_patch(img, size), 95))


def synthetic_clusters(
    n: int,
    *,
    classes: int = 20,
    dims: int = 1280,
    latent: int = 32,
    spread: float = 0.7,
    noise: float = 0.5,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(n, dims)`` float32 features of ``classes`` overlapping Gaussian clusters, and their labels.

    Class centres (``spread`` times a standard normal) in a ``latent``-d space, unit normal scatter around
    them, lifted linearly to ``dims`` dimensions, ``noise`` added, then a ReLU, as pooled features are.
    The defaults' k-NN agreement in 1280-d is 0.76 (``embedding_map.py``).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(scale=spread, size=(classes, latent))
    z = centres[labels] + rng.normal(size=(n, latent))
    lift = rng.normal(size=(latent, dims)) / np.sqrt(latent)
    x = np.maximum(z @ lift + rng.normal(scale=noise, size=(n, dims)), 0.0)
    return x.astype(np.float32), labels
