from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from report_factory import make_audit, make_bare_report

from reportgen.analysis.metrics import ClassMetrics
from reportgen.compare.baseline import (
    class_metric_changes,
    compare_results,
    dataset_changes,
    grown_confusions,
    label_error_changes,
    load_baseline,
)
from reportgen.errors import ReportgenError
from reportgen.report import ImageEntry, Report
from reportgen.report.audit import AuditImage, SuspectView
from reportgen.report.comparison import ADDED, KEPT, REMOVED, Delta, ImageRef
from reportgen.report.serialize import to_plain


def results(
    class_names: Sequence[str],
    *,
    accuracy: float = 0.8,
    recall: dict[str, float] | None = None,
    confusion: list[list[int]] | None = None,
    images: Sequence[tuple[str, str, str]] = (),
) -> Report:
    """A run's typed Report; ``images`` are (rel_path, sha256, label) triples."""
    names, recall = tuple(class_names), recall or {}
    n = len(names)
    matrix = confusion or [[5 if t == p else 0 for p in range(n)] for t in range(n)]
    bare = make_bare_report(names)
    metrics = replace(
        bare.metrics,
        accuracy=accuracy,
        macro_f1=0.5,
        confusion=tuple(tuple(row) for row in matrix),
        per_class=tuple(ClassMetrics(c, 0.9, recall.get(c, 0.8), 0.85, 5) for c in names),
    )
    return replace(
        bare,
        run=replace(bare.run, started_at="2026-11-01T02:00:00+00:00"),
        metrics=metrics,
        images=tuple(ImageEntry(r, h, label, "train", 8, 8) for r, h, label in images),
    )


def suspect(image_idx: int, rel_path: str, given_label: str) -> SuspectView:
    image = AuditImage(image_idx, rel_path, given_label, "train")
    return SuspectView(image_idx, image, given_label, "other", 0.05, 0.9, 0.02, "other")


def with_suspects(report: Report, out_dir: Path, image_idx: Sequence[int]) -> Report:
    """``report`` with a label check whose suspects are its images ``image_idx``."""
    audit = make_audit(out_dir, report.dataset.class_names)
    images = report.images
    suspects = tuple(suspect(i, images[i].rel_path, images[i].label) for i in image_idx)
    label_issues = replace(audit.label_issues, suspects=suspects, total=len(suspects))
    return replace(report, audit=replace(audit, label_issues=label_issues))


def write(folder: Path, data: object) -> Path:
    file = folder / "results.json"
    file.write_text(data if isinstance(data, str) else json.dumps(data), "utf-8")
    return file


# --- loading ------------------------------------------------------------------------------------------


def test_load_from_an_output_folder_or_its_results_json(tmp_path: Path) -> None:
    report = results(["a", "b"], images=[("a/1.jpg", "h1", "a")])
    file = write(tmp_path, report.to_dict())
    assert load_baseline(tmp_path) == report
    assert load_baseline(file).metrics.accuracy == 0.8


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "has no results.json; pass a previous output folder or its results.json"),
        ("{not json", "is not valid JSON: Expecting property name"),
        ("[1, 2]", "is not a reportgen results.json (no schema_version)"),
        ('{"schema_version": "1"}', "is not a reportgen results.json (no schema_version)"),
        (
            '{"schema_version": 1, "metrics": {}}',
            "is not a results.json of this reportgen's layout: Report: missing key",
        ),
        ('{"schema_version": 9}', "has results schema 9, newer than this reportgen's 1; upgrade reportgen"),
    ],
)
def test_unusable_baseline_is_a_one_line_error_naming_the_file(
    tmp_path: Path, content: str | None, message: str
) -> None:
    if content is not None:
        write(tmp_path, content)
    with pytest.raises(ReportgenError) as exc:
        load_baseline(tmp_path)
    text = str(exc.value)
    assert message in text and "\n" not in text, text
    assert str(tmp_path) in text


def test_a_results_json_of_another_layout_names_the_field(tmp_path: Path) -> None:
    data = results(["a", "b"]).to_dict()
    data["metrics"]["accuracy"] = "high"
    write(tmp_path, data)
    with pytest.raises(ReportgenError, match=r"results\.json' is not a .* layout: Report\.metrics\.accuracy: expected"):
        load_baseline(tmp_path)
    data = results(["a", "b"]).to_dict()
    data["dataset"]["images"] = []  # a layout reportgen does not write
    write(tmp_path, data)
    with pytest.raises(ReportgenError, match=r"Report\.dataset: unknown key 'images'"):
        load_baseline(tmp_path)


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReportgenError, match="baseline '.*nope' does not exist"):
        load_baseline(tmp_path / "nope")


# --- data set -----------------------------------------------------------------------------------------


def test_images_are_matched_by_content_across_renames_moves_and_class_changes() -> None:
    before = results(
        ["cat", "dog", "fox"],
        images=[
            ("cat/1.jpg", "h1", "cat"),
            ("cat/2.jpg", "h2", "cat"),
            ("dog/3.jpg", "h3", "dog"),
            ("dog/4.jpg", "h4", "dog"),
            ("fox/5.jpg", "h5", "fox"),
        ],
    )
    after = results(
        ["cat", "dog", "owl"],
        images=[
            ("cat/one.jpg", "h1", "cat"),  # renamed: no change
            ("cat/4.jpg", "h4", "cat"),  # moved from dog: relabelled
            ("dog/3.jpg", "h3", "dog"),
            ("dog/new.jpg", "h6", "dog"),  # new content
            ("owl/7.jpg", "h7", "owl"),  # a new class
        ],
    )
    changes = dataset_changes(after, before)
    assert changes.by_content and changes.classes_added == ("owl",) and changes.classes_removed == ("fox",)
    rows = {r.class_name: r for r in changes.per_class}
    assert [r.class_name for r in changes.per_class] == ["cat", "dog", "owl", "fox"]
    assert (rows["cat"].status, rows["cat"].before, rows["cat"].after) == (KEPT, 2, 2)
    assert (rows["cat"].added, rows["cat"].removed, rows["cat"].moved_in, rows["cat"].moved_out) == (0, 1, 1, 0)
    assert (rows["dog"].added, rows["dog"].removed, rows["dog"].moved_in, rows["dog"].moved_out) == (1, 0, 0, 1)
    assert (rows["owl"].status, rows["owl"].added) == (ADDED, 1)
    assert (rows["fox"].status, rows["fox"].after, rows["fox"].removed) == (REMOVED, 0, 1)
    assert (changes.images_added, changes.images_removed, changes.images_moved) == (2, 2, 1)
    assert changes.moved == (ImageRef("cat/4.jpg", "h4", "cat", "dog"),)
    assert {r.rel_path for r in changes.added} == {"dog/new.jpg", "owl/7.jpg"}
    assert {r.rel_path for r in changes.removed} == {"cat/2.jpg", "fox/5.jpg"}


def test_an_added_copy_of_an_existing_image_counts_as_added_with_its_new_path() -> None:
    before = results(["a", "b"], images=[("a/x.jpg", "h1", "a"), ("b/y.jpg", "h2", "b")])
    after = results(["a", "b"], images=[("a/x.jpg", "h1", "a"), ("a/x copy.jpg", "h1", "a"), ("b/y.jpg", "h2", "b")])
    changes = dataset_changes(after, before)
    assert changes.added == (ImageRef("a/x copy.jpg", "h1", "a"),) and changes.images_moved == 0


# --- metrics ------------------------------------------------------------------------------------------


def test_accuracy_and_per_class_deltas_with_classes_added_and_removed() -> None:
    before = results(["a", "b"], accuracy=0.8, recall={"a": 0.9, "b": 0.5})
    after = results(["a", "c"], accuracy=0.85, recall={"a": 0.7, "c": 0.6})
    changes = compare_results(after, before, baseline="out/last")
    assert changes.accuracy == Delta(0.8, 0.85, 0.05)
    assert changes.baseline == "out/last" and changes.baseline_started_at == "2026-11-01T02:00:00+00:00"
    rows = {r.class_name: r for r in class_metric_changes(after, before)}
    assert rows["a"].status == KEPT and rows["a"].recall == Delta(0.9, 0.7, -0.2)
    assert rows["c"].status == ADDED and rows["c"].recall == Delta(None, 0.6, None)
    assert rows["b"].status == REMOVED and rows["b"].precision == Delta(0.9, None, None)


def test_confusions_that_grew_between_classes_of_both_runs() -> None:
    before = results(["a", "b", "c"], confusion=[[8, 2, 0], [0, 10, 0], [1, 1, 8]])
    after = results(
        ["a", "b", "c", "d"],
        # b -> a appears; a -> b keeps its count on a smaller test set (a larger share); c -> b doubles its
        # count on a test set three times larger (a smaller share: not grown); d is new: never compared
        confusion=[[3, 2, 0, 0], [3, 7, 0, 0], [0, 2, 28, 0], [0, 0, 5, 0]],
    )
    grown = grown_confusions(after, before)
    assert [(g.true_class, g.predicted_class) for g in grown] == [("b", "a"), ("a", "b")]
    assert grown[0].count == Delta(0.0, 3.0, 3.0) and grown[0].fraction == Delta(0.0, 0.3, 0.3)
    assert grown[1].count == Delta(2.0, 2.0, 0.0) and grown[1].fraction == Delta(0.2, 0.4, 0.2)


def test_a_confusion_matrix_not_matching_the_classes_gives_no_confusions() -> None:
    broken = results(["a", "b"], confusion=[[1, 2, 3]])
    assert grown_confusions(broken, results(["a", "b"])) == ()
    assert grown_confusions(results(["a", "b"]), broken) == ()


# --- label errors -------------------------------------------------------------------------------------


def test_new_and_resolved_label_errors_by_content_hash(tmp_path: Path) -> None:
    images = [("a/1.jpg", "h1", "a"), ("a/2.jpg", "h2", "a")]
    before = with_suspects(results(["a", "b"], images=images), tmp_path, [0, 1])
    images_now = [("b/3.jpg", "h3", "b"), ("a/renamed.jpg", "h1", "a")]
    after = with_suspects(results(["a", "b"], images=images_now), tmp_path, [1, 0])
    changes = label_error_changes(after, before)
    assert changes.available and changes.matched_by == "sha256" and changes.still_suspected == 1
    assert changes.new == (ImageRef("b/3.jpg", "h3", "b"),)
    assert changes.resolved == (ImageRef("a/2.jpg", "h2", "a"),)


def test_label_errors_outside_the_image_list_are_matched_by_path(tmp_path: Path) -> None:
    report = with_suspects(results(["a", "b"], images=[("a/1.jpg", "h1", "a")]), tmp_path, [0])
    audit = report.audit
    assert audit is not None and audit.label_issues is not None
    label_issues = replace(audit.label_issues, suspects=(suspect(7, "b/9.jpg", "b"),))
    odd = replace(report, audit=replace(audit, label_issues=label_issues))
    changes = label_error_changes(odd, report)
    assert changes.matched_by == "rel_path"
    assert changes.new == (ImageRef("b/9.jpg", None, "b"),) and changes.resolved == (ImageRef("a/1.jpg", "h1", "a"),)


def test_label_errors_missing_on_either_side_are_reported_unavailable(tmp_path: Path) -> None:
    checked = with_suspects(results(["a", "b"]), tmp_path, [])
    changes = label_error_changes(checked, results(["a", "b"]))
    assert not changes.available and changes.note == "the baseline has no audit.label_issues.suspects list"
    changes = label_error_changes(results(["a", "b"]), checked)
    assert not changes.available and changes.note == "this run has no audit.label_issues.suspects list"


# --- the whole block ----------------------------------------------------------------------------------


def test_the_block_keeps_its_results_json_layout() -> None:
    plain = results(["a", "b"])
    block = to_plain(compare_results(plain, plain, baseline="x"))
    text = json.dumps(block, allow_nan=False)
    assert json.loads(text)["accuracy"] == {"before": 0.8, "after": 0.8, "delta": 0.0}
    assert set(block) == {
        "baseline",
        "baseline_started_at",
        "accuracy",
        "macro_f1",
        "dataset",
        "per_class",
        "label_errors",
        "confusions_grown",
    }
    assert block["dataset"]["by_content"] is True and block["label_errors"]["available"] is False
