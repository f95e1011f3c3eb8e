"""Template and renderer tests from hand-built Report objects (no model, no data set)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from report_factory import NASTY_CLASSES, make_report

from reportgen.render import formatters
from reportgen.render.html import render_html, templates_dir

REPO = Path(__file__).resolve().parents[1]


class _Elements(HTMLParser):
    """Collects (tag, attrs) of every start tag and the text inside <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data

    def with_class(self, tag: str, css_class: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and css_class in a.get("class", "").split()]


def _render(out: Path, **kwargs) -> tuple[str, _Elements]:
    report = make_report(out, **kwargs)
    html = render_html(report, out).read_text("utf-8")
    parsed = _Elements()
    parsed.feed(html)
    return html, parsed


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[Path, str, _Elements]:
    html, parsed = _render(tmp_path)
    return tmp_path, html, parsed


def test_every_section_is_present(rendered):
    _, html, parsed = rendered
    ids = {a.get("id") for _, a in parsed.elements}
    expected = {"summary", "dataset", "training", "confusion", "probes", "audit-checks", "caveats"}
    assert expected | {f"class-{i}" for i in range(1, len(NASTY_CLASSES) + 1)} <= ids
    for text in ("Key findings", "Most activating test images", "Least activating test images", "Skipped files"):
        assert text in html
    assert "Calibration: reliability diagram" in html and "Mean Grad-CAM per class" in html
    assert "fewer than half the median number of images per class." in html  # the under-represented rule


def test_class_names_and_paths_are_escaped(rendered):
    _, html, _ = rendered
    body = html.split("</style>", 1)[1]
    assert "<b>x</b>" not in body
    assert "&lt;b&gt;x&lt;/b&gt;" in body
    assert 'a&b"c' not in body and "a&amp;b&#34;c" in body
    assert "<co>" not in body and "photo <0>" not in body and "my <probe>" not in body


def test_misclassified_cards_are_red_and_correct_ones_green(rendered):
    _, _, parsed = rendered
    wrong, correct = parsed.with_class("article", "wrong"), parsed.with_class("article", "correct")
    assert len(wrong) == len(NASTY_CLASSES)  # the first bottom image of each class
    assert len(correct) == len(NASTY_CLASSES) * (2 + 3) - len(wrong)
    assert len(parsed.with_class("span", "pred")) == len(wrong) + len(correct)
    css = re.sub(r"\s+", " ", parsed.style)
    assert ".pred.wrong { color: var(--bad); }" in css and "--bad: #c62828" in css
    assert ".pred.correct { color: var(--good); }" in css and "--good: #1a7f37" in css


def test_misclassified_cards_show_both_overlays_with_labels(rendered):
    _, html, _ = rendered
    assert html.count("why predicted ") == len(NASTY_CLASSES)
    assert html.count("evidence for true class ") == len(NASTY_CLASSES)


def test_urls_are_relative_and_point_to_existing_files(rendered):
    out, _, parsed = rendered
    urls = [a[k] for _, a in parsed.elements for k in ("src", "href") if k in a]
    assert urls
    for url in urls:
        assert not re.match(r"^([a-z][a-z0-9+.-]*:|/|\\)", url, re.IGNORECASE), url
        if not url.startswith("#"):
            assert (out / unquote(url)).is_file(), url


def test_css_is_inlined_with_print_rules(rendered):
    _, html, parsed = rendered
    assert not [a for t, a in parsed.elements if t == "link"]
    assert "<script" not in html
    for rule in ("@page", "size: A4", "counter(page)", "break-before: page", "break-inside: avoid"):
        assert rule in parsed.style


def test_every_heatmap_grid_has_the_normalisation_note(rendered):
    _, html, _ = rendered
    galleries = 2 * len(NASTY_CLASSES)
    assert html.count("colours are not comparable across images") == galleries + 1 + 1  # + probes + mean_cams


def test_checkpoint_run_says_so_instead_of_curves(tmp_path):
    html, parsed = _render(tmp_path, training=False, figures=("montage", "confusion_matrix"))
    assert "loaded from the checkpoint" in html
    assert "/models/&lt;b&gt;best&lt;/b&gt;.pt" in html
    assert not [a for t, a in parsed.elements if t == "img" and "training_curves" in a["src"]]
    assert 'id="audit-checks"' not in html


def test_no_cam_run_shows_thumbnails_only(tmp_path):
    html, parsed = _render(tmp_path, cams=False, probes=False)
    images = [a["src"] for t, a in parsed.elements if t == "img"]
    assert any(src.startswith("assets/img-") for src in images)
    assert not any("cam-" in src for src in images)
    assert html.count("colours are not comparable") == 1  # the mean_cams figure only
    assert 'id="probes"' not in html


def test_missing_thumbnail_and_empty_sections_render(tmp_path):
    report = make_report(tmp_path, probes=False, figures=())
    first = report.classes[0]
    blank = dataclasses.replace(first.top[0], thumbnail=None, cam=None, cam_true=None)
    report = dataclasses.replace(
        report,
        classes=(dataclasses.replace(first, top=(blank,), bottom=()), *report.classes[1:]),
        findings=(),
        caveats=(),
        top_confusions=(),
    )
    html = render_html(report, tmp_path).read_text("utf-8")
    assert "no image" in html and "No test images of this class." in html and "None recorded." in html


def test_unknown_figures_go_to_audit_checks(tmp_path):
    report = make_report(tmp_path, figures=("montage", "label_issues"))
    html = render_html(report, tmp_path).read_text("utf-8")
    assert 'id="audit-checks"' in html and "Label issues" in html


def test_absolute_asset_path_is_refused(tmp_path):
    report = make_report(tmp_path, figures=())
    report = dataclasses.replace(report, figures={"montage": str(tmp_path / "x.png")})
    with pytest.raises(ValueError, match="relative"):
        render_html(report, tmp_path)


@pytest.mark.parametrize("path", ["/etc/x.png", "http://example.com/a.png", "file:///a.png", "../a.png", "C:/a.png"])
def test_asset_url_rejects_non_relative(path):
    with pytest.raises(ValueError):
        formatters.asset_url(path)


def test_formatters():
    assert formatters.asset_url("assets/a b#1.jpg") == "assets/a%20b%231.jpg"
    assert formatters.fmt_percent(0.97312) == "97.3%"
    assert formatters.fmt_percent(None) == formatters.DASH
    assert formatters.fmt_percent(float("nan")) == formatters.DASH
    assert formatters.fmt_score(0.97312) == "0.973" and formatters.fmt_score(1e-6) == "<0.001"
    assert formatters.fmt_score(0.0) == "0.000"
    assert formatters.fmt_seconds(4.23) == "4.2 s" and formatters.fmt_seconds(125) == "2 min 05 s"
    assert formatters.fmt_seconds(4000) == "1 h 06 min"
    assert formatters.fmt_count(12345) == "12,345"
    assert formatters.fmt_plural(1, "class", "classes") == "1 class" and formatters.fmt_plural(3, "image") == "3 images"
    assert formatters.fmt_datetime("2025-11-28T10:55:00+00:00") == "2025-11-28 10:55 UTC"
    assert formatters.fmt_datetime("yesterday") == "yesterday"


def test_templates_dir_finds_the_source_tree():
    assert templates_dir() == REPO / "templates"


def test_templates_dir_finds_templates_in_an_installed_layout(tmp_path):
    """A wheel holds the templates as ``reportgen/_templates`` (pyproject ``force-include``)."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "reportgen", site / "reportgen", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "templates", site / "reportgen" / "_templates")
    code = "from reportgen.render.html import templates_dir; print(templates_dir())"
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == site / "reportgen" / "_templates"


@pytest.mark.skipif(shutil.which("pdfinfo") is None or shutil.which("pdftoppm") is None, reason="poppler not installed")
def test_pdf_renders_with_a_page_per_class(rendered):
    from reportgen.render.pdf import render_pdf

    out, _, _ = rendered
    pdf = render_pdf(out / "report.html", out / "report.pdf")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))
    assert pages >= 5 + len(NASTY_CLASSES)  # summary, data set, training, confusion, classes, probes, checks
    subprocess.run(["pdftoppm", "-r", "30", "-png", "-f", "1", "-l", "2", str(pdf), str(out / "page")], check=True)
    assert sorted(p.name for p in out.glob("page-*.png")) == ["page-01.png", "page-02.png"]
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    if text:  # pdftotext ships with pdfinfo; the names must come out as text, not markup
        assert "<b>x</b>" in text and "Page 1 of" in text
