"""The report model: results.json is Report.to_dict(), read back by Report.from_dict(); no torch to read it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from report_factory import make_report

from reportgen.report import DatasetMap, ImageEntry, Report
from reportgen.serialize import SchemaError


def _full_report(tmp_path: Path) -> Report:
    report = make_report(tmp_path, audit=True, changes=True, gates=True)
    images = (ImageEntry("a/1.jpg", "0" * 64, "a", "train", 40, 30), ImageEntry("b/2.jpg", "1" * 64, "b", "test", 8, 8))
    dataset_map = DatasetMap("tsne", 2000, True)
    return Report(**{**vars(report), "images": images, "training_start_val_loss": 1.5, "dataset_map": dataset_map})


def test_round_trip_through_json_gives_the_same_report(tmp_path: Path) -> None:
    report = _full_report(tmp_path)
    text = json.dumps(report.to_dict(), allow_nan=False)
    back = Report.from_dict(json.loads(text))
    assert back == report
    assert back.to_dict() == report.to_dict()


def test_every_block_is_present_in_the_round_trip(tmp_path: Path) -> None:
    data = _full_report(tmp_path).to_dict()
    assert data["audit"]["label_issues"]["suspects"] and data["changes"] and data["gates"] and data["images"]
    back = Report.from_dict(data)
    assert back.audit is not None and back.audit.label_issues is not None
    assert isinstance(back.audit.label_issues.suspects, tuple)
    assert back.images[0].width == 40


def test_a_file_of_another_layout_names_the_field(tmp_path: Path) -> None:
    data = _full_report(tmp_path).to_dict()
    data["metrics"]["accuracy"] = "high"
    with pytest.raises(SchemaError, match=r"metrics\.accuracy"):
        Report.from_dict(data)
    del data["metrics"]
    with pytest.raises(SchemaError, match="missing key 'metrics'"):
        Report.from_dict(data)


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    data = {**_full_report(tmp_path).to_dict(), "surprise": 1}
    with pytest.raises(SchemaError, match="unknown key 'surprise'"):
        Report.from_dict(data)


def test_the_report_model_narrative_and_html_renderer_load_no_torch() -> None:
    code = (
        "import sys, reportgen.report, reportgen.narrative, reportgen.render.html, reportgen.build; "
        "print(sorted(m for m in ('torch', 'torchvision', 'timm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
