from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
from report_factory import make_audit, make_bare_report

from reportgen.analysis.metrics import ClassMetrics
from reportgen.analysis.model_check import ModelCheck, Reference
from reportgen.compare.gates import (
    METRICS,
    OVER,
    UNDER,
    GateSpec,
    all_passed,
    check_gate_classes,
    evaluate_gate,
    evaluate_gates,
    parse_gate,
    parse_gates,
)
from reportgen.data.dataset import SkippedFile
from reportgen.errors import ReportgenError
from reportgen.report import Report

NAMES = ("pizza", "sushi", "a:b=c")


def results(**fields: Any) -> Report:
    """A run's typed Report with the numbers these tests check; ``fields`` replace the Report's own (e.g. audit)."""
    per_class = (
        ClassMetrics("pizza", 0.9, 0.8, 0.847, 10),
        ClassMetrics("sushi", 0.7, 0.62, 0.658, 8),
        ClassMetrics("a:b=c", 1.0, 1.0, 1.0, 3),
    )
    split_counts = {
        "train": {"pizza": 18, "sushi": 14, "a:b=c": 6},
        "val": {"pizza": 6, "sushi": 5, "a:b=c": 2},
        "test": {"pizza": 6, "sushi": 5, "a:b=c": 2},
    }
    bare = make_bare_report(NAMES)
    metrics = replace(bare.metrics, accuracy=0.85, macro_f1=0.835, per_class=per_class, split_counts=split_counts)
    skipped = (SkippedFile("sushi/x.jpg", "empty file (0 bytes)"),)
    dataset = replace(bare.dataset, total_images=60, skipped=skipped, split_counts=split_counts)
    return replace(bare, metrics=metrics, dataset=dataset, **fields)


def audited(tmp_path: Path, **counts: Any) -> Report:
    """``results()`` with every audit check; ``counts`` replace fields of its checks, e.g. ``duplicates={...}``."""
    audit = make_audit(tmp_path, NAMES)
    parts = {check: replace(getattr(audit, check), **values) for check, values in counts.items()}
    return results(audit=replace(audit, **parts))


def model_check(verdict: str, model_vs_probe: float | None) -> ModelCheck:
    majority = Reference("majority class", 0.4, 0.4, detail="pizza")
    probe = Reference("linear probe", 0.8, 0.8)
    return ModelCheck(verdict, 0.81, 0.8, probe, majority, (), 3, model_vs_probe=model_vs_probe)


def check(spec: str, op: str, data: Report | None = None) -> tuple[bool, float | None, str]:
    result = evaluate_gate(parse_gate(spec, op), results() if data is None else data)
    return result.passed, result.actual, result.reason


# --- parsing ------------------------------------------------------------------------------------------


def test_parse_global_and_per_class_specs() -> None:
    gates = parse_gates(["accuracy=0.85", "recall:sushi=70%", " f1:pizza = 0.8 "], ["ece=0.1"])
    assert gates == (
        GateSpec("accuracy=0.85", "accuracy", None, UNDER, 0.85),
        GateSpec("recall:sushi=70%", "recall", "sushi", UNDER, 0.7),
        GateSpec("f1:pizza = 0.8", "f1", "pizza", UNDER, 0.8),
        GateSpec("ece=0.1", "ece", None, OVER, 0.1),
    )
    assert gates[1].option == "--fail-under recall:sushi=70%"


def test_class_names_may_hold_colons_and_equals_signs() -> None:
    gate = parse_gate("recall:a:b=c=0.5", UNDER)
    assert (gate.class_name, gate.threshold) == ("a:b=c", 0.5)
    assert evaluate_gate(gate, results()).passed


@pytest.mark.parametrize(
    ("spec", "op", "message"),
    [
        ("accuracy", UNDER, "expected METRIC=VALUE or METRIC:CLASS=VALUE"),
        ("=0.5", UNDER, "expected METRIC=VALUE"),
        ("acuracy=0.8", UNDER, "unknown metric 'acuracy' (did you mean 'accuracy'?)"),
        ("recall=0.8", UNDER, "recall is per class: write recall:CLASS=VALUE (or min_recall=... for every class)"),
        ("accuracy:sushi=0.8", UNDER, "accuracy is not a per-class metric; drop ':sushi'"),
        ("accuracy=0.8", OVER, "accuracy is gated with --fail-under"),
        ("ece=0.1", UNDER, "ece is gated with --fail-over"),
        ("accuracy=85", UNDER, "accuracy is a fraction: write 0.85 or 85%, not 85"),
        ("accuracy=high", UNDER, "threshold 'high' is not a number"),
        ("accuracy=nan", UNDER, "must be a finite number >= 0"),
        ("skipped_files=-1", OVER, "must be a finite number >= 0"),
        ("skipped_files=10%", OVER, "skipped_files is a count, not a percentage"),
    ],
)
def test_bad_specs_are_one_line_errors_naming_the_option(spec: str, op: str, message: str) -> None:
    with pytest.raises(ReportgenError) as exc:
        parse_gate(spec, op)
    text = str(exc.value)
    assert text.startswith(f"--fail-{op} '{spec}': ") and message in text and "\n" not in text, text


def test_unknown_class_is_an_error_when_the_classes_are_known() -> None:
    with pytest.raises(ReportgenError, match=r"has no class 'suhsi' \(did you mean 'sushi'\?\)"):
        parse_gates(["recall:suhsi=0.5"], class_names=["pizza", "sushi"])
    gates = parse_gates(["recall:sushi=0.5"], ["images:pizza=1000"])
    check_gate_classes(gates, ["pizza", "sushi"])  # no error


def test_every_metric_a_bare_run_lacks_fails_with_a_note() -> None:
    bare = make_bare_report(NAMES, metrics=replace(results().metrics, per_class=()), audit=None, model_check=None)
    always = {"accuracy", "macro_f1", "total_images", "skipped_files"}  # every run has these
    for name, metric in METRICS.items():
        found = metric.lookup(bare, "ramen" if metric.per_class else None)
        assert (found.value is not None) == (name in always), name
        assert found.value is not None or found.note, name


# --- evaluation ---------------------------------------------------------------------------------------


def test_under_and_over_compare_with_the_threshold_inclusive() -> None:
    assert check("accuracy=0.85", UNDER) == (True, 0.85, "accuracy is 0.85, at least 0.85")
    assert check("accuracy=0.9", UNDER) == (False, 0.85, "accuracy is 0.85, under the minimum 0.9")
    assert check("skipped_files=1", OVER) == (True, 1.0, "skipped_files is 1, at most 1")
    assert check("skipped_files=0", OVER) == (False, 1.0, "skipped_files is 1, over the maximum 0")


def test_per_class_and_derived_metrics() -> None:
    assert check("recall:sushi=0.7", UNDER) == (
        False,
        0.62,
        "recall of class 'sushi' is 0.62, under the minimum 0.7",
    )
    assert check("precision:pizza=0.9", UNDER)[0]
    assert check("min_recall=0.6", UNDER) == (True, 0.62, "min_recall is 0.62 (class 'sushi'), at least 0.6")
    assert check("macro_recall=0.8", UNDER)[1] == pytest.approx((0.8 + 0.62 + 1.0) / 3)
    assert check("macro_f1=0.8", UNDER)[:2] == (True, 0.835)
    assert check("images:sushi=25", UNDER) == (False, 24.0, "images of class 'sushi' is 24, under the minimum 25")
    assert check("images:pizza=30", OVER)[0] and check("total_images=50", UNDER)[0]


def test_audit_and_model_check_numbers_are_read_from_the_report(tmp_path: Path) -> None:
    report = audited(
        tmp_path,
        label_issues={"total": 12},
        duplicates={"across_splits": 0, "across_classes": 2, "total": 3},
        calibration={"ece": 0.04},
        slices={"total": 2},
    )
    assert check("slices=0", OVER, report) == (False, 2.0, "slices is 2, over the maximum 0")
    assert check("slices=2", OVER, report)[:2] == (True, 2.0)
    assert check("suspected_label_errors=20", OVER, report)[:2] == (True, 12.0)
    assert check("suspected_label_errors=11", OVER, report)[:2] == (False, 12.0)
    assert check("duplicates_across_splits=0", OVER, report)[:2] == (True, 0.0)
    assert check("duplicates_across_classes=1", OVER, report)[:2] == (False, 2.0)
    assert check("duplicates=2", OVER, report) == (False, 3.0, "duplicates is 3, over the maximum 2")
    assert check("ece=0.1", OVER, report)[:2] == (True, 0.04)
    checked = results(model_check=model_check("caution", -0.03))
    assert check("model_vs_probe=0", UNDER, checked) == (False, -0.03, "model_vs_probe is -0.03, under the minimum 0")
    assert check("model_unsound=0", OVER, checked)[:2] == (True, 0.0)
    assert check("model_unsound=0", OVER, results(model_check=model_check("unsound", None)))[:2] == (False, 1.0)


def test_a_check_that_did_not_run_fails_its_gate_with_the_reason() -> None:
    no_probe = results(model_check=model_check("sound", None))
    assert check("model_vs_probe=0", UNDER, no_probe)[2].endswith(
        "results.json has no model_check.model_vs_probe (was that check run?)"
    )
    unchecked = results(model_check=model_check("unchecked", None))
    assert check("model_unsound=0", OVER, unchecked)[2].endswith(
        "results.json has no model_check verdict (the validation split is empty?)"
    )
    assert check("duplicates=0", OVER)[2].endswith("results.json has no audit.duplicates.total (was that check run?)")


def test_a_value_the_results_lack_fails_the_gate_with_the_reason() -> None:
    passed, actual, reason = check("ece=0.1", OVER)
    assert (passed, actual) == (False, None)
    assert (
        reason
        == "--fail-over ece=0.1 cannot be checked: results.json has no audit.calibration.ece (was that check run?)"
    )
    passed, actual, reason = check("recall:ramen=0.5", UNDER)
    assert (passed, actual) == (False, None)
    assert reason.endswith("class 'ramen' is not in the results (known: 'pizza', 'sushi', 'a:b=c')")
    data = results()
    data = replace(data, metrics=replace(data.metrics, accuracy=float("nan")))
    assert check("accuracy=0.5", UNDER, data) == (
        False,
        None,
        "--fail-under accuracy=0.5 cannot be checked: accuracy is not a number in the results",
    )


def test_evaluate_many_and_all_passed_and_json() -> None:
    gates = parse_gates(["accuracy=0.8", "recall:sushi=0.7"], ["skipped_files=3"])
    checked = evaluate_gates(gates, results())
    assert [g.passed for g in checked] == [True, False, True]
    assert not all_passed(checked) and all_passed(checked[:1]) and all_passed(())
    block = json.loads(json.dumps([asdict(g) for g in checked], allow_nan=False))
    assert block[1] == {
        "spec": "recall:sushi=0.7",
        "metric": "recall",
        "class_name": "sushi",
        "op": "under",
        "threshold": 0.7,
        "actual": 0.62,
        "passed": False,
        "reason": "recall of class 'sushi' is 0.62, under the minimum 0.7",
    }
