"""The data-set map: pretrained features laid out in 2-D, dots coloured by class, the audit's findings marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.lines import Line2D

from reportgen.render.figures.plots import WIDTH_IN, _figure, _label, _save, _styled

MAP_LEGEND_CLASSES = 20  # a data-set map names up to this many classes; beyond, colours only
# ring, grey ring, cross, diamond: (marker, points larger than a dot, colour, line width)
MAP_MARKS = (("o", 6, "#111111", 1.1), ("o", 6, "#8C8C8C", 1), ("x", 2, "#111111", 1), ("D", 5, "#111111", 1))


@_styled
def plot_embedding_map(
    coords: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    path: Path,
    *,
    marks: Mapping[str, Sequence[int]] | None = None,  # legend entry -> rows of ``coords``
    pairs: Sequence[tuple[int, int]] = (),  # rows joined by a line
    title: str = "",
) -> None:
    """Write ``coords`` ``(n, 2)`` as dots coloured by class ``labels``, ``marks`` in ``MAP_MARKS``'s styles."""
    n_classes, colours = len(class_names), _class_colours(len(class_names))
    named, columns = 0 < n_classes <= MAP_LEGEND_CLASSES, 3 if n_classes <= 9 else 4
    ax = _figure(WIDTH_IN, 4.6 + (0.22 * -(-n_classes // columns) if named else 0)).subplots()
    dot = float(np.clip(20 / max(len(coords), 1) ** 0.25, 2.0, 6.0))  # diameter (points): large sets, small dots
    ax.scatter(*coords.T, c=colours[np.asarray(labels, int)], s=dot**2, linewidths=0, alpha=0.8)
    for a, b in pairs:
        ax.plot(*coords[[a, b]].T, color="#111111", linewidth=0.6, alpha=0.6)
    handles = []
    for (label, rows), (marker, grow, colour, width) in zip((marks or {}).items(), MAP_MARKS, strict=False):
        style = {"marker": marker, "markersize": dot + grow, "markeredgewidth": width, "linestyle": "none"}
        if len(rows):
            handles += ax.plot(*coords[np.asarray(rows, int)].T, mfc="none", mec=colour, label=label, **style)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")  # neither axis means anything, but distances do, alike in both
    ax.set_axis_off()
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles))
    if named:
        classes = [Line2D([], [], linestyle="none", marker="o", color=c, markersize=6) for c in colours]
        names = [_label(c, width=24) for c in class_names]
        ax.figure.legend(classes, names, loc="outside lower center", ncol=columns, fontsize=8 if n_classes <= 10 else 7)
    _save(ax.figure, path)


def _class_colours(n: int) -> np.ndarray:
    """``(n, 4)`` RGBA: tab20's dark shades (tab10), then its light ones, up to 20 classes; beyond, turbo."""
    if n > 20:
        return matplotlib.colormaps["turbo"]((np.arange(n) * 0.618034) % 1.0)  # golden-ratio steps: neighbours differ
    return matplotlib.colormaps["tab20"]([*range(0, 20, 2), *range(1, 20, 2)][:n])
