"""report.html with --single-file: every picture embedded, so the page works when copied alone (checked in Chromium).

Thumbnails open their larger version over the page (a CSS ``:target`` view), in both modes.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from report_factory import make_report

from reportgen.render.assets import larger_path
from reportgen.render.html import print_page, render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
URLS = re.compile(r'\b(src|href)="([^"]*)"')
FILES = ("assets/", "figures/")

# Appended to the copied page: once every image has loaded or failed, lists those that failed, then opens the
# first zoom view from far down the page and writes what it looks like into the DOM.
CHECKER = """<script>
window.addEventListener("load", function () {
  var images = Array.from(document.images);
  var result = {images: images.length, broken: images.filter(function (i) {
    return !i.complete || i.naturalWidth === 0; }).map(function (i) { return i.alt; })};
  var view = document.querySelector(".zoom-view");
  window.scrollTo(0, 1500);
  var before = window.scrollY;
  if (view) location.hash = view.id;
  setTimeout(function () {
    if (view) {
      var picture = view.querySelector("img"), box = picture.getBoundingClientRect();
      result.zoom = {position: getComputedStyle(view).position, width: box.width, natural: picture.naturalWidth,
                     scrolled: window.scrollY - before};
    }
    var out = document.createElement("pre");
    out.id = "checker-result";
    out.textContent = JSON.stringify(result);
    document.body.appendChild(out);
  }, 300);
});
</script>"""


def _report(out: Path, *, larger: bool = True):
    report = make_report(out, audit=True, side=32)
    if larger:  # as gallery.AssetWriter does: a larger version beside every thumbnail
        for thumbnail in out.glob("assets/*.jpg"):
            target = out / larger_path(f"assets/{thumbnail.name}")
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(thumbnail.read_bytes() + b"larger")  # JPEG decoders ignore bytes after the end
    return report


def _urls(page: str) -> list[tuple[str, str]]:
    return [(kind, html.unescape(url)) for kind, url in URLS.findall(page)]


def test_single_file_page_points_at_no_file_beside_it(tmp_path: Path) -> None:
    page = render_html(_report(tmp_path), tmp_path, single_file=True).read_text("utf-8")
    urls = _urls(page)
    assert not [url for _, url in urls if url.startswith(FILES)]
    sources = [url for kind, url in urls if kind == "src"]
    embedded = ("data:image/jpeg;base64,", "data:image/png;base64,")
    assert len(sources) > 50 and all(url.startswith(embedded) for url in sources)


def test_embedded_bytes_are_the_files(tmp_path: Path) -> None:
    report = _report(tmp_path)
    page = render_html(report, tmp_path, single_file=True).read_text("utf-8")
    thumbnail = report.classes[0].top[0].thumbnail
    for path in (thumbnail, larger_path(thumbnail), report.figures["montage"]):
        assert base64.b64encode((tmp_path / path).read_bytes()).decode() in page, path


def test_thumbnails_open_their_larger_version(tmp_path: Path) -> None:
    report = _report(tmp_path)
    page = render_html(report, tmp_path).read_text("utf-8")
    thumbnail = report.classes[0].top[0].thumbnail
    match = re.search(rf'<a class="zoom" href="#(zoom-\d+)"><div class="frame"><img src="{thumbnail}"', page)
    assert match, "the thumbnail links to its zoom view"
    assert f'<a class="zoom-view" id="{match[1]}" href="#_"><img src="{larger_path(thumbnail)}"' in page
    zooms = page.count('class="zoom-view"')
    assert zooms > 50 and len(set(re.findall(r'id="(zoom-\d+)"', page))) == zooms  # unique ids


def test_without_a_larger_version_the_view_shows_the_thumbnail(tmp_path: Path) -> None:
    report = _report(tmp_path, larger=False)
    page = render_html(report, tmp_path).read_text("utf-8")
    thumbnail = report.classes[0].top[0].thumbnail
    assert re.search(rf'<a class="zoom-view" id="zoom-\d+" href="#_"><img src="{thumbnail}"', page)


def test_the_pdf_page_has_thumbnails_by_path_and_no_zoom_views(tmp_path: Path) -> None:
    report = _report(tmp_path)
    page = print_page(report, tmp_path)
    assert "zoom" not in re.sub(r"<style>.*?</style>", "", page, flags=re.DOTALL)
    sources = [url for kind, url in _urls(page) if kind == "src"]
    assert sources and all(url.startswith(FILES) and "/larger/" not in url for url in sources)


def _load_alone(page: Path, folder: Path) -> dict[str, Any]:
    """Copy ``page`` alone into the empty ``folder``, load it in headless Chromium, return what CHECKER saw."""
    folder.mkdir()
    copy = folder / "report.html"
    copy.write_text(page.read_text("utf-8").replace("</body>", CHECKER + "</body>"), encoding="utf-8")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--user-data-dir={folder.parent / (folder.name + '-profile')}",
        "--virtual-time-budget=10000",  # let the checker's timer run before the DOM is dumped
        "--dump-dom",
        copy.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="checker-result">(.*?)</pre>', dom, re.DOTALL)
    assert found, f"the checker did not run; Chromium printed {dom[:300]!r}"
    return json.loads(html.unescape(found[1]))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian: apt-get install chromium)")
def test_single_file_report_renders_completely_in_chromium_when_copied_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = _report(out)
    seen = _load_alone(render_html(report, out, single_file=True), tmp_path / "alone")
    assert seen["images"] > 50 and seen["broken"] == []
    zoom = seen["zoom"]  # the first thumbnail's larger version, over the page, without scrolling it
    assert zoom["position"] == "fixed" and zoom["natural"] == 32 and zoom["width"] > 200 and zoom["scrolled"] == 0
    # the check can fail: the page with pictures by path, copied alone, shows none
    by_path = _load_alone(render_html(report, out), tmp_path / "alone-by-path")
    assert by_path["images"] == seen["images"] and len(by_path["broken"]) == by_path["images"]
