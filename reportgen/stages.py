"""Rank 0's stages of a run: the checks, Grad-CAM, pictures, the report model and its renderings.

``reportgen.pipeline`` runs the scoring stages on every rank and hands their results (:class:`Scored`)
to :func:`write_report`, which fills the staging folder in the order the report needs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reportgen.analysis.cams import compute_cams
from reportgen.analysis.checks import Findings, SliceRules, run_checks
from reportgen.analysis.explanation import check_explanations, measure_reliance
from reportgen.analysis.extremes import find_extremes
from reportgen.analysis.faithfulness import ExplanationCheck
from reportgen.analysis.metrics import Metrics, compute_metrics
from reportgen.analysis.model_check import ModelCheck
from reportgen.analysis.shortcuts import Reliance, find_shortcuts
from reportgen.assemble.audit import DatasetIndex, audit_cam_requests, build_audit
from reportgen.assemble.report import (
    build_report,
    class_sections,
    dataset_summary,
    image_entries,
    map_features,
    versions,
)
from reportgen.compare.gates import GateSpec
from reportgen.config import RunConfig
from reportgen.data.dataset import LoadedImages, image_size
from reportgen.data.splits import SplitChoice
from reportgen.model.backbones import ModelSpec, save_checkpoint
from reportgen.model.distributed import describe as describe_ranks
from reportgen.model.features import finetuned_oos_probs
from reportgen.model.history import TrainingHistory
from reportgen.model.predict import run_model
from reportgen.model.predictions import CamMaps, Features, Predictions, maps_by_class
from reportgen.model.runtime import Runtime
from reportgen.render.assets import JPEG_QUALITY, THUMB_SIDE, AssetWriter, cam_requests, write_probe_assets
from reportgen.render.figures import draw_run_figures
from reportgen.render.output import (
    write_duplicates_csv,
    write_json,
    write_predictions_csv,
    write_slices_csv,
    write_suspects_csv,
)
from reportgen.report import ClassSection, ModelSummary, ProbeResult, Report, RunInfo
from reportgen.report.audit import Audit

if TYPE_CHECKING:  # the model is passed through; torch itself is the model layer's
    from torch import nn

TOP_CLASSES = 3  # classes listed per probe image
Timer = Callable[[str], contextlib.AbstractContextManager[None]]  # times the named stage


@dataclass(frozen=True)
class Scored:
    """What every rank computes: the data set, the trained model and its per-image results."""

    images: LoadedImages
    model: nn.Module
    spec: ModelSpec
    features: Features
    history: TrainingHistory | None
    predictions: Predictions
    model_check: ModelCheck | None  # rank 0's
    probe_pixels: np.ndarray | None
    split: SplitChoice | None = None  # where the split came from (None: made at random)


def write_report(
    config: RunConfig,
    scored: Scored,
    stage: Path,
    runtime: Runtime,
    timer: Timer,
    *,
    started_at: str,
    gates: tuple[GateSpec, ...],
    previous: Report | None,
    pdf_classes: int | None,
) -> Report:
    """Rank 0's part: the checks, Grad-CAM, pictures, the report model and its renderings, all into ``stage``."""
    images, model, spec, predictions = scored.images, scored.model, scored.spec, scored.predictions
    save_checkpoint(stage / "model.pt", model, spec, images.class_names, config.to_dict())
    with timer("analyse"):
        metrics, sections = _galleries(config, predictions)
    findings = _checks(config, images, predictions, scored.features, runtime, timer) if config.audit else None
    with timer("gradcam"):
        cams = _cams(config, model, spec, images, predictions, sections, findings, runtime) if config.cam else None
    explanation, reliance = None, {}
    if cams is not None and config.explanation_check:
        with timer("explanation_check"):
            explanation = _explanation_check(config, model, spec, images, sections, cams, runtime)
    if cams is not None and findings is not None:
        with timer("shortcut_reliance"):
            reliance = _reliance(model, spec, images.pixels, predictions, cams, runtime)
    with timer("assets"):
        sections, audit = _assets(stage, images, predictions, sections, findings, cams, reliance)
        probes = _probes(config, stage, model, spec, scored.probe_pixels, images.class_names, runtime)
    with timer("map"):
        embedding, map_facts = map_features(scored.features, images.labels, audit, seed=config.seed)
    device = runtime.describe() + describe_ranks()
    report = build_report(
        run=RunInfo(started_at, versions(), device, config.seed, timer.seconds, config.to_dict()),
        dataset=dataset_summary(images, metrics, scored.split),
        model=_model_summary(config, spec, trained=scored.history is not None),
        history=scored.history,
        model_check=scored.model_check,
        explanation_check=explanation,
        metrics=metrics,
        classes=sections,
        pdf_classes=pdf_classes,
        probes=probes,
        audit=audit,
        images=image_entries(images, predictions.splits),
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
    return report


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
    timer: Timer,
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
        slice_rules=SliceRules(config.slice_min_size, config.slice_min_effect, config.slice_alpha),
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
        model,
        spec,
        images.pixels,
        requests,
        runtime,
        batch_size=runtime.cam_batch_size,
        method=config.cam_method,
        progress=config.progress,
    )


def _explanation_check(
    config: RunConfig,
    model: nn.Module,
    spec: ModelSpec,
    images: LoadedImages,
    sections: tuple[ClassSection, ...],
    cams: CamMaps,
    runtime: Runtime,
) -> ExplanationCheck:
    """Score the maps of up to ``explanation_images`` gallery images per class, taken in turn from its two galleries.

    In turn, because the most activating images alone are the most confident ones, whose scores removal
    barely moves (every map then looks alike).
    """
    index_of = {path: i for i, path in enumerate(images.rel_paths)}
    class_idx = {name: i for i, name in enumerate(images.class_names)}
    requests = []
    for section in sections:
        in_turn = [g for pair in itertools.zip_longest(section.top, section.bottom) for g in pair if g is not None]
        shown = [(index_of[g.rel_path], class_idx[g.predicted_class]) for g in in_turn]
        requests += [key for key in dict.fromkeys(shown) if key in cams][: config.explanation_images]
    requests = list(dict.fromkeys(requests))
    maps = np.stack([cams.get(*key) for key in requests]) if requests else np.zeros((0, *images.pixels.shape[1:3]))
    return check_explanations(
        model,
        spec,
        images.pixels,
        requests,
        maps,
        runtime,
        class_names=images.class_names,
        method=config.cam_method,
        seed=config.seed,
        batch_size=runtime.eval_batch_size,
        cam_batch_size=runtime.cam_batch_size,
    )


def _reliance(
    model: nn.Module, spec: ModelSpec, pixels: np.ndarray, predictions: Predictions, cams: CamMaps, runtime: Runtime
) -> dict[int, Reliance]:
    """For each class whose evidence the shortcut check finds apart, how much the model relies on it."""
    by_class = maps_by_class(cams, predictions)
    reliance = {}
    for evidence in find_shortcuts(by_class).classes:
        if evidence.flags:
            c = evidence.class_idx
            indices = [i for i, k in predictions.correct_test_images() if k == c and (i, k) in cams]
            reliance[c] = measure_reliance(
                model, spec, pixels, indices, c, by_class[c], runtime, batch_size=runtime.eval_batch_size
            )
    return reliance


def _assets(
    stage: Path,
    images: LoadedImages,
    predictions: Predictions,
    sections: tuple[ClassSection, ...],
    findings: Findings | None,
    cams: CamMaps | None,
    reliance: dict[int, Reliance],
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
    audit = build_audit(
        findings, index, predictions.predicted, maps_by_class=maps, assets=writer.image_assets, reliance=reliance
    )
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
    metadata = tuple(c.name for c in report.dataset.metadata_columns), {e.rel_path: e.metadata for e in report.images}
    write_predictions_csv(stage / "predictions.csv", predictions, metadata)
    if report.audit is not None:
        write_suspects_csv(stage / "suspects.csv", report.audit, metadata)
        write_duplicates_csv(stage / "duplicates.csv", report.audit, metadata)
        write_slices_csv(stage / "slices.csv", report.audit)
    write_json(stage / "results.json", report.to_dict())


def classify_probes(
    model: nn.Module,
    spec: ModelSpec,
    pixels: np.ndarray,
    runtime: Runtime,
    *,
    paths: Sequence[Path],
    class_names: tuple[str, ...],
    cam: bool,
    batch_size: int,
    cam_batch_size: int,
    out_dir: Path,
    progress: bool,
) -> tuple[ProbeResult, ...]:
    """Each probe's top classes, with its thumbnail and (with ``cam``) the top class's overlay under ``out_dir``."""
    probs = run_model(model, spec, pixels, runtime, batch_size=batch_size, progress=False).probs
    top = np.argsort(-probs, axis=1, kind="stable")[:, : min(TOP_CLASSES, len(class_names))]
    probes = tuple(
        ProbeResult(
            name=path.name,
            top_classes=tuple((class_names[c], round(float(probs[i, c]), 6)) for c in top[i]),
        )
        for i, path in enumerate(paths)
    )
    cams = None
    if cam:
        requests = [(i, int(top[i, 0])) for i in range(len(pixels))]
        cams = compute_cams(model, spec, pixels, requests, runtime, batch_size=cam_batch_size, progress=progress)
    index_of = {probe.name: i for i, probe in enumerate(probes)}
    if len(index_of) < len(probes):  # two probes with one file name: key by position instead
        probes = tuple(dataclasses.replace(p, name=f"{i + 1}: {p.name}") for i, p in enumerate(probes))
        index_of = {probe.name: i for i, probe in enumerate(probes)}
    sizes = [_original_size(path) for path in paths]
    return write_probe_assets(probes, pixels, index_of, class_names, out_dir, cams, sizes=sizes)


def _original_size(path: Path) -> tuple[int, int]:
    """A probe's original ``(width, height)``, for its pictures' aspect ratio; square when unreadable."""
    try:
        return image_size(path)
    except (OSError, ValueError):  # read fine for the model a moment ago: a file changed since shows square
        return (1, 1)
