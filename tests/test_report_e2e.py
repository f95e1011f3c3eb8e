"""The whole report on real photos with the real pretrained default, checked the way a reader sees it.

The HTML is opened in headless Chromium (screenshot not blank, every image loads), the PDF is
rasterised with pdftoppm, and results.json is checked to hold what the pages show.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import shared_data, subset
from PIL import Image

from reportgen.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ODD_CLASS = "<b>sushi & co"  # a class folder name that must reach the HTML as text
PROBE_CHECK = """
<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.getAttribute("src"));
  const out = document.createElement("pre");
  out.id = "load-check";
  out.textContent = JSON.stringify({total: imgs.length, broken: broken});
  document.body.appendChild(out);
});
</script>
"""


@pytest.fixture(scope="module")
def food_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = subset(shared_data("food101-pss"), tmp_path_factory.mktemp("data") / "food", per_class=20)
    (data / "sushi").rename(data / ODD_CLASS)
    probe = next(p for p in sorted((data / "pizza").iterdir()) if p.suffix.lower() == ".jpg")
    out = tmp_path_factory.mktemp("runs") / "report"
    result = CliRunner().invoke(
        main,
        ["run", str(data), "--out", str(out), "--epochs", "2", "--probe", str(probe), "-q"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.e2e
def test_report_files_and_json_hold_what_the_pages_show(food_report: Path) -> None:
    results = json.loads((food_report / "results.json").read_text())
    assert (food_report / "report.html").is_file() and (food_report / "report.pdf").is_file()
    assert (food_report / "report.pdf").stat().st_size < 5_000_000
    assert set(results["figures"]) >= {"montage", "class_histogram", "training_curves", "confusion_matrix"}
    for rel in results["figures"].values():
        assert (food_report / rel).is_file(), rel
    assert 1 <= len(results["findings"]) <= 5 and results["caveats"]  # findings that could have been false only
    for section in results["classes"]:
        assert section["narrative"], section["class_name"]
        for image in (*section["top"], *section["bottom"]):
            assert (food_report / image["thumbnail"]).is_file() and (food_report / image["cam"]).is_file()
            assert image["thumbnail"].endswith(".jpg") and image["cam"].endswith(".jpg")
            assert (image["cam_true"] is None) == image["correct"]
    audit = results["audit"]
    assert {"label_issues", "duplicates", "calibration", "shortcuts", "health"} <= set(audit)
    assert 0 <= audit["calibration"]["ece"] <= 1 and audit["calibration"]["text"]
    assert len(audit["shortcuts"]["classes"]) == 3
    explained = results["explanation_check"]  # every run scores its maps against both baselines
    assert explained["verdict"] in ("faithful", "weak", "not_informative") and explained["maps"]["n"] > 0
    assert explained["random"]["n"] == explained["blob"]["n"] == explained["maps"]["n"]
    assert explained["sanity"] is not None and results["explanation_verdict"]
    assert results["probes"] and results["probes"][0]["cam"]
    assert len(results["images"]) == 60 and all(len(img["sha256"]) == 64 for img in results["images"])


@pytest.mark.e2e
def test_class_names_reach_the_html_escaped(food_report: Path) -> None:
    html = (food_report / "report.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;sushi &amp; co" in html
    assert "<b>sushi" not in html
    assert not re.search(r"""(src|href)=["'](https?:|//)""", html), "the report must not load anything remote"


@pytest.mark.e2e
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_html_in_headless_chromium_loads_every_image_and_is_not_blank(food_report: Path, tmp_path: Path) -> None:
    html = (food_report / "report.html").read_text(encoding="utf-8")
    check = food_report / "_load_check.html"  # beside the report, so relative asset paths resolve the same
    check.write_text(html.replace("</body>", PROBE_CHECK + "</body>"), encoding="utf-8")
    try:
        dom = subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, "--virtual-time-budget=10000", "--dump-dom", check.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    finally:
        check.unlink()
    found = re.search(r'<pre id="load-check">(.*?)</pre>', dom, re.S)
    assert found, "the load check did not run"
    loads = json.loads(found.group(1).replace("&quot;", '"'))
    assert loads["total"] > 40 and loads["broken"] == []
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            (food_report / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 20 and (pixels < 200).mean() > 0.05, "the screenshot looks blank"


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils is not installed")
def test_pdf_pages_rasterise_with_one_section_per_class(food_report: Path, tmp_path: Path) -> None:
    pdf = food_report / "report.pdf"
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3 + 3  # summary, data set, training/confusion ... and a page per class at least
    for page in pages:
        pixels = np.asarray(Image.open(page).convert("L"), dtype=np.float32)
        assert pixels.std() > 5, f"{page.name} is blank"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for name in ("pizza", "steak", ODD_CLASS):
        assert name in text
