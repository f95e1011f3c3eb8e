"""Model check: is the audited model worth explaining? Compared with two references on the validation split.

The references are the linear probe on the pretrained features (what a logistic regression fitted in
seconds reaches without fine-tuning) and always predicting the training split's majority class (what a
collapsed model reaches). The check names each problem with the numbers behind it:

* ``collapse`` — the model ends more than :data:`COLLAPSE_DROP` below the validation accuracy of its best
  epoch (unsound); the same fall in an epoch that was not kept is only noted (``unstable``);
* ``at_majority`` — no better than always predicting the majority class (unsound);
* ``below_probe`` — below the linear probe by more than :data:`PROBE_MARGIN` (caution), by more than
  :data:`FAR_BELOW_PROBE` (unsound);
* ``undertrained`` — the validation loss was still falling clearly at the last epoch, which was kept (caution);
* ``overfit`` — training accuracy more than :data:`OVERFIT_GAP` above validation accuracy (caution).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from reportgen.analysis.metrics import split_accuracy
from reportgen.model.history import TrainingHistory
from reportgen.model.predictions import Predictions

COLLAPSE_DROP = 0.10  # validation accuracy lost since the best epoch that counts as a collapse
PROBE_MARGIN = 0.02  # validation accuracy below the linear probe that is more than noise
FAR_BELOW_PROBE = 0.10  # ... and that makes the model unsound
MAJORITY_MARGIN = 0.02  # validation accuracy above always-the-majority-class that a working model must exceed
OVERFIT_GAP = 0.20  # training minus validation accuracy that counts as overfitting
STILL_IMPROVING = 0.03  # relative fall of the validation loss in the last epoch that counts as undertrained

SOUND, CAUTION, UNSOUND, UNCHECKED = "sound", "caution", "unsound", "unchecked"
NOTE = "note"  # a problem's severity when it does not touch the kept model


@dataclass(frozen=True)
class Reference:
    """A simple classifier the model is compared with."""

    name: str  # "linear probe" | "majority class"
    val_accuracy: float | None
    test_accuracy: float | None
    detail: str = ""  # e.g. which class the majority reference predicts


@dataclass(frozen=True)
class ModelProblem:
    """One thing wrong with the model, with the numbers that show it."""

    kind: str  # collapse | unstable | at_majority | below_probe | undertrained | overfit
    severity: str  # unsound | caution | note
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelCheck:
    """The model compared with its references, and the verdict."""

    verdict: str  # sound | caution | unsound | unchecked (no validation images)
    val_accuracy: float | None
    test_accuracy: float | None
    probe: Reference | None  # None when the backbone has no pretrained features
    majority: Reference
    problems: tuple[ModelProblem, ...]
    kept_epoch: int | None  # epoch whose weights were kept (0 = the starting model); None when not trained
    probe_kept: bool = False  # the default recipe kept its starting model: the linear probe itself
    model_vs_probe: float | None = None  # validation accuracy of the model minus the probe's (a gate metric)
    why_no_probe: str = ""


def references(
    *, labels: np.ndarray, splits: np.ndarray, class_names: Sequence[str], probe_probs: np.ndarray | None
) -> tuple[Reference | None, Reference]:
    """The linear probe's (from its ``(N, C)`` probabilities) and the majority class's split accuracies."""
    train = labels[splits == "train"]
    majority_idx = int(np.bincount(train, minlength=len(class_names)).argmax()) if len(train) else 0
    majority = Reference(
        "majority class",
        split_accuracy(labels, np.full(len(labels), majority_idx), splits, "val"),
        split_accuracy(labels, np.full(len(labels), majority_idx), splits, "test"),
        detail=class_names[majority_idx],
    )
    if probe_probs is None:
        return None, majority
    predicted = probe_probs.argmax(axis=1)
    probe = Reference(
        "linear probe",
        split_accuracy(labels, predicted, splits, "val"),
        split_accuracy(labels, predicted, splits, "test"),
    )
    return probe, majority


def check_model(
    *,
    val_accuracy: float | None,
    test_accuracy: float | None,
    probe: Reference | None,
    majority: Reference,
    history: TrainingHistory | None,
    why_no_probe: str = "",
) -> ModelCheck:
    """Compare the model's validation accuracy with the references and its own training history."""
    kept = history.kept if history is not None else None
    probe_kept = history is not None and kept == 0 and history.start_val_loss is not None and probe is not None
    vs_probe = None
    if probe is not None and probe.val_accuracy is not None and val_accuracy is not None:
        vs_probe = round(val_accuracy - probe.val_accuracy, 6)
    if val_accuracy is None:
        return ModelCheck(UNCHECKED, None, test_accuracy, probe, majority, (), kept, probe_kept, None, why_no_probe)
    problems = [
        *_history_problems(history, val_accuracy),
        *_reference_problems(val_accuracy, probe, majority),
    ]
    verdict = SOUND
    if any(p.severity == UNSOUND for p in problems):
        verdict = UNSOUND
    elif any(p.severity == CAUTION for p in problems):
        verdict = CAUTION
    return ModelCheck(
        verdict, val_accuracy, test_accuracy, probe, majority, tuple(problems), kept, probe_kept, vs_probe, why_no_probe
    )


def _history_problems(history: TrainingHistory | None, val_accuracy: float) -> list[ModelProblem]:
    if history is None or not history.epochs:
        return []
    problems = []
    accs = _val_accuracies(history)
    if accs:
        best_epoch, best_acc = max(accs, key=lambda pair: (pair[1], -pair[0]))
        if best_acc - val_accuracy > COLLAPSE_DROP:
            problems.append(_collapse(best_epoch, best_acc, history.kept, val_accuracy, UNSOUND))
        else:
            fall = _largest_fall(accs)
            if fall is not None:
                problems.append(_collapse(*fall, NOTE, kind="unstable"))
    kept = history.epochs[history.kept - 1] if history.kept >= 1 else None
    if kept is not None and kept.train_accuracy - val_accuracy > OVERFIT_GAP:
        problems.append(
            ModelProblem(
                "overfit",
                CAUTION,
                {"epoch": kept.epoch, "train_accuracy": kept.train_accuracy, "val_accuracy": val_accuracy},
            )
        )
    falling = _still_falling(history)
    if history.kept == len(history.epochs) and falling is not None:
        last, before = falling
        problems.append(
            ModelProblem("undertrained", CAUTION, {"epochs": len(history.epochs), "val_loss": last, "before": before})
        )
    return problems


def _collapse(
    best_epoch: int, best_acc: float, epoch: int, accuracy: float, severity: str, kind: str = "collapse"
) -> ModelProblem:
    values = {"best_epoch": best_epoch, "best_val_accuracy": best_acc, "epoch": epoch, "val_accuracy": accuracy}
    return ModelProblem(kind, severity, values)


def _val_accuracies(history: TrainingHistory) -> list[tuple[int, float]]:
    """(epoch, validation accuracy) in order, the starting model as epoch 0 when it was measured."""
    accs = [(0, history.start_val_accuracy)] if history.start_val_accuracy is not None else []
    accs += [(e.epoch, e.val_accuracy) for e in history.epochs if e.val_accuracy is not None]
    return [(epoch, float(acc)) for epoch, acc in accs]


def _largest_fall(accs: Sequence[tuple[int, float]]) -> tuple[int, float, int, float] | None:
    """The largest fall of validation accuracy below an earlier best, when it exceeds the collapse limit."""
    worst = None
    best_epoch, best = accs[0]
    for epoch, acc in accs[1:]:
        if best - acc > COLLAPSE_DROP and (worst is None or best - acc > worst[1] - worst[3]):
            worst = (best_epoch, best, epoch, acc)
        if acc > best:
            best_epoch, best = epoch, acc
    return worst


def _still_falling(history: TrainingHistory) -> tuple[float, float] | None:
    """(last, best earlier) validation loss when the last epoch still lowered it clearly, else None."""
    losses = [float(v) for v in [history.start_val_loss] + [e.val_loss for e in history.epochs] if v is not None]
    if len(losses) < 2:
        return None
    last, before = losses[-1], min(losses[:-1])
    return (last, before) if last < before * (1 - STILL_IMPROVING) else None


def _reference_problems(val_accuracy: float, probe: Reference | None, majority: Reference) -> list[ModelProblem]:
    problems = []
    if majority.val_accuracy is not None and val_accuracy <= majority.val_accuracy + MAJORITY_MARGIN:
        values = {"val_accuracy": val_accuracy, "majority_val_accuracy": majority.val_accuracy}
        problems.append(ModelProblem("at_majority", UNSOUND, values))
    if probe is not None and probe.val_accuracy is not None:
        gap = probe.val_accuracy - val_accuracy
        if gap > PROBE_MARGIN:
            severity = UNSOUND if gap > FAR_BELOW_PROBE else CAUTION
            values = {"val_accuracy": val_accuracy, "probe_val_accuracy": probe.val_accuracy}
            problems.append(ModelProblem("below_probe", severity, values))
    return problems


def check_predictions(
    predictions: Predictions,
    *,
    probe_probs: np.ndarray | None,
    history: TrainingHistory | None,
    why_no_probe: str = "",
) -> ModelCheck:
    """Compare the model's predictions with the linear probe's and the majority class on the validation split.

    ``probe_probs`` are the probe's ``(N, C)`` probabilities for every image (None without a probe).
    """
    labels, splits, predicted = predictions.labels, predictions.splits, predictions.predicted
    probe, majority = references(
        labels=labels, splits=splits, class_names=predictions.class_names, probe_probs=probe_probs
    )
    return check_model(
        val_accuracy=split_accuracy(labels, predicted, splits, "val"),
        test_accuracy=split_accuracy(labels, predicted, splits, "test"),
        probe=probe,
        majority=majority,
        history=history,
        why_no_probe=why_no_probe,
    )
