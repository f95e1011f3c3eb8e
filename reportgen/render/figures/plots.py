"""The charts as image files; the only module that uses matplotlib (Agg canvas, no pyplot state)."""

from __future__ import annotations

import functools
import logging
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from reportgen.render.assets import JPEG_QUALITY

if TYPE_CHECKING:
    from reportgen.model.history import EpochStats

logger = logging.getLogger(__name__)
P = ParamSpec("P")

WIDTH_IN = 6.5  # figures fill an A4 text column (about 17 cm) at their natural size
DPI = 130  # sharp enough for print, small enough for a light PDF
LABEL_WIDTH = 22  # characters per line of a class name in tick labels; longer names wrap
MAX_ANNOTATED_CLASSES = 25  # a confusion matrix with more classes shows colours only
MAX_TICK_LABELS = 50  # class names per confusion-matrix axis; with more classes every k-th is named
MEAN_CAM_COLUMNS = ((9, 3), (40, 5), (math.inf, 10))  # (up to this many classes, panels per row) of the mean maps
SPLIT_COLOURS = {"train": "#4C72B0", "val": "#DD8452", "test": "#55A868"}
FLAG_COLOUR = "#C62828"
BASE_STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def _styled(plot: Callable[P, None]) -> Callable[P, None]:
    """Run ``plot`` under the house chart style (rcParams are global, so set them only for the call)."""

    @functools.wraps(plot)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        with matplotlib.rc_context(BASE_STYLE):
            plot(*args, **kwargs)

    return wrapper


@_styled
def plot_montage(images: np.ndarray, labels: Sequence[str], path: Path) -> None:
    """Write the example's 3x3 montage of ``images`` ``(n, S, S, 3)`` uint8 titled by ``labels`` as a JPEG."""
    fig = _figure(WIDTH_IN * 0.8, WIDTH_IN * 0.86)
    axes = fig.subplots(3, 3)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < len(images):
            ax.imshow(images[k], interpolation="antialiased")
            ax.set_title(_label(labels[k], width=18), fontsize=8.5)
    _save(fig, path, jpeg=True)


@_styled
def plot_class_histogram(
    split_counts: Mapping[str, Mapping[str, int]], under_represented: Sequence[str], path: Path
) -> None:
    """Write images per class, stacked by split, as horizontal bars; under-represented classes in red, hatched.

    ``split_counts`` maps split -> class name -> images (every split lists the same classes).
    """
    splits = [s for s in split_counts if sum(split_counts[s].values()) > 0] or list(split_counts)
    class_names = list(next(iter(split_counts.values()), {}))
    flagged = set(under_represented)
    fig = _figure(WIDTH_IN, _bar_chart_height(len(class_names)))
    ax = fig.subplots()
    totals = _stacked_bars(ax, split_counts, splits, class_names, flagged)
    _class_yticks(ax, class_names, flagged)
    ax.set_ylim(len(class_names) - 0.5, -0.5)  # first class on top, like the report's tables
    ax.set_xlabel("Images")
    ax.set_xlim(0, max(1.0, float(totals.max(initial=0))) * 1.12)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    handles = [Patch(facecolor=SPLIT_COLOURS.get(split, "#8C8C8C"), label=split) for split in splits]
    if flagged:
        handles.append(Patch(facecolor="white", edgecolor=FLAG_COLOUR, hatch="///", label="under-represented"))
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles))
    _save(fig, path)


def _stacked_bars(
    ax: Axes,
    split_counts: Mapping[str, Mapping[str, int]],
    splits: Sequence[str],
    class_names: Sequence[str],
    flagged: set[str],
) -> np.ndarray:
    """Draw one horizontal bar per class, a segment per split, and write the total at its end; return totals."""
    y = np.arange(len(class_names))
    left = np.zeros(len(class_names))
    for split in splits:
        counts = np.array([split_counts[split].get(name, 0) for name in class_names], dtype=float)
        bars = ax.barh(y, counts, left=left, height=0.7, color=SPLIT_COLOURS.get(split, "#8C8C8C"))
        for bar, name in zip(bars, class_names, strict=True):
            if name in flagged:
                bar.set_hatch("///")
                bar.set_edgecolor("white")
        left += counts
    fontsize = _tick_size(len(class_names)) - 1
    for yi, total in zip(y, left, strict=True):
        ax.text(total, yi, f" {int(total)}", va="center", fontsize=fontsize)
    return left


@_styled
def plot_training_curves(
    epochs: Sequence[EpochStats],
    path: Path,
    *,
    start: tuple[float | None, float | None] = (None, None),
    references: Mapping[str, float | None] | None = None,
    kept: int | None = None,
) -> None:
    """Write loss and accuracy per epoch for training and validation, as two panels side by side.

    ``start`` is the starting model's validation (loss, accuracy), drawn at epoch 0; ``references`` are
    validation accuracies of reference classifiers, drawn as horizontal lines; ``kept`` marks the kept epoch.
    """
    fig = _figure(WIDTH_IN, 2.9)
    loss_ax, acc_ax = fig.subplots(1, 2)
    x = [e.epoch for e in epochs]
    panels = (
        (loss_ax, "Loss", "train_loss", "val_loss", 1.0, start[0]),
        (acc_ax, "Accuracy (%)", "train_accuracy", "val_accuracy", 100.0, start[1]),
    )
    for ax, title, train_field, val_field, scale, first in panels:
        train = [_nan(getattr(e, train_field), scale) for e in epochs]
        val = [_nan(getattr(e, val_field), scale) for e in epochs]
        val_x = x
        if first is not None:
            val_x, val = [0, *x], [first * scale, *val]
        ax.plot(x, train, marker="o", markersize=4, color=SPLIT_COLOURS["train"], label="training")
        if not all(math.isnan(v) for v in val):
            ax.plot(val_x, val, marker="s", markersize=4, linestyle="--", color="#222222", label="validation")
        if kept is not None:
            ax.axvline(kept, color="#2a7d2a", linewidth=1.2, alpha=0.6, label=f"kept (epoch {kept})")
        ax.set_title(title)
        ax.set_xlabel("Epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    styles = iter([("#c0392b", ":"), ("#7f7f7f", "-.")])
    for name, value in (references or {}).items():
        colour, style = next(styles)
        if value is not None:
            acc_ax.axhline(100 * value, color=colour, linestyle=style, linewidth=1.3, label=f"{name} (val)")
    loss_ax.legend(fontsize=7)
    acc_ax.legend(fontsize=7, loc="lower right")
    acc_ax.set_ylim(0, 101)
    loss_ax.set_ylim(bottom=0)
    _save(fig, path)


@_styled
def plot_confusion(
    confusion: Sequence[Sequence[int]] | np.ndarray,
    normalised: Sequence[Sequence[float]] | np.ndarray,
    class_names: Sequence[str],
    path: Path,
) -> None:
    """Write the row-normalised confusion matrix; each cell shows its row percentage and its count.

    Rows are true classes, columns predicted classes (``confusionchart(..., 'Normalization', 'row-normalized')``).
    Above 12 classes cells show the percentage only, above 25 colour only (the counts stay in ``results.json``).
    """
    counts = np.asarray(confusion, dtype=int)
    rates = np.asarray(normalised, dtype=float)
    n = len(class_names)
    side = min(WIDTH_IN - 0.4, 1.9 + 0.46 * n)
    fig = _figure(side + 0.9, side)
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    if n <= MAX_ANNOTATED_CLASSES:
        _annotate_cells(ax, counts, rates)
    else:
        ax.set_title("Too many classes to print cell values; counts are in results.json", fontsize=8)
    step = math.ceil(n / MAX_TICK_LABELS)  # many classes: every step-th name, in the data set's order
    ticks = range(0, n, step)
    labels = [_label(class_names[i], width=LABEL_WIDTH if n <= 15 else 60) for i in ticks]
    ax.set_xticks(ticks, labels, rotation=90, ha="center", va="top", multialignment="right")
    ax.set_yticks(ticks, labels)
    ax.tick_params(length=0, labelsize=float(np.clip(9.0 - 0.15 * (n - 10), 4.5, 9.0)))
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.03)
    bar.set_label("Share of the true class's test images")
    bar.ax.yaxis.set_major_formatter(lambda v, _pos: f"{100 * v:.0f}%")
    _save(fig, path)


def _annotate_cells(ax: Axes, counts: np.ndarray, rates: np.ndarray) -> None:
    """Write each cell's row percentage (and, for up to 12 classes, its count) in the cell."""
    n = len(counts)
    fontsize = float(np.clip(9.5 - 0.25 * n, 4.5, 9.0))
    for t in range(n):
        for p in range(n):
            if counts[t].sum() == 0:
                text = "–"
            elif n <= 12:
                text = f"{100 * rates[t, p]:.0f}%\n{counts[t, p]}"
            else:
                text = f"{100 * rates[t, p]:.0f}"
            colour = "white" if rates[t, p] > 0.55 else "#222222"
            ax.text(p, t, text, ha="center", va="center", fontsize=fontsize, color=colour, linespacing=1.1)


@_styled
def plot_reliability(
    bin_confidence: Sequence[float | None],
    bin_accuracy: Sequence[float | None],
    bin_counts: Sequence[int],
    ece: float,
    path: Path,
) -> None:
    """Write a reliability diagram: accuracy per confidence bin against the diagonal, with a count histogram.

    Bins are the ``len(bin_counts)`` equal-width bins of [0, 1]; an empty bin's confidence and accuracy may be
    ``None`` or NaN. Each bar's height is the bin's accuracy, a dark tick marks its mean confidence, and the
    red hatching (drawn over the bar without hiding it) spans the gap between the two.
    """
    n_bins = len(bin_counts)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, 1.0 / max(n_bins, 1)
    conf = np.array([_nan(v) for v in bin_confidence])
    acc = np.array([_nan(v) for v in bin_accuracy])
    filled = (np.asarray(bin_counts) > 0) & ~np.isnan(conf) & ~np.isnan(acc)
    x, a, c = centres[filled], acc[filled], conf[filled]
    fig = _figure(WIDTH_IN * 0.75, 5.4)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.bar(x, a, width=width, color=SPLIT_COLOURS["train"], edgecolor="white", label="accuracy (bar height)")
    top.bar(
        x,
        c - a,
        bottom=a,
        width=width,
        facecolor="none",
        hatch="//",
        edgecolor=FLAG_COLOUR,
        linewidth=0.5,
        label="gap to mean confidence",
    )
    top.hlines(c, x - width / 2, x + width / 2, colors="#222222", linewidth=2, label="mean confidence", zorder=3)
    top.plot([0, 1], [0, 1], linestyle="--", color="#555555", linewidth=1, label="perfect calibration")
    top.set_ylim(0, 1)
    top.set_ylabel("Accuracy and mean confidence")
    top.set_title(f"Reliability diagram (ECE {ece:.3f})", pad=30)  # as the report prints the ECE
    top.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, borderaxespad=0.0)
    top.grid(alpha=0.3)
    bottom.bar(centres, bin_counts, width=width, color="#8C8C8C", edgecolor="white")
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("Confidence (highest score)")
    bottom.set_ylabel("Images")
    _save(fig, path)


@_styled
def plot_mean_cams(maps: np.ndarray, class_names: Sequence[str], flagged: Sequence[bool], path: Path) -> None:
    """Write a grid of mean Grad-CAM maps ``(C, S, S)`` in [0, 1], one panel per class; flagged panels in red.

    A class whose map is all zero had no usable map: its panel says "no maps" instead of showing a blank map.
    """
    n = len(class_names)
    cols = (n or 1) if n <= 4 else next(c for most, c in MEAN_CAM_COLUMNS if n <= most)
    rows = math.ceil(n / cols)
    panel = min(1.9, (WIDTH_IN - 0.8) / cols)
    fig = _figure(panel * cols + 0.8, (panel + 0.45) * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    image = None
    for k, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.set_axis_off()
            continue
        if np.any(maps[k]):
            image = ax.imshow(_downsample(maps[k]), cmap="jet", vmin=0.0, vmax=1.0, interpolation="bilinear")
        else:
            ax.set(facecolor="#F6F8FA", xlim=(0, 1), ylim=(0, 1), aspect="equal")
            ax.text(0.5, 0.5, "no maps", ha="center", va="center", fontsize=8, color="#59636E", transform=ax.transAxes)
        colour = FLAG_COLOUR if flagged[k] else "#222222"
        ax.set_title(_label(class_names[k], width=14), fontsize=8 if cols <= 5 else 5.5, color=colour)
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_color(colour if flagged[k] else "#BBBBBB")
            spine.set_linewidth(3.0 if flagged[k] else 0.8)
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes), fraction=0.03, pad=0.02)
        bar.set_label("Mean Grad-CAM")
    _save(fig, path)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path, *, jpeg: bool = False) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if jpeg:
        fig.savefig(path, format="jpeg", dpi=DPI, pil_kwargs={"quality": JPEG_QUALITY, "optimize": True})
    else:
        # bbox "tight" is the last guard against clipped labels; metadata off keeps files byte-stable.
        fig.savefig(path, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.05, metadata={"Software": None})
    logger.debug("wrote figure %s (%d bytes)", path, path.stat().st_size)


def _label(name: str, width: int = LABEL_WIDTH) -> str:
    """A class name safe for matplotlib text: ``$`` taken literally, long names wrapped (never cut)."""
    lines = textwrap.wrap(name, width=width, break_long_words=True, break_on_hyphens=True) or [name]
    return "\n".join(lines).replace("$", r"\$")


def _class_yticks(ax: Axes, class_names: Sequence[str], flagged: set[str]) -> None:
    width = LABEL_WIDTH if len(class_names) <= 15 else 60  # many thin bars: one line per name
    ax.set_yticks(range(len(class_names)), [_label(c, width=width) for c in class_names])
    ax.tick_params(axis="y", labelsize=_tick_size(len(class_names)))
    for tick, name in zip(ax.get_yticklabels(), class_names, strict=True):
        if name in flagged:
            tick.set_color(FLAG_COLOUR)
            tick.set_fontweight("bold")


def _tick_size(n_classes: int) -> float:
    """Points: 9 up to 20 classes, then smaller so the names do not overlap."""
    return float(np.clip(9.0 - 0.12 * (n_classes - 20), 5.0, 9.0))


def _bar_chart_height(n_classes: int) -> float:
    """Inches: a bar per class, capped so the chart fits an A4 page (names shrink instead)."""
    return min(9.0, 1.0 + 0.32 * max(n_classes, 2))


def _nan(value: float | None, scale: float = 1.0) -> float:
    return math.nan if value is None or not math.isfinite(value) else float(value) * scale


def _downsample(cam: np.ndarray, side: int = 64) -> np.ndarray:
    """Shrink a smooth map by block means so the PNG stays small; Grad-CAM detail is coarser than this anyway."""
    step = max(1, cam.shape[0] // side)
    h, w = (cam.shape[0] // step) * step, (cam.shape[1] // step) * step
    return cam[:h, :w].reshape(h // step, step, w // step, step).mean(axis=(1, 3))
