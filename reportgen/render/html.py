"""The HTML report: the report model through Jinja2 templates; the only module that imports jinja2.

Every picture's ``src`` and ``href`` goes through the ``asset`` filter: a path relative to the output folder,
or, in a single-file page, the file's bytes as a ``data:`` URI, so that ``report.html`` works when sent alone.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from reportgen import __version__
from reportgen.narrative.appendix import files_note, output_files, reproducing_command
from reportgen.narrative.explanation import EXPLANATION_RULE
from reportgen.narrative.format import FILTERS, asset_url
from reportgen.narrative.model import MODEL_RULE
from reportgen.render.assets import larger_path
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
    env.filters["asset"] = _asset
    return env


@dataclass
class PageAssets:
    """One page's pictures: files of the output folder as relative URLs, or as ``data:`` URIs in a single-file page.

    With ``zoom`` (the HTML page, not the PDF's) every thumbnail opens its larger version over the page: a CSS
    ``:target`` view, as no browser opens a ``data:`` link as a page and the report has no scripts.
    """

    out_dir: Path
    single_file: bool = False
    zoom: bool = True  # False: the PDF's page
    _embedded: dict[str, str] = field(default_factory=dict)  # path -> data: URI, each file read once
    _zooms: int = 0  # zoom views so far

    def url(self, path: str, *, larger: bool = False) -> str:
        """The URL of ``path`` (``assets/img-000001.jpg``), or of its larger version when ``larger`` and written.

        Raises:
            ValueError: ``path`` is not a plain relative path inside the folder (see ``asset_url``).
        """
        relative = asset_url(path)  # refuses absolute paths, URLs and ``..`` before any file is read
        if larger and (self.out_dir / larger_path(path)).is_file():
            path, relative = larger_path(path), asset_url(larger_path(path))
        if not self.single_file:
            return relative
        if path not in self._embedded:
            self._embedded[path] = self._data_uri(path)
        return self._embedded[path]

    def zoom_id(self) -> str:
        """A new element id for a zoom view: ``zoom-1``, ``zoom-2``, ... (a picture may be shown twice)."""
        self._zooms += 1
        return f"zoom-{self._zooms}"

    def _data_uri(self, path: str) -> str:
        file = self.out_dir / path
        if not file.is_file():
            logger.warning("report.html: %s is missing; left as a relative link", path)
            return asset_url(path)
        mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return f"data:{mime};base64,{base64.b64encode(file.read_bytes()).decode('ascii')}"


@pass_context
def _asset(context: Context, path: str, larger: bool = False) -> Markup:
    """Jinja filter ``asset``: the URL of an output-folder picture for this page (``PageAssets.url``)."""
    return Markup(context["assets"].url(path, larger=larger))  # a relative URL or base64: nothing to escape


ENV = _environment()


def render_html(report: Report, out_dir: Path, *, single_file: bool = False) -> Path:
    """Write ``out_dir/report.html``: CSS inlined; pictures by relative path, or embedded with ``single_file``."""
    path = Path(out_dir) / "report.html"
    path.write_text(report_page(report, PageAssets(Path(out_dir), single_file)), encoding="utf-8")
    logger.info("wrote %s%s", path, " (single file)" if single_file else "")
    return path


def print_page(report: Report, out_dir: Path) -> str:
    """The page the PDF lays out: pictures by relative path (thumbnails only), no zoom views."""
    return report_page(report, PageAssets(Path(out_dir), zoom=False))


def report_page(report: Report, assets: PageAssets) -> str:
    """The report as one HTML page whose pictures are given by ``assets``."""
    return ENV.get_template(TEMPLATE).render(_context(report, assets))


def _context(report: Report, assets: PageAssets) -> dict[str, Any]:
    """What the template reads: the report, its structure (what to lay out, in which order), its pictures."""
    return {
        "report": report,
        "structure": report_structure(report, pdf=not assets.zoom),  # the PDF's page: no zoom views
        "generator": f"reportgen {__version__}",
        "model_rule": MODEL_RULE,
        "explanation_rule": EXPLANATION_RULE,
        "assets": assets,
        "command": reproducing_command(report.run.config),
        "output_files": output_files(report),
        "files_note": files_note(_html_is_single_file(report, assets)),
    }


def _html_is_single_file(report: Report, assets: PageAssets) -> bool:
    """Whether ``report.html`` holds its pictures: this page's own mode, or for the PDF's page the run's."""
    return assets.single_file if assets.zoom else bool(report.run.config.get("single_file", False))
