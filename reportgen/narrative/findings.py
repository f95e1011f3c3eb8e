"""Up to five key findings for the summary page, from the report's numbers and the audit's facts (pure).

A finding states something the data could have said otherwise; "nothing found" results are the audit-at-a-glance
table's (``reportgen.narrative.glance``), not findings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from reportgen.analysis.classes import class_totals
from reportgen.narrative.classes import CONFIDENT
from reportgen.narrative.dataset import disagreement_finding
from reportgen.narrative.format import fmt_percent, fmt_plural, has_have, is_are, join_words, listed, sentence

if TYPE_CHECKING:
    from reportgen.analysis.classes import Confusion
    from reportgen.analysis.metrics import ClassMetrics
    from reportgen.report import GalleryImage, Report
    from reportgen.report.audit import ClassAuditFacts

UNDER_REPRESENTED_RULE = "fewer than half as many images as the median of the other classes, counting all splits."
MAX_FINDINGS = 5


def key_findings(
    report: Report,
    *,
    facts: Mapping[str, ClassAuditFacts] | None = None,
    audit_lines: Sequence[str] = (),
    confident: float = CONFIDENT,
) -> tuple[str, ...]:
    """Up to five findings for the summary page, most important first, in a fixed order.

    The order: accuracy and the weakest classes; test images with copies in training (they undermine
    every other figure); suspected label errors (confident mistakes in the galleries, the label check);
    the largest confusions; under-represented classes; other audit facts (shortcut flags, cross-class
    duplicates, image health); then ``audit_lines``, of which the first always gets a place when given.
    Findings that do not apply are skipped, so there may be fewer than three, or none.

    Args:
        report: the report, with metrics, sections, galleries and class facts (``with_class_facts``) filled in.
        facts: class name -> what the data-defect checks found, if they ran.
        audit_lines: ready sentences from other audit checks, most important first.
        confident: score above which a misclassified gallery image counts as a confident mistake.
    """
    facts = facts or {}
    core = [
        s
        for s in (
            _headline(report),
            _leakage_finding(report, facts),
            _mislabel_finding(report, facts, confident),
            disagreement_finding(report.dataset),
            _confusion_finding(report),
            _representation_finding(report),
            *_other_audit_findings(report, facts),
        )
        if s
    ]
    chosen = core[: MAX_FINDINGS - (1 if audit_lines else 0)]
    chosen += [sentence(s) for s in audit_lines if s.strip()][: MAX_FINDINGS - len(chosen)]
    return tuple(chosen)


def _diagonal(report: Report) -> tuple[int, int]:
    """(correct, total) test images."""
    matrix = report.metrics.confusion
    return sum(int(matrix[i][i]) for i in range(len(matrix))), sum(int(sum(row)) for row in matrix)


def _headline(report: Report) -> str:
    correct, total = _diagonal(report)
    if total == 0:
        return "The test split holds no images, so no test metric can be given."
    if correct == total:
        return f"All {total} test images are classified correctly."
    text = f"Test accuracy is {fmt_percent(correct / total)} ({correct} of {total} test images)"
    weakest = _weakest(report)
    if weakest:
        matrix = report.metrics.confusion
        parts = [f"{m.class_name} (F1 {fmt_percent(m.f1)}, recall {matrix[i][i]} of {m.support})" for i, m in weakest]
        text += f"; the weakest {'class is' if len(parts) == 1 else 'classes are'} {join_words(parts)}"
    return text + "."


def _weakest(report: Report, limit: int = 2) -> list[tuple[int, ClassMetrics]]:
    """Up to ``limit`` classes with test images and F1 below 1 and below the macro F1, lowest F1 first."""
    per_class = report.metrics.per_class
    ranked = sorted(
        ((i, m) for i, m in enumerate(per_class) if m.support > 0 and m.f1 < 1),
        key=lambda im: (im[1].f1, im[1].recall, im[0]),
    )
    below = [im for im in ranked if im[1].f1 < report.metrics.macro_f1]
    return (below or ranked[:1])[:limit]


def _leakage_finding(report: Report, facts: Mapping[str, ClassAuditFacts]) -> str | None:
    per_class = {n: facts[n].leaked_test_images for n in report.dataset.class_names if n in facts}
    total = sum(per_class.values())
    if not total:
        return None
    return (
        f"{fmt_plural(total, 'test image')} {has_have(total)} an exact or near copy in the training "
        f"split ({listed(per_class, '{n} {name}')}); those results do not measure performance on new images."
    )


def _mislabel_finding(report: Report, facts: Mapping[str, ClassAuditFacts], confident: float) -> str | None:
    sure = _confident_mistakes(report, confident)
    sentences = []
    if sure:
        pairs = Counter(f"{g.true_class} as {g.predicted_class}" for g in sure)
        check = "check its label" if len(sure) == 1 else "check their labels"
        sentences.append(
            f"Among the test images in the class galleries, {len(sure)} {is_are(len(sure))} misclassified with a score "
            f"above {confident:g} ({listed(pairs)}): {check} first."
        )
    suspects = {n: facts[n].label_suspects for n in report.dataset.class_names if n in facts}
    total = sum(suspects.values())
    if total:
        images, classes = fmt_plural(total, "image"), listed(suspects, "{n} {name}")
        sentences.append(f"The label check flags {images} as likely mislabelled ({classes}).")
    return " ".join(sentences) or None


def _confident_mistakes(report: Report, confident: float) -> list[GalleryImage]:
    """Misclassified gallery images scored above ``confident`` for the predicted class, each image once."""
    seen: set[str] = set()
    sure = []
    for section in report.classes:
        for g in (*section.bottom, *section.top):
            if not g.correct and g.predicted_score > confident and g.rel_path not in seen:
                seen.add(g.rel_path)
                sure.append(g)
    return sure


def _confusion_finding(report: Report) -> str | None:
    names = report.dataset.class_names
    matrix = report.metrics.confusion
    cells = [c for c in report.top_confusions if c.count > 0]
    if not cells:
        return None
    first = cells[0]
    t, p = names.index(first.true_class), names.index(first.predicted_class)
    text = f"The most frequent confusion is {_confusion_phrase(first, matrix[t])}"
    if matrix[p][t]:
        text += f"; {matrix[p][t]} of {sum(matrix[p])} {first.predicted_class} test images go the other way"
    rest = [c for c in cells[1:] if (c.true_class, c.predicted_class) != (first.predicted_class, first.true_class)]
    if rest:
        second = rest[0]
        text += f". Next comes {_confusion_phrase(second, matrix[names.index(second.true_class)])}"
    return text + "."


def _confusion_phrase(cell: Confusion, row: Sequence[int]) -> str:
    return (
        f"{cell.true_class} predicted as {cell.predicted_class} "
        f"({cell.count} of {sum(row)} {cell.true_class} test images, {fmt_percent(cell.fraction)})"
    )


def _representation_finding(report: Report) -> str | None:
    flagged = report.dataset.under_represented
    if not flagged:
        return None
    totals = class_totals(report.dataset.split_counts)
    named = [f"{n} ({fmt_plural(totals.get(n, 0), 'image')})" for n in flagged]
    text = (
        f"{fmt_plural(len(flagged), 'class', 'classes')} {is_are(len(flagged))} under-represented "
        f"({UNDER_REPRESENTED_RULE.rstrip('.')}): {join_words(named)}"
    )
    recall_in = [m.recall for m in report.metrics.per_class if m.class_name in flagged and m.support > 0]
    recall_out = [m.recall for m in report.metrics.per_class if m.class_name not in flagged and m.support > 0]
    if recall_in and recall_out:
        mean_in, mean_out = sum(recall_in) / len(recall_in), sum(recall_out) / len(recall_out)
        subject = "its recall is" if len(recall_in) == 1 else "their average recall is"
        mean_in_text, mean_out_text = fmt_percent(mean_in), fmt_percent(mean_out)
        text += f"; {subject} {mean_in_text}, against {mean_out_text} for the other classes"
    return text + "."


def _other_audit_findings(report: Report, facts: Mapping[str, ClassAuditFacts]) -> list[str]:
    ordered = [(n, facts[n]) for n in report.dataset.class_names if n in facts]
    found = []
    shortcut = [n for n, f in ordered if f.shortcut]
    if len(shortcut) == 1:
        reason = facts[shortcut[0]].shortcut_reason.strip()
        found.append(f"The shortcut check flags {shortcut[0]}" + (f": {sentence(reason)}" if reason else "."))
    elif shortcut:
        found.append(f"The shortcut check flags {len(shortcut)} classes: {join_words(shortcut)}.")
    copies = {n: f.cross_class_duplicates for n, f in ordered}
    if sum(copies.values()):
        n = sum(copies.values())
        found.append(
            f"{fmt_plural(n, 'image')} {has_have(n)} an exact or near copy labelled as another class "
            f"({listed(copies, '{n} {name}')})."
        )
    health = {n: f.health_issues for n, f in ordered}
    if sum(health.values()):
        n = sum(health.values())
        images, classes = fmt_plural(n, "image"), listed(health, "{n} {name}")
        found.append(f"{images} {'fails' if n == 1 else 'fail'} an image-health check ({classes}).")
    return found
