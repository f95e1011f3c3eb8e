"""The only module that knows the order of the stages; it owns the output folder and the seed.

data set -> model -> predictions -> analyses -> report model -> renderers. Everything is written into a
staging folder that replaces ``OUT`` only when the whole run has succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reportgen.analysis.cams import compute_cams
from reportgen.analysis.checks import Findings, run_checks
from reportgen.analysis.extremes import find_extremes
from reportgen.analysis.metrics import Metrics, compute_metrics
from reportgen.analysis.model_check import ModelCheck, check_predictions
from reportgen.analysis.probe import LinearProbe
from reportgen.audit import Audit
from reportgen.audit_views import DatasetIndex, audit_cam_requests, build_audit
from reportgen.baseline import load_baseline
from reportgen.build import (
    build_report,
    class_sections,
    dataset_summary,
    image_entries,
    map_features,
    versions,
)
from reportgen.config import RunConfig
from reportgen.data import LoadedImages, load_images, load_probes, scan_dataset, split_dataset
from reportgen.features import finetuned_oos_probs, fit_probe, pretrained_features, usable_recipe
from reportgen.figures import draw_run_figures
from reportgen.gallery import JPEG_QUALITY, THUMB_SIDE, AssetWriter, cam_requests
from reportgen.gates import all_passed, check_gate_classes, parse_gates
from reportgen.history import TrainingHistory
from reportgen.model import ModelSpec, build_model, load_checkpoint, save_checkpoint
from reportgen.output import (
    staged_output,
    stop_requested,
    write_duplicates_csv,
    write_json,
    write_predictions_csv,
    write_suspects_csv,
)
from reportgen.predict import run_model
from reportgen.predictions import CamMaps, Features, Predictions, maps_by_class
from reportgen.probes import classify_probes
from reportgen.report import ClassSection, ModelSummary, ProbeResult, Report, RunInfo
from reportgen.runtime import Runtime, resolve_runtime
from reportgen.train import train_model

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


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch; the split and training take their own generators from ``seed`` too."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run(config: RunConfig) -> RunOutcome:
    """Audit ``config.data_dir`` and write everything to ``config.out_dir``."""
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    timer = _Timer()
    gates = parse_gates(config.fail_under, config.fail_over)
    previous = load_baseline(config.baseline) if config.baseline else None
    runtime = resolve_runtime(config.device, config.precision, config.eval_batch_size, config.cam_batch_size)
    logger.info("device: %s", runtime.describe())
    seed_everything(config.seed)
    with staged_output(config.out_dir) as stage, _log_to(stage / LOG_FILE):
        with timer("scan"):
            scan = scan_dataset(config.data_dir)
        check_gate_classes(gates, scan.class_names)
        with timer("model"):
            model, spec = _model(config, scan.class_names)
        probe_pixels = load_probes(config.probes, spec.image_size) if config.probes else None  # fail before training
        with timer("decode"):
            images = load_images(scan, spec.image_size, progress=config.progress)
        splits = split_dataset(images.labels, images.class_names, config.split, config.seed, images.root)
        with timer("features"):
            features = _features(config, model, spec, images, runtime)
        train_idx = np.flatnonzero(splits == "train")
        probe = fit_probe(features, images.labels, train_idx, num_classes=len(scan.class_names), seed=config.seed)
        history = None
        if config.checkpoint is None:
            with timer("train"):
                history = _train(config, model, spec, images, splits, probe, runtime)
        save_checkpoint(stage / "model.pt", model, spec, images.class_names, config.to_dict())
        with timer("predict"):
            predictions = _predict(config, model, spec, images, splits, runtime)
        model_check = _check_model(predictions, features, probe, history)
        with timer("analyse"):
            metrics, sections = _galleries(config, predictions)
        findings = _checks(config, images, predictions, features, runtime, timer) if config.audit else None
        with timer("gradcam"):
            cams = _cams(config, model, spec, images, predictions, sections, findings, runtime) if config.cam else None
        with timer("assets"):
            sections, audit = _assets(stage, images, predictions, sections, findings, cams)
            probes = _probes(config, stage, model, spec, probe_pixels, images.class_names, runtime)
        with timer("map"):
            embedding, map_facts = map_features(features, images.labels, audit, seed=config.seed)
        report = build_report(
            run=RunInfo(started_at, versions(), runtime.describe(), config.seed, timer.seconds, config.to_dict()),
            dataset=dataset_summary(images, metrics),
            model=_model_summary(config, spec, trained=history is not None),
            history=history,
            model_check=model_check,
            metrics=metrics,
            classes=sections,
            probes=probes,
            audit=audit,
            images=image_entries(images, splits),
            gates=gates,
            previous=previous,
            baseline=str(config.baseline or ""),
            dataset_map=map_facts,
        )
        with timer("figures"):
            draw_run_figures(report, stage, images, predictions, findings, cams, embedding, seed=config.seed)
        with timer("render"):
            _render(report, stage, pdf=config.pdf, single_file=config.single_file)
        _write_tables(stage, predictions, report)  # results.json last: its timings now hold every stage
    passed = all_passed(report.gates)
    logger.info(
        "test accuracy %.3f; gates %s; outputs in %s",
        metrics.accuracy,
        "passed" if passed else "FAILED",
        config.out_dir,
    )
    return RunOutcome(Path(config.out_dir), report, passed)


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


def _features(config: RunConfig, model: nn.Module, spec: ModelSpec, images: LoadedImages, runtime: Runtime) -> Features:
    return pretrained_features(
        model,
        spec,
        images.pixels,
        runtime,
        from_checkpoint=config.checkpoint is not None,
        weights=config.weights,
        num_classes=len(images.class_names),
        batch_size=runtime.eval_batch_size,
        progress=config.progress,
    )


def _train(
    config: RunConfig,
    model: nn.Module,
    spec: ModelSpec,
    images: LoadedImages,
    splits: np.ndarray,
    probe: LinearProbe | None,
    runtime: Runtime,
) -> TrainingHistory:
    return train_model(
        model,
        spec,
        images.pixels,
        images.labels,
        train_idx=np.flatnonzero(splits == "train"),
        val_idx=np.flatnonzero(splits == "val"),
        config=usable_recipe(config.train, probe),
        runtime=runtime,
        seed=config.seed,
        eval_batch_size=runtime.eval_batch_size,
        probe=probe,
        progress=config.progress,
    )


def _predict(
    config: RunConfig, model: nn.Module, spec: ModelSpec, images: LoadedImages, splits: np.ndarray, runtime: Runtime
) -> Predictions:
    outputs = run_model(
        model, spec, images.pixels, runtime, batch_size=runtime.eval_batch_size, progress=config.progress
    )
    return Predictions(images.class_names, images.rel_paths, images.labels, splits, outputs.probs)


def _check_model(
    predictions: Predictions, features: Features, probe: LinearProbe | None, history: TrainingHistory | None
) -> ModelCheck:
    why_no_probe = "" if probe is not None else (features.why_not or "the training split is empty")
    probe_probs = None if probe is None else probe.probs(features.embeddings)
    check = check_predictions(predictions, probe_probs=probe_probs, history=history, why_no_probe=why_no_probe)
    logger.info("model check: %s", check.verdict)
    return check


def _galleries(config: RunConfig, predictions: Predictions) -> tuple[Metrics, tuple[ClassSection, ...]]:
    """Test metrics, and per class the most and least activating test images (no pictures yet)."""
    metrics = compute_metrics(predictions.labels, predictions.predicted, predictions.splits, predictions.class_names)
    extremes = find_extremes(
        predictions.probs,
        predictions.labels,
        predictions.indices("test"),
        top_k=config.top_k,
        bottom_k=config.bottom_k,
    )
    return metrics, class_sections(predictions, metrics, extremes)


def _checks(
    config: RunConfig,
    images: LoadedImages,
    predictions: Predictions,
    features: Features,
    runtime: Runtime,
    timer: _Timer,
) -> Findings:
    """The data-defect checks; with ``--label-check finetune`` the K fine-tunings run first."""
    finetuned = None
    if config.label_check == "finetune":
        with timer("label_check"):
            finetuned = finetuned_oos_probs(
                images,
                features,
                runtime,
                arch=config.model,
                weights=config.weights,
                recipe=config.train,
                folds=config.label_folds,
                seed=config.seed,
                eval_batch_size=runtime.eval_batch_size,
                progress=config.progress,
            )
    return run_checks(
        images,
        predictions.splits,
        predictions,
        features,
        label_check=config.label_check,
        folds=config.label_folds,
        threshold=config.near_duplicate_threshold,
        seed=config.seed,
        finetuned_probs=finetuned,
        timed=timer,
    )


def _cams(
    config: RunConfig,
    model: nn.Module,
    spec: ModelSpec,
    images: LoadedImages,
    predictions: Predictions,
    sections: tuple[ClassSection, ...],
    findings: Findings | None,
    runtime: Runtime,
) -> CamMaps:
    """Grad-CAM maps for the galleries, the audit's suspects and the shortcut check's correct test images."""
    index_of = {path: i for i, path in enumerate(images.rel_paths)}
    requests = [
        *cam_requests(sections, index_of, images.class_names),
        *(audit_cam_requests(findings) if findings else []),
        *predictions.correct_test_images(),
    ]
    return compute_cams(
        model, spec, images.pixels, requests, runtime, batch_size=runtime.cam_batch_size, progress=config.progress
    )


def _assets(
    stage: Path,
    images: LoadedImages,
    predictions: Predictions,
    sections: tuple[ClassSection, ...],
    findings: Findings | None,
    cams: CamMaps | None,
) -> tuple[tuple[ClassSection, ...], Audit | None]:
    """Write the galleries' and the audit's pictures; return the sections and audit block pointing to them."""
    names = images.class_names
    sizes = [(info.width, info.height) for info in images.infos]
    class_idx = {n: i for i, n in enumerate(names)}
    writer = AssetWriter(stage, images.pixels, cams, class_idx, JPEG_QUALITY, THUMB_SIDE, sizes=sizes)
    sections = writer.gallery_sections(sections, {path: i for i, path in enumerate(images.rel_paths)})
    if findings is None:
        return sections, None
    index = DatasetIndex(images.rel_paths, images.labels, predictions.splits, names)
    maps = maps_by_class(cams, predictions) if cams is not None else None
    audit = build_audit(findings, index, predictions.predicted, maps_by_class=maps, assets=writer.image_assets)
    return sections, audit


def _probes(
    config: RunConfig,
    stage: Path,
    model: nn.Module,
    spec: ModelSpec,
    pixels: np.ndarray | None,
    class_names: tuple[str, ...],
    runtime: Runtime,
) -> tuple[ProbeResult, ...]:
    if pixels is None:
        return ()
    return classify_probes(
        model,
        spec,
        pixels,
        runtime,
        paths=config.probes,
        class_names=class_names,
        cam=config.cam,
        batch_size=runtime.eval_batch_size,
        cam_batch_size=runtime.cam_batch_size,
        out_dir=stage,
        progress=config.progress,
    )


def _model_summary(config: RunConfig, spec: ModelSpec, *, trained: bool) -> ModelSummary:
    checkpoint = str(config.checkpoint) if config.checkpoint else None
    return ModelSummary(spec.arch, spec.weights_source, spec.image_size, spec.cam_layer, trained, checkpoint)


def _render(report: Report, out_dir: Path, *, pdf: bool, single_file: bool) -> None:
    from reportgen.render.html import print_page, render_html

    render_html(report, out_dir, single_file=single_file)
    if pdf:  # the PDF's page has the thumbnails by relative path (the faster layout) and no zoom views
        from reportgen.render.pdf import render_pdf

        render_pdf(print_page(report, out_dir), out_dir, out_dir / "report.pdf")


def _write_tables(stage: Path, predictions: Predictions, report: Report) -> None:
    """predictions.csv, the audit's CSV lists and results.json (last: it marks a finished output folder)."""
    write_predictions_csv(stage / "predictions.csv", predictions)
    if report.audit is not None:
        write_suspects_csv(stage / "suspects.csv", report.audit)
        write_duplicates_csv(stage / "duplicates.csv", report.audit)
    write_json(stage / "results.json", report.to_dict())
