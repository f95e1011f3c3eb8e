"""Facts -> sentences: per-class paragraphs, key findings and caveats, generated only from the report's numbers.

Pure functions, no I/O. Every sentence states a count or a score the report also shows; class names are
written as given (escaping them is the renderer's job).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reportgen.analysis.metrics import ClassMetrics, Metrics
from reportgen.analysis.model_check import UNSOUND
from reportgen.audit import ClassAuditFacts
from reportgen.report import ClassSection, Confusion, GalleryImage, Report
from reportgen.verdict import UNSOUND_CAVEAT, UNSOUND_FINDING, model_notes, model_verdict

CONFIDENT = 0.9  # a mistake scored above this for the predicted class is worth a look at its label
UNDER_REPRESENTED_RULE = "fewer than half as many images as the median of the other classes, counting all splits."
MAX_LISTED = 3  # classes named in one sentence before "and N more"
MAX_FINDINGS = 5
MIN_FINDINGS = 3


# ---------------------------------------------------------------- counts and formatting


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _pct(fraction: float) -> str:
    """``0.8 -> '80%'``; one decimal where rounding would say 0% or 100% of a non-zero / non-full share."""
    text = f"{100 * fraction:.0f}%"
    if (text == "100%" and fraction < 1) or (text == "0%" and fraction > 0):
        text = f"{100 * fraction:.1f}%"
    return text


def _score(value: float) -> str:
    text = f"{value:.2f}"
    return f"{value:.3f}" if text == "1.00" and value < 1 else text


def _join(items: Sequence[str]) -> str:
    """``['a', 'b', 'c'] -> 'a, b and c'``."""
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _ranked(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Non-zero counts, largest first; ties keep the mapping's order."""
    return sorted(((k, v) for k, v in counts.items() if v > 0), key=lambda kv: -kv[1])


def _listed(counts: Mapping[str, int], fmt: str = "{n} {name}") -> str:
    """``{'a': 2, 'b': 1} -> '2 a, 1 b'``, at most MAX_LISTED names then "N more"."""
    ranked = _ranked(counts)
    parts = [fmt.format(n=n, name=name) for name, n in ranked[:MAX_LISTED]]
    rest = sum(n for _, n in ranked[MAX_LISTED:])
    if rest:
        parts.append(f"{rest} more")
    return ", ".join(parts)


def class_totals(split_counts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Images per class over all splits, from ``split -> class name -> images``."""
    totals: dict[str, int] = {}
    for counts in split_counts.values():
        for name, n in counts.items():
            totals[name] = totals.get(name, 0) + int(n)
    return totals


# ---------------------------------------------------------------- under-representation


def under_represented(class_totals: Mapping[str, int]) -> tuple[tuple[str, ...], str]:
    """Classes with fewer than half as many images as the median of the *other* classes, and the rule in words.

    Leaving the class itself out of the median keeps a small class from lowering its own yardstick; with
    two classes the rule reads "fewer than half as many images as the other class". A single class is
    never flagged. Names keep ``class_totals``' order.

    Args:
        class_totals: class name -> images of that class (all splits).
    """
    flagged = tuple(name for name, n in class_totals.items() if n < under_represented_reference(class_totals, name) / 2)
    return flagged, UNDER_REPRESENTED_RULE


def under_represented_reference(class_totals: Mapping[str, int], class_name: str) -> float:
    """The median image count of the classes other than ``class_name`` (0 when there are none)."""
    others = [n for name, n in class_totals.items() if name != class_name]
    return float(statistics.median(others)) if others else 0.0


# ---------------------------------------------------------------- confusions


def class_confusions(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], class_idx: int
) -> tuple[Confusion, ...]:
    """Class ``class_idx``'s test images predicted as other classes, largest first, ties in class order.

    ``confusion`` is ``(C, C)`` counts indexed ``[true][predicted]``; fractions are of the class's test images.
    """
    row = confusion[class_idx]
    total = sum(row)
    cells = [
        Confusion(class_names[class_idx], class_names[p], int(n), round(n / total, 6))
        for p, n in enumerate(row)
        if p != class_idx and n > 0
    ]
    return tuple(sorted(cells, key=lambda c: -c.count))


def incoming_confusions(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], class_idx: int
) -> tuple[Confusion, ...]:
    """Other classes' test images predicted as class ``class_idx``, largest first, ties in class order.

    Fractions are of the *true* class's test images.
    """
    cells = []
    for t, row in enumerate(confusion):
        n = row[class_idx]
        if t != class_idx and n > 0:
            cells.append(Confusion(class_names[t], class_names[class_idx], int(n), round(n / sum(row), 6)))
    return tuple(sorted(cells, key=lambda c: -c.count))


def confusion_cells(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], limit: int = 5
) -> tuple[Confusion, ...]:
    """The largest off-diagonal cells, largest count first, then largest fraction, then class order."""
    cells = [c for i in range(len(class_names)) for c in class_confusions(confusion, class_names, i)]
    order = {name: i for i, name in enumerate(class_names)}
    cells.sort(key=lambda c: (-c.count, -c.fraction, order[c.true_class], order[c.predicted_class]))
    return tuple(cells[:limit])


# ---------------------------------------------------------------- one class


@dataclass(frozen=True)
class _Counts:
    """Test-split counts for one class."""

    correct: int
    support: int
    predicted_as: int | None  # test images predicted as the class; None when it cannot be recovered


def _counts(section: ClassSection, class_idx: int, metrics: Metrics | None) -> _Counts:
    if metrics is not None:
        matrix = metrics.confusion
        column = sum(int(row[class_idx]) for row in matrix)
        return _Counts(int(matrix[class_idx][class_idx]), int(sum(matrix[class_idx])), column)
    m = section.metrics
    correct = round(m.recall * m.support)
    return _Counts(correct, m.support, round(correct / m.precision) if m.precision > 0 else None)


def class_narrative(
    section: ClassSection,
    *,
    total_test: int,
    class_names: Sequence[str],
    facts: ClassAuditFacts | None = None,
    metrics: Metrics | None = None,
    confident: float = CONFIDENT,
) -> tuple[str, ...]:
    """The class's paragraph as sentences, each stating only what the numbers show.

    Args:
        section: the class's metrics, split counts, galleries, ``confused_with`` and ``under_represented``.
        total_test: test images of all classes.
        class_names: every class, in label order.
        facts: what the data-defect checks found for this class, if they ran.
        metrics: the whole test-set metrics; needed for exact precision counts, for the other classes'
            images predicted as this class, for ``confused_with`` when the section has none, and for the
            under-representation comparison (median of the other classes, recall averaged over classes).
        confident: score above which a misclassified lowest-scoring image is called a confident mistake.
    """
    name = section.class_name
    class_idx = list(class_names).index(name)
    counts = _counts(section, class_idx, metrics)
    if counts.support == 0:
        body = [_no_test_images(name, total_test, counts)]
    elif counts.correct == counts.support and counts.predicted_as == counts.support:
        body = [_perfect(name, counts.support)]
    else:
        body = [
            _recall_sentence(name, counts),
            _precision_sentence(name, counts),
            *_confusion_sentences(section, class_idx, class_names, metrics),
            *_bottom_sentences(section, confident),
        ]
    body += _representation_sentences(section, metrics)
    body += _facts_sentences(name, facts)
    return tuple(s for s in body if s)


def _no_test_images(name: str, total_test: int, counts: _Counts) -> str:
    text = f"None of the {total_test} test images is a {name} image, so its recall and precision cannot be measured"
    if counts.predicted_as:
        n = counts.predicted_as
        text += f"; {_plural(n, 'test image')} of other classes {_is(n)} predicted as {name}"
    return text + "."


def _is(count: int) -> str:
    return "is" if count == 1 else "are"


def _has(count: int) -> str:
    return "has" if count == 1 else "have"


def _perfect(name: str, support: int) -> str:
    subject = f"The single {name} test image is" if support == 1 else f"All {support} {name} test images are"
    return (
        f"{subject} classified correctly, and no test image of another class is predicted as {name} "
        "(recall and precision 100%)."
    )


def _recall_sentence(name: str, c: _Counts) -> str:
    recall = _pct(c.correct / c.support)
    if c.support == 1:
        outcome = "classified correctly" if c.correct else "misclassified"
        return f"The single {name} test image is {outcome} (recall {recall})."
    if c.correct == c.support:
        return f"All {c.support} {name} test images are classified correctly (recall 100%)."
    if c.correct == 0:
        return f"None of the {c.support} {name} test images is classified correctly (recall 0%)."
    return f"The model classifies {c.correct} of the {c.support} {name} test images correctly (recall {recall})."


def _precision_sentence(name: str, c: _Counts) -> str:
    if c.predicted_as is None:
        return f"No test image predicted as {name} is labelled {name} (precision 0%)."
    if c.predicted_as == 0:
        return f"No test image is predicted as {name} (precision counted as 0%)."
    if c.correct == c.predicted_as:
        subject = "The single test image" if c.predicted_as == 1 else f"All {c.predicted_as} test images"
        return f"{subject} predicted as {name} {_is(c.predicted_as)} labelled {name} (precision 100%)."
    precision = _pct(c.correct / c.predicted_as)
    return (
        f"Of the {c.predicted_as} test images predicted as {name}, {c.correct} {_is(c.correct)} labelled {name} "
        f"(precision {precision})."
    )


def _confusion_sentences(
    section: ClassSection, class_idx: int, class_names: Sequence[str], metrics: Metrics | None
) -> list[str]:
    outgoing = section.confused_with
    if not outgoing and metrics is not None:
        outgoing = class_confusions(metrics.confusion, class_names, class_idx)
    sentences = [_outgoing_sentence(section.class_name, section.metrics.support, outgoing)] if outgoing else []
    incoming = incoming_confusions(metrics.confusion, class_names, class_idx) if metrics is not None else ()
    if incoming:
        sentences.append(_incoming_sentence(section.class_name, incoming))
    return sentences


def _outgoing_sentence(name: str, support: int, cells: Sequence[Confusion]) -> str:
    first, *others = cells[:MAX_LISTED]
    head = (
        f"{first.count} of the {support} {name} test images ({_pct(first.fraction)}) "
        f"{_is(first.count)} predicted as {first.predicted_class}"
    )
    parts = [head] + [f"{c.count} ({_pct(c.fraction)}) as {c.predicted_class}" for c in others]
    rest = cells[MAX_LISTED:]
    if rest:
        parts.append(f"{sum(c.count for c in rest)} more as {_plural(len(rest), 'other class', 'other classes')}")
    return _join(parts) + "."


def _incoming_sentence(name: str, cells: Sequence[Confusion]) -> str:
    parts = [_plural(c.count, f"{c.true_class} test image") for c in cells[:MAX_LISTED]]
    rest = cells[MAX_LISTED:]
    if rest:
        n = sum(c.count for c in rest)
        parts.append(f"{_plural(n, 'test image')} of {_plural(len(rest), 'other class', 'other classes')}")
    return f"In the other direction, {name} is predicted for {_join(parts)}."


def _bottom_sentences(section: ClassSection, confident: float) -> list[str]:
    bottom, name = section.bottom, section.class_name
    if not bottom:
        return []
    wrong = [g for g in bottom if not g.correct]
    if not wrong:
        lowest = min(g.score for g in bottom)
        return [
            f"Its {len(bottom)} lowest-scoring test images are all classified correctly "
            f"(lowest {name} score {_score(lowest)})."
        ]
    parts = [_as_class(pred, images) for pred, images in _by_prediction(wrong)]
    n = len(wrong)
    sentences = [f"Of its {len(bottom)} lowest-scoring test images, {n} {_is(n)} misclassified: {_join(parts)}."]
    sure = [g for g in wrong if g.predicted_score > confident]
    if sure:
        sentences.append(_confident_sentence(name, len(bottom), sure, confident))
    return sentences


def _by_prediction(images: Sequence[GalleryImage]) -> list[tuple[str, list[GalleryImage]]]:
    """Images grouped by predicted class, largest group first; ties in order of first appearance."""
    groups: dict[str, list[GalleryImage]] = {}
    for g in images:
        groups.setdefault(g.predicted_class, []).append(g)
    return sorted(groups.items(), key=lambda kv: -len(kv[1]))


def _as_class(predicted: str, images: Sequence[GalleryImage]) -> str:
    low, high = min(g.predicted_score for g in images), max(g.predicted_score for g in images)
    scores = f"score {_score(low)}" if _score(low) == _score(high) else f"scores {_score(low)}–{_score(high)}"
    return f"{len(images)} as {predicted} ({predicted} {scores})"


def _confident_sentence(name: str, k: int, sure: Sequence[GalleryImage], confident: float) -> str:
    groups = _by_prediction(sure)
    n = len(sure)
    check = "check its label" if n == 1 else "check their labels"
    head = f"{n} of the {k} lowest-scoring {name} test images {_is(n)} predicted as"
    if len(groups) == 1:
        return f"{head} {groups[0][0]} with a score above {confident:g}: {check}."
    split = ", ".join(f"{len(images)} as {pred}" for pred, images in groups)
    return f"{head} another class with a score above {confident:g} ({split}): {check}."


def _representation_sentences(section: ClassSection, metrics: Metrics | None) -> list[str]:
    if not section.under_represented:
        return []
    name, m = section.class_name, section.metrics
    total = sum(section.split_counts.values())
    train = section.split_counts.get("train")
    text = f"With {total} images in all" + (f" ({train} for training)" if train is not None else "")
    text += f", {name} is under-represented"
    if metrics is None:
        return [text + "."]
    reference = under_represented_reference(class_totals(metrics.split_counts), name)
    text += f" (the other classes have a median of {reference:g})"
    recalls = [c.recall for c in metrics.per_class if c.support > 0]
    if m.support == 0 or not recalls:
        return [text + "."]
    mean = sum(recalls) / len(recalls)
    if m.recall < mean:
        text += f", and its recall of {_pct(m.recall)} is below the average over classes ({_pct(mean)})"
        return [text + f": more {name} images may help."]
    return [text + f", but its recall of {_pct(m.recall)} is not below the average over classes ({_pct(mean)})."]


def _facts_sentences(name: str, facts: ClassAuditFacts | None) -> list[str]:
    if facts is None:
        return []
    sentences = []
    if facts.label_suspects:
        suggested = f" ({_listed(facts.suggested_labels, '{n} suggested {name}')})" if facts.suggested_labels else ""
        sentences.append(
            f"The label check flags {_plural(facts.label_suspects, f'{name} image')} as likely mislabelled{suggested}."
        )
    if facts.leaked_test_images:
        n = facts.leaked_test_images
        sentences.append(
            f"{_plural(n, f'{name} test image')} {_has(n)} an exact or near copy in the training split, "
            f"so {'it does' if n == 1 else 'they do'} not measure generalisation."
        )
    if facts.cross_class_duplicates:
        n = facts.cross_class_duplicates
        partners = f" ({_listed(facts.duplicate_classes)})" if facts.duplicate_classes else ""
        sentences.append(
            f"{_plural(n, f'{name} image')} {_has(n)} an exact or near copy labelled as another class{partners}."
        )
    if facts.shortcut:
        reason = f": {_sentence(facts.shortcut_reason)}" if facts.shortcut_reason.strip() else "."
        sentences.append(f"The shortcut check flags {name}{reason}")
    if facts.health_issues:
        n = facts.health_issues
        sentences.append(f"{_plural(n, f'{name} image')} {'fails' if n == 1 else 'fail'} an image-health check.")
    return sentences


# ---------------------------------------------------------------- the summary page


def key_findings(
    report: Report,
    *,
    facts: Mapping[str, ClassAuditFacts] | None = None,
    audit_lines: Sequence[str] = (),
    confident: float = CONFIDENT,
) -> tuple[str, ...]:
    """Three to five findings for the summary page, most important first, in a fixed order.

    The order: accuracy and the weakest classes; test images with copies in training (they undermine
    every other figure); suspected label errors (confident mistakes in the galleries, the label check);
    the largest confusions; under-represented classes; other audit facts (shortcut flags, cross-class
    duplicates, image health); then ``audit_lines``, of which the first always gets a place when given.
    Findings that do not apply are skipped; below three, factual "nothing found" sentences are added.

    Args:
        report: the report, with metrics, sections and galleries filled in.
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
            _confusion_finding(report),
            _representation_finding(report),
            *_other_audit_findings(report, facts),
        )
        if s
    ]
    chosen = core[: MAX_FINDINGS - (1 if audit_lines else 0)]
    chosen += [_sentence(s) for s in audit_lines if s.strip()][: MAX_FINDINGS - len(chosen)]
    for s in _negative_findings(report, confident):
        if len(chosen) >= MIN_FINDINGS:
            break
        chosen.append(s)
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
    text = f"Test accuracy is {_pct(correct / total)} ({correct} of {total} test images)"
    weakest = _weakest(report)
    if weakest:
        matrix = report.metrics.confusion
        parts = [f"{m.class_name} (F1 {m.f1:.2f}, recall {matrix[i][i]} of {m.support})" for i, m in weakest]
        text += f"; the weakest {'class is' if len(parts) == 1 else 'classes are'} {_join(parts)}"
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
        f"{_plural(total, 'test image')} {_has(total)} an exact or near copy in the training "
        f"split ({_listed(per_class, '{n} {name}')}); those results do not measure performance on new images."
    )


def _mislabel_finding(report: Report, facts: Mapping[str, ClassAuditFacts], confident: float) -> str | None:
    sure = _confident_mistakes(report, confident)
    sentences = []
    if sure:
        pairs = Counter(f"{g.true_class} as {g.predicted_class}" for g in sure)
        check = "check its label" if len(sure) == 1 else "check their labels"
        sentences.append(
            f"Among the test images in the class galleries, {len(sure)} {_is(len(sure))} misclassified with a score "
            f"above {confident:g} ({_listed(pairs)}): {check} first."
        )
    suspects = {n: facts[n].label_suspects for n in report.dataset.class_names if n in facts}
    total = sum(suspects.values())
    if total:
        listed = _listed(suspects, "{n} {name}")
        sentences.append(f"The label check flags {_plural(total, 'image')} as likely mislabelled ({listed}).")
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
    cells = [c for c in (report.top_confusions or confusion_cells(matrix, names)) if c.count > 0]
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
        f"({cell.count} of {sum(row)} {cell.true_class} test images, {_pct(cell.fraction)})"
    )


def _flagged(report: Report) -> tuple[tuple[str, ...], str, dict[str, int]]:
    """Under-represented classes, the rule and the class totals (the rule is applied when the report has none)."""
    totals = class_totals(report.dataset.split_counts)
    totals = {n: totals.get(n, 0) for n in report.dataset.class_names}
    if report.dataset.under_represented_rule:
        return report.dataset.under_represented, report.dataset.under_represented_rule, totals
    return (*under_represented(totals), totals)


def _representation_finding(report: Report) -> str | None:
    flagged, rule, totals = _flagged(report)
    if not flagged:
        return None
    named = [f"{n} ({_plural(totals[n], 'image')})" for n in flagged]
    text = (
        f"{_plural(len(flagged), 'class', 'classes')} {_is(len(flagged))} under-represented "
        f"({rule.rstrip('.')}): {_join(named)}"
    )
    recall_in = [m.recall for m in report.metrics.per_class if m.class_name in flagged and m.support > 0]
    recall_out = [m.recall for m in report.metrics.per_class if m.class_name not in flagged and m.support > 0]
    if recall_in and recall_out:
        mean_in, mean_out = sum(recall_in) / len(recall_in), sum(recall_out) / len(recall_out)
        subject = "its recall is" if len(recall_in) == 1 else "their average recall is"
        text += f"; {subject} {_pct(mean_in)}, against {_pct(mean_out)} for the other classes"
    return text + "."


def _other_audit_findings(report: Report, facts: Mapping[str, ClassAuditFacts]) -> list[str]:
    ordered = [(n, facts[n]) for n in report.dataset.class_names if n in facts]
    found = []
    shortcut = [n for n, f in ordered if f.shortcut]
    if len(shortcut) == 1:
        reason = facts[shortcut[0]].shortcut_reason.strip()
        found.append(f"The shortcut check flags {shortcut[0]}" + (f": {_sentence(reason)}" if reason else "."))
    elif shortcut:
        found.append(f"The shortcut check flags {len(shortcut)} classes: {_join(shortcut)}.")
    copies = {n: f.cross_class_duplicates for n, f in ordered}
    if sum(copies.values()):
        n = sum(copies.values())
        found.append(
            f"{_plural(n, 'image')} {_has(n)} an exact or near copy labelled as another class "
            f"({_listed(copies, '{n} {name}')})."
        )
    health = {n: f.health_issues for n, f in ordered}
    if sum(health.values()):
        n = sum(health.values())
        listed = _listed(health, "{n} {name}")
        found.append(f"{_plural(n, 'image')} {'fails' if n == 1 else 'fail'} an image-health check ({listed}).")
    return found


def _negative_findings(report: Report, confident: float) -> list[str]:
    """Checked "nothing found" sentences, used only to reach three findings."""
    found = []
    if any(s.bottom or s.top for s in report.classes) and not _confident_mistakes(report, confident):
        found.append(f"No test image in the class galleries is misclassified with a score above {confident:g}.")
    flagged, rule, _ = _flagged(report)
    if not flagged and len(report.dataset.class_names) > 1:
        found.append(f"No class is under-represented (none has {rule.rstrip('.')}).")
    return found


# ---------------------------------------------------------------- caveats


GRAD_CAM_CAVEAT = (
    "Grad-CAM maps are min–max normalised per image: the hottest colour marks the strongest evidence within "
    "that image only, so colours cannot be compared across images."
)
LIMITS_CAVEAT = (
    "The report ranks images by the model's scores; it cannot tell a wrong label from a hard or ambiguous "
    "image without a human look at the images."
)


def caveats(report: Report, *, calibrated: bool | None = None) -> tuple[str, ...]:
    """What the reader should keep in mind, as sentences with this report's numbers.

    Args:
        report: the report, with metrics filled in.
        calibrated: the calibration check's verdict (``readable_as_probabilities``); None when it did not run.
    """
    found = (
        GRAD_CAM_CAVEAT,
        _test_size_caveat(report),
        _empty_class_caveat(report),
        _score_caveat(calibrated),
        LIMITS_CAVEAT,
        _one_run_caveat(report),
    )
    return tuple(s for s in found if s)


def _points(per_image: float) -> str:
    return f"{per_image:.0f}" if per_image >= 10 else f"{per_image:.1f}"


def _test_size_caveat(report: Report) -> str | None:
    sized = [(m.support, i, m.class_name) for i, m in enumerate(report.metrics.per_class) if m.support > 0]
    if not sized:
        return None
    support, _, name = min(sized)
    total = sum(s for s, _, _ in sized)
    if support == 1:
        head = f"{name} has a single test image, so its recall can only be 0% or 100%"
    else:
        per_image = _points(100 / support)
        head = (
            f"{name}, the class with the fewest test images ({support}), changes recall by {per_image} points per image"
        )
    return (
        f"Per-class metrics are coarse on small test sets: {head}; overall accuracy over {total} test images "
        f"changes by {_points(100 / total)} points per image."
    )


def _empty_class_caveat(report: Report) -> str | None:
    empty = [m.class_name for m in report.metrics.per_class if m.support == 0]
    if not empty:
        return None
    return (
        f"{_join(empty)} {'has' if len(empty) == 1 else 'have'} no test images: "
        f"{'its' if len(empty) == 1 else 'their'} recall, precision and F1 show 0 by convention, not a measurement."
    )


def _score_caveat(calibrated: bool | None) -> str:
    if calibrated is None:
        return (
            "Scores are softmax outputs, not calibrated probabilities: a score of 0.9 does not mean the model "
            "is right 9 times in 10."
        )
    if calibrated:
        return (
            "Scores are softmax outputs; the calibration check found them readable as probabilities on this test set."
        )
    return (
        "Scores are softmax outputs and the calibration check found them mis-calibrated: read them as a ranking, "
        "not as probabilities."
    )


def _one_run_caveat(report: Report) -> str:
    model = "one fine-tuned model" if report.model.trained else "one model loaded from a checkpoint"
    return (
        f"The report audits {model} on one split of the data (seed {report.run.seed}); another split or seed "
        "can change the metrics and which images appear at the extremes."
    )


# ---------------------------------------------------------------- everything at once


def narrate_report(
    report: Report,
    *,
    facts: Mapping[str, ClassAuditFacts] | None = None,
    audit_lines: Sequence[str] = (),
    calibrated: bool | None = None,
    confident: float = CONFIDENT,
) -> Report:
    """A copy of ``report`` with its sentences and the facts they rest on filled in.

    Sets ``dataset.under_represented`` and its rule, each section's ``under_represented``, ``confused_with``
    (when empty) and ``narrative``, ``top_confusions`` (when empty), ``findings`` and ``caveats``.
    """
    facts = facts or {}
    names = report.dataset.class_names
    totals = class_totals(report.dataset.split_counts)
    flagged, rule = under_represented({n: totals.get(n, 0) for n in names})
    metrics = report.metrics
    total_test = sum(int(sum(row)) for row in metrics.confusion)
    sections = []
    for section in report.classes:
        idx = names.index(section.class_name)
        section = dataclasses.replace(
            section,
            under_represented=section.class_name in flagged,
            confused_with=section.confused_with or class_confusions(metrics.confusion, names, idx),
        )
        narrative = class_narrative(
            section,
            total_test=total_test,
            class_names=names,
            facts=facts.get(section.class_name),
            metrics=metrics,
            confident=confident,
        )
        sections.append(dataclasses.replace(section, narrative=narrative))
    report = dataclasses.replace(
        report,
        dataset=dataclasses.replace(report.dataset, under_represented=flagged, under_represented_rule=rule),
        classes=tuple(sections),
        top_confusions=report.top_confusions or confusion_cells(metrics.confusion, names),
    )
    found = key_findings(report, facts=facts, audit_lines=audit_lines, confident=confident)
    report = dataclasses.replace(report, findings=found, caveats=caveats(report, calibrated=calibrated))
    return _with_model_verdict(report)


def _with_model_verdict(report: Report) -> Report:
    """Add the model check's verdict and notes; when the model is unsound, say so wherever the report rests on it."""
    check = report.model_check
    if check is None:
        return report
    report = dataclasses.replace(report, model_verdict=model_verdict(check), model_notes=model_notes(check))
    if check.verdict != UNSOUND:
        return report
    return dataclasses.replace(
        report,
        classes=tuple(dataclasses.replace(s, narrative=(UNSOUND_CAVEAT, *s.narrative)) for s in report.classes),
        findings=tuple(f"{UNSOUND_FINDING} {f}" if i == 0 else f for i, f in enumerate(report.findings)),
        caveats=(UNSOUND_CAVEAT, *report.caveats),
    )
