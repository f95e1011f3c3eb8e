from __future__ import annotations

import numpy as np
import pytest

from reportgen.analysis.model_check import CAUTION, SOUND, UNCHECKED, UNSOUND, Reference, check_model, references
from reportgen.model.history import EpochStats, TrainingHistory
from reportgen.model.probe import fit_linear_probe
from reportgen.narrative.model import model_notes, model_verdict, training_length

PROBE = Reference("linear probe", 0.80, 0.78)
MAJORITY = Reference("majority class", 0.30, 0.31, detail="pizza")


def _history(val_accs: list[float], *, train_acc: float = 0.8, kept: int = -1, losses: list[float] | None = None):
    losses = losses or [1.0 - a for a in val_accs]
    epochs = tuple(
        EpochStats(i + 1, 0.5, train_acc, loss, acc, 1.0)
        for i, (acc, loss) in enumerate(zip(val_accs, losses, strict=True))
    )
    return TrainingHistory(epochs, kept, start_val_loss=1.2, start_val_accuracy=0.5)


def _kinds(check) -> set[str]:
    return {p.kind for p in check.problems}


def test_a_collapsed_last_epoch_is_unsound_and_named() -> None:
    # the food9-64px run: 0.459 -> 0.510 -> 0.628 -> 0.327, the last kept
    history = _history([0.459, 0.510, 0.628, 0.327], losses=[1.5, 1.3, 1.1, 2.4])
    check = check_model(val_accuracy=0.327, test_accuracy=0.291, probe=PROBE, majority=MAJORITY, history=history)
    assert check.verdict == UNSOUND
    assert {"collapse", "below_probe"} <= _kinds(check)
    collapse = next(p for p in check.problems if p.kind == "collapse")
    assert collapse.values["best_epoch"] == 3 and collapse.values["best_val_accuracy"] == pytest.approx(0.628)
    verdict = model_verdict(check)
    assert verdict.startswith("Do not read the galleries as facts about the data")
    assert "62.8%" in verdict and "32.7%" in verdict


def test_a_fall_in_an_epoch_that_was_not_kept_is_only_noted() -> None:
    history = _history([0.80, 0.55, 0.82], kept=3, losses=[0.5, 0.9, 0.49])
    check = check_model(val_accuracy=0.82, test_accuracy=0.8, probe=PROBE, majority=MAJORITY, history=history)
    assert check.verdict == SOUND
    assert [(p.kind, p.severity) for p in check.problems] == [("unstable", "note")]
    assert "not affected" in model_notes(check)[0]


def test_majority_level_model_is_unsound_without_any_history() -> None:
    check = check_model(val_accuracy=0.31, test_accuracy=0.3, probe=None, majority=MAJORITY, history=None)
    assert check.verdict == UNSOUND and _kinds(check) == {"at_majority"}
    assert "always answering pizza" in model_verdict(check)


@pytest.mark.parametrize(
    ("val", "verdict"),
    [(0.81, SOUND), (0.79, SOUND), (0.75, CAUTION), (0.65, UNSOUND)],
)
def test_below_probe_grades_with_the_gap(val: float, verdict: str) -> None:
    history = _history([val - 0.01, val], train_acc=val, losses=[0.5, 0.5])
    check = check_model(val_accuracy=val, test_accuracy=val, probe=PROBE, majority=MAJORITY, history=history)
    assert check.verdict == verdict
    assert check.model_vs_probe == pytest.approx(val - 0.80)


def test_undertrained_and_overfit_are_cautions() -> None:
    still_falling = _history([0.80, 0.84], losses=[0.7, 0.5], train_acc=0.85)
    check = check_model(val_accuracy=0.84, test_accuracy=0.8, probe=PROBE, majority=MAJORITY, history=still_falling)
    assert check.verdict == CAUTION and _kinds(check) == {"undertrained"}
    overfit = _history([0.81, 0.82], losses=[0.6, 0.59], train_acc=1.0)
    check = check_model(val_accuracy=0.79, test_accuracy=0.8, probe=PROBE, majority=MAJORITY, history=overfit)
    assert check.verdict == CAUTION and _kinds(check) == {"overfit"}


def test_kept_probe_is_sound_and_said_so() -> None:
    history = _history([0.78, 0.79], kept=0, losses=[1.3, 1.25])
    check = check_model(val_accuracy=0.80, test_accuracy=0.78, probe=PROBE, majority=MAJORITY, history=history)
    assert check.verdict == SOUND and check.probe_kept and check.model_vs_probe == 0
    assert "linear probe itself" in model_verdict(check)


def test_no_validation_images_is_unchecked() -> None:
    check = check_model(val_accuracy=None, test_accuracy=0.9, probe=None, majority=MAJORITY, history=None)
    assert check.verdict == UNCHECKED and check.model_vs_probe is None
    assert "could not be checked" in model_verdict(check)


def test_references_from_probabilities_and_the_training_majority() -> None:
    labels = np.array([0, 0, 0, 1, 1, 0, 1, 1, 1, 1])
    splits = np.array(["train"] * 5 + ["val"] * 3 + ["test"] * 2)
    probs = np.eye(2)[[0, 0, 0, 1, 1, 0, 0, 1, 1, 0]]
    probe, majority = references(labels=labels, splits=splits, class_names=("a", "b"), probe_probs=probs)
    assert majority.detail == "a" and majority.val_accuracy == pytest.approx(1 / 3)
    assert probe.val_accuracy == pytest.approx(2 / 3) and probe.test_accuracy == pytest.approx(0.5)


def test_linear_probe_weights_work_on_raw_features_and_skip_missing_classes() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (3, 16)) * 3
    labels = np.repeat([0, 2], 20)  # class 1 has no training image
    features = np.abs(centres[labels] + rng.normal(0, 1, (40, 16))) * 7.0  # far from unit norm
    probe = fit_linear_probe(features, labels, num_classes=3, seed=0)
    assert probe.weight.shape == (3, 16)
    predicted = probe.probs(features).argmax(1)
    assert (predicted == labels).mean() == 1.0 and not (predicted == 1).any()
    two = fit_linear_probe(features[:40], labels, num_classes=3, seed=0)
    assert np.allclose(two.probs(features).sum(1), 1.0)


def test_the_training_length_says_why_it_stopped_when_validation_chose_it():
    train = {"epochs": 8, "patience": 2}
    assert training_length([0.5, 0.4, 0.45, 0.41], train) == (
        "Training stopped after epoch 3 of at most 8: the validation loss had not improved for 2 epochs."
    )
    assert training_length([0.3, 0.4, 0.45], train) == (
        "Training stopped after epoch 2 of at most 8: the linear probe still had the lowest validation loss and "
        "the last epoch got worse than the ones before it."
    )
    assert training_length([0.5, *[0.4] * 8], train) == "All 8 epochs allowed ran."
    assert "had not improved by 1% or more for 2 epochs" in training_length(
        [0.5, 0.4, 0.399, 0.398], {**train, "min_improvement": 0.01}
    )
    assert training_length([0.5, 0.4], {"epochs": 4, "patience": 0}) == ""  # a fixed length: nothing to explain
