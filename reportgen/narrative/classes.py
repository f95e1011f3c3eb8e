"""One paragraph per class: its recall, precision, confusions, lowest-scoring images and audit facts (pure).

Every sentence states a count or a score the report also shows; class names are written as given (escaping
them is the renderer's job).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reportgen.analysis.classes import class_totals, incoming_confusions, under_represented_reference
from reportgen.analysis.shortcuts import ShortcutThresholds
from reportgen.narrative.format import (
    MAX_LISTED,
    fmt_percent,
    fmt_plural,
    fmt_score,
    has_have,
    is_are,
    join_words,
    listed,
    sentence,
)

if TYPE_CHECKING:
    from reportgen.analysis.attention import ClassSelection
    from reportgen.analysis.classes import Confusion
    from reportgen.analysis.metrics import Metrics
    from reportgen.report import ClassSection, GalleryImage, ImageFlag
    from reportgen.report.audit import ClassAuditFacts, ShortcutClass

CONFIDENT = 0.9  # a mistake scored above this for the predicted class is worth a look at its label
MAX_NAMED = 6  # flagged gallery images named in a class paragraph; the rest are counted
_BAND = ShortcutThresholds().border_width  # the shortcut check's border band, fraction of the side
EVEN_BORDER_SHARE = 1 - (1 - 2 * _BAND) ** 2  # the band's share of the image: what an even map puts there


@dataclass(frozen=True)
class _Counts:
    """Test-split counts for one class."""

    correct: int
    support: int
    predicted_as: int  # test images predicted as the class


def _counts(metrics: Metrics, class_idx: int) -> _Counts:
    matrix = metrics.confusion
    column = sum(int(row[class_idx]) for row in matrix)
    return _Counts(int(matrix[class_idx][class_idx]), int(sum(matrix[class_idx])), column)


def class_narrative(
    section: ClassSection,
    *,
    total_test: int,
    class_names: Sequence[str],
    metrics: Metrics,
    facts: ClassAuditFacts | None = None,
    heat: ShortcutClass | None = None,
    confident: float = CONFIDENT,
) -> tuple[str, ...]:
    """The class's paragraph as sentences, each stating only what the numbers show.

    Args:
        section: the class's metrics, split counts, galleries, and the facts ``confused_with`` and
            ``under_represented`` (``reportgen.assemble.report.with_class_facts`` fills them).
        total_test: test images of all classes.
        class_names: every class, in label order.
        metrics: the whole test-set metrics: the confusion matrix gives the counts and the other classes'
            images predicted as this class; the split counts and per-class recalls the under-representation
            comparison (median of the other classes, recall averaged over classes).
        facts: what the data-defect checks found for this class, if they ran.
        heat: the shortcut check's figures for this class (where its mean Grad-CAM sits), if it ran.
        confident: score above which a misclassified lowest-scoring image is called a confident mistake.
    """
    name = section.class_name
    class_idx = list(class_names).index(name)
    counts = _counts(metrics, class_idx)
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
    body += _flagged_sentences(section)
    body.append(_heat_sentence(name, heat))
    return tuple(s for s in body if s)


def _no_test_images(name: str, total_test: int, counts: _Counts) -> str:
    text = f"None of the {total_test} test images is a {name} image, so its recall and precision cannot be measured"
    if counts.predicted_as:
        n = counts.predicted_as
        text += f"; {fmt_plural(n, 'test image')} of other classes {is_are(n)} predicted as {name}"
    return text + "."


def _perfect(name: str, support: int) -> str:
    subject = f"The single {name} test image is" if support == 1 else f"All {support} {name} test images are"
    return (
        f"{subject} classified correctly, and no test image of another class is predicted as {name} "
        "(recall and precision 100%)."
    )


def _recall_sentence(name: str, c: _Counts) -> str:
    recall = fmt_percent(c.correct / c.support)
    if c.support == 1:
        outcome = "classified correctly" if c.correct else "misclassified"
        return f"The single {name} test image is {outcome} (recall {recall})."
    if c.correct == c.support:
        return f"All {c.support} {name} test images are classified correctly (recall 100%)."
    if c.correct == 0:
        return f"None of the {c.support} {name} test images is classified correctly (recall 0%)."
    return f"The model classifies {c.correct} of the {c.support} {name} test images correctly (recall {recall})."


def _precision_sentence(name: str, c: _Counts) -> str:
    if c.predicted_as == 0:
        return f"No test image is predicted as {name} (precision counted as 0%)."
    if c.correct == c.predicted_as:
        subject = "The single test image" if c.predicted_as == 1 else f"All {c.predicted_as} test images"
        return f"{subject} predicted as {name} {is_are(c.predicted_as)} labelled {name} (precision 100%)."
    if c.predicted_as == 1:
        return f"The single test image predicted as {name} is labelled as another class (precision 0%)."
    precision = fmt_percent(c.correct / c.predicted_as)
    return (
        f"Of the {c.predicted_as} test images predicted as {name}, {c.correct} {is_are(c.correct)} labelled {name} "
        f"(precision {precision})."
    )


def _confusion_sentences(
    section: ClassSection, class_idx: int, class_names: Sequence[str], metrics: Metrics
) -> list[str]:
    outgoing = section.confused_with
    sentences = [_outgoing_sentence(section.class_name, section.metrics.support, outgoing)] if outgoing else []
    incoming = incoming_confusions(metrics.confusion, class_names, class_idx)
    if incoming:
        sentences.append(_incoming_sentence(section.class_name, incoming))
    return sentences


def _outgoing_sentence(name: str, support: int, cells: Sequence[Confusion]) -> str:
    shown = cells if len(cells) == MAX_LISTED + 1 else cells[:MAX_LISTED]  # "1 more as 1 other class": name it
    first, *others = shown
    head = (
        f"The single {name} test image is predicted as {first.predicted_class}"
        if support == 1
        else f"{first.count} of the {support} {name} test images ({fmt_percent(first.fraction)}) "
        f"{is_are(first.count)} predicted as {first.predicted_class}"
    )
    parts = [head] + [f"{c.count} ({fmt_percent(c.fraction)}) as {c.predicted_class}" for c in others]
    rest = cells[len(shown) :]
    if rest:
        parts.append(f"{sum(c.count for c in rest)} more as {len(rest)} other classes")
    return join_words(parts) + "."


def _incoming_sentence(name: str, cells: Sequence[Confusion]) -> str:
    shown = cells if len(cells) == MAX_LISTED + 1 else cells[:MAX_LISTED]  # a single other class is named
    parts = [fmt_plural(c.count, f"{c.true_class} test image") for c in shown]
    rest = cells[len(shown) :]
    if rest:
        images = fmt_plural(sum(c.count for c in rest), "test image")
        parts.append(f"{images} of {len(rest)} other classes")
    return f"In the other direction, {name} is predicted for {join_words(parts)}."


def _bottom_sentences(section: ClassSection, confident: float) -> list[str]:
    """The lowest-scoring gallery's mistakes; with one gallery of every test image, that gallery's."""
    bottom, name = (section.top if section.complete else section.bottom), section.class_name
    if not bottom:
        return []
    which = "" if section.complete else "lowest-scoring "
    wrong = [g for g in bottom if not g.correct]
    sure = [g for g in wrong if g.predicted_score > confident]
    k = len(bottom)
    if section.complete:  # every test image is shown: the recall and confusion sentences already count them
        return [_confident_sentence(name, k, sure, confident, which)] if sure else []
    if not wrong:
        lowest = fmt_score(min(g.score for g in bottom))
        if k == 1:
            return [f"Its {which}test image is classified correctly ({name} score {lowest})."]
        return [f"Its {k} {which}test images are all classified correctly (lowest {name} score {lowest})."]
    parts = [_as_class(pred, images) for pred, images in _by_prediction(wrong)]
    n = len(wrong)
    if k == 1:
        sentences = [f"Its {which}test image is misclassified: {join_words(parts)}."]
    else:
        sentences = [f"Of its {k} {which}test images, {n} {is_are(n)} misclassified: {join_words(parts)}."]
    if sure:
        sentences.append(_confident_sentence(name, k, sure, confident, which))
    return sentences


def _by_prediction(images: Sequence[GalleryImage]) -> list[tuple[str, list[GalleryImage]]]:
    """Images grouped by predicted class, largest group first; ties in order of first appearance."""
    groups: dict[str, list[GalleryImage]] = {}
    for g in images:
        groups.setdefault(g.predicted_class, []).append(g)
    return sorted(groups.items(), key=lambda kv: -len(kv[1]))


def _as_class(predicted: str, images: Sequence[GalleryImage]) -> str:
    low, high = min(g.predicted_score for g in images), max(g.predicted_score for g in images)
    low_text, high_text = fmt_score(low), fmt_score(high)
    scores = f"score {low_text}" if low_text == high_text else f"scores {low_text}–{high_text}"
    return f"{len(images)} as {predicted} ({predicted} {scores})"


def _confident_sentence(name: str, k: int, sure: Sequence[GalleryImage], confident: float, which: str) -> str:
    groups = _by_prediction(sure)
    n = len(sure)
    check = "check its label" if n == 1 else "check their labels"
    head = (
        f"The {which}{name} test image is predicted as"
        if k == 1
        else f"{n} of the {k} {which}{name} test images {is_are(n)} predicted as"
    )
    if len(groups) == 1:
        return f"{head} {groups[0][0]} with a score above {confident:g}: {check}."
    split = ", ".join(f"{len(images)} as {pred}" for pred, images in groups)
    return f"{head} another class with a score above {confident:g} ({split}): {check}."


def _representation_sentences(section: ClassSection, metrics: Metrics) -> list[str]:
    if not section.under_represented:
        return []
    name, m = section.class_name, section.metrics
    total = sum(section.split_counts.values())
    train = section.split_counts.get("train")
    text = f"With {total} images in all" + (f" ({train} for training)" if train is not None else "")
    text += f", {name} is under-represented"
    reference = under_represented_reference(class_totals(metrics.split_counts), name)
    text += f" (the other classes have a median of {reference:g})"
    recalls = [c.recall for c in metrics.per_class if c.support > 0]
    if m.support == 0 or not recalls:
        return [text + "."]
    mean = sum(recalls) / len(recalls)
    recall, average = fmt_percent(m.recall), fmt_percent(mean)
    if m.recall < mean:
        text += f", and its recall of {recall} is below the average over classes ({average})"
        return [text + f": more {name} images may help."]
    return [text + f", but its recall of {recall} is not below the average over classes ({average})."]


def _facts_sentences(name: str, facts: ClassAuditFacts | None) -> list[str]:
    if facts is None:
        return []
    sentences = []
    if facts.label_suspects:
        suggested = f" ({listed(facts.suggested_labels, '{n} suggested {name}')})" if facts.suggested_labels else ""
        images = fmt_plural(facts.label_suspects, f"{name} image")
        sentences.append(f"The label check flags {images} as likely mislabelled{suggested}.")
    if facts.leaked_test_images:
        n = facts.leaked_test_images
        sentences.append(
            f"{fmt_plural(n, f'{name} test image')} {has_have(n)} an exact or near copy in the training "
            f"split, so {'it does' if n == 1 else 'they do'} not measure generalisation."
        )
    if facts.cross_class_duplicates:
        n = facts.cross_class_duplicates
        partners = f" ({listed(facts.duplicate_classes)})" if facts.duplicate_classes else ""
        images = fmt_plural(n, f"{name} image")
        sentences.append(f"{images} {has_have(n)} an exact or near copy labelled as another class{partners}.")
    if facts.shortcut:
        reason = f": {sentence(facts.shortcut_reason)}" if facts.shortcut_reason.strip() else "."
        sentences.append(f"The shortcut check flags {name}{reason}")
    if facts.health_issues:
        n = facts.health_issues
        images = fmt_plural(n, f"{name} image")
        sentences.append(f"{images} {'fails' if n == 1 else 'fail'} an image-health check.")
    return sentences


def _flagged_sentences(section: ClassSection) -> list[str]:
    """Name the shown images another check flagged and what it found: up to MAX_NAMED, the rest counted.

    The label check's "worth a look" tier (mostly false alarms on clean data) gets one sentence for all.
    """
    shown = {g.rel_path: g for g in (*section.top, *section.bottom)}.values()
    said = [_flag_sentence(g, f) for g in shown for f in g.flags if f.kind != "label_review"]
    review = [(g, f) for g in shown for f in g.flags if f.kind == "label_review"]
    if len(said) > MAX_NAMED:
        rest = len(said) - MAX_NAMED
        more = f"{fmt_plural(rest, 'more finding')} about these {sum(bool(g.flags) for g in shown)} images"
        said = [*said[:MAX_NAMED], f"{more} {is_are(rest)} marked on their cards."]
    return said + ([_review_sentence(review)] if review else [])


def _review_sentence(review: Sequence[tuple[GalleryImage, ImageFlag]]) -> str:
    """One sentence for the shown images in the label check's lower tier, the first few by name."""
    named = [f"{g.rel_path} ({f.detail} {fmt_score(f.value)})" for g, f in review[:MAX_LISTED]]
    if len(review) > MAX_LISTED:
        named.append(f"{len(review) - MAX_LISTED} more")
    n = len(review)
    head = "The label check lists " + ("one of these images" if n == 1 else f"{n} of these images")
    tier = "worth a look at the label (its lower tier, where most labels turn out right)"
    return f"{head} as {tier}: {join_words(named)}."


def _flag_sentence(image: GalleryImage, flag: ImageFlag) -> str:
    path, detail = image.rel_path, flag.detail
    copy = "an exact copy" if flag.value is None else f"a near copy (similarity {fmt_score(flag.value)})"
    if flag.kind == "label_error":
        score = fmt_score(flag.value)
        return f"{path} scores {score} for {detail} in the label check: probably mislabelled."
    if flag.kind == "copy_other_class":
        return f"{path} has {copy} labelled {detail} ({flag.other}): one of the two labels is wrong."
    if flag.kind == "leak":
        return f"{path} has {copy} in the {detail} split ({flag.other}), so it does not measure generalisation."
    if flag.kind == "copy":
        return f"{path} has {copy} in the same class ({flag.other})."
    if flag.kind == "outlier":
        z = "" if flag.value is None else f"robust z-score {flag.value:.1f}, "
        return f"{path} is far from every class in the pretrained features ({z}nearest {detail}): belongs to no class?"
    return f"{path} fails an image-health check: {detail}."


def _heat_sentence(name: str, heat: ShortcutClass | None) -> str:
    """Where the class's mean Grad-CAM sits; nothing with fewer than 2 maps or when the shortcut check flags it."""
    if heat is None or heat.n_maps < 2 or heat.flagged:
        return ""
    if heat.worth_a_look and heat.reasons:
        where = "; ".join(heat.reasons[1:])
        return f"The shortcut check finds {name}'s evidence apart ({where}); {sentence(heat.reasons[0])}"
    share, even = fmt_percent(heat.border_share, 0), fmt_percent(EVEN_BORDER_SHARE, 0)
    head = f"Over its {heat.n_maps} correctly classified test images, the mean Grad-CAM for {name}"
    band = f"the outer {fmt_percent(_BAND, 0)} band of the image"
    if heat.border_share >= EVEN_BORDER_SHARE:
        return (
            f"{head} puts {share} of its mass in {band}, no less than an even map would ({even}): "
            "the evidence is not concentrated on a centred object; look at the overlays below."
        )
    part = "corner" if "-" in heat.region else "part"
    where = "the centre" if heat.region == "centre" else f"the {heat.region} {part}"
    return f"{head} is densest in {where} of the image, with {share} of it in {band} (an even map: {even})."


def selection_notes(selection: ClassSelection) -> tuple[str, str]:
    """What the PDF's and the HTML page's class chapters say about ``--pdf-classes`` ("" when all are detailed)."""
    detailed, total = len(selection.detailed), len(selection.ranking)
    if detailed == total:
        return "", ""
    rest = total - detailed
    why = "lowest recall first, then most suspected label errors, then most flags of the audit's checks"
    pdf = (
        f"This PDF details the {fmt_plural(detailed, 'class', 'classes')} of {total} that need attention most "
        f"({why}; --pdf-classes {selection.rule}); the other {rest} have a line each in the table "
        "“Other classes”, and report.html has a chapter for every class."
    )
    html = (
        f"This page has a chapter for each of the {total} classes; report.pdf details the {detailed} that need "
        f"attention most ({why}) and lists the other {rest} in a table."
    )
    return pdf, html
