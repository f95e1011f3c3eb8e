from __future__ import annotations

import os
from pathlib import Path

import pytest

from reportgen.errors import OutputError
from reportgen.render.output import staged_output


def test_success_replaces_the_previous_output_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_output(out) as stage:
        (stage / "results.json").write_text("1")
        (stage / "old-only.txt").write_text("x")
    with staged_output(out) as stage:
        (stage / "results.json").write_text("2")
    assert (out / "results.json").read_text() == "2" and not (out / "old-only.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging leftovers


def test_failure_leaves_the_previous_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_output(out) as stage:
        (stage / "results.json").write_text("good")
    with pytest.raises(RuntimeError), staged_output(out) as stage:
        (stage / "results.json").write_text("half")
        raise RuntimeError("crash mid-run")
    assert (out / "results.json").read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_refuses_to_replace_a_folder_reportgen_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_text("precious")
    with pytest.raises(OutputError, match="not written by reportgen"), staged_output(out):
        pass
    assert (out / "holiday.jpg").exists()


def test_output_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output folder"), staged_output(blocker / "out"):
        pass


def test_leftovers_of_a_killed_run_are_cleaned_and_lost_output_restored(tmp_path: Path) -> None:
    dead_pid = 2**22 + 12345  # above pid_max on Linux: never a live process
    (tmp_path / f".out.tmp-{dead_pid}-abc").mkdir()
    old = tmp_path / f".out.old-{dead_pid}-def" / "previous"
    old.mkdir(parents=True)
    (old / "results.json").write_text("previous")
    with staged_output(tmp_path / "out") as stage:
        assert (tmp_path / "out" / "results.json").read_text() == "previous"  # restored before the new run
        (stage / "results.json").write_text("new")
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_review_csvs_list_every_tier_and_pair(tmp_path: Path) -> None:
    import csv

    from report_factory import NASTY_CLASSES, make_audit

    from reportgen.render.output import DUPLICATE_COLUMNS, SUSPECT_COLUMNS, write_duplicates_csv, write_suspects_csv

    audit = make_audit(tmp_path, NASTY_CLASSES)
    write_suspects_csv(tmp_path / "suspects.csv", audit)
    write_duplicates_csv(tmp_path / "duplicates.csv", audit)
    with (tmp_path / "suspects.csv").open(encoding="utf-8", newline="") as f:
        suspects = list(csv.DictReader(f))
    with (tmp_path / "duplicates.csv").open(encoding="utf-8", newline="") as f:
        pairs = list(csv.DictReader(f))
    assert tuple(suspects[0]) == SUSPECT_COLUMNS and tuple(pairs[0]) == DUPLICATE_COLUMNS
    tiers = [row["tier"] for row in suspects]
    assert tiers == ["likely_wrong"] * 5 + ["worth_a_look"] * 3 + ["no_class"] * 2
    assert suspects[0]["path"] == audit.label_issues.suspects[0].image.rel_path  # names kept verbatim
    assert suspects[0]["given_label"] == NASTY_CLASSES[0] and suspects[0]["decision"] == ""
    assert float(suspects[0]["wrong_label_prob"]) == 0.0 and suspects[-1]["outlier_z"] == "4.10"
    assert [(p["path_a"], p["kind"], p["leaks"]) for p in pairs][1][1:] == ("near", "yes")
    assert len(pairs) == len(audit.duplicates.pairs)


def test_slices_csv_has_a_row_per_slice_with_its_members(tmp_path: Path) -> None:
    import csv

    from report_factory import NASTY_CLASSES, make_audit

    from reportgen.render.output import SLICE_COLUMNS, write_slices_csv

    audit = make_audit(tmp_path, NASTY_CLASSES)
    write_slices_csv(tmp_path / "slices.csv", audit)
    with (tmp_path / "slices.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == SLICE_COLUMNS and len(rows) == 1
    s = audit.slices.slices[0]
    assert (rows[0]["slice"], rows[0]["description"], rows[0]["error_rate"]) == ("1", s.description, "0.3750")
    assert rows[0]["members"].split(";") == list(s.members)


def test_an_image_in_two_tiers_is_one_row(tmp_path: Path) -> None:
    import csv
    import dataclasses

    from report_factory import NASTY_CLASSES, make_audit

    from reportgen.render.output import write_suspects_csv
    from reportgen.report.audit import OutlierView

    audit = make_audit(tmp_path, NASTY_CLASSES)
    both = OutlierView(audit.label_issues.suspects[0].image, NASTY_CLASSES[0], 0.7, 9.0)
    audit = dataclasses.replace(audit, outliers=dataclasses.replace(audit.outliers, outliers=(both,), total=1))
    write_suspects_csv(tmp_path / "suspects.csv", audit)
    with (tmp_path / "suspects.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and rows[0]["tier"] == "likely_wrong+no_class" and rows[0]["outlier_z"] == "9.00"


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(tmp_path: Path) -> None:
    import csv

    import numpy as np

    from reportgen.model.predictions import Predictions
    from reportgen.render.output import safe_cell, write_predictions_csv

    assert safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and safe_cell("@x") == "'@x" and safe_cell("+a") == "'+a"
    assert safe_cell("-0.25") == "-0.25" and safe_cell(0.5) == 0.5 and safe_cell("dress/a.jpg") == "dress/a.jpg"
    names = ("=cmd", "plain")
    predictions = Predictions(
        names, ("=cmd/-x.jpg", "plain/b.jpg"), np.array([0, 1]), np.array(["test", "test"]), np.eye(2)
    )
    write_predictions_csv(tmp_path / "p.csv", predictions)
    rows = list(csv.reader((tmp_path / "p.csv").open(encoding="utf-8")))
    assert rows[0][4] == "score_=cmd" and rows[1][:4] == ["'=cmd/-x.jpg", "test", "'=cmd", "'=cmd"]
    assert rows[2][:4] == ["plain/b.jpg", "test", "plain", "plain"] and rows[1][4:] == ["1.000000", "0.000000"]
