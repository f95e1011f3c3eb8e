"""The PDF report: WeasyPrint lays out the HTML report with its print CSS; the only module that imports weasyprint."""

from __future__ import annotations

import logging
from pathlib import Path

from weasyprint import HTML
from weasyprint.urls import URLFetcher

logger = logging.getLogger(__name__)

# The report is offline by construction: only files of the output folder (and data: URLs) may be read.
_ALLOWED_PROTOCOLS = ("file", "data")


def render_pdf(page: str, out_dir: Path, pdf_path: Path) -> Path:
    """Lay out the HTML ``page`` (``render.html.print_page``) as an A4 PDF at ``pdf_path``.

    Relative asset paths resolve against ``out_dir`` (the output folder); only ``file:`` and ``data:`` URLs
    are fetched, so the PDF never depends on the network.
    """
    pdf_path = Path(pdf_path)
    base_url = Path(out_dir).resolve().as_uri() + "/"
    document = HTML(
        string=page,
        base_url=base_url,
        url_fetcher=URLFetcher(allowed_protocols=_ALLOWED_PROTOCOLS, fail_on_errors=False),
    ).render()
    document.write_pdf(pdf_path)
    logger.info("wrote %s (%d pages, %.1f MB)", pdf_path, len(document.pages), pdf_path.stat().st_size / 1e6)
    return pdf_path
