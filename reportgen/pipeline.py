"""The only module that knows the order of the stages; it owns the output folder and the seed."""

from __future__ import annotations

import contextlib
import logging
import platform
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from reportgen import __version__
from reportgen.analysis.extremes import find_extremes
from reportgen.analysis.metrics import compute_metrics
from reportgen.config import RunConfig
from reportgen.data import LoadedImages, load_images, scan_dataset, split_dataset
from reportgen.model import build_model, load_checkpoint, save_checkpoint
from reportgen.output import staged_output, write_json, write_predictions_csv
from reportgen.predict import Predictions, run_model
from reportgen.report import (
    SCHEMA_VERSION,
    DatasetSummary,
    ModelSummary,
    Report,
    RunInfo,
    class_sections,
    to_dict,
)
from reportgen.runtime import resolve_runtime
from reportgen.train import train_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run hands back to the CLI."""

    out_dir: Path
    report: Report


class _Timer:
    """Wall-clock seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        logger.info("stage %s ...", stage)
        yield
        self.seconds[stage] = round(time.perf_counter() - start, 3)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch; the split and training take their own generators from ``seed`` too."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run(config: RunConfig) -> RunOutcome:
    """Audit ``config.data_dir`` and write everything to ``config.out_dir``."""
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    timer = _Timer()
    runtime = resolve_runtime(config.device, config.precision)
    logger.info("device: %s", runtime.describe())
    seed_everything(config.seed)
    with staged_output(config.out_dir) as stage:
        with timer("scan"):
            scan = scan_dataset(config.data_dir)
        with timer("model"):
            if config.checkpoint is not None:
                model, spec = load_checkpoint(config.checkpoint, scan.class_names)
            else:
                model, spec = build_model(config.model, len(scan.class_names), config.weights)
        with timer("decode"):
            images = load_images(scan, spec.image_size, progress=config.progress)
        splits = split_dataset(images.labels, images.class_names, config.split, config.seed, images.root)
        history = None
        if config.checkpoint is None:
            with timer("train"):
                history = train_model(
                    model,
                    spec,
                    images.pixels,
                    images.labels,
                    np.flatnonzero(splits == "train"),
                    np.flatnonzero(splits == "val"),
                    config.train,
                    runtime,
                    seed=config.seed,
                    progress=config.progress,
                )
        save_checkpoint(stage / "model.pt", model, spec, images.class_names, config.to_dict())
        with timer("predict"):
            outputs = run_model(
                model, spec, images.pixels, runtime, batch_size=config.eval_batch_size, progress=config.progress
            )
        predictions = _predictions(images, splits, outputs.probs)
        with timer("analyse"):
            metrics = compute_metrics(predictions.labels, predictions.predicted, splits, images.class_names)
            extremes = find_extremes(
                predictions.probs,
                predictions.labels,
                predictions.indices("test"),
                top_k=config.top_k,
                bottom_k=config.bottom_k,
            )
        report = Report(
            schema_version=SCHEMA_VERSION,
            run=RunInfo(started_at, _versions(), runtime.describe(), config.seed, timer.seconds, config.to_dict()),
            dataset=DatasetSummary(
                str(images.root), images.class_names, metrics.split_counts, len(images.rel_paths), images.skipped
            ),
            model=ModelSummary(
                spec.arch,
                spec.weights_source,
                spec.image_size,
                spec.cam_layer,
                trained=history is not None,
                checkpoint=str(config.checkpoint) if config.checkpoint else None,
            ),
            training=history.epochs if history else None,
            metrics=metrics,
            classes=class_sections(predictions, metrics, extremes),
        )
        write_predictions_csv(stage / "predictions.csv", predictions)
        write_json(stage / "results.json", to_dict(report))
    logger.info("test accuracy %.3f; outputs in %s", metrics.accuracy, config.out_dir)
    return RunOutcome(Path(config.out_dir), report)


def _predictions(images: LoadedImages, splits: np.ndarray, probs: np.ndarray) -> Predictions:
    return Predictions(images.class_names, images.rel_paths, images.labels, splits, probs)


def _versions() -> dict[str, str]:
    versions = {"reportgen": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for package in ("torch", "torchvision", "timm", "grad-cam", "numpy", "pillow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
