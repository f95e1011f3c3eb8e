"""Hand-built Report objects with tiny image assets, for template and renderer tests (no model, no data set)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from reportgen.analysis.metrics import ClassMetrics, Metrics
from reportgen.data import SkippedFile
from reportgen.report import (
    SCHEMA_VERSION,
    ClassSection,
    Confusion,
    DatasetSummary,
    GalleryImage,
    ModelSummary,
    ProbeResult,
    Report,
    RunInfo,
)
from reportgen.train import EpochStats

# Hostile names: markup, an ampersand, a quote, a dollar sign (matplotlib mathtext), a long name.
NASTY_CLASSES = ("<b>x</b>", 'a&b"c', "plain")
FIGURE_KEYS = ("montage", "class_histogram", "training_curves", "confusion_matrix", "reliability", "mean_cams")


def make_report(
    out_dir: Path,
    class_names: Sequence[str] = NASTY_CLASSES,
    *,
    top: int = 2,
    bottom: int = 3,
    training: bool = True,
    cams: bool = True,
    probes: bool = True,
    figures: Sequence[str] = FIGURE_KEYS,
    side: int = 24,
) -> Report:
    """A complete Report whose asset files exist under ``out_dir`` (tiny JPEGs and PNGs).

    In every class's bottom gallery the first image is misclassified (with a true-class overlay when ``cams``).
    """
    out_dir = Path(out_dir)
    names = tuple(class_names)
    counter = iter(range(1_000_000))
    sections = tuple(
        _section(out_dir, names, c, top, bottom, cams=cams, counter=counter, side=side) for c in range(len(names))
    )
    metrics = _metrics(names)
    return Report(
        schema_version=SCHEMA_VERSION,
        run=RunInfo(
            started_at="2025-11-28T10:55:00+00:00",
            versions={"reportgen": "0.1.0", "python": "3.12.3", "torch": "2.14.1", "platform": "Linux-x86_64"},
            device="cpu (fp32)",
            seed=0,
            timings={"scan": 0.1, "train": 12.5},
            config={"top_k": top, "bottom_k": bottom},
        ),
        dataset=DatasetSummary(
            root="/data/food & <co>",
            class_names=names,
            split_counts=metrics.split_counts,
            total_images=sum(sum(v.values()) for v in metrics.split_counts.values()),
            skipped=(
                SkippedFile("<b>x</b>/broken.jpg", "not an image file Pillow can read"),
                SkippedFile('a&b"c/empty.png', "empty file (0 bytes)"),
            ),
            under_represented=names[1:2],
            under_represented_rule="fewer than half the median number of images per class.",
        ),
        model=ModelSummary(
            arch="efficientnet_lite0",
            weights_source="ImageNet (timm)",
            image_size=224,
            cam_layer="conv_head",
            trained=training,
            checkpoint=None if training else "/models/<b>best</b>.pt",
        ),
        training=_epochs() if training else None,
        metrics=metrics,
        classes=sections,
        top_confusions=(Confusion(names[0], names[-1], 2, 0.2), Confusion(names[-1], names[0], 1, 0.1)),
        findings=(
            f"Test accuracy is 80.0% over {10 * len(names)} images.",
            f"Class {names[0]} is most often confused with {names[-1]}.",
        ),
        figures=_figures(out_dir, figures),
        probes=_probes(out_dir, names, counter, cams=cams, side=side) if probes else (),
        caveats=("The test split is small: one image moves accuracy by several points.",),
    )


def _section(
    out_dir: Path,
    names: tuple[str, ...],
    c: int,
    top: int,
    bottom: int,
    *,
    cams: bool,
    counter,
    side: int,
) -> ClassSection:
    other = names[(c + 1) % len(names)]

    def image(wrong: bool, score: float) -> GalleryImage:
        k = next(counter)
        predicted = other if wrong else names[c]
        return GalleryImage(
            rel_path=f"{names[c]}/photo <{k}> & 'x'.jpg",
            split="test",
            true_class=names[c],
            predicted_class=predicted,
            score=score,
            predicted_score=1 - score if wrong else score,
            correct=not wrong,
            thumbnail=_jpeg(out_dir, f"assets/img-{k:06d}.jpg", k, side),
            cam=_jpeg(out_dir, f"assets/cam-{k:06d}-c{c}.jpg", k + 7, side) if cams else None,
            cam_true=_jpeg(out_dir, f"assets/cam-{k:06d}-t{c}.jpg", k + 3, side) if cams and wrong else None,
        )

    return ClassSection(
        class_name=names[c],
        metrics=ClassMetrics(names[c], 0.8, 0.75, 0.774, 10),
        split_counts={"train": 30, "val": 10, "test": 10},
        top=tuple(image(False, 0.99 - 0.01 * i) for i in range(top)),
        bottom=tuple(image(i == 0, 0.1 + 0.05 * i) for i in range(bottom)),
        confused_with=(Confusion(names[c], other, 2, 0.2),),
        under_represented=c == 1,
        narrative=(f"The model recognises {names[c]} well.", f"It mistakes some for {other}."),
    )


def _metrics(names: tuple[str, ...]) -> Metrics:
    n = len(names)
    confusion = np.full((n, n), 1) + np.diag(np.full(n, 8 - n))
    normalised = confusion / confusion.sum(axis=1, keepdims=True)
    return Metrics(
        accuracy=0.8,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        confusion_normalised=tuple(tuple(float(v) for v in row) for row in normalised),
        per_class=tuple(ClassMetrics(name, 0.8, 0.75, 0.774, 10) for name in names),
        macro_f1=0.774,
        split_counts={split: {name: k for name in names} for split, k in (("train", 30), ("val", 10), ("test", 10))},
    )


def _epochs() -> tuple[EpochStats, ...]:
    return tuple(EpochStats(e, 1.0 / e, 0.5 + 0.1 * e, 1.1 / e, 0.45 + 0.1 * e, 3.0 + e) for e in range(1, 4))


def _probes(out_dir: Path, names: tuple[str, ...], counter, *, cams: bool, side: int) -> tuple[ProbeResult, ...]:
    k = next(counter)
    return (
        ProbeResult(
            name="my <probe>.jpg",
            top_classes=tuple((name, round(0.7 / (i + 1), 3)) for i, name in enumerate(names)),
            thumbnail=_jpeg(out_dir, f"assets/probe-{k:06d}.jpg", k, side),
            cam=_jpeg(out_dir, f"assets/probe-cam-{k:06d}-c0.jpg", k + 1, side) if cams else None,
        ),
    )


def _figures(out_dir: Path, keys: Sequence[str]) -> dict[str, str]:
    figures = {}
    for i, key in enumerate(keys):
        rel = f"figures/{key}.png"
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_pixels(i, 40, 64)).save(path)
        figures[key] = rel
    return figures


def _jpeg(out_dir: Path, rel: str, seed: int, side: int) -> str:
    path = out_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_pixels(seed, side, side)).save(path, quality=70)
    return rel


def _pixels(seed: int, height: int, width: int) -> np.ndarray:
    """A smooth two-colour gradient (deterministic per seed)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, width)[None, :, None]
    return np.broadcast_to(a * (1 - t) + b * t, (height, width, 3)).astype(np.uint8)
