"""The HTML report: the report model through Jinja2 templates; the only module that imports jinja2."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from reportgen import __version__
from reportgen.narrative.format import FILTERS
from reportgen.narrative.model import MODEL_RULE

if TYPE_CHECKING:
    from reportgen.report import Report  # a type only: the renderer needs no torch

logger = logging.getLogger(__name__)

TEMPLATE = "report.html"
# Figures with a fixed place in the report; any other entry of ``report.figures`` goes to "Audit checks"
# (titled "Other figures" when the report has an audit).
PLACED_FIGURES = ("montage", "class_histogram", "training_curves", "confusion_matrix")
AUDIT_FIGURES = ("reliability", "mean_cams")  # placed in the "Data set audit" chapter when the report has an audit
EXTRA_FIGURE_TITLES = {
    "reliability": "Calibration: reliability diagram",
    "mean_cams": "Mean Grad-CAM per class",
}
EXTRA_FIGURE_SIZES = {"reliability": "medium"}  # CSS width class; "large" otherwise
HEATMAP_FIGURES = frozenset({"mean_cams"})  # figures that need the per-image normalisation note
HEALTH_CHECK_TITLES = {  # reportgen.analysis.health.CHECKS in words
    "small": "very small",
    "aspect": "extreme aspect ratio",
    "low_contrast": "near-constant (low contrast)",
    "dark": "very dark",
    "bright": "very bright",
    "grayscale": "grayscale in a colour set",
}


@dataclass(frozen=True)
class ExtraFigure:
    """A figure without a section of its own yet, shown in the "Audit checks" area."""

    key: str
    title: str
    path: str
    heatmap: bool
    size: str = "large"


def templates_dir() -> Path:
    """The folder holding ``report.html``: ``reportgen/_templates`` in a wheel, ``templates/`` in the source tree.

    Raises:
        FileNotFoundError: Neither place holds the templates (a broken install).
    """
    package = Path(__file__).resolve().parents[1]
    candidates = (package / "_templates", package.parent / "templates")
    for folder in candidates:
        if (folder / TEMPLATE).is_file():
            return folder
    raise FileNotFoundError(f"report templates not found; looked in {', '.join(str(c) for c in candidates)}")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=select_autoescape(("html", "htm", "xml"), default_for_string=True, default=True),
        undefined=StrictUndefined,  # a misspelt field fails the render instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


ENV = _environment()


def render_html(report: Report, out_dir: Path) -> Path:
    """Write ``out_dir/report.html``, a self-contained page (CSS inlined, images by relative path)."""
    path = Path(out_dir) / "report.html"
    html = ENV.get_template(TEMPLATE).render(_context(report))
    path.write_text(html, encoding="utf-8")
    logger.info("wrote %s", path)
    return path


def _context(report: Report) -> dict[str, Any]:
    """What the template reads: the report itself plus a few values derived from it for layout."""
    splits = [s for s, counts in report.dataset.split_counts.items() if sum(counts.values()) > 0]
    return {
        "report": report,
        "title": f"Data set audit: {Path(report.dataset.root).name or report.dataset.root}",
        "generator": f"reportgen {__version__}",
        "splits": splits,
        "split_totals": {s: sum(report.dataset.split_counts[s].values()) for s in splits},
        "test_images": sum(m.support for m in report.metrics.per_class),
        "extra_figures": _extra_figures(report.figures, audit=report.audit is not None),
        "health_titles": HEALTH_CHECK_TITLES,
        "model_rule": MODEL_RULE,
        "config_rows": config_rows(report.run.config),
        "has_cams": any(img.cam for section in report.classes for img in (*section.top, *section.bottom)),
    }


def config_rows(config: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """The configuration as (dotted key, value) rows in its own order; nested dicts give ``train.epochs``."""
    rows: list[tuple[str, Any]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += config_rows(value, f"{name}.")
        else:
            rows.append((name, value))
    return rows


def _extra_figures(figures: dict[str, str], *, audit: bool) -> list[ExtraFigure]:
    """Figures for the "Audit checks" area: those without a place, and the audit's own when there is no audit."""
    placed = (*PLACED_FIGURES, *AUDIT_FIGURES) if audit else PLACED_FIGURES
    known = [key for key in EXTRA_FIGURE_TITLES if key in figures and key not in placed]
    others = sorted(key for key in figures if key not in placed and key not in EXTRA_FIGURE_TITLES)
    return [
        ExtraFigure(
            key,
            EXTRA_FIGURE_TITLES.get(key, key.replace("_", " ").capitalize()),
            figures[key],
            key in HEATMAP_FIGURES,
            EXTRA_FIGURE_SIZES.get(key, "large"),
        )
        for key in (*known, *others)
    ]
