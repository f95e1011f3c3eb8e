"""The report model: results.json is Report.to_dict(), read back by Report.from_dict(); no torch to read it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from report_factory import make_report

from reportgen.assemble.report import image_flags, with_image_flags
from reportgen.report import DatasetMap, ImageEntry, ImageFlag, Report
from reportgen.report.audit import Audit, AuditImage, DuplicateCheck, HealthCheck, HealthView, PairView
from reportgen.report.serialize import SchemaError


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


def test_gallery_flags_and_headings_survive_the_round_trip(tmp_path: Path) -> None:
    data = _full_report(tmp_path).to_dict()
    image = data["classes"][0]["bottom"][0]
    assert image["flags"][0] == {"kind": "label_error", "detail": image["predicted_class"], "value": 0.93, "other": ""}
    assert image["true_score"] == image["score"]
    assert data["classes"][0]["top_title"].startswith("Highest-scoring test images of")
    assert data["classes"][0]["complete"] is False


def test_gallery_images_are_cross_referenced_with_the_audit_by_path(tmp_path: Path) -> None:
    report = make_report(tmp_path, audit=True)
    audit = report.audit
    suspect, leaked, dark = audit.label_issues.suspects[0], audit.duplicates.pairs[1].b, audit.health.issues[1]
    review, outlier = audit.label_issues.worth_a_look[0], audit.outliers.outliers[1]
    section = report.classes[0]
    shown = tuple(
        dataclasses.replace(section.top[0], rel_path=path, flags=())
        for path in (suspect.image.rel_path, leaked.rel_path, dark.image.rel_path, review.image.rel_path)
    )
    shown += (dataclasses.replace(section.top[0], rel_path=outlier.image.rel_path, flags=()),)
    plain = dataclasses.replace(section.top[0], rel_path="no/finding.jpg", flags=())
    report = dataclasses.replace(report, classes=(dataclasses.replace(section, top=shown, bottom=(plain,)),))
    flagged = with_image_flags(report).classes[0]
    by_path = {g.rel_path: g.flags for g in flagged.top}
    assert by_path[suspect.image.rel_path] == (
        ImageFlag("label_error", suspect.suggested_label, suspect.suggested_prob),
    )
    pair = audit.duplicates.pairs[1]
    assert by_path[leaked.rel_path] == (ImageFlag("leak", pair.a.split, pair.similarity, pair.a.rel_path),)
    assert by_path[dark.image.rel_path] == (ImageFlag("health", "mean luminance 0.03 < 0.08 (very dark)"),)
    assert by_path[review.image.rel_path][0].kind == "label_review"
    assert by_path[outlier.image.rel_path] == (ImageFlag("outlier", outlier.nearest_class, outlier.z),)
    assert flagged.bottom[0].flags == ()


def test_image_flags_come_in_kind_order_once_per_finding() -> None:
    a, b, c = (AuditImage(i, f"k/{i}.jpg", "k", "test") for i in range(3))
    other = AuditImage(9, "j/9.jpg", "j", "train")
    audit = Audit(
        duplicates=DuplicateCheck(
            None, "", 1, 2, 3, 1, 1, {}, 4, 2,
            (
                PairView(a, other, "near", 0.95, True, True),  # another label (and a leak): the label comes first
                PairView(a, b, "exact", None, False, False),
                PairView(a, c, "exact", None, False, False),  # the same kind and detail again: said once
            ),
            3, False,
        ),
        health=HealthCheck(1, {}, {}, True, {}, (HealthView(a, ("dark",), ("dark", "very")),), 1),
    )  # fmt: skip
    flags = image_flags(audit)[a.rel_path]
    assert [f.kind for f in flags] == ["copy_other_class", "copy", "health"]
    assert flags[0] == ImageFlag("copy_other_class", "j", 0.95, "j/9.jpg") and flags[1].other == "k/1.jpg"
    assert flags[2].detail == "dark; very"
    assert image_flags(audit)[other.rel_path] == (ImageFlag("copy_other_class", "k", 0.95, "k/0.jpg"),)


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
        "import sys, reportgen.report, reportgen.narrative, reportgen.render.html, reportgen.assemble.report; "
        "print(sorted(m for m in ('torch', 'torchvision', 'timm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
