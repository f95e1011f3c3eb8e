"""The report's charts: each writes a small, print-sized image whose text is never cut off."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reportgen.model.history import EpochStats
from reportgen.render.figures import maps
from reportgen.render.figures import plots as figures

LONG_NAMES = (
    "caesar_salad",
    "a very long class name that goes on and on",
    "$5 menu$",  # mathtext delimiters must stay literal
    "<b>x</b>",
    "greek_salad",
    "hot_dog",
    "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "pizza",
    "sushi",
    "sashimi",
)
MAX_BYTES = 300_000


def _check_image(path: Path, fmt: str, *, max_width_in: float = 7.6) -> np.ndarray:
    assert path.is_file() and 0 < path.stat().st_size < MAX_BYTES
    with Image.open(path) as image:
        assert image.format == fmt
        assert 2.0 * figures.DPI < image.width <= max_width_in * figures.DPI
        return np.asarray(image.convert("L"))


def _assert_margins_blank(gray: np.ndarray) -> None:
    """Nothing touches the image's edges: a clipped label would run into them."""
    for edge in (gray[0], gray[-1], gray[:, 0], gray[:, -1]):
        assert edge.min() > 230


def test_montage_is_a_jpeg_with_titles(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (9, 64, 64, 3), dtype=np.uint8)
    path = tmp_path / "montage.jpg"
    figures.plot_montage(images, LONG_NAMES[:9], path)
    _check_image(path, "JPEG")


def test_montage_with_fewer_than_nine_images(tmp_path):
    images = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    figures.plot_montage(images, ["a", "b", "c", "d"], tmp_path / "m.jpg")
    _check_image(tmp_path / "m.jpg", "JPEG")


def test_class_histogram_keeps_long_names_inside(tmp_path):
    counts = {
        split: {n: k * (i + 1) for i, n in enumerate(LONG_NAMES)}
        for split, k in (("train", 6), ("val", 2), ("test", 2))
    }
    path = tmp_path / "hist.png"
    figures.plot_class_histogram(counts, under_represented=LONG_NAMES[1:3], path=path)
    _assert_margins_blank(_check_image(path, "PNG"))


def test_class_histogram_with_an_empty_split(tmp_path):
    counts = {"train": {"a": 5, "b": 3}, "val": {"a": 0, "b": 0}, "test": {"a": 2, "b": 1}}
    figures.plot_class_histogram(counts, (), tmp_path / "h.png")
    _check_image(tmp_path / "h.png", "PNG")


@pytest.mark.parametrize("with_val", [True, False])
def test_training_curves(tmp_path, with_val):
    epochs = tuple(
        EpochStats(e, 1.0 / e, 0.5 + 0.1 * e, 1.1 / e if with_val else None, 0.4 + 0.1 * e if with_val else None, 2.0)
        for e in range(1, 5)
    )
    figures.plot_training_curves(epochs, tmp_path / "c.png")
    _check_image(tmp_path / "c.png", "PNG")


def test_confusion_keeps_long_names_inside(tmp_path):
    n = len(LONG_NAMES)
    counts = np.arange(n * n).reshape(n, n) % 7 + np.eye(n, dtype=int) * 20
    counts[2] = 0  # a class without test images
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros((n, n)), where=rows > 0)
    path = tmp_path / "confusion.png"
    figures.plot_confusion(counts, normalised, LONG_NAMES, path)
    _assert_margins_blank(_check_image(path, "PNG", max_width_in=8.0))


def test_confusion_small(tmp_path):
    figures.plot_confusion([[3, 1], [0, 4]], [[0.75, 0.25], [0.0, 1.0]], ["a", "b"], tmp_path / "c.png")
    _check_image(tmp_path / "c.png", "PNG")


def test_reliability_with_empty_bins(tmp_path):
    conf = [None, None, 0.25, 0.35, float("nan"), 0.55, 0.65, 0.75, 0.85, 0.95]
    acc = [None, None, 0.2, 0.3, float("nan"), 0.5, 0.7, 0.7, 0.8, 0.97]
    counts = [0, 0, 3, 5, 0, 8, 13, 21, 34, 55]
    figures.plot_reliability(conf, acc, counts, 0.043, tmp_path / "r.png")
    _check_image(tmp_path / "r.png", "PNG")


def _drawn(monkeypatch, plot, *args):
    """The matplotlib Figure ``plot`` would save (``_save`` captured instead of writing)."""
    saved = []
    monkeypatch.setattr(figures, "_save", lambda fig, path, **_: saved.append(fig))
    plot(*args)
    return saved[0]


def test_reliability_bars_are_what_the_legend_says(monkeypatch, tmp_path):
    """Bars are accuracy, drawn whole (the gap hatching has no fill); ticks are the mean confidence."""
    conf = [None, 0.31, 0.45, 0.9]
    acc = [None, 1.0, 0.25, 0.9]
    fig = _drawn(monkeypatch, figures.plot_reliability, conf, acc, [0, 2, 4, 6], 0.19, tmp_path / "r.png")
    top = fig.axes[0]
    labels = top.get_legend_handles_labels()[1]
    legend = ["accuracy (bar height)", "gap to mean confidence", "mean confidence", "perfect calibration"]
    assert sorted(labels) == legend
    bars, gap = top.containers[0], top.containers[1]
    assert [b.get_height() for b in bars] == pytest.approx([1.0, 0.25, 0.9])
    assert all(p.get_facecolor()[3] == 0 for p in gap)  # hatching over a bar leaves its colour visible
    assert [p.get_y() + p.get_height() for p in gap] == pytest.approx([0.31, 0.45, 0.9])
    ticks = next(c for c in top.collections if c.get_label() == "mean confidence")
    assert [seg[0][1] for seg in ticks.get_segments()] == pytest.approx([0.31, 0.45, 0.9])


def test_mean_cams_say_no_maps_instead_of_a_blank_panel(monkeypatch, tmp_path):
    maps = np.zeros((3, 32, 32))
    maps[0, 10:20, 10:20] = 1.0
    fig = _drawn(monkeypatch, figures.plot_mean_cams, maps, ["a", "b", "c"], [False, False, False], tmp_path / "c.png")
    panels = fig.axes[:3]
    assert [len(ax.images) for ax in panels] == [1, 0, 0]
    assert [[t.get_text() for t in ax.texts] for ax in panels] == [[], ["no maps"], ["no maps"]]


def test_mean_cams(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:224, 0:224] / 224.0
    centres = rng.random((len(LONG_NAMES), 2))
    maps = np.stack([np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.05) for cx, cy in centres])  # smooth, like CAMs
    flagged = [i % 3 == 0 for i in range(len(LONG_NAMES))]
    path = tmp_path / "cams.png"
    figures.plot_mean_cams(maps, LONG_NAMES, flagged, path)
    _assert_margins_blank(_check_image(path, "PNG"))


def test_label_wraps_and_escapes():
    label = figures._label("a very long class name that goes on and on, $5")
    assert "\n" in label and r"\$5" in label
    assert label.replace("\n", " ").replace(r"\$", "$") == "a very long class name that goes on and on, $5"


def test_draw_report_figures_draws_exactly_what_the_report_names(tmp_path: Path) -> None:
    from report_factory import make_bare_report

    from reportgen.analysis.calibration import compute_calibration
    from reportgen.assemble.report import planned_figures
    from reportgen.render.figures import draw_report_figures

    report = make_bare_report(("a", "b"))
    report = dataclasses.replace(report, figures=planned_figures(trained=bool(report.training), audit=None))
    rng = np.random.default_rng(0)
    montage = (rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8), ["a", "b", "a", "b"])
    draw_report_figures(report, tmp_path, montage=montage)
    drawn = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert drawn == sorted(report.figures.values()) and "figures/reliability.png" not in drawn
    with pytest.raises(ValueError, match="calibration"):
        draw_report_figures(dataclasses.replace(report, figures={"reliability": "r.png"}), tmp_path, montage=montage)
    probs = rng.dirichlet([1, 1], size=40)
    cal = compute_calibration(probs, rng.integers(0, 2, 40), seed=0)
    draw_report_figures(
        dataclasses.replace(report, figures={"reliability": "r.png"}), tmp_path, montage=montage, calibration=cal
    )
    assert (tmp_path / "r.png").stat().st_size > 1000


def _map_points(n: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    return rng.normal(size=(n, 2)) + 3 * np.stack([np.cos(labels), np.sin(labels)], axis=1), labels


@pytest.mark.parametrize("n_classes", [len(LONG_NAMES), 20, 31])
def test_embedding_map_names_up_to_20_classes_and_keeps_them_inside(tmp_path, n_classes):
    names = [*LONG_NAMES, *(f"class {k} {'$' * (k % 2)}" for k in range(n_classes - len(LONG_NAMES)))]
    coords, labels = _map_points(2000, n_classes)
    marks = {"suspected label error": [0, 5], "label worth a look": [7], "copy": [10, 11], "outlier": [12]}
    path = tmp_path / "map.png"
    maps.plot_embedding_map(coords, labels, names, path, marks=marks, pairs=[(10, 11)], title="t-SNE of $x$")
    gray = _check_image(path, "PNG")
    _assert_margins_blank(gray)
    assert gray.shape[0] < 8.5 * figures.DPI  # fits an A4 column with its caption


def test_embedding_map_of_one_point_without_marks(tmp_path):
    maps.plot_embedding_map(np.zeros((1, 2)), np.array([0]), ["only"], tmp_path / "m.png")
    _check_image(tmp_path / "m.png", "PNG")


def test_the_map_drawer_marks_the_audits_images_that_are_on_the_map(tmp_path, monkeypatch):
    from report_factory import make_report

    import reportgen.render.figures as drawing
    from reportgen.analysis.embedding_map import EmbeddingMap
    from reportgen.assemble.report import map_marks

    report = make_report(tmp_path / "r", audit=True, figures=())
    report = dataclasses.replace(report, figures={"dataset_map": "figures/dataset_map.png"})
    marks, pairs = map_marks(report.audit)
    marked = sorted({i for images in marks.values() for i in images})
    assert marks["suspected label error"] and marks["copy"] and marks["outlier"] and pairs
    on_map = np.array(sorted({*marked[1:], 10_000}))  # the first marked image is not on the map
    embedding = EmbeddingMap(np.zeros((len(on_map), 2), np.float32), on_map, on_map % 3, "tsne", 20_000)
    calls = []
    monkeypatch.setattr(drawing, "plot_embedding_map", lambda *args, **kwargs: calls.append((args, kwargs)))
    drawing.draw_report_figures(report, tmp_path, montage=(np.zeros((0, 4, 4, 3), np.uint8), []), embedding=embedding)
    (coords, labels, names, path), kwargs = calls[0]
    row = {int(i): k for k, i in enumerate(on_map)}
    for entry, images in marks.items():
        assert kwargs["marks"][entry] == [row[i] for i in images if i in row]
    assert kwargs["pairs"] == [(row[a], row[b]) for a, b in pairs if a in row and b in row]
    assert kwargs["title"] == f"t-SNE of the pretrained features: {len(on_map):,} of 20,000 images, sampled per class"
    assert names == report.dataset.class_names and path == tmp_path / "figures" / "dataset_map.png"
    with pytest.raises(ValueError, match="coordinates"):
        drawing.draw_report_figures(report, tmp_path, montage=(np.zeros((0, 4, 4, 3), np.uint8), []))
