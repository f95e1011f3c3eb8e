"""How long a report with many classes takes to render, and how large its PDF is (no model, no images).

A synthetic run: random scores for ``--classes`` classes (12 test images each, 30 % of them misclassified at
random), built into a report by the pipeline's own functions (metrics, galleries, ``build_report`` with the
default ``--pdf-classes``), with 160-px thumbnails and Grad-CAM overlays written as JPEG noise and a mean map per
class. It times the figures, the HTML page and the PDF, and prints the PDF's size and pages.

    OMP_NUM_THREADS=1 python benchmarks/many_classes.py --classes 100 --out /tmp/many
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from reportgen.analysis.extremes import find_extremes
from reportgen.analysis.metrics import compute_metrics
from reportgen.analysis.shortcuts import ShortcutThresholds
from reportgen.assemble.report import build_report, class_sections
from reportgen.config import RunConfig
from reportgen.model.predictions import Predictions
from reportgen.render.assets import THUMB_SIDE
from reportgen.render.figures import draw_report_figures
from reportgen.render.html import print_page, render_html
from reportgen.render.pdf import render_pdf
from reportgen.report import ClassSection, DatasetSummary, GalleryImage, ModelSummary, Report, RunInfo
from reportgen.report.audit import Audit, LabelCheck, ShortcutCheck, ShortcutClass

PER_CLASS = {"train": 30, "val": 10, "test": 12}
WRONG = 0.3  # share of test images given a random wrong class
CONFIG = RunConfig(data_dir=Path("DATA"), out_dir=Path("OUT"))


def predictions(n_classes: int, seed: int) -> Predictions:
    """Random scores: the true class on top, except for WRONG of the test images."""
    rng = np.random.default_rng(seed)
    names = tuple(f"class {i:04d}" for i in range(n_classes))
    labels = np.repeat(np.arange(n_classes), sum(PER_CLASS.values()))
    splits = np.tile(np.repeat(list(PER_CLASS), list(PER_CLASS.values())), n_classes)
    logits = rng.normal(size=(len(labels), n_classes))
    target = labels.copy()
    flip = (splits == "test") & (rng.random(len(labels)) < WRONG * rng.random(n_classes)[labels] * 2)
    target[flip] = rng.integers(0, n_classes, flip.sum())
    logits[np.arange(len(labels)), target] += 4.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    paths = tuple(f"{names[c]}/img-{i:06d}.jpg" for i, c in enumerate(labels))
    return Predictions(names, paths, labels, splits, probs)


def with_pictures(sections: tuple[ClassSection, ...], out: Path, seed: int) -> tuple[ClassSection, ...]:
    """The sections with a thumbnail and overlays per gallery image, written as JPEG noise (a photo's size)."""
    rng = np.random.default_rng(seed)

    def jpeg(rel: str) -> str:
        noise = rng.integers(0, 256, (THUMB_SIDE // 8, THUMB_SIDE // 8, 3), dtype=np.uint8)
        picture = Image.fromarray(noise).resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BICUBIC)
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        picture.save(out / rel, quality=85)
        return rel

    def pictured(g: GalleryImage) -> GalleryImage:
        stem = g.rel_path.replace("/", "-").removesuffix(".jpg")
        true = jpeg(f"assets/{stem}-cam-true.jpg") if not g.correct else None
        return dataclasses.replace(
            g, thumbnail=jpeg(f"assets/{stem}.jpg"), cam=jpeg(f"assets/{stem}-cam.jpg"), cam_true=true
        )

    return tuple(
        dataclasses.replace(s, top=tuple(map(pictured, s.top)), bottom=tuple(map(pictured, s.bottom))) for s in sections
    )


def audit(names: tuple[str, ...], seed: int) -> Audit:
    """A label check with suspects in some classes and a shortcut check that flags a few classes."""
    rng = np.random.default_rng(seed)
    suspects = {n: int(k) for n, k in zip(names, rng.poisson(0.5, len(names)), strict=True)}
    labels = LabelCheck(
        method="embeddings", method_text="", folds=5, n_images=0, total=sum(suspects.values()), noise_rate=0.0,
        noise_rate_method="", probs_accuracy=0.0, filter_by="", rank_by="", per_class=suspects, suggested={},
        class_noise_rates={}, suspects=(), shown=0, worth_a_look=(), review_shown=0, temperature=1.0,
        likely_meaning="", review_meaning="",
    )  # fmt: skip
    flagged = tuple(n for n in names if rng.random() < 0.05)
    shortcuts = ShortcutCheck(
        classes=tuple(
            ShortcutClass(n, 9, 0.4, 0.6 if n in flagged else 0.3, 0.1, "centre", 0.5, 0.1, n in flagged, ())
            for n in names
        ),
        flagged=flagged,
        min_maps=ShortcutThresholds().min_maps,
        rule="",
    )
    return Audit(label_issues=labels, shortcuts=shortcuts)


def build(n_classes: int, out: Path, seed: int = 0) -> tuple[Report, dict[str, float]]:
    """The synthetic report with its pictures under ``out``, and the seconds of each step."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    preds = predictions(n_classes, seed)
    metrics = compute_metrics(preds.labels, preds.predicted, preds.splits, preds.class_names)
    extremes = find_extremes(
        preds.probs, preds.labels, preds.indices("test"), top_k=CONFIG.top_k, bottom_k=CONFIG.bottom_k
    )
    sections = with_pictures(class_sections(preds, metrics, extremes), out, seed)
    seconds["build"] = time.perf_counter() - start
    names = preds.class_names
    report = build_report(
        run=RunInfo("2025-01-01T00:00:00+00:00", {}, "cpu", seed, {}, CONFIG.to_dict()),
        dataset=DatasetSummary(str(out / "data"), names, metrics.split_counts, len(preds.labels), ()),
        model=ModelSummary("efficientnet_lite0", "synthetic", 224, "conv_head", True, None),
        history=None,
        model_check=None,
        metrics=metrics,
        classes=sections,
        pdf_classes=20,
        audit=audit(names, seed),
    )
    return report, seconds


def render(report: Report, out: Path, seconds: dict[str, float], seed: int = 0) -> None:
    """Figures, HTML and PDF, each timed into ``seconds``."""
    rng = np.random.default_rng(seed)
    n = len(report.dataset.class_names)
    start = time.perf_counter()
    montage = (rng.integers(0, 256, (9, 64, 64, 3), dtype=np.uint8), [report.dataset.class_names[0]] * 9)
    coarse = rng.random((n, 4, 7, 7))  # Grad-CAM maps are smooth: a 7x7 grid, upsampled as the CAM layer is
    maps = [np.kron(c, np.ones((8, 8))) for c in coarse]
    draw_report_figures(report, out, montage=montage, maps_by_class=maps)
    seconds["figures"] = time.perf_counter() - start
    start = time.perf_counter()
    render_html(report, out)
    seconds["html"] = time.perf_counter() - start
    start = time.perf_counter()
    render_pdf(print_page(report, out), out, out / "report.pdf")
    seconds["pdf"] = time.perf_counter() - start


def main() -> None:
    """Build, render and measure one report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True, help="a new or empty folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    report, seconds = build(args.classes, args.out)
    render(report, args.out, seconds)
    pdf = args.out / "report.pdf"
    pages = _pages(pdf)
    sys.stdout.write(
        f"{args.classes} classes: build {seconds['build']:.1f} s, figures {seconds['figures']:.1f} s, "
        f"HTML {seconds['html']:.1f} s, PDF {seconds['pdf']:.1f} s; "
        f"report.pdf {pdf.stat().st_size / 1e6:.1f} MB, {pages} pages; "
        f"report.html {(args.out / 'report.html').stat().st_size / 1e6:.1f} MB\n"
    )


def _pages(pdf: Path) -> str:
    """The PDF's page count, as poppler's ``pdfinfo`` reads it ("?" without poppler)."""
    try:
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return next((line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")), "?")


if __name__ == "__main__":
    main()
