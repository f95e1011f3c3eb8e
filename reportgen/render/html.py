"""The HTML report: the report model through Jinja2 templates; the only module that imports jinja2."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from reportgen import __version__
from reportgen.narrative.format import FILTERS
from reportgen.narrative.model import MODEL_RULE
from reportgen.render.structure import report_structure

if TYPE_CHECKING:
    from reportgen.report import Report  # a type only: the renderer needs no torch

logger = logging.getLogger(__name__)

TEMPLATE = "report.html"


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
    """What the template reads: the report, and its structure (what to lay out, in which order)."""
    return {
        "report": report,
        "structure": report_structure(report),
        "generator": f"reportgen {__version__}",
        "model_rule": MODEL_RULE,
    }
