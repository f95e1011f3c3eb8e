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

from reportgen.narrative import format as formatters
from reportgen.render.html import print_page, render_html, templates_dir

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
    for text in ("Key findings", "Highest-scoring test images of", "Lowest-scoring test images of", "Skipped files"):
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
    _, html, parsed = rendered
    wrong, correct = parsed.with_class("article", "wrong"), parsed.with_class("article", "correct")
    assert len(wrong) == len(NASTY_CLASSES)  # the first bottom image of each class
    assert len(correct) == len(NASTY_CLASSES) * (2 + 3) - len(wrong)
    assert len(parsed.with_class("span", "pred")) == len(wrong)  # only a mistake names the predicted class
    assert len(parsed.with_class("span", "score-true")) == len(wrong) + len(correct)
    cards = [c[: c.index("</article>")] for c in html.split('<article class="card gallery-card ')[1:]]
    in_tiles = [c.startswith("wrong") for c in cards if "</div>" not in c[c.rindex("</figure>") : c.index("facts")]]
    assert in_tiles == [True] * len(wrong)  # a mistake's words sit in the tile grid, beside its third tile
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
    _, html, parsed = rendered
    classes = len(NASTY_CLASSES)  # one colour bar with the note above each class's galleries
    assert html.count("colours are not comparable across images") == classes + 1 + 1  # + probes + mean_cams
    assert len(parsed.with_class("div", "colour-bar")) == classes
    assert html.count("red = strongest evidence for the named class, within this image") == classes
    assert "linear-gradient(to right, #00007f" in parsed.style


def test_cards_show_the_true_class_score_and_the_predicted_class_with_its_score(rendered):
    _, html, _ = rendered
    # the first bottom image of class "plain" is wrong: score 0.1 for plain, predicted <b>x</b> with 0.9
    assert (
        'plain 0.100</span><br><span class="pred wrong" title="predicted class and its score">'
        "predicted &lt;b&gt;x&lt;/b&gt; 0.900</span>" in html
    )
    assert 'plain 0.990</span> <span class="badge correct">correct</span>' in html


def test_flagged_gallery_images_carry_badges(rendered):
    _, html, parsed = rendered
    assert html.count("label error? likely ") == len(NASTY_CLASSES)
    assert html.count("copy in train split: leak") == 1
    flags = parsed.with_class("p", "flags")
    assert len(flags) == len(NASTY_CLASSES)


def test_photos_are_letterboxed_in_fixed_boxes(rendered):
    _, _, parsed = rendered
    css = re.sub(r"\s+", " ", parsed.style)
    assert ".tile .frame { height: 26mm;" in css and "object-fit: contain" in css
    assert "aspect-ratio: 1 / 1" in css  # on screen the box is square at any width
    zoom_views = len(parsed.with_class("a", "zoom-view"))  # the larger pictures a thumbnail opens: unframed
    images = len([a for t, a in parsed.elements if t == "img"])
    assert len(parsed.with_class("div", "frame")) == images - 6 - zoom_views


def test_headings_come_from_the_report_model_not_the_template(tmp_path):
    report = make_report(tmp_path, probes=False, figures=())
    first = report.classes[0]
    words = dataclasses.replace(first, top_title="TOP <title>", top_lead="top lead", bottom_title="BOTTOM")
    html = render_html(dataclasses.replace(report, classes=(words, *report.classes[1:])), tmp_path).read_text("utf-8")
    assert "<h4>TOP &lt;title&gt;</h4>" in html and "top lead" in html and "<h4>BOTTOM</h4>" in html
    assert "The 2 test images" not in html and "Most activating" not in html


def test_a_class_shown_whole_has_one_gallery(tmp_path):
    report = make_report(tmp_path, probes=False, figures=())
    first = report.classes[0]
    whole = dataclasses.replace(
        first, top=(*first.top, *first.bottom), bottom=(), complete=True, top_title="All 5", bottom_title="unused"
    )
    html = render_html(dataclasses.replace(report, classes=(whole, *report.classes[1:])), tmp_path).read_text("utf-8")
    assert 'id="class-1-top"' in html and 'id="class-1-bottom"' not in html and "unused" not in html
    assert 'id="class-2-bottom"' in html


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
    assert "no image" in html and "None recorded." in html


def test_unknown_figures_go_to_audit_checks(tmp_path):
    report = make_report(tmp_path, figures=("montage", "label_issues"))
    html = render_html(report, tmp_path).read_text("utf-8")
    assert 'id="audit-checks"' in html and "Label issues" in html


def test_the_data_set_chapter_shows_the_map_or_says_why_there_is_none(tmp_path):
    from reportgen.report import DatasetMap

    report = make_report(tmp_path, figures=("montage", "class_histogram", "dataset_map"))
    html = render_html(dataclasses.replace(report, dataset_map=DatasetMap("tsne", 90, False)), tmp_path).read_text()
    dataset = html[html.index('id="dataset"') : html.index('id="training"')]
    assert "figures/dataset_map.png" in dataset and "axes mean nothing" in dataset
    assert "No map of the data set" not in html
    why = DatasetMap("", 0, False, "the backbone has no pretrained weights (--weights <none>)")
    report = make_report(tmp_path / "none", figures=("montage", "class_histogram"))
    html = render_html(dataclasses.replace(report, dataset_map=why), tmp_path / "none").read_text()
    dataset = html[html.index('id="dataset"') : html.index('id="training"')]
    assert "No map of the data set: the backbone has no pretrained weights (--weights &lt;none&gt;)." in dataset


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
    pdf = render_pdf(print_page(make_report(out), out), out, out / "report.pdf")  # the same files again
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))
    assert pages >= 5 + len(NASTY_CLASSES)  # summary, data set, training, confusion, classes, probes, checks
    subprocess.run(["pdftoppm", "-r", "30", "-png", "-f", "1", "-l", "2", str(pdf), str(out / "page")], check=True)
    assert sorted(p.name for p in out.glob("page-*.png")) == ["page-01.png", "page-02.png"]
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    if text:  # pdftotext ships with pdfinfo; the names must come out as text, not markup
        assert "<b>x</b>" in text and "Page 1 of" in text


# ---------- Data set audit, changes since the last audit, quality gates, configuration ----------


@pytest.fixture
def full(tmp_path: Path) -> tuple[Path, str, _Elements]:
    html, parsed = _render(tmp_path, audit=True, changes=True, gates=True)
    return tmp_path, html, parsed


def _chapter(html: str, section_id: str) -> str:
    """The HTML of one top-level chapter: from its opening tag to the next chapter's."""
    start = html.index(f'<section id="{section_id}"')
    end = html.find('class="chapter', html.index(">", start))
    return html[start : end if end > 0 else len(html)]


def test_audit_chapter_has_every_check_with_its_numbers(full):
    _, html, parsed = full
    ids = [a.get("id") for _, a in parsed.elements if a.get("id")]
    subsections = [
        "audit-labels",
        "audit-outliers",
        "audit-duplicates",
        "audit-calibration",
        "audit-shortcuts",
        "audit-stamps",
    ]
    assert ids.index("confusion") < ids.index("audit") < ids.index("class-1")
    assert set(subsections) | {"audit-health"} <= set(ids)
    audit = _chapter(html, "audit")
    for text in (
        "5-fold cross-validated logistic regression",  # method text
        "3.3%",  # estimated noise rate
        "plain (5)",  # top suggested label of the first class
        "1 more suspect in <code>results.json</code>",
        "Likely wrong (5)",
        "Worth a look (3)",
        "1 more image worth a look in <code>results.json</code>",
        "about 9 of 10 images in this tier were wrong labels",  # the tiers' measured meaning
        "about 2 of 10 images in this tier were wrong labels",
        "Belongs to no class?",
        "about 7 of 10 images in this tier were planted ones",
        '<a href="suspects.csv">',
        '<a href="duplicates.csv">',
        "train-test: 1",
        "1 more pair in <code>results.json</code>",
        "across classes</span>",
        "leak: train / test",
        "0.973",  # similarity
        "0.123",  # ECE
        "The scores are over-confident",
        "62% of the evidence lies in the outer border band.",
        "bottom-right",
        "shorter side 20 px &lt; 64 (very small)",
        "very dark",
    ):
        assert text in audit, text
    assert len(parsed.with_class("article", "suspect")) == 4 + 2  # the shown ones of both tiers only
    assert len(parsed.with_class("article", "outlier")) == 2
    assert html.index('href="suspects.csv"') < html.index('id="summary"')  # linked from page 1 too
    assert len(parsed.with_class("article", "pair")) == 3
    assert len(parsed.with_class("article", "health")) == 2
    # the audit's figures moved out of the generic area into their subsections
    assert "figures/reliability.png" in audit and "figures/mean_cams.png" in audit
    assert 'id="audit-checks"' not in html


def test_changes_and_gates_chapters_and_summary(full):
    _, html, parsed = full
    summary, changes, gates = _chapter(html, "summary"), _chapter(html, "changes"), _chapter(html, "gates")
    assert "Quality gates: 1 of 3 passed" in summary and "2 gates failed" in summary
    assert parsed.with_class("div", "gates-box") and parsed.with_class("div", "failed")
    assert "recall of &lt;b&gt;x&lt;/b&gt; is 0.75, under the minimum 0.9" in summary
    assert "78.0% → 80.0%" in summary and "+2.0 pts" in summary
    for anchor in ("#audit", "#changes", "#gates", "#config"):
        assert f'href="{anchor}"' in summary
    assert "2025-11-21 10:55 UTC" in changes
    assert "2 images added, 13 removed and 1 relabelled" in changes
    assert '<td class="num delta neg">−5.0 pts</td>' in changes  # the first class's precision fell
    assert '<td class="num delta pos">+5.0 pts</td>' in changes
    assert "1 new, 2 resolved and 4 still suspected" in changes
    assert "10.0% → 20.0%" in changes  # a confusion that grew
    assert gates.count('class="badge wrong">failed') == 2 and gates.count('class="badge correct">passed') == 1
    assert "min 0.9" in gates and "max 0" in gates


def test_configuration_appendix_flattens_nested_settings(full):
    _, html, parsed = full
    ids = [a.get("id") for _, a in parsed.elements if a.get("id")]
    assert ids.index("config") == ids.index("caveats") - 1
    config = _chapter(html, "config")
    assert '<code>train.augment.flip</code></th><td class="config-value">true<' in config
    assert '<code>train.augment.scale</code></th><td class="config-value">0.9, 1.1<' in config
    assert "<code>split.val</code>" in config and "my &lt;probe&gt;.jpg" in config


def test_audit_and_changes_escape_names_and_paths(full):
    _, html, _ = full
    for section_id in ("summary", "audit", "changes", "gates", "config"):
        chapter = _chapter(html, section_id)
        assert "<b>" not in chapter and "<i>" not in chapter and "<prev>" not in chapter, section_id
        assert "odd <" not in chapter and "<co>" not in chapter and "<probe>" not in chapter, section_id
    assert "&lt;b&gt;x&lt;/b&gt;" in _chapter(html, "audit")
    assert "gone &lt;i&gt;" in _chapter(html, "changes") and "&lt;prev&gt;" in _chapter(html, "changes")


def test_full_report_stays_offline(full):
    out, html, parsed = full
    assert not re.search(r"(https?:)?//[a-z0-9]", html.split("</style>", 1)[1], re.IGNORECASE)
    assert "url(" not in parsed.style and "@import" not in parsed.style
    srcs = [a["src"] for t, a in parsed.elements if t == "img"]
    assert any(src.startswith("assets/audit-") for src in srcs)
    for src in srcs:
        assert not re.match(r"^([a-z][a-z0-9+.-]*:|/|\\)", src, re.IGNORECASE), src
        assert (out / unquote(src)).is_file(), src


def test_sections_absent_without_audit_changes_or_gates(rendered):
    _, html, parsed = rendered
    ids = {a.get("id") for _, a in parsed.elements}
    assert not {"audit", "changes", "gates"} & ids
    assert "config" in ids  # the configuration is always shown
    assert "Quality gates" not in html and "since the last audit" not in html.lower()
    assert not parsed.with_class("div", "gates-box")


def test_checks_that_did_not_run_say_why(tmp_path):
    from reportgen.report.audit import Audit

    report = make_report(tmp_path, figures=("montage", "reliability", "mean_cams", "label_issues"))
    not_run = {"label_issues": "switched off (--label-check off)", "calibration": "the test split is empty"}
    report = dataclasses.replace(report, audit=Audit(not_run={**not_run, "embeddings": "no <features>"}))
    html = render_html(report, tmp_path).read_text("utf-8")
    audit = _chapter(html, "audit")
    assert "The label check did not run: switched off (--label-check off)." in audit
    assert "The calibration check did not run: the test split is empty." in audit
    assert "The duplicate check did not run." in audit and "The image-health check did not run." in audit
    assert "Embeddings did not run: no &lt;features&gt;" in audit
    assert "figures/reliability.png" in audit  # placed even though the check itself did not run
    other = _chapter(html, "audit-checks")
    assert "Other figures" in other and "Label issues" in other and "reliability" not in other


def test_all_gates_passed_box_is_green(tmp_path):
    report = make_report(tmp_path, gates=True)
    report = dataclasses.replace(report, gates=tuple(dataclasses.replace(g, passed=True) for g in report.gates))
    html = render_html(report, tmp_path).read_text("utf-8")
    summary = _chapter(html, "summary")
    assert "Quality gates: 3 of 3 passed" in summary and 'class="gates-box passed"' in summary
    assert "failed" not in summary


def test_change_formatters_and_config_rows():
    from reportgen.render.structure import config_rows

    assert formatters.fmt_points(0.021) == "+2.1 pts" and formatters.fmt_points(-0.05) == "−5.0 pts"
    assert formatters.fmt_points(0.0001) == "±0.0 pts" and formatters.fmt_points(None) == formatters.DASH
    assert (
        formatters.fmt_signed(3) == "+3"
        and formatters.fmt_signed(-1200) == "−1,200"
        and formatters.fmt_signed(0) == "±0"
    )
    assert formatters.fmt_value(120.0) == "120" and formatters.fmt_value(0.85) == "0.85"
    assert formatters.fmt_value(None) == formatters.DASH
    assert formatters.fmt_config(True) == "true" and formatters.fmt_config([0.9, 1.1]) == "0.9, 1.1"
    assert formatters.fmt_config([]) == formatters.DASH and formatters.fmt_config(None) == formatters.DASH
    nested = {"seed": 0, "train": {"epochs": 4, "augment": {"flip": False}}, "empty": {}}
    assert config_rows(nested) == [("seed", 0), ("train.epochs", 4), ("train.augment.flip", False), ("empty", {})]


@pytest.mark.skipif(
    shutil.which("pdfinfo") is None or shutil.which("pdftotext") is None, reason="poppler not installed"
)
def test_pdf_renders_audit_changes_and_gates(full):
    from reportgen.render.pdf import render_pdf

    out, _, _ = full
    report = make_report(out, audit=True, changes=True, gates=True)  # the same files again
    pdf = render_pdf(print_page(report, out), out, out / "report.pdf")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))
    assert pages >= 9 + len(NASTY_CLASSES)  # + audit (2 pages at least), changes, gates, configuration
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
    for heading in ("Data set audit", "Suspected label errors", "Changes since the last audit", "Quality gates"):
        assert heading in text
    assert "gone <i>" in text and "train.augment.flip" in text
    # the audit chapter starts a page: its heading opens the page it is on
    page = next(p for p in text.split("\f")[1:] if "Suspected label errors" in p)  # page 1 links to it
    body = [line.strip() for line in page.splitlines() if line.strip()][1:]  # after the running header
    assert body[0] == "Data set audit"


def test_clean_audit_and_count_only_changes_render(tmp_path):
    from reportgen.report.comparison import DatasetChanges, LabelErrorChanges

    report = make_report(tmp_path, audit=True, changes=True)
    a, ch = report.audit, report.changes
    audit = dataclasses.replace(
        a,
        label_issues=dataclasses.replace(
            a.label_issues, total=0, per_class=dict.fromkeys(a.label_issues.per_class, 0), suspects=(), shown=0
        ),
        duplicates=dataclasses.replace(a.duplicates, exact=0, near=0, total=0, pairs=(), shown=0, leaks_by_splits={}),
        shortcuts=dataclasses.replace(
            a.shortcuts,
            classes=tuple(dataclasses.replace(c, flagged=False, reasons=()) for c in a.shortcuts.classes),
            flagged=(),
        ),
        stamps=dataclasses.replace(a.stamps, flagged=(), classes=()),
        health=dataclasses.replace(a.health, total=0, issues=(), shown=0, per_class={}),
    )
    rows = tuple(
        dataclasses.replace(r, added=None, removed=None, moved_in=None, moved_out=None) for r in ch.dataset.per_class
    )
    changes = dataclasses.replace(
        ch,
        dataset=DatasetChanges(False, (), (), rows, None, None, None, note="the baseline has no per-image list"),
        label_errors=LabelErrorChanges(False, "", (), (), 0, note="the baseline has no suspects list"),
        confusions_grown=(),
    )
    html = render_html(dataclasses.replace(report, audit=audit, changes=changes), tmp_path).read_text("utf-8")
    audit_html, changes_html = _chapter(html, "audit"), _chapter(html, "changes")
    assert "No image was flagged as a likely label error." in audit_html and "No copies were found." in audit_html
    assert audit_html.count("No class is flagged.") == 2 and "No image failed a health check" in audit_html
    assert "Note: the baseline has no per-image list." in changes_html and "matched by content" not in changes_html
    assert "Not compared: the baseline has no suspects list." in changes_html
    assert "No confusion between classes of both runs became more frequent." in changes_html


def test_weak_label_check_carries_its_caution(tmp_path):
    report = make_report(tmp_path, audit=True)
    assert report.audit.label_issues.caution == ""
    html = render_html(report, tmp_path).read_text("utf-8")
    assert "Look at them before relabelling" not in html
    weak = dataclasses.replace(
        report.audit.label_issues, caution="agree with only 72% <b>: Look at them before relabelling."
    )
    report = dataclasses.replace(report, audit=dataclasses.replace(report.audit, label_issues=weak))
    html = render_html(report, tmp_path).read_text("utf-8")
    assert "agree with only 72% &lt;b&gt;: Look at them before relabelling." in _chapter(html, "audit")


@pytest.mark.parametrize("verdict", ["sound", "unsound"])
def test_model_verdict_leads_page_one_and_an_unsound_model_marks_its_galleries(tmp_path, verdict):
    from reportgen.analysis.model_check import Reference, check_model
    from reportgen.assemble.report import with_class_facts
    from reportgen.model.history import TrainingHistory
    from reportgen.narrative import narrate, with_narrative

    report = make_report(tmp_path)
    val = 0.9 if verdict == "sound" else 0.3
    history = TrainingHistory(report.training, start_val_loss=0.2, start_val_accuracy=0.9)
    check = check_model(
        val_accuracy=val,
        test_accuracy=val,
        probe=Reference("linear probe", 0.85, 0.84),
        majority=Reference("majority class", 0.3, 0.3, detail=report.dataset.class_names[0]),
        history=history,
    )
    assert check.verdict == verdict
    report = with_class_facts(dataclasses.replace(report, model_check=check))
    report = with_narrative(report, narrate(report))
    html = render_html(report, tmp_path).read_text("utf-8")
    summary = html[html.index('id="summary"') : html.index('id="dataset"')]
    assert f"Model: {verdict}." in summary
    assert 'id="model-check"' in html and "linear probe on the pretrained features" in html
    assert ("These galleries describe an unsound model" in html) == (verdict == "unsound")
    if verdict == "unsound":
        assert summary.index("Model: unsound.") < summary.index("Key findings")
        assert all(s.narrative[0].startswith("The model is unsound") for s in report.classes)


def test_page_one_is_the_review_verdict_glance_findings_caveats(full):
    _, html, parsed = full
    summary = _chapter(html, "summary")
    rows = re.findall(r'<tr class="glance-(\w+)">\s*<th scope="row" class="name">(.*?)</th>', summary, re.S)
    assert [tone for tone, _ in rows] == ["warn", "warn", "bad", "warn", "warn", "warn", "warn", "warn", "warn"]
    links = [re.search(r'href="#([\w-]+)"', cell).group(1) for _, cell in rows]
    assert links[:3] == ["audit-labels", "audit-outliers", "audit-duplicates"] and links[-1] == "dataset"
    ids = {a.get("id") for _, a in parsed.elements}
    assert set(links) <= ids  # every row links to a section that exists
    assert "5 likely wrong labels, 3 worth a look" in summary and "across classes (one label is wrong)" in summary
    assert summary.index("Audit at a glance") < summary.index("Key findings") < summary.index("Main caveats")
    assert '<a href="#caveats">Caveats</a>' in summary  # one caveat: it is on page 1, the link names the list
    assert "target-counter(attr(href), page)" in parsed.style.split(".glance tbody th a::after")[1][:80]


def test_page_one_without_audit_says_it_did_not_run(rendered):
    _, html, _ = rendered
    summary = _chapter(html, "summary")
    assert "Data-set audit" in summary and "did not run (--no-audit)" in summary
    assert 'href="#audit' not in summary.split("Audit at a glance")[1].split("</table>")[0]


def test_a_class_with_one_map_is_not_measured(tmp_path):
    report = make_report(tmp_path, audit=True)
    sc = report.audit.shortcuts
    one = dataclasses.replace(sc.classes[1], n_maps=1, consistency=0.0, region="centre", measured=False)
    shortcuts = dataclasses.replace(sc, classes=(sc.classes[0], one, sc.classes[2]))
    report = dataclasses.replace(report, audit=dataclasses.replace(report.audit, shortcuts=shortcuts))
    html = render_html(report, tmp_path).read_text("utf-8")
    table = html[html.index('<table class="data shortcuts">') :]
    row = table[table.index("a&amp;b&#34;c") :].split("</tr>")[0]
    assert 'colspan="5" class="unmeasured">not measured (1 map)</td>' in row
    assert "0.00" not in row and "centre" not in row and "too few maps to flag" in row


def test_where_the_model_fails_shows_each_slice_with_its_sentence_and_mistakes(full):
    _, html, _ = full
    start = html.index('id="audit-slices"')
    section = html[start : html.find("</section>", start)]
    assert "Where the model fails" in html[start - 200 : start + 400]
    assert "1. camera = &lt;i&gt;phone_b&lt;/i&gt;" in section and "<i>phone_b</i>" not in section
    assert "37.5% wrong against 10.0% elsewhere" in section
    assert section.count('class="card slice-mistake"') == 2  # the shown ones; the third is in results.json
    assert "why predicted plain" in section and "1 more mistake" in section
    assert "feature cluster 2 of 4: images like these" in section and 'href="slices.csv"' in section
