"""The only module that knows the order of the stages; it owns the output folder and the seed.

data set -> model -> predictions -> analyses -> report model -> renderers. Everything is written into a
staging folder that replaces ``OUT`` only when the whole run has succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reportgen.analysis.attention import parse_class_limit
from reportgen.analysis.model_check import ModelCheck, check_predictions
from reportgen.compare.baseline import load_baseline
from reportgen.compare.gates import GateSpec, all_passed, check_gate_classes, parse_gates
from reportgen.config import RunConfig
from reportgen.data.dataset import LoadedImages, load_probes
from reportgen.data.layouts import read_dataset
from reportgen.data.splits import choose_split
from reportgen.model.backbones import ModelSpec, build_model, load_checkpoint
from reportgen.model.distributed import Ranks, barrier, gather_rows, load_images_on_node, process_group, ranks_from_env
from reportgen.model.distributed import describe as describe_ranks
from reportgen.model.features import fit_probe, pretrained_features, probe_validation, usable_recipe
from reportgen.model.history import TrainingHistory
from reportgen.model.predict import run_model
from reportgen.model.predictions import Features, Predictions
from reportgen.model.probe import LinearProbe
from reportgen.model.runtime import Runtime, resolve_runtime, seed_everything
from reportgen.model.train import train_model
from reportgen.render.output import staged_output, stop_requested
from reportgen.report import Report
from reportgen.stages import Scored, write_report

if TYPE_CHECKING:  # the model is passed between stages; torch itself is the model layer's
    from torch import nn

logger = logging.getLogger(__name__)

LOG_FILE = "run.log"


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run hands back to the CLI."""

    out_dir: Path
    report: Report
    gates_passed: bool


class _Timer:
    """Wall-clock seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if stop_requested():  # a SIGTERM whose KeyboardInterrupt was swallowed: stop at the next stage
            raise KeyboardInterrupt
        start = time.perf_counter()
        logger.info("stage %s ...", stage)
        yield
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + time.perf_counter() - start, 3)


def run(config: RunConfig) -> RunOutcome | None:
    """Audit ``config.data_dir`` and write everything to ``config.out_dir``.

    Under torchrun every rank scores its shard and trains its slice of each batch; rank 0 alone writes
    the report and returns the outcome, the other ranks return None (see ``reportgen.model.distributed``).
    """
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    timer = _Timer()
    gates, pdf_classes = parse_gates(config.fail_under, config.fail_over), parse_class_limit(config.pdf_classes)
    previous = load_baseline(config.baseline) if config.baseline else None
    ranks = ranks_from_env()
    runtime = resolve_runtime(
        config.device,
        config.precision,
        config.eval_batch_size,
        config.cam_batch_size,
        local_rank=ranks.local_rank,
        local_world=ranks.local_world,
    )
    seed_everything(config.seed)
    with process_group(ranks, runtime.device), _staging(config.out_dir, ranks) as stage:
        logger.info("device: %s%s", runtime.describe(), describe_ranks())
        scored = _score(config, runtime, ranks, timer, gates=gates)
        report = None
        if ranks.is_main:
            report = write_report(
                config,
                scored,
                stage,
                runtime,
                timer,
                started_at=started_at,
                gates=gates,
                previous=previous,
                pdf_classes=pdf_classes,
            )
        barrier(ranks)  # every rank got here: only now may rank 0 publish
    if report is None:
        return None
    passed = all_passed(report.gates)
    logger.info(
        "test accuracy %.3f; gates %s; outputs in %s",
        report.metrics.accuracy,
        "passed" if passed else "FAILED",
        config.out_dir,
    )
    return RunOutcome(Path(config.out_dir), report, passed)


@contextlib.contextmanager
def _staging(out_dir: Path, ranks: Ranks) -> Iterator[Path | None]:
    """Rank 0's staging folder (with ``run.log``) that replaces ``out_dir`` on success; None on the other ranks."""
    if not ranks.is_main:
        yield None
        return
    with staged_output(out_dir) as stage, _log_to(stage / LOG_FILE):
        yield stage


def _score(config: RunConfig, runtime: Runtime, ranks: Ranks, timer: _Timer, *, gates: tuple[GateSpec, ...]) -> Scored:
    """Scan, decode, split, pretrained features, training and predictions: the part every rank runs."""
    progress = config.progress and ranks.is_main
    with timer("scan"):
        scan = read_dataset(config.data_dir, labels=config.labels, label_column=config.label_column)
    check_gate_classes(gates, scan.class_names)
    with timer("model"):
        model, spec = _model(config, scan.class_names)
    probe_pixels = load_probes(config.probes, spec.image_size) if config.probes else None  # fail before training
    with timer("decode"):
        images = load_images_on_node(scan, spec.image_size, ranks, progress=progress)
    split = choose_split(images, config.split, seed=config.seed)
    splits = split.splits
    with timer("features"):
        features = _features(config, model, spec, images, runtime, ranks)
    train_idx = np.flatnonzero(splits == "train")
    probe = fit_probe(features, images.labels, train_idx, num_classes=len(scan.class_names), seed=config.seed)
    history = None
    if config.checkpoint is None:
        with timer("train"):
            history = _train(config, model, spec, images, splits, probe, features, runtime, ranks)
    with timer("predict"):
        predictions = _predict(config, model, spec, images, splits, runtime, ranks)
    model_check = _check_model(predictions, features, probe, history) if ranks.is_main else None
    return Scored(images, model, spec, features, history, predictions, model_check, probe_pixels, split)


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """Copy the package's log records (INFO and up) into ``path`` for the length of the run."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    package_logger = logging.getLogger("reportgen")
    previous_level = package_logger.level
    if package_logger.getEffectiveLevel() > logging.INFO:
        package_logger.setLevel(logging.INFO)  # the file gets INFO even under --quiet; the console keeps its level
    package_logger.addHandler(handler)
    try:
        yield
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)
        handler.close()


def _model(config: RunConfig, class_names: tuple[str, ...]) -> tuple[nn.Module, ModelSpec]:
    """The model to audit: loaded from ``--checkpoint``, or a pretrained backbone with a new head."""
    if config.checkpoint is not None:
        return load_checkpoint(config.checkpoint, class_names)
    normalised = config.train.head_init == "probe"
    return build_model(config.model, len(class_names), config.weights, normalised_head=normalised)


def _features(
    config: RunConfig, model: nn.Module, spec: ModelSpec, images: LoadedImages, runtime: Runtime, ranks: Ranks
) -> Features:
    """The pretrained features of this rank's shard, gathered from every rank."""
    features = pretrained_features(
        model,
        spec,
        images.pixels[ranks.shard(len(images.labels))],
        runtime,
        from_checkpoint=config.checkpoint is not None,
        weights=config.weights,
        num_classes=len(images.class_names),
        batch_size=runtime.eval_batch_size,
        progress=config.progress and ranks.is_main,
    )
    if features.embeddings is None:
        return features
    return Features(gather_rows(features.embeddings, ranks))


def _train(
    config: RunConfig,
    model: nn.Module,
    spec: ModelSpec,
    images: LoadedImages,
    splits: np.ndarray,
    probe: LinearProbe | None,
    features: Features,
    runtime: Runtime,
    ranks: Ranks,
) -> TrainingHistory:
    val_idx = np.flatnonzero(splits == "val")
    return train_model(
        model,
        spec,
        images.pixels,
        images.labels,
        train_idx=np.flatnonzero(splits == "train"),
        val_idx=val_idx,
        config=usable_recipe(config.train, probe),
        runtime=runtime,
        seed=config.seed,
        eval_batch_size=runtime.eval_batch_size,
        probe=probe,
        progress=config.progress and ranks.is_main,
        ranks=ranks,
        start=probe_validation(probe, features, images.labels, val_idx),
    )


def _predict(
    config: RunConfig,
    model: nn.Module,
    spec: ModelSpec,
    images: LoadedImages,
    splits: np.ndarray,
    runtime: Runtime,
    ranks: Ranks,
) -> Predictions:
    """The trained model's scores of this rank's shard, gathered from every rank."""
    shard = images.pixels[ranks.shard(len(images.labels))]
    outputs = run_model(
        model, spec, shard, runtime, batch_size=runtime.eval_batch_size, progress=config.progress and ranks.is_main
    )
    probs = gather_rows(outputs.probs, ranks)
    return Predictions(images.class_names, images.rel_paths, images.labels, splits, probs)


def _check_model(
    predictions: Predictions, features: Features, probe: LinearProbe | None, history: TrainingHistory | None
) -> ModelCheck:
    why_no_probe = "" if probe is not None else (features.why_not or "the training split is empty")
    probe_probs = None if probe is None else probe.probs(features.embeddings)
    check = check_predictions(predictions, probe_probs=probe_probs, history=history, why_no_probe=why_no_probe)
    logger.info("model check: %s", check.verdict)
    return check
