"""The only module that knows the order of the stages; it owns the output folder and the seed.

data set -> model -> predictions -> analyses -> report model -> renderers. Everything is written into a
staging folder that replaces ``OUT`` only when the whole run has succeeded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import platform
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reportgen import __version__
from reportgen.analysis.calibration import Calibration, CalibrationVerdict, calibration_verdict, compute_calibration
from reportgen.analysis.cams import CamMaps, compute_cams
from reportgen.analysis.duplicates import Duplicates, find_duplicates
from reportgen.analysis.extremes import find_extremes
from reportgen.analysis.health import Health, check_health
from reportgen.analysis.label_issues import LabelIssues, cross_val_probs, find_label_issues, stratified_folds
from reportgen.analysis.metrics import compute_metrics, split_accuracy
from reportgen.analysis.model_check import ModelCheck, check_model, references
from reportgen.analysis.outliers import Outliers, find_outliers
from reportgen.analysis.probe import LinearProbe, fit_linear_probe
from reportgen.analysis.shortcuts import class_mean_map, find_shortcuts
from reportgen.analysis.stamps import Stamps, find_stamps
from reportgen.audit import (
    SHOWN_REVIEW,
    SHOWN_SUSPECTS,
    AssetFn,
    Audit,
    DatasetIndex,
    calibration_view,
    class_facts,
    duplicate_check_view,
    health_view,
    label_check_view,
    outlier_view,
    shortcut_view,
    stamp_view,
)
from reportgen.baseline import compare_results, load_baseline
from reportgen.config import RunConfig, TrainConfig
from reportgen.data import LoadedImages, load_images, load_probes, scan_dataset, split_dataset
from reportgen.errors import ReportgenError
from reportgen.figures import (
    plot_class_histogram,
    plot_confusion,
    plot_mean_cams,
    plot_montage,
    plot_reliability,
    plot_training_curves,
)
from reportgen.gallery import (
    JPEG_QUALITY,
    THUMB_SIDE,
    AssetWriter,
    cam_requests,
    write_probe_assets,
)
from reportgen.gates import all_passed, check_gate_classes, evaluate_gates, parse_gates
from reportgen.history import TrainingHistory
from reportgen.model import RANDOM_INIT, ModelSpec, build_model, load_checkpoint, save_checkpoint
from reportgen.narrative import narrate, with_narrative
from reportgen.output import (
    staged_output,
    stop_requested,
    write_duplicates_csv,
    write_json,
    write_predictions_csv,
    write_suspects_csv,
)
from reportgen.predict import Predictions, run_model
from reportgen.report import (
    SCHEMA_VERSION,
    DatasetSummary,
    ModelSummary,
    ProbeResult,
    Report,
    RunInfo,
    class_sections,
    to_dict,
    with_class_facts,
)
from reportgen.runtime import Runtime, resolve_runtime
from reportgen.train import train_model

logger = logging.getLogger(__name__)

LOG_FILE = "run.log"
FIGURES = "figures"


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


@dataclass(frozen=True)
class _Features:
    """Pretrained-backbone features of every image (before fine-tuning), or why there are none."""

    embeddings: np.ndarray | None
    why_not: str = ""


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
    runtime = resolve_runtime(config.device, config.precision)
    logger.info("device: %s", runtime.describe())
    seed_everything(config.seed)
    with staged_output(config.out_dir) as stage, _log_to(stage / LOG_FILE):
        with timer("scan"):
            scan = scan_dataset(config.data_dir)
        check_gate_classes(gates, scan.class_names)
        with timer("model"):
            if config.checkpoint is not None:
                model, spec = load_checkpoint(config.checkpoint, scan.class_names)
            else:
                model, spec = build_model(
                    config.model,
                    len(scan.class_names),
                    config.weights,
                    normalised_head=config.train.head_init == "probe",
                )
        probe_pixels = load_probes(config.probes, spec.image_size) if config.probes else None
        with timer("decode"):
            images = load_images(scan, spec.image_size, progress=config.progress)
        splits = split_dataset(images.labels, images.class_names, config.split, config.seed, images.root)
        with timer("features"):
            features = _pretrained_features(config, model, spec, images, runtime)
        train_idx, val_idx = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "val")
        probe = _fit_probe(features, images.labels, train_idx, len(images.class_names), config.seed)
        history = None
        if config.checkpoint is None:
            with timer("train"):
                history = train_model(
                    model,
                    spec,
                    images.pixels,
                    images.labels,
                    train_idx=train_idx,
                    val_idx=val_idx,
                    config=_usable_recipe(config.train, probe),
                    runtime=runtime,
                    seed=config.seed,
                    probe=probe,
                    progress=config.progress,
                )
        save_checkpoint(stage / "model.pt", model, spec, images.class_names, config.to_dict())
        with timer("predict"):
            outputs = run_model(
                model, spec, images.pixels, runtime, batch_size=config.eval_batch_size, progress=config.progress
            )
        predictions = Predictions(images.class_names, images.rel_paths, images.labels, splits, outputs.probs)
        model_check = _check_model(predictions, features, probe, history)
        logger.info("model check: %s", model_check.verdict)
        with timer("analyse"):
            metrics = compute_metrics(predictions.labels, predictions.predicted, splits, images.class_names)
            extremes = find_extremes(
                predictions.probs,
                predictions.labels,
                predictions.indices("test"),
                top_k=config.top_k,
                bottom_k=config.bottom_k,
            )
            sections = class_sections(predictions, metrics, extremes)
        findings = _find_defects(config, images, splits, predictions, features, model, spec, runtime, timer)
        index_of = {path: i for i, path in enumerate(images.rel_paths)}
        cams = None
        if config.cam:
            with timer("gradcam"):
                requests = [
                    *cam_requests(sections, index_of, images.class_names),
                    *findings.cam_requests(),
                    *_correct_test_images(predictions),
                ]
                cams = compute_cams(
                    model,
                    spec,
                    images.pixels,
                    requests,
                    runtime,
                    batch_size=config.cam_batch_size,
                    progress=config.progress,
                )
        maps_by_class = _maps_by_class(cams, predictions) if cams is not None else None
        with timer("assets"):
            writer = AssetWriter(
                stage, images.pixels, cams, {n: i for i, n in enumerate(images.class_names)}, JPEG_QUALITY, THUMB_SIDE
            )
            sections = writer.gallery_sections(sections, index_of)
            audit = findings.audit_view(
                config, images, splits, predictions.predicted, maps_by_class, writer.image_assets
            )
            probes = _probes(config, model, spec, probe_pixels, images.class_names, runtime, stage)
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
            model_check=model_check,
            metrics=metrics,
            classes=sections,
            probes=probes,
            audit=audit,
        )
        report = with_class_facts(report)
        report = with_narrative(report, narrate(report, class_facts(audit, images.class_names) if audit else None))
        with timer("figures"):
            figures = _figures(report, history, images, maps_by_class, findings, stage / FIGURES, config.seed)
        report = dataclasses.replace(report, figures={k: f"{FIGURES}/{v}" for k, v in figures.items()})
        results = {**to_dict(report), "images": _image_entries(images, splits)}
        if previous is not None:
            report = dataclasses.replace(
                report, changes=compare_results(results, previous, baseline=str(config.baseline))
            )
        report = dataclasses.replace(report, gates=evaluate_gates(gates, results))
        with timer("render"):
            _render(report, stage, pdf=config.pdf)
        write_predictions_csv(stage / "predictions.csv", predictions)
        if audit is not None:
            write_suspects_csv(stage / "suspects.csv", audit)
            write_duplicates_csv(stage / "duplicates.csv", audit)
        write_json(stage / "results.json", {**to_dict(report), "images": results["images"]})
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


def _pretrained_features(
    config: RunConfig, model: nn.Module, spec: ModelSpec, images: LoadedImages, runtime: Runtime
) -> _Features:
    """Features of the backbone before fine-tuning: they never saw the labels the label check tests.

    The linear probe (the default recipe's starting head and the model check's reference) and the
    audit's label check and near-copy search are all fitted on them.
    """
    if config.checkpoint is None:
        if spec.weights_source == RANDOM_INIT:
            return _Features(None, "the backbone has no pretrained weights (--weights none)")
        backbone = model
    else:
        try:
            backbone, _ = build_model(spec.arch, len(images.class_names), config.weights)
        except ReportgenError as exc:
            return _Features(None, f"the pretrained {spec.arch} backbone could not be loaded: {exc}")
    outputs = run_model(
        backbone,
        spec,
        images.pixels,
        runtime,
        batch_size=config.eval_batch_size,
        embeddings=True,
        desc="Features",
        progress=config.progress,
    )
    return _Features(outputs.embeddings)


def _fit_probe(
    features: _Features, labels: np.ndarray, train_idx: np.ndarray, num_classes: int, seed: int
) -> LinearProbe | None:
    """The linear probe on the training split's pretrained features, or None without features."""
    if features.embeddings is None or len(train_idx) == 0:
        return None
    return fit_linear_probe(features.embeddings[train_idx], labels[train_idx], num_classes=num_classes, seed=seed)


def _usable_recipe(train: TrainConfig, probe: LinearProbe | None) -> TrainConfig:
    """The recipe, with a random head when it asks for the probe but there are no pretrained features."""
    if train.head_init == "probe" and probe is None:
        logger.warning("no pretrained features for a linear probe: the new head starts from random weights")
        return dataclasses.replace(train, head_init="random")
    return train


def _check_model(
    predictions: Predictions, features: _Features, probe: LinearProbe | None, history: TrainingHistory | None
) -> ModelCheck:
    """Compare the model with the linear probe and the majority class on the validation split."""
    probe_probs = None if probe is None else probe.probs(features.embeddings)
    probe_ref, majority = references(
        labels=predictions.labels,
        splits=predictions.splits,
        class_names=predictions.class_names,
        probe_probs=probe_probs,
    )
    return check_model(
        val_accuracy=split_accuracy(predictions.labels, predictions.predicted, predictions.splits, "val"),
        test_accuracy=split_accuracy(predictions.labels, predictions.predicted, predictions.splits, "test"),
        probe=probe_ref,
        majority=majority,
        history=history,
        why_no_probe="" if probe is not None else (features.why_not or "the training split is empty"),
    )


@dataclass(frozen=True)
class _Defects:
    """The finders' raw results (indices, not names) and why a check did not run."""

    label_issues: LabelIssues | None = None
    label_method: str = ""
    label_folds: int = 0
    duplicates: Duplicates | None = None
    calibration: tuple[Calibration, CalibrationVerdict] | None = None
    health: Health | None = None
    stamps: Stamps | None = None
    not_run: dict[str, str] = dataclasses.field(default_factory=dict)
    outliers: Outliers | None = None

    def cam_requests(self) -> list[tuple[int, int]]:
        """Grad-CAM maps the audit shows: each shown suspect of both tiers explained for its suggested class."""
        if self.label_issues is None:
            return []
        shown = (*self.label_issues.suspects[:SHOWN_SUSPECTS], *self.label_issues.worth_a_look[:SHOWN_REVIEW])
        return [(s.image_idx, s.suggested_idx) for s in shown]

    def audit_view(
        self,
        config: RunConfig,
        images: LoadedImages,
        splits: np.ndarray,
        predicted: np.ndarray,
        maps_by_class: list[np.ndarray] | None,
        assets: AssetFn,
    ) -> Audit | None:
        """The report's audit block, with thumbnails written through ``assets``."""
        if not config.audit:
            return None
        index = DatasetIndex(images.rel_paths, images.labels, splits, images.class_names)
        shortcuts = None
        not_run = dict(self.not_run)
        if maps_by_class is not None:
            shortcuts = shortcut_view(find_shortcuts(maps_by_class), images.class_names)
        else:
            not_run["shortcuts"] = "Grad-CAM was switched off (--no-cam)"
        return Audit(
            label_issues=None
            if self.label_issues is None
            else label_check_view(
                self.label_issues,
                index,
                predicted,
                method=self.label_method,
                folds=self.label_folds,
                assets=assets,
            ),
            duplicates=None if self.duplicates is None else duplicate_check_view(self.duplicates, index, assets=assets),
            calibration=None if self.calibration is None else calibration_view(*self.calibration),
            outliers=None if self.outliers is None else outlier_view(self.outliers, index, assets=assets),
            shortcuts=shortcuts,
            stamps=stamp_view(self.stamps, images.class_names),
            health=health_view(self.health, index, assets=assets),
            not_run=not_run,
        )


def _find_defects(
    config: RunConfig,
    images: LoadedImages,
    splits: np.ndarray,
    predictions: Predictions,
    features: _Features,
    model: nn.Module,
    spec: ModelSpec,
    runtime: Runtime,
    timer: _Timer,
) -> _Defects:
    """Run the whole-data-set checks that need no Grad-CAM."""
    if not config.audit:
        return _Defects()
    not_run: dict[str, str] = {}
    num_classes = len(images.class_names)
    label_issues = None
    folds = config.label_folds
    with timer("label_check"):
        oos = None
        if config.label_check == "off":
            not_run["label_issues"] = "switched off (--label-check off)"
        elif config.label_check == "finetune":
            oos = _finetune_oos_probs(config, images, features, runtime, folds)
        elif features.embeddings is None:
            not_run["label_issues"] = features.why_not
        else:
            oos = cross_val_probs(
                features.embeddings, images.labels, num_classes=num_classes, folds=folds, seed=config.seed
            )
        if oos is not None:
            label_issues = find_label_issues(images.labels, oos)
            logger.info(
                "label check: %d likely wrong labels, %d worth a look",
                len(label_issues.suspects),
                len(label_issues.worth_a_look),
            )
    with timer("duplicates"):
        duplicates = find_duplicates(
            [info.sha256 for info in images.infos],
            images.labels,
            features.embeddings,
            splits,
            threshold=config.near_duplicate_threshold,
        )
        if features.embeddings is None:
            not_run["near_duplicates"] = f"only exact copies were sought: {features.why_not}"
    outliers = None
    if features.embeddings is None:
        not_run["outliers"] = features.why_not
    else:
        with timer("outliers"):
            outliers = find_outliers(features.embeddings, images.labels, num_classes=num_classes)
    calibration = None
    test = predictions.indices("test")
    if len(test):
        cal = compute_calibration(predictions.probs[test], predictions.labels[test], seed=config.seed)
        calibration = (cal, calibration_verdict(cal))
    else:
        not_run["calibration"] = "the test split is empty"
    health = check_health(images.infos, images.labels, num_classes)
    with timer("stamps"):
        stamps = find_stamps(images.pixels, images.labels, num_classes)
    return _Defects(label_issues, config.label_check, folds, duplicates, calibration, health, stamps, not_run, outliers)


def _finetune_oos_probs(
    config: RunConfig, images: LoadedImages, features: _Features, runtime: Runtime, folds: int
) -> np.ndarray:
    """Out-of-sample probabilities from K fine-tunings, each on all images outside one fold (costly)."""
    folds_split = stratified_folds(images.labels, folds, config.seed)
    n_folds = len(folds_split)
    num_classes = len(images.class_names)
    probs = np.zeros((len(images.labels), num_classes), dtype=np.float32)
    for fold, (train_idx, held_out) in enumerate(folds_split):
        logger.info("label check: fine-tuning fold %d/%d on %d images", fold + 1, n_folds, len(train_idx))
        torch.manual_seed(config.seed + fold + 1)
        model, spec = build_model(
            config.model, num_classes, config.weights, normalised_head=config.train.head_init == "probe"
        )
        probe = _fit_probe(features, images.labels, train_idx, num_classes, config.seed)
        train_model(
            model,
            spec,
            images.pixels,
            images.labels,
            train_idx=train_idx,
            val_idx=np.zeros(0, dtype=np.int64),
            config=_usable_recipe(config.train, probe),
            runtime=runtime,
            seed=config.seed + fold + 1,
            probe=probe,
            progress=config.progress,
        )
        probs[held_out] = run_model(model, spec, images.pixels[held_out], runtime, progress=False).probs
    return probs


def _correct_test_images(predictions: Predictions) -> list[tuple[int, int]]:
    """(image, class) of every correctly classified test image: the shortcut check's maps."""
    test = predictions.indices("test")
    correct = test[predictions.predicted[test] == predictions.labels[test]]
    return [(int(i), int(predictions.labels[i])) for i in correct]


def _maps_by_class(cams: CamMaps, predictions: Predictions) -> list[np.ndarray]:
    size = cams.maps.shape[1] if cams.maps.ndim == 3 else 1
    by_class: list[list[np.ndarray]] = [[] for _ in predictions.class_names]
    for i, c in _correct_test_images(predictions):
        if (i, c) in cams:
            by_class[c].append(cams.get(i, c))
    return [np.stack(maps) if maps else np.zeros((0, size, size), np.float32) for maps in by_class]


def _probes(
    config: RunConfig,
    model: nn.Module,
    spec: ModelSpec,
    pixels: np.ndarray | None,
    class_names: tuple[str, ...],
    runtime: Runtime,
    out_dir: Path,
) -> tuple[ProbeResult, ...]:
    """Classify and explain the ``--probe`` images."""
    if pixels is None:
        return ()
    probs = run_model(model, spec, pixels, runtime, progress=False).probs
    top = np.argsort(-probs, axis=1, kind="stable")[:, : min(3, len(class_names))]
    probes = tuple(
        ProbeResult(
            name=path.name,
            top_classes=tuple((class_names[c], round(float(probs[i, c]), 6)) for c in top[i]),
        )
        for i, path in enumerate(config.probes)
    )
    cams = None
    if config.cam:
        cams = compute_cams(
            model, spec, pixels, [(i, int(top[i, 0])) for i in range(len(pixels))], runtime, progress=config.progress
        )
    index_of = {probe.name: i for i, probe in enumerate(probes)}
    if len(index_of) < len(probes):  # two probes with one file name: key by position instead
        probes = tuple(dataclasses.replace(p, name=f"{i + 1}: {p.name}") for i, p in enumerate(probes))
        index_of = {probe.name: i for i, probe in enumerate(probes)}
    return write_probe_assets(probes, pixels, index_of, class_names, out_dir, cams)


def _figures(
    report: Report,
    history: TrainingHistory | None,
    images: LoadedImages,
    maps_by_class: list[np.ndarray] | None,
    findings: _Defects,
    folder: Path,
    seed: int,
) -> dict[str, str]:
    """Draw the report's charts; return figure key -> file name inside ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = images.class_names
    drawn: dict[str, str] = {}
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(images.labels), size=min(9, len(images.labels)), replace=False))
    plot_montage(images.pixels[pick], [names[int(images.labels[i])] for i in pick], folder / "montage.jpg")
    drawn["montage"] = "montage.jpg"
    plot_class_histogram(report.dataset.split_counts, report.dataset.under_represented, folder / "class_histogram.png")
    drawn["class_histogram"] = "class_histogram.png"
    if report.training:
        check = report.model_check
        plot_training_curves(
            report.training,
            folder / "training_curves.png",
            start=(history.start_val_loss, history.start_val_accuracy) if history else (None, None),
            references={
                "linear probe": check.probe.val_accuracy if check and check.probe else None,
                "majority class": check.majority.val_accuracy if check else None,
            },
            kept=check.kept_epoch if check else None,
        )
        drawn["training_curves"] = "training_curves.png"
    plot_confusion(report.metrics.confusion, report.metrics.confusion_normalised, names, folder / "confusion.png")
    drawn["confusion_matrix"] = "confusion.png"
    if findings.calibration is not None:
        cal = findings.calibration[0]
        plot_reliability(
            [b.mean_confidence for b in cal.bins],
            [b.accuracy for b in cal.bins],
            [b.count for b in cal.bins],
            cal.ece,
            folder / "reliability.png",
        )
        drawn["reliability"] = "reliability.png"
    if maps_by_class is not None and report.audit and report.audit.shortcuts:
        maps = np.stack([class_mean_map(m) for m in maps_by_class])
        flags = [c.flagged for c in report.audit.shortcuts.classes]
        plot_mean_cams(maps, names, flags, folder / "mean_cams.png")
        drawn["mean_cams"] = "mean_cams.png"
    return drawn


def _render(report: Report, out_dir: Path, *, pdf: bool) -> None:
    from reportgen.render.html import render_html

    html = render_html(report, out_dir)
    if pdf:
        from reportgen.render.pdf import render_pdf

        render_pdf(html, out_dir / "report.pdf")


def _image_entries(images: LoadedImages, splits: np.ndarray) -> list[dict[str, Any]]:
    """Every image of the run with its content hash: what a later ``--baseline`` run compares against."""
    return [
        {
            "rel_path": path,
            "sha256": info.sha256,
            "label": images.class_names[int(label)],
            "split": str(split),
            "width": info.width,
            "height": info.height,
        }
        for path, info, label, split in zip(images.rel_paths, images.infos, images.labels, splits, strict=True)
    ]


def _versions() -> dict[str, str]:
    versions = {"reportgen": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for package in ("torch", "torchvision", "timm", "grad-cam", "cleanlab", "numpy", "pillow", "weasyprint"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
