"""Quality gates: ``--fail-under METRIC[:CLASS]=VALUE`` and ``--fail-over ...``, checked against the run's Report.

A gate spec is ``METRIC=THRESHOLD`` or, for a per-class metric, ``METRIC:CLASS=THRESHOLD``. The class
name is everything between the first ``:`` and the last ``=`` (spaces around it dropped), so it may
itself hold ``:`` or ``=``.
Thresholds of fraction metrics may be written ``0.85`` or ``85%``. ``--fail-under`` fails when the value
is below the threshold, ``--fail-over`` when it is above; a value equal to the threshold passes.

Metrics (``METRICS`` below is the one table to extend):

==========================  =========  ======================================================
name                        direction  value, in the Report (as in results.json)
==========================  =========  ======================================================
accuracy                    under      ``metrics.accuracy`` (test split)
macro_f1                    under      ``metrics.macro_f1``
macro_recall                under      mean of the per-class recalls (balanced accuracy)
min_recall / min_f1         under      the worst class's recall / F1
precision:C, recall:C, f1:C under      ``metrics.per_class[...]`` of class C (test split)
images:C                    either     images of class C over all splits
total_images                either     ``dataset.total_images``
skipped_files               over       the ``dataset.skipped`` files (unreadable, left out)
suspected_label_errors      over       ``audit.label_issues.total``
duplicates_across_splits    over       ``audit.duplicates.across_splits``: copies in 2 splits
duplicates_across_classes   over       ``audit.duplicates.across_classes``
duplicates                  over       ``audit.duplicates.total`` (pairs)
slices                      over       ``audit.slices.total``: slices where the model fails more often
ece                         over       ``audit.calibration.ece`` (expected calibration error)
model_vs_probe              under      ``model_check.model_vs_probe``: validation accuracy of the model minus
                                       that of a linear probe on its pretrained features (e.g. ``=0``)
model_unsound               over       1 when the model check's verdict is ``unsound``, else 0 (``=0``)
explanation_unfaithful      over       1 when the explanation check's verdict is not ``faithful``, else 0 (``=0``)
explanation_vs_blob         under      ``explanation_check.vs_blob.mean``: the heat maps' ROAD minus a centred
                                       blob's on the same images
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
from typing import TypeVar

from reportgen.analysis.metrics import ClassMetrics
from reportgen.errors import ReportgenError
from reportgen.report import Report
from reportgen.report.audit import Audit
from reportgen.report.comparison import GateResult

logger = logging.getLogger(__name__)

UNDER, OVER = "under", "over"  # --fail-under, --fail-over


@dataclass(frozen=True)
class Lookup:
    """A metric value found in the results (``value`` None when it is not there), and a note on it."""

    value: float | None
    note: str = ""  # which class for min_*, or why the value is missing


LookupFn = Callable[["Report", str | None], Lookup]  # (report, class name) -> value
B = TypeVar("B")


@dataclass(frozen=True)
class MetricDef:
    """One gateable metric."""

    name: str
    directions: frozenset[str]  # the options that make sense: {UNDER}, {OVER} or both
    fraction: bool  # the value lies in [0, 1]
    per_class: bool
    lookup: LookupFn


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


def _audit(report: Report) -> Audit:
    """The report's audit; under ``--no-audit`` an empty one, every check None."""
    return report.audit or Audit()


def _then(block: B | None, read: Callable[[B], float | None]) -> float | None:
    """``read(block)``, or None when ``block`` is None (its check did not run)."""
    return None if block is None else read(block)


def _field(where: str, read: Callable[[Report], float | None]) -> LookupFn:
    """A run-wide number, ``read`` from the report; ``where`` names it in results.json when it is absent."""

    def lookup(report: Report, _class_name: str | None) -> Lookup:
        value = read(report)
        if value is None:
            return Lookup(None, f"results.json has no {where} (was that check run?)")
        return Lookup(float(value))

    return lookup


def _class_field(read: Callable[[ClassMetrics], float]) -> LookupFn:
    """A per-class test metric, ``read`` from the named class's row."""

    def lookup(report: Report, class_name: str | None) -> Lookup:
        rows = report.metrics.per_class
        row = next((r for r in rows if r.class_name == class_name), None)
        if row is None:
            hint = _did_you_mean(str(class_name), [r.class_name for r in rows])
            return Lookup(None, f"class '{class_name}' is not in the results{hint}")
        return Lookup(float(read(row)))

    return lookup


def _over_classes(read: Callable[[ClassMetrics], float], *, worst: bool) -> LookupFn:
    """The lowest per-class value (noting its class) with ``worst``, else the mean over the classes."""

    def lookup(report: Report, _class_name: str | None) -> Lookup:
        rows = report.metrics.per_class
        if not rows:
            return Lookup(None, "no per-class metrics in the results")
        if not worst:
            return Lookup(sum(float(read(r)) for r in rows) / len(rows))
        lowest = min(rows, key=read)
        return Lookup(float(read(lowest)), f"class '{lowest.class_name}'")

    return lookup


def _audit_count(metric: str, check: str, attr: str) -> MetricDef:
    """A count of the audit block's ``check`` (e.g. ``label_issues.total``) as a fail-over gate metric."""

    def read(report: Report) -> float | None:
        return _then(getattr(_audit(report), check), lambda view: getattr(view, attr))

    return _metric_def(metric, _field(f"audit.{check}.{attr}", read), gate=OVER, fraction=False)


def _class_images(report: Report, class_name: str | None) -> Lookup:
    per_split = [counts[class_name] for counts in report.dataset.split_counts.values() if class_name in counts]
    if not per_split:
        return Lookup(None, f"class '{class_name}' is not in the results")
    return Lookup(float(sum(per_split)))


def _model_unsound(report: Report, _class_name: str | None) -> Lookup:
    check = report.model_check
    if check is None or check.verdict == "unchecked":
        return Lookup(None, "results.json has no model_check verdict (the validation split is empty?)")
    return Lookup(1.0 if check.verdict == "unsound" else 0.0)


def _explanation_unfaithful(report: Report, _class_name: str | None) -> Lookup:
    check = report.explanation_check
    if check is None or check.verdict == "unchecked":
        return Lookup(None, "results.json has no explanation_check verdict (--no-cam or --no-explanation-check?)")
    return Lookup(0.0 if check.verdict == "faithful" else 1.0)


def _metric_def(
    name: str,
    lookup: LookupFn,
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
        _metric_def("accuracy", _field("metrics.accuracy", lambda r: r.metrics.accuracy)),
        _metric_def("macro_f1", _field("metrics.macro_f1", lambda r: r.metrics.macro_f1)),
        _metric_def("macro_recall", _over_classes(lambda m: m.recall, worst=False)),
        _metric_def("min_recall", _over_classes(lambda m: m.recall, worst=True)),
        _metric_def("min_f1", _over_classes(lambda m: m.f1, worst=True)),
        _metric_def("precision", _class_field(lambda m: m.precision), per_class=True),
        _metric_def("recall", _class_field(lambda m: m.recall), per_class=True),
        _metric_def("f1", _class_field(lambda m: m.f1), per_class=True),
        _metric_def("images", _class_images, gate="either", fraction=False, per_class=True),
        _metric_def(
            "total_images",
            _field("dataset.total_images", lambda r: r.dataset.total_images),
            gate="either",
            fraction=False,
        ),
        _metric_def(
            "skipped_files", _field("dataset.skipped", lambda r: len(r.dataset.skipped)), gate=OVER, fraction=False
        ),
        _audit_count("suspected_label_errors", "label_issues", "total"),
        _audit_count("duplicates_across_splits", "duplicates", "across_splits"),
        _audit_count("duplicates_across_classes", "duplicates", "across_classes"),
        _audit_count("duplicates", "duplicates", "total"),
        _audit_count("slices", "slices", "total"),
        _metric_def(
            "ece", _field("audit.calibration.ece", lambda r: _then(_audit(r).calibration, lambda c: c.ece)), gate=OVER
        ),
        _metric_def(
            "model_vs_probe",
            _field("model_check.model_vs_probe", lambda r: _then(r.model_check, lambda c: c.model_vs_probe)),
            fraction=False,
        ),
        _metric_def("model_unsound", _model_unsound, gate=OVER, fraction=False),
        _metric_def("explanation_unfaithful", _explanation_unfaithful, gate=OVER, fraction=False),
        _metric_def(
            "explanation_vs_blob",
            _field("explanation_check", lambda r: _then(r.explanation_check, lambda c: c.vs_blob.mean)),
            fraction=False,
        ),
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


def evaluate_gates(gates: Iterable[GateSpec], report: Report) -> tuple[GateResult, ...]:
    """Check each gate against the run's ``report`` (what results.json holds)."""
    checked = tuple(evaluate_gate(gate, report) for gate in gates)
    for result in checked:
        log = logger.info if result.passed else logger.warning
        log("gate %s: %s", "passed" if result.passed else "FAILED", result.reason)
    return checked


def evaluate_gate(gate: GateSpec, report: Report) -> GateResult:
    """Check one gate; a value the report does not hold fails the gate with the reason."""
    found = METRICS[gate.metric].lookup(report, gate.class_name)
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
