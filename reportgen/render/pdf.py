"""The PDF report: WeasyPrint lays out the HTML report with its print CSS; the only module that imports weasyprint."""

from __future__ import annotations

import logging
from pathlib import Path

from weasyprint import HTML
from weasyprint.urls import URLFetcher

logger = logging.getLogger(__name__)

# The report is offline by construction: only files of the output folder (and data: URLs) may be read.
_ALLOWED_PROTOCOLS = ("file", "data")


def render_pdf(html_path: Path, pdf_path: Path) -> Path:
    """Lay out ``html_path`` (from ``render_html``) as an A4 PDF at ``pdf_path``.

    Relative asset paths resolve against the HTML file's folder (the output folder); only ``file:`` and
    ``data:`` URLs are fetched, so the PDF never depends on the network.
    """
    html_path = Path(html_path).resolve()
    pdf_path = Path(pdf_path)
    base_url = html_path.parent.as_uri() + "/"
    document = HTML(
        filename=str(html_path),
        base_url=base_url,
        encoding="utf-8",
        url_fetcher=URLFetcher(allowed_protocols=_ALLOWED_PROTOCOLS, fail_on_errors=False),
    ).render()
    document.write_pdf(pdf_path)
    logger.info("wrote %s (%d pages, %.1f MB)", pdf_path, len(document.pages), pdf_path.stat().st_size / 1e6)
    return pdf_path
