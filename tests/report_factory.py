"""Hand-built Report objects with tiny image assets, for template and renderer tests (no model, no data set)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from reportgen.analysis.metrics import ClassMetrics, Metrics
from reportgen.data.dataset import SkippedFile
from reportgen.model.history import EpochStats
from reportgen.narrative.galleries import gallery_words
from reportgen.report import (
    SCHEMA_VERSION,
    ClassSection,
    Confusion,
    DatasetSummary,
    GalleryImage,
    ImageFlag,
    ModelSummary,
    ProbeResult,
    Report,
    RunInfo,
)
from reportgen.report.audit import (
    Audit,
    AuditImage,
    CalibrationCheck,
    DuplicateCheck,
    HealthCheck,
    HealthView,
    LabelCheck,
    OutlierCheck,
    OutlierView,
    PairView,
    ShortcutCheck,
    ShortcutClass,
    SliceCheck,
    SliceMistake,
    SliceView,
    StampCheck,
    StampClass,
    SuspectView,
)
from reportgen.report.comparison import (
    Changes,
    ClassImageChanges,
    ClassMetricChanges,
    ConfusionChange,
    DatasetChanges,
    Delta,
    GateResult,
    ImageRef,
    LabelErrorChanges,
)

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
    audit: bool = False,
    changes: bool = False,
    gates: bool = False,
) -> Report:
    """A complete Report whose asset files exist under ``out_dir`` (tiny JPEGs and PNGs).

    In every class's bottom gallery the first image is misclassified (with a true-class overlay when ``cams``)
    and flagged as a suspected label error (in the first class also as a leak); the galleries' headings are
    ``narrative.classes.gallery_words``.
    ``audit``, ``changes`` and ``gates`` add those blocks, built by ``make_audit``, ``make_changes`` and
    ``make_gates``.
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
            config={
                "data_dir": "/data/food & <co>",
                "top_k": top,
                "bottom_k": bottom,
                "split": {"train": 0.6, "val": 0.2},
                "train": {"epochs": 3, "augment": {"flip": True, "scale": [0.9, 1.1]}},
                "probes": ["my <probe>.jpg"],
                "baseline": None,
            },
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
        audit=make_audit(out_dir, names, counter, cams=cams, side=side) if audit else None,
        changes=make_changes(names) if changes else None,
        gates=make_gates(names) if gates else (),
    )


def make_bare_report(class_names: Sequence[str] = NASTY_CLASSES, **fields: Any) -> Report:
    """A Report with no files behind it (empty galleries, no figures, probes or audit): what the gate and
    baseline tests read. ``fields`` replace the Report's own, e.g. ``metrics=...``, ``audit=...``.
    """
    report = make_report(Path("no-files-written"), class_names, top=0, bottom=0, probes=False, figures=())
    return dataclasses.replace(report, **fields)


def make_audit(out_dir: Path, names: Sequence[str], counter=None, *, cams: bool = True, side: int = 24) -> Audit:
    """An Audit with every check: 5 likely-wrong suspects (4 shown), 3 worth a look (2 shown), 2 images of no
    class, 4 duplicate pairs (3 shown), 2 health issues, 1 stamp.

    Every image lives in class ``names[0]`` or ``names[-1]``; with the default names the first is ``<b>x</b>``.
    """
    counter = counter if counter is not None else iter(range(500_000, 1_000_000))
    first, last = names[0], names[-1]

    def image(class_name: str, split: str, shown: bool, cam: bool = False) -> AuditImage:
        k = next(counter)
        thumb = _jpeg(out_dir, f"assets/audit-{k:06d}.jpg", k, side) if shown else None
        overlay = _jpeg(out_dir, f"assets/audit-cam-{k:06d}.jpg", k + 5, side) if shown and cam and cams else None
        return AuditImage(k, f"{class_name}/odd <{k}> & 'y'.jpg", class_name, split, thumb, overlay)

    suspects = tuple(
        SuspectView(
            i, image(first, "train", i < 4, cam=True), first, last, 0.05 + 0.01 * i, 0.91 - 0.01 * i, 0.02, last
        )
        for i in range(5)
    )
    labels = LabelCheck(
        method="embeddings",
        method_text="5-fold cross-validated logistic regression on pretrained features.",
        folds=5,
        n_images=50 * len(names),
        total=5,
        noise_rate=0.0333,
        noise_rate_method="confident joint",
        probs_accuracy=0.912,
        filter_by="prune_by_noise_rate",
        rank_by="self_confidence",
        per_class={name: (5 if name == first else 0) for name in names},
        suggested={first: {last: 5}},
        class_noise_rates={name: (0.1 if name == first else 0.0) for name in names},
        suspects=suspects,
        shown=4,
        worth_a_look=tuple(
            SuspectView(
                10 + i, image(last, "val", i < 2, cam=True), last, first, 0.3, 0.6, 0.1, last, wrong_prob=0.2 - 0.05 * i
            )
            for i in range(3)
        ),
        review_shown=2,
        temperature=0.5,
        likely_meaning="On planted 5 % label noise, about 9 of 10 images in this tier were wrong labels.",
        review_meaning="On planted 5 % label noise, about 2 of 10 images in this tier were wrong labels.",
    )
    outliers = OutlierCheck(
        method="distance to the nearest class centroid",
        min_z=3.5,
        n_images=50 * len(names),
        total=2,
        outliers=(
            OutlierView(image(last, "train", True), first, 0.61, 7.2),
            OutlierView(image(first, "test", True), first, 0.55, 4.1),
        ),
        shown=2,
        meaning="With 2 % off-topic photos planted, about 7 of 10 images in this tier were planted ones.",
    )
    pairs = (
        PairView(image(first, "train", True), image(last, "train", True), "exact", None, True, False),
        PairView(image(first, "train", True), image(first, "test", True), "near", 0.9731, False, True),
        PairView(image(last, "val", True), image(last, "val", True), "near", 0.9312, False, False),
        PairView(image(last, "val", False), image(last, "val", False), "near", 0.9111, False, False),
    )
    duplicates = DuplicateCheck(
        threshold=0.9,
        threshold_text="cosine similarity of pretrained features of at least 0.9",
        exact=1,
        near=3,
        total=4,
        across_classes=1,
        across_splits=1,
        leaks_by_splits={"train-test": 1},
        images_involved=8,
        groups=4,
        pairs=pairs,
        shown=3,
        truncated=False,
    )
    calibration = CalibrationCheck(
        n_images=10 * len(names),
        ece=0.1234,
        ece_noise_floor=0.0456,
        mce=0.31,
        mean_confidence=0.93,
        accuracy=0.8,
        brier=0.2101,
        readable_as_probabilities=False,
        direction="over-confident",
        text="The scores are over-confident and should not be read as probabilities: ECE 0.123 > 0.046.",
    )
    shortcuts = ShortcutCheck(
        classes=tuple(
            ShortcutClass(
                name,
                8,
                0.4,
                0.61 if name == first else 0.2,
                0.31 if name == first else 0.05,
                "top-left" if name == first else "centre",
                0.72,
                0.12,
                name == first,
                ("62% of the evidence lies in the outer border band.",) if name == first else (),
            )
            for name in names
        ),
        flagged=(first,),
        min_maps=5,
        rule="A class is flagged when more than 45% of its mean map lies in the outer band.",
    )
    health = HealthCheck(
        total=2,
        counts={"small": 1, "aspect": 0, "low_contrast": 0, "dark": 1, "bright": 0, "grayscale": 0},
        per_class={first: {"small": 1, "dark": 1}},
        colour_dataset=True,
        thresholds={"min_side": 64.0, "min_brightness": 0.08},
        issues=(
            HealthView(image(first, "train", True), ("small",), ("shorter side 20 px < 64 (very small)",)),
            HealthView(image(first, "test", True), ("dark",), ("mean luminance 0.03 < 0.08 (very dark)",)),
        ),
        shown=2,
    )
    stamps = StampCheck(
        classes=tuple(
            StampClass(
                name,
                50,
                3 if name == last else 0,
                0.047 if name == last else 0.0,
                "bottom-right" if name == last else "",
                name == last,
                f"3 cells in the bottom-right corner are the same in 96% of {name}'s images" if name == last else "",
            )
            for name in names
        ),
        flagged=(last,),
        rule="A class with at least 2 fixed cells of an 8x8 grid is flagged.",
    )
    return Audit(
        label_issues=labels,
        duplicates=duplicates,
        calibration=calibration,
        shortcuts=shortcuts,
        stamps=stamps,
        health=health,
        outliers=outliers,
        slices=_slices(image, first, last),
    )


def _slices(image, first: str, last: str) -> SliceCheck:
    """One slice of 3 mistakes (2 shown, with Grad-CAM), named by a metadata value a user wrote."""
    mistakes = tuple(SliceMistake(image(first, "test", i < 2, cam=True), last, 0.81) for i in range(3))
    view = SliceView(
        source="metadata",
        description="camera = <i>phone_b</i>",
        text="Images with camera = <i>phone_b</i>: 37.5% wrong against 10.0% elsewhere, 8 validation and test images.",
        images=20,
        evaluated=8,
        errors=3,
        error_rate=0.375,
        rest_error_rate=0.1,
        expected_error_rate=0.12,
        mean_score=0.51,
        rest_mean_score=0.83,
        p_value=0.001,
        p_adjusted=0.004,
        classes={first: 3},
        suspect_share=0.05,
        rest_suspect_share=0.01,
        labelling_note="",
        merged=("feature cluster 2 of 4: images like these",),
        members=tuple(m.image.rel_path for m in mistakes),
        mistakes=mistakes,
        shown=2,
    )
    return SliceCheck(
        slices=(view,),
        total=1,
        tried={"metadata": 2, "image property": 27, "feature cluster": 4},
        tested=30,
        evaluated=40,
        error_rate=0.15,
        min_size=5,
        min_effect=0.15,
        alpha=0.05,
        rule="Slices are groups of images sharing a metadata value.",
        tried_text="No slice found.",
    )


def make_changes(names: Sequence[str]) -> Changes:
    """A Changes block: accuracy up, the first class worse, one relabelled image, one new suspect."""
    first, last = names[0], names[-1]
    rows = tuple(
        ClassImageChanges(
            name, "kept", 50, 51 if name == first else 50, 2 if name == first else 0, 1 if name == first else 0, 0, 0
        )
        for name in names
    )
    per_class = tuple(
        ClassMetricChanges(
            name,
            "kept",
            Delta(0.85, 0.8, -0.05) if name == first else Delta(0.8, 0.8, 0.0),
            Delta(0.7, 0.75, 0.05),
            Delta(0.77, 0.774, 0.004),
        )
        for name in names
    ) + (
        ClassMetricChanges(
            "gone <i>", "removed", Delta(0.5, None, None), Delta(0.5, None, None), Delta(0.5, None, None)
        ),
    )
    return Changes(
        baseline="/runs/2025-11-21 <prev>/results.json",
        baseline_started_at="2025-11-21T10:55:00+00:00",
        accuracy=Delta(0.78, 0.8, 0.02),
        macro_f1=Delta(0.79, 0.774, -0.016),
        dataset=DatasetChanges(
            by_content=True,
            classes_added=(),
            classes_removed=("gone <i>",),
            per_class=rows + (ClassImageChanges("gone <i>", "removed", 12, 0, 0, 12, 0, 0),),
            images_added=2,
            images_removed=13,
            images_moved=1,
            moved=(ImageRef(f"{first}/moved <1>.jpg", "ab" * 32, first, last),),
        ),
        per_class=per_class,
        label_errors=LabelErrorChanges(
            available=True,
            matched_by="sha256",
            new=(ImageRef(f"{first}/new suspect <2>.jpg", "cd" * 32, first),),
            resolved=(ImageRef(f"{last}/fixed.jpg", "ef" * 32, last), ImageRef(None, "01" * 32, last)),
            still_suspected=4,
        ),
        confusions_grown=(ConfusionChange(first, last, Delta(1, 2, 1), Delta(0.1, 0.2, 0.1)),),
    )


def make_gates(names: Sequence[str]) -> tuple[GateResult, ...]:
    """Three gates, the per-class one failing."""
    first = names[0]
    return (
        GateResult("accuracy=0.75", "accuracy", None, "under", 0.75, 0.8, True, "accuracy is 0.8, at least 0.75"),
        GateResult(
            f"recall:{first}=0.9",
            "recall",
            first,
            "under",
            0.9,
            0.75,
            False,
            f"recall of {first} is 0.75, under the minimum 0.9",
        ),
        GateResult(
            "duplicates_across_splits=0",
            "duplicates_across_splits",
            None,
            "over",
            0.0,
            1.0,
            False,
            "duplicates_across_splits is 1, over the maximum 0",
        ),
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
            true_score=score,
            thumbnail=_jpeg(out_dir, f"assets/img-{k:06d}.jpg", k, side),
            cam=_jpeg(out_dir, f"assets/cam-{k:06d}-c{c}.jpg", k + 7, side) if cams else None,
            cam_true=_jpeg(out_dir, f"assets/cam-{k:06d}-t{c}.jpg", k + 3, side) if cams and wrong else None,
        )

    bottom_images = [image(i == 0, 0.1 + 0.05 * i) for i in range(bottom)]
    if bottom_images:  # the mistake is a suspected label error; in the first class also a leak
        flags = (ImageFlag("label_error", other, 0.93),)
        if c == 0:
            flags += (ImageFlag("leak", "train", 0.97, f"{names[c]}/copy <{c}>.jpg"),)
        bottom_images[0] = dataclasses.replace(bottom_images[0], flags=flags)
    section = ClassSection(
        class_name=names[c],
        metrics=ClassMetrics(names[c], 0.8, 0.75, 0.774, 10),
        split_counts={"train": 30, "val": 10, "test": 10},
        top=tuple(image(False, 0.99 - 0.01 * i) for i in range(top)),
        bottom=tuple(bottom_images),
        confused_with=(Confusion(names[c], other, 2, 0.2),),
        under_represented=c == 1,
        narrative=(f"The model recognises {names[c]} well.", f"It mistakes some for {other}."),
    )
    return dataclasses.replace(section, **dataclasses.asdict(gallery_words(section)))


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
