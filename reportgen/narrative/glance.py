"""The audit at a glance on page 1: each check's result in a few words, its count and its tone (pure).

``reportgen.render.structure`` decides which rows exist, in which order, and where each links; this module
words the result of each check from the facts the report already holds (``report.audit``, the data set).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reportgen.analysis.faithfulness import FAITHFUL, NOT_INFORMATIVE, WEAK
from reportgen.narrative.audit import HEALTH_CHECK_TITLES
from reportgen.narrative.explanation import verdict_words
from reportgen.narrative.format import fmt_number, fmt_plural, join_words, listed

if TYPE_CHECKING:
    from reportgen.report import Report
    from reportgen.report.audit import (
        CalibrationCheck,
        DuplicateCheck,
        HealthCheck,
        LabelCheck,
        OutlierCheck,
        ShortcutCheck,
        SliceCheck,
        StampCheck,
    )

GOOD, WARN, BAD, NOT_RUN = "good", "warn", "bad", ""  # nothing found; worth a look; undermines the results
NO_AUDIT = "did not run (--no-audit)"
Line = tuple[str, int | None, str]  # (verdict, count, tone)


@dataclass(frozen=True)
class GlanceRow:
    """One check on page 1: its name, its result in words, the count behind it, the tone and its section."""

    check: str
    verdict: str
    count: int | None  # None: the result is not a count (calibration) or the check did not run
    tone: str  # GOOD, WARN, BAD or NOT_RUN (the CSS modifier)
    anchor: str  # HTML id of the section that details it; "" for none


def glance_rows(report: Report, checks: Sequence[tuple[str, str, str]]) -> tuple[GlanceRow, ...]:
    """A row per ``(key, check in words, anchor)``, in that order.

    ``key`` names a field of ``Audit`` (its check's result, or "did not run" with the audit's reason; a check
    this module has no words for says "ran: see its section"), "balance" (the data set's under-represented
    classes, with or without the audit) or "audit" (the audit as a whole did not run).
    """
    return tuple(GlanceRow(check, *_line(report, key), anchor) for key, check, anchor in checks)


def _line(report: Report, key: str) -> Line:
    """(verdict, count, tone) of one check."""
    if key == "balance":
        return _balance(report)
    if key == "explanation":
        return _explanation(report)
    audit = report.audit
    if audit is None or key == "audit":
        return NO_AUDIT, None, NOT_RUN
    view = getattr(audit, key, None)
    if view is None:
        why = audit.not_run.get(key, "")
        return (f"did not run: {why}" if why else "did not run"), None, NOT_RUN
    if key not in _WORDS:  # a check added without words for page 1: its section tells
        return "ran: see its section", None, NOT_RUN
    return _WORDS[key](view)


def _labels(ls: LabelCheck) -> Line:
    likely, review = ls.total, len(ls.worth_a_look)
    words = fmt_plural(likely, "likely wrong label") if likely else "no likely wrong label"
    words += f", {review} worth a look" if review else ""
    if ls.caution:
        words += " (weak features: look before relabelling)"
    return words, likely, WARN if likely else GOOD


def _outliers(oc: OutlierCheck) -> Line:
    if not oc.total:
        return "every image is near a class", 0, GOOD
    return f"{fmt_plural(oc.total, 'image')} far from every class", oc.total, WARN


def _duplicates(d: DuplicateCheck) -> Line:
    near = " (exact copies only: near copies not sought)" if d.threshold is None else ""
    if not d.total:
        return f"no copies{near}", 0, GOOD
    parts = [f"{d.across_splits} across splits (leakage)"] if d.across_splits else []
    parts += [f"{d.across_classes} across classes (one label is wrong)"] if d.across_classes else []
    words = fmt_plural(d.total, "pair of copies", "pairs of copies")
    words += f": {join_words(parts)}" if parts else ", none across splits or classes"
    return words + near, d.total, BAD if d.across_splits else WARN


def _calibration(c: CalibrationCheck) -> Line:
    if not c.n_images:
        return "no test images to measure", None, NOT_RUN
    ece = f"ECE {fmt_number(c.ece)}"
    if c.readable_as_probabilities:
        return f"scores readable as probabilities ({ece})", None, GOOD
    how = "mis-calibrated" if c.direction == "mixed" else c.direction
    return f"scores {how} ({ece}): read them as a ranking", None, WARN


def _shortcuts(sc: ShortcutCheck) -> Line:
    judged = sum(c.n_maps >= sc.min_maps for c in sc.classes)
    if sc.flagged:
        return _flagged(sc.flagged)
    if sc.worth_a_look:
        names = join_words(list(sc.worth_a_look))
        return f"no class flagged; evidence off-centre but not relied on: {names} (worth a look)", 0, GOOD
    if not judged:
        return f"no class has the {sc.min_maps} Grad-CAM maps needed to judge it", None, NOT_RUN
    if judged < len(sc.classes):
        return f"no class flagged ({judged} of {len(sc.classes)} had enough maps to judge)", 0, GOOD
    return "no class flagged", 0, GOOD


def _stamps(st: StampCheck) -> Line:
    if st.flagged:
        return _flagged(st.flagged)
    return "no fixed pattern in any class", 0, GOOD


def _flagged(names: Sequence[str]) -> Line:
    return f"{fmt_plural(len(names), 'class', 'classes')} flagged: {join_words(list(names))}", len(names), WARN


def _health(h: HealthCheck) -> Line:
    if not h.total:
        return "no problem found", 0, GOOD
    checks = listed({HEALTH_CHECK_TITLES.get(k, k.replace("_", " ")): n for k, n in h.counts.items()})
    return f"{fmt_plural(h.total, 'image')} {'fails' if h.total == 1 else 'fail'} a check ({checks})", h.total, WARN


def _slices(sl: SliceCheck) -> Line:
    if not sl.total:
        return f"no slice fails more often than the rest ({fmt_plural(sl.tested, 'slice')} tested)", 0, GOOD
    first = sl.slices[0]
    words = f"{fmt_plural(sl.total, 'slice')} where the model fails more often; strongest: {first.description}"
    return words, sl.total, WARN


def _explanation(report: Report) -> Line:
    check = report.explanation_check
    if check is None:
        return "did not run", None, NOT_RUN
    tone = {FAITHFUL: GOOD, WEAK: WARN, NOT_INFORMATIVE: BAD}.get(check.verdict, NOT_RUN)
    gain = fmt_number(check.vs_blob.mean, 3)
    return f"{verdict_words(check)} (ROAD {gain} above a centred blob)", None, tone


def _balance(report: Report) -> Line:
    flagged = report.dataset.under_represented
    if not flagged:
        return "no class under-represented", 0, GOOD
    counts = report.dataset.split_counts.values()
    named = join_words([f"{n} ({fmt_plural(sum(c.get(n, 0) for c in counts), 'image')})" for n in flagged])
    return f"{fmt_plural(len(flagged), 'class', 'classes')} under-represented: {named}", len(flagged), WARN


_WORDS = {
    "label_issues": _labels,
    "outliers": _outliers,
    "duplicates": _duplicates,
    "calibration": _calibration,
    "shortcuts": _shortcuts,
    "stamps": _stamps,
    "health": _health,
    "slices": _slices,
}
