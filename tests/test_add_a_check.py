"""Adding a data check touches only the files ARCHITECTURE.md names: a toy check, added to a copy of the package.

The toy finder flags the class with the fewest images. The test copies ``reportgen/`` and ``templates/``,
makes exactly the edits below (each anchored on a line that must occur once), runs the real command on a
small data set with the copy, and finds the toy check's view in ``results.json`` (read back by
``Report.from_dict``) and its section, sentence and flagged class in ``report.html``. When the code moves
so that a check needs another file, an anchor stops matching or the run fails, and this test fails until
ARCHITECTURE.md and these edits say where checks go now.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_dataset

ROOT = Path(__file__).resolve().parents[1]
NEW_FILE = "reportgen/analysis/toy.py"

FINDER = '''"""Toy finder for tests/test_add_a_check.py: the class with the fewest images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Toy:
    """The smallest class and its image count."""

    class_idx: int
    count: int


def find_toy(labels: np.ndarray, *, num_classes: int) -> Toy:
    """Flag the class with the fewest images (the lowest index on a tie)."""
    counts = np.bincount(labels, minlength=num_classes)
    return Toy(int(np.argmin(counts)), int(counts.min()))
'''

# file -> (anchor, replacement) pairs; each anchor must occur exactly once in its file.
EDITS: dict[str, list[tuple[str, str]]] = {
    "reportgen/analysis/checks.py": [
        ("from reportgen.data.dataset import LoadedImages\n", "from reportgen.analysis.toy import Toy, find_toy\n{a}"),
        ("    outliers: Outliers | None = None\n", "{a}    toy: Toy | None = None\n"),
        ("    return Findings(\n", "{a}        toy=find_toy(images.labels, num_classes=num_classes),\n"),
    ],
    "reportgen/report/audit.py": [
        (
            "@dataclass(frozen=True)\nclass Audit:\n",
            '@dataclass(frozen=True)\nclass ToyCheck:\n    """The smallest class."""\n\n'
            "    class_name: str\n    count: int\n    rule: str\n\n\n{a}",
        ),
        ("    health: HealthCheck | None = None\n", "{a}    toy: ToyCheck | None = None\n"),
    ],
    "reportgen/assemble/audit.py": [
        (
            "def build_audit(\n",
            "def toy_view(toy, class_names):\n"
            '    """The toy check\'s view."""\n'
            "    from reportgen.report.audit import ToyCheck\n"
            "    from reportgen.narrative.audit import toy_rule\n\n"
            "    return ToyCheck(class_names[toy.class_idx], toy.count, toy_rule(toy.count))\n\n\n{a}",
        ),
        (
            "        not_run=not_run,\n    )\n",
            "        toy=None if findings.toy is None else toy_view(findings.toy, names),\n{a}",
        ),
    ],
    "reportgen/narrative/audit.py": [
        (
            "from __future__ import annotations\n",
            "{a}\n\ndef toy_rule(count: int) -> str:\n"
            '    """The toy check\'s sentence."""\n'
            '    return f"The toy check flags the class with the fewest images ({count})."\n',
        ),
    ],
    "reportgen/render/structure.py": [
        (
            '    ("audit-health", "Image health", ("health",), "image-health check", ()),\n',
            '{a}    ("audit-toy", "Toy check", ("toy",), "toy check", ()),\n',
        ),
    ],
    "templates/_audit.html": [
        (
            "{% macro health(layout) %}\n",
            '{% macro toy(layout) %}\n  <p class="rule toy-rule">{{ report.audit.toy.rule }}</p>\n'
            '  <p>Flagged: <span class="chip toy-class">{{ report.audit.toy.class_name }}</span></p>\n'
            "{% endmacro %}\n\n{a}",
        ),
    ],
}


def _documented_files() -> set[str]:
    """The files ARCHITECTURE.md's "Adding a data check" list names, with ``<check>`` as ``toy``."""
    text = (ROOT / "ARCHITECTURE.md").read_text("utf-8")
    block = text.split("<!-- add-a-check files: the test reads this list -->")[1]
    block = block.split("<!-- end add-a-check files -->")[0]
    return {name.replace("<check>", "toy") for name in re.findall(r"^- `([^`]+)`", block, flags=re.M)}


def _apply(copy: Path) -> None:
    (copy / NEW_FILE).write_text(FINDER, "utf-8")
    for rel, edits in EDITS.items():
        path = copy / rel
        text = path.read_text("utf-8")
        for anchor, replacement in edits:
            assert text.count(anchor) == 1, f"{rel}: anchor {anchor!r} occurs {text.count(anchor)} times"
            text = text.replace(anchor, replacement.replace("{a}", anchor))
        path.write_text(text, "utf-8")


def test_the_edits_stay_inside_the_documented_files() -> None:
    assert {NEW_FILE, *EDITS} == _documented_files()


@pytest.mark.e2e
def test_a_toy_check_added_in_the_documented_files_reaches_json_and_html(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "reportgen", copy / "reportgen", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "templates", copy / "templates")
    _apply(copy)
    data = make_dataset(tmp_path / "data", per_class=6)
    (data / "blue" / "img_05.png").unlink()  # blue becomes the smallest class
    out = tmp_path / "out"
    command = [sys.executable, "-m", "reportgen", "run", str(data), "--out", str(out)]
    command += ["--epochs", "0", "--no-cam", "--no-pdf", "-q"]
    done = subprocess.run(command, cwd=copy, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text("utf-8"))
    assert results["audit"]["toy"] == {
        "class_name": "blue",
        "count": 5,
        "rule": "The toy check flags the class with the fewest images (5).",
    }
    read_back = "import json, sys; from reportgen.report import Report; "
    read_back += "r = Report.from_dict(json.load(open(sys.argv[1]))); print(type(r.audit.toy).__name__)"
    check = subprocess.run(
        [sys.executable, "-c", read_back, str(out / "results.json")], cwd=copy, capture_output=True, text=True
    )
    assert check.stdout.strip() == "ToyCheck", check.stderr[-2000:]
    html = (out / "report.html").read_text("utf-8")
    assert 'id="audit-toy"' in html and "Toy check" in html
    assert "The toy check flags the class with the fewest images (5)." in html
    assert re.search(r'class="chip toy-class">blue<', html)
