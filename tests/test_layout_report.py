"""What the report, results.json and the CSV tables say about a given split, a manifest and metadata (no model)."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
from report_factory import make_report

from reportgen.data.dataset import SkippedFile
from reportgen.data.source import LabelDisagreement
from reportgen.model.predictions import Predictions
from reportgen.narrative.dataset import disagreement_finding, split_sentence
from reportgen.render.html import render_html
from reportgen.render.output import write_predictions_csv
from reportgen.report import DatasetSummary, ImageEntry, MetadataField, Report

NASTY = "<img src=x onerror=alert(1)>"


def summary(**fields: object) -> DatasetSummary:
    counts = {"train": {"a": 6, "b": 4}, "val": {"a": 2, "b": 1}, "test": {"a": 3, "b": 0}}
    return DatasetSummary("/data", ("a", "b"), counts, 16, (), **fields)  # type: ignore[arg-type]


def test_the_split_sentence_says_where_the_split_came_from() -> None:
    folders = summary(split_source="folders", split_folders=("train", "validation", "test"))
    assert split_sentence(folders) == (
        "Split as given by the folders train/, validation/, test/: 10 / 3 / 3 images (train / validation / test)."
    )
    manifest = summary(
        split_source="manifest", layout="manifest", manifest="labels.csv", manifest_columns=("path", "label", "split")
    )
    assert split_sentence(manifest).startswith("Split as given by the split column of labels.csv: 10 / 3 / 3 images")
    assert "Labels and metadata from labels.csv (columns path, label, split)." in split_sentence(manifest)
    carved = summary(
        split_source="folders", split_folders=("train", "test"), val_carved=True, classes_without_test=("b",)
    )
    text = split_sentence(carved)
    assert "it was carved from the training images" in text and "no image of b, so the test metrics" in text
    assert split_sentence(summary()).startswith("Split per class at random (seeded) into train / validation / test")


def test_a_disagreeing_manifest_label_is_a_finding() -> None:
    found = summary(manifest="metadata.csv", label_disagreements=(LabelDisagreement("a/1.jpg", "a", "b", 3),))
    assert disagreement_finding(found) == (
        "1 image in metadata.csv is labelled differently from its class folder (e.g. a/1.jpg: folder a, "
        "metadata.csv b); the folders' labels were audited."
    )
    assert disagreement_finding(summary()) == ""


def with_layout(report: Report) -> Report:
    """``report`` as if read from a manifest with nasty names: metadata, a disagreement, a skipped row."""
    ds = report.dataset
    names = [g.rel_path for s in report.classes for g in (*s.top, *s.bottom)]
    images = tuple(ImageEntry(p, "0" * 64, "x", "test", 4, 3, {"who <b>": NASTY, "n": 2.0}) for p in names)
    first = ds.class_names[0]
    layout = dataclasses.replace(
        ds,
        split_source="folders",
        split_folders=("train", "test"),
        manifest=f"{NASTY}.csv",
        manifest_columns=("file_name", "who <b>", "n"),
        metadata_columns=(MetadataField("who <b>", "category"), MetadataField("n", "number")),
        label_disagreements=(LabelDisagreement(names[0], first, NASTY, 7),),
        skipped=(*ds.skipped, SkippedFile(NASTY, "file not found", 9)),
    )
    layout = dataclasses.replace(layout, split_sentence=split_sentence(layout))
    return dataclasses.replace(report, dataset=layout, images=images)


def test_the_report_shows_split_source_metadata_and_disagreements_escaped(tmp_path: Path) -> None:
    report = with_layout(make_report(tmp_path))
    html = render_html(report, tmp_path, single_file=False).read_text("utf-8").split("</style>", 1)[1]
    assert NASTY not in html and "<b>" not in html.replace("<b>x", "")  # every user-named string escaped
    assert "Split as given by the folders train/, test/:" in html
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in html  # the manifest's name
    assert "Labels that disagree with their folder" in html and '<td class="num">7</td>' in html
    assert "line 9)" in html  # the skipped row's line
    assert html.count('<p class="meta">') == len(report.images)  # each gallery card shows its metadata
    assert '<span class="meta-name">who &lt;b&gt;</span> &lt;img src=x onerror=aler… · ' in html  # cut short
    assert '<span class="meta-name">n</span> 2</p>' in html
    assert Report.from_dict(report.to_dict()) == report  # typed metadata round-trips through results.json


def test_predictions_csv_carries_the_metadata_columns(tmp_path: Path) -> None:
    predictions = Predictions(
        ("a", "b"),
        ("x.jpg", "y.jpg"),
        np.array([0, 1]),
        np.array(["train", "test"]),
        np.array([[0.9, 0.1], [0.2, 0.8]]),
    )
    metadata = (("annotator", "split", "n"), {"x.jpg": {"annotator": "=cmd()", "split": "old", "n": 3.0}})
    write_predictions_csv(tmp_path / "p.csv", predictions, metadata)
    with (tmp_path / "p.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[-3:] == ["annotator", "meta_split", "n"]  # a name the table already has gets meta_
    assert (rows[0]["annotator"], rows[0]["meta_split"], rows[0]["n"], rows[0]["split"]) == (
        "'=cmd()",
        "old",
        "3",
        "train",
    )
    assert (rows[1]["annotator"], rows[1]["n"]) == ("", "")


def test_suspects_and_duplicates_csv_carry_each_images_metadata(tmp_path: Path) -> None:
    from report_factory import NASTY_CLASSES, make_audit

    from reportgen.render.output import DUPLICATE_COLUMNS, SUSPECT_COLUMNS, write_duplicates_csv, write_suspects_csv

    audit = make_audit(tmp_path, NASTY_CLASSES)
    suspect, pair = audit.label_issues.suspects[0].image.rel_path, audit.duplicates.pairs[0]  # type: ignore[union-attr]
    by_path = {
        suspect: {"annotator": "ana"},
        pair.a.rel_path: {"annotator": "ben"},
        pair.b.rel_path: {"annotator": "cy"},
    }
    write_suspects_csv(tmp_path / "s.csv", audit, (("annotator",), by_path))
    write_duplicates_csv(tmp_path / "d.csv", audit, (("annotator",), by_path))
    with (tmp_path / "s.csv").open(encoding="utf-8", newline="") as f:
        suspects = {row["path"]: row for row in csv.DictReader(f)}
    with (tmp_path / "d.csv").open(encoding="utf-8", newline="") as f:
        pairs = list(csv.DictReader(f))
    assert tuple(next(iter(suspects.values()))) == (*SUSPECT_COLUMNS, "annotator")
    assert suspects[suspect]["annotator"] == by_path.get(suspect, {}).get("annotator", "")
    assert tuple(pairs[0]) == (*DUPLICATE_COLUMNS, "annotator_a", "annotator_b")
    assert (pairs[0]["annotator_a"], pairs[0]["annotator_b"]) == (by_path[pair.a.rel_path]["annotator"], "cy")
