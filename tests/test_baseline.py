from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reportgen.baseline import (
    ADDED,
    KEPT,
    REMOVED,
    Delta,
    ImageRef,
    changes_to_dict,
    class_metric_changes,
    compare_results,
    dataset_changes,
    grown_confusions,
    label_error_changes,
    load_baseline,
)
from reportgen.errors import ReportgenError


def results(
    class_names: list[str],
    *,
    accuracy: float = 0.8,
    recall: dict[str, float] | None = None,
    confusion: list[list[int]] | None = None,
    images: list[tuple[str, str, str]] | None = None,
    suspects: list[dict[str, Any]] | None = None,
    counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A results.json as report.to_dict writes it; ``images`` are (rel_path, sha256, label) triples."""
    recall = recall or {}
    n = len(class_names)
    data: dict[str, Any] = {
        "schema_version": 1,
        "run": {"started_at": "2026-11-01T02:00:00+00:00"},
        "dataset": {
            "class_names": class_names,
            "split_counts": {"train": counts or {}, "val": {}, "test": {}},
        },
        "metrics": {
            "accuracy": accuracy,
            "macro_f1": 0.5,
            "confusion": confusion or [[5 if t == p else 0 for p in range(n)] for t in range(n)],
            "per_class": [
                {"class_name": c, "precision": 0.9, "recall": recall.get(c, 0.8), "f1": 0.85, "support": 5}
                for c in class_names
            ],
        },
    }
    if images is not None:
        data["images"] = [{"rel_path": r, "sha256": h, "label": lab, "split": "train"} for r, h, lab in images]
    if suspects is not None:
        data["audit"] = {"label_issues": {"total": len(suspects), "suspects": suspects}}
    return data


# --- loading ------------------------------------------------------------------------------------------


def test_load_from_an_output_folder_or_its_results_json(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(results(["a", "b"])), "utf-8")
    assert load_baseline(tmp_path)["dataset"]["class_names"] == ["a", "b"]
    assert load_baseline(tmp_path / "results.json")["metrics"]["accuracy"] == 0.8


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "has no results.json; pass a previous output folder or its results.json"),
        ("{not json", "is not valid JSON: Expecting property name"),
        ("[1, 2]", "is not a reportgen results.json (no schema_version)"),
        ('{"schema_version": 1, "metrics": {}}', "lacks metrics.accuracy or dataset.class_names"),
    ],
)
def test_unusable_baseline_is_a_one_line_error(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "results.json").write_text(content, "utf-8")
    with pytest.raises(ReportgenError) as exc:
        load_baseline(tmp_path)
    assert message in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_missing_path_and_newer_schema_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportgenError, match="baseline '.*nope' does not exist"):
        load_baseline(tmp_path / "nope")
    newer = {**results(["a", "b"]), "schema_version": 9}
    with pytest.raises(ReportgenError, match="schema 9, newer than this reportgen's 1"):
        compare_results(results(["a", "b"]), newer, baseline="old/")


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
            ("owl/7.jpg", "h7", 2),  # a new class; label given as an index
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


def test_without_per_image_hashes_only_counts_are_compared() -> None:
    before = results(["a", "b"], counts={"a": 10, "b": 5})
    after = results(["a", "c"], counts={"a": 12, "c": 4}, images=[("a/x.jpg", "h", "a")])
    changes = dataset_changes(after, before)
    assert not changes.by_content and "the baseline has no per-image list" in changes.note
    assert [(r.class_name, r.status, r.before, r.after, r.added) for r in changes.per_class] == [
        ("a", KEPT, 10, 12, None),
        ("c", ADDED, 0, 4, None),
        ("b", REMOVED, 5, 0, None),
    ]
    assert changes.images_added is None


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


def test_unusable_confusion_matrices_give_no_confusions() -> None:
    broken = results(["a", "b"])
    broken["metrics"]["confusion"] = [[1, 2, 3]]
    assert grown_confusions(broken, results(["a", "b"])) == ()
    assert grown_confusions(results(["a", "b"]), broken) == ()


# --- label errors -------------------------------------------------------------------------------------


def test_new_and_resolved_label_errors_by_content_hash() -> None:
    before = results(["a", "b"], suspects=[{"rel_path": "a/1.jpg", "sha256": "h1", "given_label": "a"}])
    before["audit"]["label_issues"]["suspects"].append({"rel_path": "a/2.jpg", "sha256": "h2", "given_label": "a"})
    after = results(
        ["a", "b"],
        suspects=[
            {"rel_path": "a/renamed.jpg", "sha256": "h1", "given_label": "a"},
            {"rel_path": "b/3.jpg", "sha256": "h3", "given_label": 1},
        ],
    )
    changes = label_error_changes(after, before)
    assert changes.available and changes.matched_by == "sha256" and changes.still_suspected == 1
    assert changes.new == (ImageRef("b/3.jpg", "h3", "b"),)
    assert changes.resolved == (ImageRef("a/2.jpg", "h2", "a"),)


def test_label_errors_given_by_image_index_are_resolved_through_the_image_list() -> None:
    images = [("a/1.jpg", "h1", "a"), ("b/2.jpg", "h2", "b")]
    before = results(["a", "b"], images=images, suspects=[{"image_idx": 0, "given_idx": 0}])
    after = results(["a", "b"], images=images[::-1], suspects=[{"image_idx": 0, "given_idx": 1}])
    changes = label_error_changes(after, before)
    assert changes.new == (ImageRef("b/2.jpg", "h2", "b"),) and changes.resolved == (ImageRef("a/1.jpg", "h1", "a"),)


def test_label_errors_missing_on_either_side_are_reported_unavailable() -> None:
    changes = label_error_changes(results(["a", "b"], suspects=[]), results(["a", "b"]))
    assert not changes.available and changes.note == "the baseline has no audit.label_issues.suspects list"
    anonymous = results(["a", "b"], suspects=[{"quality": 0.1}])
    assert not label_error_changes(anonymous, results(["a", "b"], suspects=[])).available


# --- the whole block ----------------------------------------------------------------------------------


def test_the_block_is_json_and_survives_minimal_results() -> None:
    minimal = {"schema_version": 1, "metrics": {"accuracy": 0.5}, "dataset": {"class_names": ["a", "b"]}}
    block = changes_to_dict(compare_results(minimal, minimal, baseline="x"))
    text = json.dumps(block, allow_nan=False)
    assert json.loads(text)["accuracy"] == {"before": 0.5, "after": 0.5, "delta": 0.0}
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
    assert block["macro_f1"] == {"before": None, "after": None, "delta": None}
    assert block["dataset"]["by_content"] is False and block["label_errors"]["available"] is False
