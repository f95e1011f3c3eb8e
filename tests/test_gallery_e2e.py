"""Issue 10's done-when test: a deliberately mislabelled photo that lands in a gallery is badged and named.

Real photos of ``examples/clothing-mini`` and the real default pipeline (one epoch, no PDF): one clear photo of
shoes is filed under hat, under a name that the run's seeded split puts into the test split, so the hat
gallery shows it. Its card must carry the label check's badge with the suggested class, and the hat paragraph
must name the file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.config import RunConfig
from reportgen.data.splits import split_dataset

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "clothing-mini"
CLASSES = ("hat", "shoes", "t-shirt")  # folder (label) order
PER_CLASS = 15
MOVED = "shoes/eb1677ad-53da-4b3f-bced-e5c01a7e64bf.jpg"  # one high-heeled shoe, whole, side on
INTO = "hat"
LABEL_BADGES = ("label error? likely shoes", "label worth a look: shoes?")


def _test_slot(data: Path) -> int:
    """A position, among ``INTO``'s files in name order, that the run's default split puts into the test split."""
    counts = [PER_CLASS + (name == INTO) for name in CLASSES]
    labels = np.repeat(np.arange(len(CLASSES)), counts)
    config = RunConfig(data_dir=data, out_dir=data.parent / "out")
    splits = split_dataset(labels, CLASSES, config.split, config.seed, data)
    members = np.flatnonzero(labels == CLASSES.index(INTO))
    return int(np.flatnonzero(splits[members] == "test")[0])


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The run's output folder and the planted file's path relative to the data set."""
    data = tmp_path_factory.mktemp("planted") / "clothes"
    slot = _test_slot(data)
    for name in CLASSES:  # files renamed to their rank, so the planted one can take the test slot
        photos = sorted(p for p in (EXAMPLE / name).iterdir() if p.suffix == ".jpg" and p.name != Path(MOVED).name)
        slots = [k for k in range(PER_CLASS + 1) if k != (slot if name == INTO else PER_CLASS)]
        (data / name).mkdir(parents=True)
        for k, photo in zip(slots, photos[:PER_CLASS], strict=True):
            shutil.copy(photo, data / name / f"{k:03d}.jpg")
    planted = f"{INTO}/{slot:03d}.jpg"
    shutil.copy(EXAMPLE / MOVED, data / planted)
    out = data.parent / "out"
    result = CliRunner().invoke(
        main, ["run", str(data), "--out", str(out), "--epochs", "1", "--no-pdf", "-q"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return out, planted


@pytest.mark.e2e
def test_the_mislabelled_photo_is_in_the_gallery_with_the_label_checks_flag(planted: tuple[Path, str]) -> None:
    out, path = planted
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    hat = next(s for s in results["classes"] if s["class_name"] == INTO)
    shown = {g["rel_path"]: g for g in (*hat["top"], *hat["bottom"])}
    assert path in shown, f"{path} is not in the {INTO} galleries: {sorted(shown)}"
    assert len(shown) == len(hat["top"]) + len(hat["bottom"])  # no image twice
    flags = [f for f in shown[path]["flags"] if f["kind"] in ("label_error", "label_review")]
    assert flags and flags[0]["detail"] == "shoes", shown[path]["flags"]
    assert any(path in sentence for sentence in hat["narrative"]), hat["narrative"]
    assert shown[path]["true_score"] == shown[path]["score"]


@pytest.mark.e2e
def test_its_card_carries_the_badge_and_the_class_text_names_it(planted: tuple[Path, str]) -> None:
    out, path = planted
    html = (out / "report.html").read_text(encoding="utf-8")
    cards = [c[: c.index("</article>")] for c in html.split('<article class="card gallery-card ')[1:]]
    card = next(c for c in cards if f'<p class="path" title="{path}">' in c)
    assert any(badge in card for badge in LABEL_BADGES), card
    hat_chapter = html[html.index("<h2>hat</h2>") :]
    paragraph = hat_chapter[hat_chapter.index('<p class="narrative">') :]
    assert path in paragraph[: paragraph.index("</p>")]
