"""Sentences from hand-made numbers: every claim must be backed by the counts it was built from."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import pytest

from reportgen.analysis.classes import class_confusions
from reportgen.analysis.metrics import Metrics, compute_metrics
from reportgen.assemble.report import with_class_facts
from reportgen.narrative import Narrative, narrate, with_narrative
from reportgen.narrative.caveats import caveats
from reportgen.narrative.classes import MAX_NAMED, class_narrative
from reportgen.narrative.findings import UNDER_REPRESENTED_RULE, key_findings
from reportgen.narrative.format import fmt_percent, fmt_plural, fmt_score, join_words, listed, sentence
from reportgen.narrative.galleries import gallery_words
from reportgen.report import (
    SCHEMA_VERSION,
    ClassSection,
    DatasetSummary,
    GalleryImage,
    ImageFlag,
    ModelSummary,
    Report,
    RunInfo,
)
from reportgen.report.audit import ClassAuditFacts, ShortcutClass

NAMES = ("pizza", "hamburger", "sashimi", "sushi")
CONFUSION = (
    (20, 0, 0, 0),  # pizza: perfect, nobody predicted as pizza by mistake
    (0, 19, 0, 1),
    (0, 0, 9, 2),
    (0, 1, 3, 11),  # sushi: 11 of 15; 3 as sashimi, 1 as hamburger
)
TRAIN = {"pizza": 200, "hamburger": 150, "sashimi": 40, "sushi": 30}  # sashimi, sushi under-represented


def _metrics(confusion: Sequence[Sequence[int]], names: Sequence[str], train: dict[str, int] | None = None) -> Metrics:
    labels, predicted, splits = [], [], []
    for t, row in enumerate(confusion):
        for p, n in enumerate(row):
            labels += [t] * n
            predicted += [p] * n
            splits += ["test"] * n
    for t, name in enumerate(names):
        n = (train or {}).get(name, 0)
        labels += [t] * n
        predicted += [t] * n
        splits += ["train"] * n
    return compute_metrics(np.array(labels, int), np.array(predicted, int), np.array(splits), tuple(names))


def _image(true: str, predicted: str, score: float, predicted_score: float, k: int) -> GalleryImage:
    return GalleryImage(f"{true}/{k}.jpg", "test", true, predicted, score, predicted_score, true == predicted)


def _sushi_bottom() -> tuple[GalleryImage, ...]:
    wrong = [("sashimi", 0.97), ("sashimi", 0.95), ("hamburger", 0.71), ("sashimi", 0.62)]
    images = [_image("sushi", pred, round(0.02 + 0.05 * k, 2), s, k) for k, (pred, s) in enumerate(wrong)]
    images += [_image("sushi", "sushi", 0.5 + 0.05 * k, 0.5 + 0.05 * k, 10 + k) for k in range(5)]
    return tuple(images)


def _bottom(name: str, n: int) -> tuple[GalleryImage, ...]:
    return tuple(_image(name, name, 0.6 + 0.01 * k, 0.6 + 0.01 * k, k) for k in range(n))


def _section(metrics: Metrics, name: str, bottom: Sequence[GalleryImage] = (), under: bool = False) -> ClassSection:
    names = [m.class_name for m in metrics.per_class]
    idx = names.index(name)
    return ClassSection(
        class_name=name,
        metrics=metrics.per_class[idx],
        split_counts={split: counts[name] for split, counts in metrics.split_counts.items()},
        top=(),
        bottom=tuple(bottom),
        confused_with=class_confusions(metrics.confusion, names, idx),
        under_represented=under,
    )


def _report(metrics: Metrics, names: Sequence[str], bottoms: dict[str, Sequence[GalleryImage]]) -> Report:
    """A report with its class facts (``with_class_facts``) but no words yet."""
    sections = tuple(_section(metrics, n, bottoms.get(n, _bottom(n, 3))) for n in names)
    report = Report(
        schema_version=SCHEMA_VERSION,
        run=RunInfo("2025-01-01T00:00:00+00:00", {}, "cpu", 7, {}, {}),
        dataset=DatasetSummary(
            "/data", tuple(names), metrics.split_counts, sum(sum(c.values()) for c in metrics.split_counts.values()), ()
        ),
        model=ModelSummary("resnet18", "ImageNet", 224, "layer4", True, None),
        training=None,
        metrics=metrics,
        classes=sections,
    )
    return with_class_facts(report)


@pytest.fixture(scope="module")
def food() -> Metrics:
    return _metrics(CONFUSION, NAMES, TRAIN)


def _narrative(source: Metrics, name: str, **kwargs) -> tuple[str, ...]:
    """``name``'s sentences; ``source`` builds the section and is the whole test set's metrics."""
    bottom = kwargs.pop("bottom", ())
    under = kwargs.pop("under", False)
    section = _section(source, name, bottom, under)
    total = sum(sum(r) for r in source.confusion)
    names = [m.class_name for m in source.per_class]
    return class_narrative(section, total_test=total, class_names=names, metrics=source, **kwargs)


# ---------------------------------------------------------------- one class


def test_confused_class_names_the_other_class_and_counts(food: Metrics) -> None:
    text = _narrative(food, "sushi")
    assert text[0] == "The model classifies 11 of the 15 sushi test images correctly (recall 73.3%)."
    assert text[1] == "Of the 14 test images predicted as sushi, 11 are labelled sushi (precision 78.6%)."
    assert text[2] == "3 of the 15 sushi test images (20.0%) are predicted as sashimi and 1 (6.7%) as hamburger."
    assert text[3] == "In the other direction, sushi is predicted for 2 sashimi test images and 1 hamburger test image."


def test_precision_counts_come_from_the_matrix_column() -> None:
    metrics = _metrics(((3, 2, 0), (0, 0, 2), (0, 0, 4)), ("a", "b", "c"))
    b = _narrative(metrics, "b")
    assert b[0] == "None of the 2 b test images is classified correctly (recall 0%)."
    assert b[1] == "Of the 2 test images predicted as b, 0 are labelled b (precision 0%)."
    c = _narrative(metrics, "c")
    assert c[1] == "Of the 6 test images predicted as c, 4 are labelled c (precision 66.7%)."
    never = _metrics(((3, 0), (2, 0)), ("a", "b"))
    assert _narrative(never, "b")[1] == "No test image is predicted as b (precision counted as 0%)."


def test_confident_mistakes_are_counted_and_flagged(food: Metrics) -> None:
    text = _narrative(food, "sushi", bottom=_sushi_bottom())
    assert (
        "Of its 9 lowest-scoring test images, 4 are misclassified: 3 as sashimi (sashimi scores 0.620–0.970) "
        "and 1 as hamburger (hamburger score 0.710)."
    ) in text
    assert (
        "2 of the 9 lowest-scoring sushi test images are predicted as sashimi with a score above 0.9: "
        "check their labels."
    ) in text
    lower = _narrative(food, "sushi", bottom=_sushi_bottom(), confident=0.6)
    assert (
        "4 of the 9 lowest-scoring sushi test images are predicted as another class with a score above 0.6 "
        "(3 as sashimi, 1 as hamburger): check their labels."
    ) in lower
    none = _narrative(food, "sushi", bottom=_sushi_bottom(), confident=0.99)
    assert not any("check" in s for s in none)


def test_perfect_class_gets_one_positive_sentence(food: Metrics) -> None:
    text = _narrative(food, "pizza", bottom=_bottom("pizza", 4))
    assert text == (
        "All 20 pizza test images are classified correctly, and no test image of another class is predicted "
        "as pizza (recall and precision 100%).",
    )
    assert not any(other in " ".join(text) for other in NAMES[1:])


def test_no_confusion_sentence_when_off_diagonals_are_zero() -> None:
    metrics = _metrics(((5, 0), (2, 3)), ("a", "b"))
    a = _narrative(metrics, "a", bottom=_bottom("a", 3))
    assert a[0] == "All 5 a test images are classified correctly (recall 100%)."
    assert a[1] == "Of the 7 test images predicted as a, 5 are labelled a (precision 71.4%)."
    assert a[2] == "In the other direction, a is predicted for 2 b test images."
    assert a[3] == "Its 3 lowest-scoring test images are all classified correctly (lowest a score 0.600)."
    assert not any("misclassified" in s or "check" in s or "of the 5 a test images" in s for s in a)
    b = _narrative(metrics, "b")
    assert "2 of the 5 b test images (40.0%) are predicted as a." in b
    assert not any("other direction" in s for s in b)  # nothing of a's is predicted as b


def test_under_represented_with_low_recall_suggests_more_data(food: Metrics) -> None:
    text = _narrative(food, "sushi", under=True)
    assert text[-1] == (
        "With 45 images in all (30 for training), sushi is under-represented (the other classes have a median "
        "of 170), and its recall of 73.3% is below the average over classes (87.5%): more sushi images may help."
    )
    high = _metrics(((20, 0), (0, 5)), ("big", "small"), {"big": 100, "small": 10})
    small = _narrative(high, "small", under=True)
    assert "more" not in small[-1] and "is not below the average" in small[-1]
    assert not any("under-represented" in s for s in _narrative(food, "hamburger"))


def test_audit_facts_become_sentences(food: Metrics) -> None:
    facts = ClassAuditFacts(
        label_suspects=4,
        suggested_labels={"pizza": 1, "sashimi": 3},
        leaked_test_images=2,
        cross_class_duplicates=1,
        duplicate_classes={"sashimi": 1},
        shortcut=True,
        shortcut_reason="Maps agree and peak at the top-left",
        health_issues=1,
    )
    text = _narrative(food, "sushi", facts=facts)
    assert (
        "The label check flags 4 sushi images as likely mislabelled (3 suggested sashimi, 1 suggested pizza)." in text
    )
    assert (
        "2 sushi test images have an exact or near copy in the training split, so they do not measure generalisation."
        in text
    )
    assert "1 sushi image has an exact or near copy labelled as another class (1 sashimi)." in text
    assert "The shortcut check flags sushi: Maps agree and peak at the top-left." in text
    assert "1 sushi image fails an image-health check." in text
    assert _narrative(food, "sushi", facts=ClassAuditFacts()) == _narrative(food, "sushi")


def test_class_without_test_images() -> None:
    metrics = _metrics(((4, 1, 0), (0, 5, 0), (0, 0, 0)), ("a", "b", "c"), {"c": 3})
    text = _narrative(metrics, "c")
    assert text == ("None of the 10 test images is a c image, so its recall and precision cannot be measured.",)


# ---------------------------------------------------------------- galleries: headings, flagged images, heat


def test_gallery_headings_say_what_is_shown_and_count_the_mistakes(food: Metrics) -> None:
    top = tuple(_image("sushi", pred, 0.3, 0.6, k) for k, pred in enumerate(("sushi", "sashimi", "sashimi", "pizza")))
    section = dataclasses.replace(_section(food, "sushi", _sushi_bottom()), top=top)
    words = gallery_words(section)
    assert words.top_title == "Highest-scoring test images of sushi — 3 of 4 are mistakes"
    assert words.top_lead.startswith(
        "The test images of sushi with the highest sushi score, highest first: those the model finds most like "
        "sushi, though it predicts another class for 3 of them."
    )
    assert "Each card gives the image's sushi score" in words.top_lead
    assert words.bottom_title == "Lowest-scoring test images of sushi — 4 of 9 are mistakes"
    assert words.bottom_lead == (
        "The test images of sushi with the lowest sushi score, lowest first: where the model is least sure of sushi."
    )  # how to read a card is said once, in the first gallery's lead
    no_top = gallery_words(dataclasses.replace(section, top=()))  # --top-k 0
    assert "Each card gives the image's sushi score" in no_top.bottom_lead
    correct = gallery_words(dataclasses.replace(section, top=top[:1], bottom=_bottom("sushi", 2)))
    assert correct.top_title == "Highest-scoring test image of sushi — correct"
    assert correct.bottom_title == "Lowest-scoring test images of sushi — all correct"
    assert "most like sushi." in correct.top_lead


def test_a_class_with_few_test_images_gets_one_gallery_said_so(food: Metrics) -> None:
    images = tuple(_image("pizza", p, 0.9 - 0.1 * k, 0.9, k) for k, p in enumerate(("pizza", "sushi", "sushi")))
    section = dataclasses.replace(_section(food, "pizza"), top=images, complete=True)
    words = gallery_words(section)
    assert words.top_title == "All 3 test images of pizza, by score — 2 of 3 are mistakes"
    assert words.top_lead.startswith(
        "With 3 test images, pizza gets one gallery instead of one of the highest- and one of the lowest-scoring: "
        "each image is shown once, highest pizza score first."
    )
    assert words.bottom_title == words.bottom_lead == ""
    single = gallery_words(dataclasses.replace(section, top=images[:1]))
    assert single.top_title == "The single test image of pizza — correct"
    empty = gallery_words(dataclasses.replace(section, top=()))
    assert empty.top_title == "No test images of pizza" and empty.bottom_title == ""
    metrics = _metrics(((1, 2), (0, 3)), ("a", "b"))
    whole = dataclasses.replace(
        _section(metrics, "a"),
        top=(_image("a", "a", 0.8, 0.8, 0),) + tuple(_image("a", "b", 0.2, 0.8, k) for k in (1, 2)),
        complete=True,
    )
    text = class_narrative(whole, total_test=6, class_names=["a", "b"], metrics=metrics)
    assert "2 of the 3 a test images (66.7%) are predicted as b." in text
    assert not any("Of its 3 test images" in t for t in text)  # the counts are said once, by the recall sentence
    sure = class_narrative(whole, total_test=6, class_names=["a", "b"], metrics=metrics, confident=0.7)
    assert "2 of the 3 a test images are predicted as b with a score above 0.7: check their labels." in sure


def _flagged(food: Metrics, *flags: ImageFlag, k: int = 7) -> ClassSection:
    image = dataclasses.replace(_image("sushi", "sashimi", 0.05, 0.95, k), flags=flags)
    return _section(food, "sushi", (image,))


def test_flagged_gallery_images_are_named_with_what_was_found(food: Metrics) -> None:
    section = _flagged(
        food,
        ImageFlag("label_error", "sashimi", 0.953),
        ImageFlag("copy_other_class", "pizza", None, "pizza/3.jpg"),
        ImageFlag("leak", "train", 0.96, "sushi/x.jpg"),
        ImageFlag("outlier", "pizza", 4.23),
        ImageFlag("health", "mean luminance 0.03 < 0.08 (very dark)"),
    )
    text = class_narrative(section, total_test=66, class_names=NAMES, metrics=food)
    for said in (
        "sushi/7.jpg scores 0.953 for sashimi in the label check: probably mislabelled.",
        "sushi/7.jpg has an exact copy labelled pizza (pizza/3.jpg): one of the two labels is wrong.",
        "sushi/7.jpg has a near copy (similarity 0.960) in the train split (sushi/x.jpg), so it does not measure "
        "generalisation.",
        "sushi/7.jpg is far from every class in the pretrained features (robust z-score 4.2, nearest pizza): "
        "belongs to no class?",
        "sushi/7.jpg fails an image-health check: mean luminance 0.03 < 0.08 (very dark).",
    ):
        assert said in text
    review = _flagged(food, ImageFlag("label_review", "sashimi", 0.61))
    assert (
        "The label check lists one of these images as worth a look at the label (its lower tier, where most labels "
        "turn out right): sushi/7.jpg (sashimi 0.610)."
    ) in class_narrative(review, total_test=66, class_names=NAMES, metrics=food)


def test_the_lower_label_tier_is_one_sentence(food: Metrics) -> None:
    images = tuple(
        dataclasses.replace(_image("sushi", "sushi", 0.5, 0.5, k), flags=(ImageFlag("label_review", "pizza", 0.3),))
        for k in range(5)
    )
    text = class_narrative(_section(food, "sushi", images), total_test=66, class_names=NAMES, metrics=food)
    assert (
        "The label check lists 5 of these images as worth a look at the label (its lower tier, where most labels "
        "turn out right): sushi/0.jpg (pizza 0.300), sushi/1.jpg (pizza 0.300), sushi/2.jpg (pizza 0.300) and 2 more."
    ) in text


def test_many_flagged_images_are_counted_after_the_first_few(food: Metrics) -> None:
    images = tuple(
        dataclasses.replace(_image("sushi", "sushi", 0.5, 0.5, k), flags=(ImageFlag("copy", "test", None, "o.jpg"),))
        for k in range(MAX_NAMED + 2)
    )
    text = class_narrative(_section(food, "sushi", images), total_test=66, class_names=NAMES, metrics=food)
    named = [s for s in text if "has an exact copy in the same class" in s]
    assert len(named) == MAX_NAMED
    assert "2 more findings about these 8 images are marked on their cards." in text


def _heat(region: str, border: float, n: int = 6, flagged: bool = False) -> ShortcutClass:
    return ShortcutClass("sushi", n, 0.3, border, 0.05, region, 0.4, 0.2, flagged, ())


def test_the_narrative_says_where_the_heat_sits(food: Metrics) -> None:
    def said(heat: ShortcutClass) -> str:
        text = class_narrative(_section(food, "sushi"), total_test=66, class_names=NAMES, metrics=food, heat=heat)
        return " ".join(text)

    assert (
        "Over its 6 correctly classified test images, the mean Grad-CAM for sushi is densest in the centre of the "
        "image, with 18% of it in the outer 10% band of the image (an even map: 36%)."
    ) in said(_heat("centre", 0.18))
    assert "is densest in the top-left corner of the image" in said(_heat("top-left", 0.3))
    assert "is densest in the bottom part of the image" in said(_heat("bottom", 0.3))
    border = said(_heat("top", 0.44))
    assert "puts 44% of its mass in the outer 10% band of the image, no less than an even map would (36%)" in border
    base = " ".join(class_narrative(_section(food, "sushi"), total_test=66, class_names=NAMES, metrics=food))
    assert said(_heat("centre", 0.2, n=1)) == base  # one map: nothing measured
    assert said(_heat("top-left", 0.6, flagged=True)) == base  # the shortcut check's own sentence says it


def test_narrate_passes_the_shortcut_figures_and_the_headings(food: Metrics) -> None:
    from reportgen.report.audit import Audit, ShortcutCheck

    report = _report(food, NAMES, {})
    audit = Audit(shortcuts=ShortcutCheck((_heat("centre", 0.2),), (), 5, "rule"))
    report = dataclasses.replace(report, audit=audit)
    done = with_narrative(report, narrate(report))
    sushi = next(s for s in done.classes if s.class_name == "sushi")
    assert any("mean Grad-CAM for sushi is densest in the centre" in s for s in sushi.narrative)
    assert sushi.bottom_title == "Lowest-scoring test images of sushi — all correct"
    assert all(s.top_title for s in done.classes)


# ---------------------------------------------------------------- summary page


def _food_report(food: Metrics) -> Report:
    report = _report(food, NAMES, {"sushi": _sushi_bottom()})
    return with_narrative(report, narrate(report))


def test_key_findings_rank_and_content(food: Metrics) -> None:
    found = _food_report(food).findings
    assert found == (
        "Test accuracy is 89.4% (59 of 66 test images); the weakest classes are sushi (F1 75.9%, recall 11 of 15) "
        "and sashimi (F1 78.3%, recall 9 of 11).",
        "Among the test images in the class galleries, 2 are misclassified with a score above 0.9 "
        "(2 sushi as sashimi): check their labels first.",
        "The most frequent confusion is sushi predicted as sashimi (3 of 15 sushi test images, 20.0%); "
        "2 of 11 sashimi test images go the other way. Next comes sushi predicted as hamburger "
        "(1 of 15 sushi test images, 6.7%).",
        "2 classes are under-represented (fewer than half as many images as the median of the other classes, "
        "counting all splits): sashimi (51 images) and sushi (45 images); their average recall is 77.6%, "
        "against 97.5% for the other classes.",
    )


def test_key_findings_are_deterministic_and_keep_a_slot_for_audit_lines(food: Metrics) -> None:
    report = _food_report(food)
    facts = {
        "sushi": ClassAuditFacts(label_suspects=3, leaked_test_images=1),
        "pizza": ClassAuditFacts(label_suspects=3, shortcut=True, shortcut_reason="Peaks at the border."),
    }
    reordered = dict(reversed(list(facts.items())))
    lines = ("Calibration: over-confident by 12 points", "second line")
    found = key_findings(report, facts=facts, audit_lines=lines)
    assert found == key_findings(report, facts=reordered, audit_lines=lines)
    assert len(found) == 5
    assert found[1].startswith("1 test image has an exact or near copy in the training split (1 sushi)")
    assert "The label check flags 6 images as likely mislabelled (3 pizza, 3 sushi)." in found[2]
    assert found[-1] == "Calibration: over-confident by 12 points."


def test_key_findings_for_a_perfect_model_state_only_facts() -> None:
    metrics = _metrics(((10, 0), (0, 10)), ("a", "b"), {"a": 40, "b": 40})
    assert key_findings(_report(metrics, ("a", "b"), {})) == ("All 20 test images are classified correctly.",)


def test_no_finding_that_cannot_fail(food: Metrics) -> None:
    """Mistakes scored at most 0.46 give no "none above 0.9" sentence, and no class balance filler."""
    low = tuple(_image("sushi", "sashimi", 0.2, s, k) for k, s in enumerate((0.46, 0.41))) + _bottom("sushi", 3)
    found = key_findings(_report(food, NAMES, {"sushi": low}))
    assert not any("above 0.9" in s or "No " in s or "no class" in s.lower() for s in found)
    assert found[0].startswith("Test accuracy is 89.4%") and len(found) == 3  # headline, confusions, balance
    balanced = _metrics(((5, 1), (2, 8)), ("a", "b"), {"a": 40, "b": 40})
    found = key_findings(_report(balanced, ("a", "b"), {"a": _bottom("a", 2)}))
    assert len(found) == 2 and not any("under-represented" in s or "above" in s for s in found)


def test_caveats_carry_the_reports_numbers(food: Metrics) -> None:
    text = caveats(_food_report(food))
    assert any("min–max normalised per image" in s for s in text)
    assert any("sashimi, the class with the fewest test images (11), changes recall by 9.1 points" in s for s in text)
    assert any("not calibrated probabilities" in s for s in text)
    assert any("cannot tell a wrong label from a hard or ambiguous image" in s for s in text)
    assert any("one fine-tuned model on one split of the data (seed 7)" in s for s in text)
    assert any("mis-calibrated" in s for s in caveats(_food_report(food), calibrated=False))
    assert any("readable as probabilities" in s for s in caveats(_food_report(food), calibrated=True))
    nine = _metrics(((9, 0), (1, 29)), ("a", "b"))
    assert any("changes recall by 11 points per image" in s for s in caveats(_report(nine, ("a", "b"), {})))


def test_class_facts_come_before_the_words(food: Metrics) -> None:
    bare = _report(food, NAMES, {})
    assert bare.dataset.under_represented == ("sashimi", "sushi")
    assert [s.under_represented for s in bare.classes] == [False, False, True, True]
    sushi = bare.classes[3]
    assert [(c.predicted_class, c.count) for c in sushi.confused_with] == [("sashimi", 3), ("hamburger", 1)]
    assert [(c.true_class, c.predicted_class) for c in bare.top_confusions][:2] == [
        ("sushi", "sashimi"),
        ("sashimi", "sushi"),
    ]
    assert not bare.findings and not bare.dataset.under_represented_rule and not sushi.narrative


def test_narrative_fills_every_sentence_field_and_stays_json(food: Metrics) -> None:
    report = _report(food, NAMES, {"sushi": _sushi_bottom()})
    words = narrate(report)
    assert isinstance(words, Narrative) and set(words.class_paragraphs) == set(NAMES)
    assert words.model_verdict == "" and words.model_notes == ()  # no model check in this report
    report = with_narrative(report, words)
    assert report.dataset.under_represented_rule == UNDER_REPRESENTED_RULE
    assert report.classes[3].narrative[-1].endswith("more sushi images may help.")
    assert report.findings == words.findings and report.caveats == words.caveats
    assert 3 <= len(report.findings) <= 5 and report.caveats
    json.dumps(report.to_dict(), allow_nan=False)


def test_calibration_comes_from_the_reports_audit(food: Metrics) -> None:
    from reportgen.report.audit import Audit, CalibrationCheck

    report = _report(food, NAMES, {})
    for readable, expected in ((True, "readable as probabilities"), (False, "mis-calibrated")):
        calibration = CalibrationCheck(66, 0.1, 0.05, 0.2, 0.9, 0.89, 0.1, readable, "over", "")
        audited = dataclasses.replace(report, audit=Audit(calibration=calibration))
        assert any(expected in s for s in narrate(audited).caveats)


def test_an_unsound_model_marks_paragraphs_findings_and_caveats(food: Metrics) -> None:
    from reportgen.analysis.model_check import Reference, check_model
    from reportgen.narrative.model import UNSOUND_CAVEAT, UNSOUND_FINDING

    check = check_model(
        val_accuracy=0.3,
        test_accuracy=0.3,
        probe=Reference("linear probe", 0.85, 0.84),
        majority=Reference("majority class", 0.3, 0.3, detail="pizza"),
        history=None,
    )
    report = dataclasses.replace(_report(food, NAMES, {}), model_check=check)
    words = narrate(report)
    report = with_narrative(report, words)
    assert report.model_verdict == words.model_verdict and report.model_verdict.startswith("Do not read")
    assert report.model_notes == words.model_notes
    assert all(s.narrative == (UNSOUND_CAVEAT, *words.class_paragraphs[s.class_name]) for s in report.classes)
    assert report.findings[0] == f"{UNSOUND_FINDING} {words.findings[0]}" and report.findings[1:] == words.findings[1:]
    assert report.caveats == (UNSOUND_CAVEAT, *words.caveats)


def test_importing_the_narrative_does_not_import_torch() -> None:
    code = "import sys, reportgen.narrative, reportgen.narrative.audit; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_form_per_number_in_sentences_and_tables() -> None:
    """A measured share: one decimal; exactly 0 and 1 without; a share between never reads 0% or 100%."""
    assert fmt_percent(0.40149) == "40.1%" and fmt_percent(1 / 3) == "33.3%" and fmt_percent(0.2) == "20.0%"
    assert fmt_percent(1.0) == "100%" and fmt_percent(0.0) == "0%"
    assert fmt_percent(0.9996) == "99.96%" and fmt_percent(0.0004) == "0.04%"
    assert fmt_percent(0.5, 0) == "50%"  # the round limit of a rule
    assert fmt_score(0.97312) == "0.973" and fmt_score(0.62) == "0.620" and fmt_score(0.9996) == "0.9996"
    assert fmt_score(1.0) == "1.000" and fmt_score(1e-6) == "<0.001" and fmt_score(0.0) == "0.000"
    assert fmt_plural(1234, "image") == "1,234 images" and fmt_plural(1, "image") == "1 image"
    assert join_words(["a", "b", "c"]) == "a, b and c" and join_words(["a"]) == "a" and join_words([]) == ""
    assert listed({"a": 1, "b": 3, "c": 0, "d": 2, "e": 2}) == "3 b, 2 d, 2 e, 1 more"
    assert sentence(" Done ") == "Done." and sentence("Why?") == "Why?"


def test_sentences_about_one_image_or_one_class_are_singular() -> None:
    one = _metrics(((3, 1, 0), (0, 0, 2), (0, 0, 4)), ("a", "b", "c"))
    precision = "The single test image predicted as b is labelled as another class (precision 0%)."
    assert _narrative(one, "b")[1] == precision
    single = _metrics(((0, 1), (0, 4)), ("a", "b"))
    assert "The single a test image is predicted as b." in _narrative(single, "a")
    wrong = (_image("a", "b", 0.1, 0.95, 0),)
    text = _narrative(single, "a", bottom=wrong)
    assert "Its lowest-scoring test image is misclassified: 1 as b (b score 0.950)." in text
    assert "The lowest-scoring a test image is predicted as b with a score above 0.9: check its label." in text
    right = _narrative(_metrics(((1, 0), (1, 4)), ("a", "b")), "a", bottom=(_image("a", "a", 0.8, 0.8, 0),))
    assert "Its lowest-scoring test image is classified correctly (a score 0.800)." in right
    assert not any(bad in " ".join(text + right) for bad in ("the 1 ", "1 test images", "1 other class"))


def test_one_more_class_is_named_not_counted() -> None:
    names = ("a", "b", "c", "d", "e", "f")
    four = _metrics(((4, 3, 2, 2, 1, 0), (0, 5, 0, 0, 0, 0), *((0,) * 6,) * 4), names)
    text = " ".join(_narrative(four, "a"))
    assert "and 1 (8.3%) as e." in text and "other class" not in text
    five = _metrics(((4, 3, 2, 2, 1, 1), (0, 5, 0, 0, 0, 0), *((0,) * 6,) * 4), names)
    assert "and 2 more as 2 other classes." in " ".join(_narrative(five, "a"))
    incoming = _metrics(((5, 0, 0, 0, 0, 0), *((1, 4, 0, 0, 0, 0),) * 4, (0,) * 6), names)
    text = " ".join(_narrative(incoming, "a"))
    assert "a is predicted for 1 b test image, 1 c test image, 1 d test image and 1 e test image." in text
