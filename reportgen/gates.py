"""Quality gates: ``--fail-under METRIC[:CLASS]=VALUE`` and ``--fail-over ...``, checked against results.json.

A gate spec is ``METRIC=THRESHOLD`` or, for a per-class metric, ``METRIC:CLASS=THRESHOLD``. The class
name is everything between the first ``:`` and the last ``=`` (spaces around it dropped), so it may
itself hold ``:`` or ``=``.
Thresholds of fraction metrics may be written ``0.85`` or ``85%``. ``--fail-under`` fails when the value
is below the threshold, ``--fail-over`` when it is above; a value equal to the threshold passes.

Metrics (``METRICS`` below is the one table to extend):

==========================  =========  ======================================================
name                        direction  value, from results.json
==========================  =========  ======================================================
accuracy                    under      ``metrics.accuracy`` (test split)
macro_f1                    under      ``metrics.macro_f1``
macro_recall                under      mean of the per-class recalls (balanced accuracy)
min_recall / min_f1         under      the worst class's recall / F1
precision:C, recall:C, f1:C under      ``metrics.per_class[...]`` of class C (test split)
images:C                    either     images of class C over all splits
total_images                either     ``dataset.total_images``
skipped_files               over       ``dataset.skipped`` (unreadable files left out)
suspected_label_errors      over       ``audit.label_issues.total`` (or its ``suspects`` list)
duplicates_across_splits    over       ``audit.duplicates.across_splits`` (or ``n_leaking``): copies in 2 splits
duplicates_across_classes   over       ``audit.duplicates.across_classes`` (or ``n_across_classes``)
duplicates                  over       ``audit.duplicates.total`` (or the number of its ``groups``)
ece                         over       ``audit.calibration.ece`` (expected calibration error)
model_vs_probe              under      ``model_check.model_vs_probe``: validation accuracy of the model minus
                                       that of a linear probe on its pretrained features (e.g. ``=0``)
model_unsound               over       1 when the model check's verdict is ``unsound``, else 0 (``=0``)
==========================  =========  ======================================================

An unknown metric, a missing or unexpected class part, a threshold that is not a number, a fraction
threshold outside [0, 1] and a gate in the wrong direction (``--fail-over accuracy=...``) are errors
when the spec is parsed. A class missing from the results, or a metric the run did not compute, makes
the gate fail with that reason: a scheduled job never passes a gate it could not check.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from reportgen.errors import ReportgenError

logger = logging.getLogger(__name__)

UNDER, OVER = "under", "over"  # --fail-under, --fail-over


@dataclass(frozen=True)
class Lookup:
    """A metric value found in the results (``value`` None when it is not there), and a note on it."""

    value: float | None
    note: str = ""  # which class for min_*, or why the value is missing


@dataclass(frozen=True)
class MetricDef:
    """One gateable metric."""

    name: str
    directions: frozenset[str]  # the options that make sense: {UNDER}, {OVER} or both
    fraction: bool  # the value lies in [0, 1]
    per_class: bool
    lookup: Callable[[dict[str, Any], str | None], Lookup]  # (results, class name) -> value


@dataclass(frozen=True)
class GateSpec:
    """A parsed ``--fail-under`` / ``--fail-over`` value."""

    spec: str  # as given, e.g. "recall:sushi=0.7"
    metric: str
    class_name: str | None
    op: str  # UNDER or OVER: the gate fails when the value is under / over the threshold
    threshold: float

    @property
    def option(self) -> str:
        """The command-line form, e.g. ``--fail-under recall:sushi=0.7``."""
        return f"--fail-{self.op} {self.spec}"


@dataclass(frozen=True)
class GateResult:
    """One gate checked against a run's results."""

    spec: str
    metric: str
    class_name: str | None
    op: str
    threshold: float
    actual: float | None  # None when the results do not hold the metric
    passed: bool
    reason: str  # one line, e.g. "recall of sushi is 0.62, under the minimum 0.7"


def _path(results: dict[str, Any], dotted: str) -> Any:
    """``results["a"]["b"]`` for ``"a.b"``, or None where any step is missing."""
    value: Any = results
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _at(*paths: str) -> Callable[[dict[str, Any], str | None], Lookup]:
    """Look up the first of ``paths`` holding a number; a list counts its items, a dict gives its total."""

    def lookup(results: dict[str, Any], _class_name: str | None) -> Lookup:
        for dotted in paths:
            value = _path(results, dotted)
            if isinstance(value, list):
                return Lookup(float(len(value)))
            if isinstance(value, dict):
                value = value.get("total", value.get("count"))
            if _number(value) is not None:
                return Lookup(_number(value))
        return Lookup(None, f"results.json has no {' or '.join(paths)} (was that check run?)")

    return lookup


def _per_class_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = _path(results, "metrics.per_class")
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def _class_field(field: str) -> Callable[[dict[str, Any], str | None], Lookup]:
    def lookup(results: dict[str, Any], class_name: str | None) -> Lookup:
        for row in _per_class_rows(results):
            if row.get("class_name") == class_name:
                return Lookup(_number(row.get(field)))
        known = [str(row.get("class_name")) for row in _per_class_rows(results)]
        hint = _did_you_mean(str(class_name), known)
        return Lookup(None, f"class '{class_name}' is not in the results{hint}")

    return lookup


def _worst(field: str) -> Callable[[dict[str, Any], str | None], Lookup]:
    def lookup(results: dict[str, Any], _class_name: str | None) -> Lookup:
        rows = [(row.get("class_name"), _number(row.get(field))) for row in _per_class_rows(results)]
        rows = [(name, value) for name, value in rows if value is not None]
        if not rows:
            return Lookup(None, "no per-class metrics in the results")
        name, value = min(rows, key=lambda r: r[1])
        return Lookup(value, f"class '{name}'")

    return lookup


def _mean(field: str) -> Callable[[dict[str, Any], str | None], Lookup]:
    def lookup(results: dict[str, Any], _class_name: str | None) -> Lookup:
        values = [v for v in (_number(row.get(field)) for row in _per_class_rows(results)) if v is not None]
        if not values:
            return Lookup(None, "no per-class metrics in the results")
        return Lookup(sum(values) / len(values))

    return lookup


def _class_images(results: dict[str, Any], class_name: str | None) -> Lookup:
    counts = _path(results, "dataset.split_counts")
    if not isinstance(counts, dict):
        return Lookup(None, "dataset.split_counts not in the results")
    per_split = [c.get(class_name) for c in counts.values() if isinstance(c, dict)]
    if all(v is None for v in per_split):
        return Lookup(None, f"class '{class_name}' is not in the results")
    return Lookup(float(sum(_number(v) or 0.0 for v in per_split)))


def _model_unsound(results: dict[str, Any], _class_name: str | None) -> Lookup:
    verdict = _path(results, "model_check.verdict")
    if verdict is None or verdict == "unchecked":
        return Lookup(None, "results.json has no model_check verdict (the validation split is empty?)")
    return Lookup(1.0 if verdict == "unsound" else 0.0)


def _metric_def(
    name: str,
    lookup: Callable[[dict[str, Any], str | None], Lookup],
    *,
    gate: str = UNDER,
    fraction: bool = True,
    per_class: bool = False,
) -> MetricDef:
    directions = frozenset({UNDER, OVER}) if gate == "either" else frozenset({gate})
    return MetricDef(name, directions, fraction, per_class, lookup)


# The one table of gateable metrics: add a line here when results.json gains a number worth gating on.
METRICS: dict[str, MetricDef] = {
    m.name: m
    for m in (
        _metric_def("accuracy", _at("metrics.accuracy")),
        _metric_def("macro_f1", _at("metrics.macro_f1")),
        _metric_def("macro_recall", _mean("recall")),
        _metric_def("min_recall", _worst("recall")),
        _metric_def("min_f1", _worst("f1")),
        _metric_def("precision", _class_field("precision"), per_class=True),
        _metric_def("recall", _class_field("recall"), per_class=True),
        _metric_def("f1", _class_field("f1"), per_class=True),
        _metric_def("images", _class_images, gate="either", fraction=False, per_class=True),
        _metric_def("total_images", _at("dataset.total_images"), gate="either", fraction=False),
        _metric_def("skipped_files", _at("dataset.skipped"), gate=OVER, fraction=False),
        _metric_def(
            "suspected_label_errors",
            _at("audit.label_issues.total", "audit.label_issues.suspects"),
            gate=OVER,
            fraction=False,
        ),
        _metric_def(
            "duplicates_across_splits",
            _at("audit.duplicates.across_splits", "audit.duplicates.n_leaking"),
            gate=OVER,
            fraction=False,
        ),
        _metric_def(
            "duplicates_across_classes",
            _at("audit.duplicates.across_classes", "audit.duplicates.n_across_classes"),
            gate=OVER,
            fraction=False,
        ),
        _metric_def("duplicates", _at("audit.duplicates.total", "audit.duplicates.groups"), gate=OVER, fraction=False),
        _metric_def("ece", _at("audit.calibration.ece"), gate=OVER),
        _metric_def("model_vs_probe", _at("model_check.model_vs_probe"), fraction=False),
        _metric_def("model_unsound", _model_unsound, gate=OVER, fraction=False),
    )
}


def parse_gates(
    fail_under: Iterable[str] = (), fail_over: Iterable[str] = (), *, class_names: Sequence[str] | None = None
) -> tuple[GateSpec, ...]:
    """Parse all ``--fail-under`` and ``--fail-over`` values; check classes when ``class_names`` is given.

    Raises:
        ReportgenError: one line naming the bad spec and what is wrong with it.
    """
    gates = tuple(parse_gate(s, UNDER) for s in fail_under) + tuple(parse_gate(s, OVER) for s in fail_over)
    if class_names is not None:
        check_gate_classes(gates, class_names)
    return gates


def parse_gate(text: str, op: str) -> GateSpec:
    """Parse one ``METRIC[:CLASS]=THRESHOLD`` spec for ``op`` (``"under"`` or ``"over"``)."""
    if op not in (UNDER, OVER):
        raise ValueError(f"`op` must be {UNDER!r} or {OVER!r}, not {op!r}")
    spec = text.strip()
    target, sep, number = spec.rpartition("=")
    if not sep or not target:
        raise _spec_error(spec, op, "expected METRIC=VALUE or METRIC:CLASS=VALUE")
    metric_name, colon, class_name = target.partition(":")
    class_name = class_name.strip()  # "f1:pizza = 0.8" names class "pizza"
    metric = _metric(metric_name.strip(), spec, op)
    if metric.per_class and not (colon and class_name):
        hint = f" (or min_{metric.name}=... for every class)" if f"min_{metric.name}" in METRICS else ""
        raise _spec_error(spec, op, f"{metric.name} is per class: write {metric.name}:CLASS=VALUE{hint}")
    if colon and not metric.per_class:
        raise _spec_error(spec, op, f"{metric.name} is not a per-class metric; drop ':{class_name}'")
    if op not in metric.directions:
        better = "--fail-under" if UNDER in metric.directions else "--fail-over"
        raise _spec_error(spec, op, f"{metric.name} is gated with {better}")
    threshold = _threshold(number.strip(), metric, spec, op)
    return GateSpec(spec, metric.name, class_name if colon else None, op, threshold)


def check_gate_classes(gates: Iterable[GateSpec], class_names: Sequence[str]) -> None:
    """Raise a one-line ``ReportgenError`` for a gate naming a class that is not in ``class_names``."""
    for gate in gates:
        if gate.class_name is not None and gate.class_name not in class_names:
            known = _did_you_mean(gate.class_name, class_names)
            raise _spec_error(gate.spec, gate.op, f"the data set has no class '{gate.class_name}'{known}")


def evaluate_gates(gates: Iterable[GateSpec], results: dict[str, Any]) -> tuple[GateResult, ...]:
    """Check each gate against ``results`` (the content of results.json)."""
    checked = tuple(evaluate_gate(gate, results) for gate in gates)
    for result in checked:
        log = logger.info if result.passed else logger.warning
        log("gate %s: %s", "passed" if result.passed else "FAILED", result.reason)
    return checked


def evaluate_gate(gate: GateSpec, results: dict[str, Any]) -> GateResult:
    """Check one gate; a value the results do not hold fails the gate with the reason."""
    found = METRICS[gate.metric].lookup(results, gate.class_name)
    label = gate.metric if gate.class_name is None else f"{gate.metric} of class '{gate.class_name}'"
    if found.value is None or math.isnan(found.value):
        note = found.note or f"{label} is not a number in the results"
        return _result(gate, None, False, f"{gate.option} cannot be checked: {note}")
    value = found.value
    passed = value >= gate.threshold if gate.op == UNDER else value <= gate.threshold
    if passed:
        limit = "at least" if gate.op == UNDER else "at most"
    else:
        limit = "under the minimum" if gate.op == UNDER else "over the maximum"
    detail = f" ({found.note})" if found.note else ""
    return _result(gate, value, passed, f"{label} is {_fmt(value)}{detail}, {limit} {_fmt(gate.threshold)}")


def all_passed(results: Iterable[GateResult]) -> bool:
    """Return True when every gate passed (and when there are none)."""
    return all(r.passed for r in results)


def _result(gate: GateSpec, actual: float | None, passed: bool, reason: str) -> GateResult:
    return GateResult(gate.spec, gate.metric, gate.class_name, gate.op, gate.threshold, actual, passed, reason)


def _metric(name: str, spec: str, op: str) -> MetricDef:
    metric = METRICS.get(name.lower().replace("-", "_"))
    if metric is None:
        raise _spec_error(spec, op, f"unknown metric '{name}'{_did_you_mean(name, list(METRICS))}")
    return metric


def _threshold(text: str, metric: MetricDef, spec: str, op: str) -> float:
    percent = text.endswith("%")
    try:
        value = float(text[:-1] if percent else text)
    except ValueError:
        raise _spec_error(spec, op, f"threshold '{text}' is not a number") from None
    if percent:
        if not metric.fraction:
            raise _spec_error(spec, op, f"{metric.name} is a count, not a percentage")
        value /= 100.0
    if not math.isfinite(value) or value < 0:
        raise _spec_error(spec, op, f"threshold '{text}' must be a finite number >= 0")
    if metric.fraction and value > 1:
        hint = f"write {value / 100:g} or {value:g}%, not {text}"
        raise _spec_error(spec, op, f"{metric.name} is a fraction: {hint}")
    return value


def _spec_error(spec: str, op: str, problem: str) -> ReportgenError:
    return ReportgenError(f"--fail-{op} '{spec}': {problem}")


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    shown = ", ".join(f"'{k}'" for k in list(known)[:12])
    return f" (known: {shown}{', ...' if len(known) > 12 else ''})" if known else ""


def _fmt(value: float) -> str:
    return f"{value:.4g}"
