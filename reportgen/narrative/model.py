"""Words about the model check: the one-line verdict on page 1, a sentence per problem, the training's length (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reportgen.analysis.model_check import (
    CAUTION,
    COLLAPSE_DROP,
    FAR_BELOW_PROBE,
    MAJORITY_MARGIN,
    NOTE,
    OVERFIT_GAP,
    PROBE_MARGIN,
    SOUND,
    STILL_IMPROVING,
    UNCHECKED,
    UNSOUND,
    ModelCheck,
    ModelProblem,
)
from reportgen.narrative.format import fmt_number, fmt_percent, fmt_plural

MODEL_RULE = (
    f"unsound when validation accuracy ends more than {100 * COLLAPSE_DROP:.0f} points below its best epoch's "
    f"(collapse), is within {100 * MAJORITY_MARGIN:.0f} points of always answering the majority class, or is more "
    f"than {100 * FAR_BELOW_PROBE:.0f} points below the linear probe; caution when it is {100 * PROBE_MARGIN:.0f} "
    f"to {100 * FAR_BELOW_PROBE:.0f} points below the probe, when the validation loss still fell by more than "
    f"{fmt_percent(STILL_IMPROVING, 0)} in the last epoch, or when training accuracy is more than "
    f"{100 * OVERFIT_GAP:.0f} points above validation accuracy."
)
UNSOUND_FINDING = "(From an unsound model, see above.)"
UNSOUND_CAVEAT = (
    "The model is unsound (see the summary): the galleries, Grad-CAM maps and confusions describe what this "
    "model does, not facts about the data."
)


def _pct(value: float | None) -> str:
    return fmt_percent(value)


def model_verdict(check: ModelCheck) -> str:
    """One sentence for page 1 after ``Model: <verdict>.``: how far the model can be trusted, with the numbers.

    It does not repeat the verdict (the explanation check's sentence reads the same way).
    """
    if check.verdict == UNCHECKED:
        return (
            "It could not be checked: the validation split is empty, so nothing tells it from a "
            "collapsed or untrained model; read the galleries with care."
        )
    serious = [p for p in check.problems if p.severity == (UNSOUND if check.verdict == UNSOUND else CAUTION)]
    problems = "; ".join(problem_clause(p, check) for p in serious)
    comparison = _comparison(check)
    if check.verdict == UNSOUND:
        return f"Do not read the galleries as facts about the data: {problems}."
    if check.verdict == CAUTION:
        return f"Read the galleries with care: {problems} ({comparison})."
    if check.probe_kept:
        return (
            f"It is the linear probe itself: fine-tuning did not beat a logistic regression on the pretrained "
            f"features on validation, so that classifier was kept ({comparison})."
        )
    return f"{comparison[0].upper()}{comparison[1:]}."


def _comparison(check: ModelCheck) -> str:
    refs = []
    if check.probe is not None and not check.probe_kept:
        refs.append(f"{_pct(check.probe.val_accuracy)} for a linear probe on its starting features")
    refs.append(f"{_pct(check.majority.val_accuracy)} for always answering {check.majority.detail}")
    text = f"validation accuracy {_pct(check.val_accuracy)}, against " + " and ".join(refs)
    if check.test_accuracy is not None:
        text += f"; test accuracy {_pct(check.test_accuracy)}"
        if check.probe is not None and check.probe.test_accuracy is not None and not check.probe_kept:
            text += f" (probe {_pct(check.probe.test_accuracy)})"
    return text


def training_length(losses: Sequence[float | None], train: Mapping[str, Any]) -> str:
    """Why training ran as long as it did, when validation chose its length (``--patience``); "" otherwise.

    ``losses``: the validation loss of the starting model (None when not measured), then of each epoch run;
    ``train``: the run's training options (``results.json`` ``run.config.train``).
    """
    patience, most, run = int(train.get("patience") or 0), int(train.get("epochs") or 0), len(losses) - 1
    if patience <= 0 or most <= 0 or run < 1:
        return ""
    if run >= most:
        return f"All {fmt_plural(most, 'epoch')} allowed ran."
    tuned = [loss for loss in losses[1:] if loss is not None]
    start = losses[0]
    if start is not None and tuned and min(tuned) >= start:
        return (
            f"Training stopped after epoch {run} of at most {most}: the linear probe still had the lowest "
            "validation loss and the last epoch got worse than the ones before it."
        )
    least = float(train.get("min_improvement") or 0.0)
    by = f" by {fmt_percent(least, 0)} or more" if least > 0 else ""
    return (
        f"Training stopped after epoch {run} of at most {most}: the validation loss had not improved{by} for "
        f"{fmt_plural(patience, 'epoch')}."
    )


def model_notes(check: ModelCheck) -> tuple[str, ...]:
    """A sentence per problem, for the training chapter (notes on epochs that were not kept included)."""
    notes = []
    for problem in check.problems:
        clause = problem_clause(problem, check)
        label = {UNSOUND: "Unsound", CAUTION: "Caution", NOTE: "Note"}[problem.severity]
        notes.append(f"{label}: {clause[0].upper()}{clause[1:]}.")
    if check.verdict == SOUND and not notes:
        notes.append("No problem found: no collapse, no sign of under- or over-training, not below either reference.")
    if check.probe is None and check.why_no_probe:
        notes.append(f"No linear-probe reference: {check.why_no_probe}.")
    return tuple(notes)


def problem_clause(problem: ModelProblem, check: ModelCheck) -> str:
    """The problem as a clause with its numbers, e.g. ``it collapsed: validation accuracy fell from ...``."""
    return _CLAUSES[problem.kind].format(**_clause_words(problem.values, check))


def _clause_words(values: dict[str, float], check: ModelCheck) -> dict[str, str]:
    """A problem's numbers as words: accuracies in percent, epochs as counts, losses as numbers."""
    words = {key: _pct(value) if key.endswith("accuracy") else fmt_number(value) for key, value in values.items()}
    words.update({key: str(int(values[key])) for key in ("epoch", "best_epoch") if key in values})
    if "epochs" in values:
        words["epochs"] = fmt_plural(int(values["epochs"]), "epoch")
    return {**words, "kept_epoch": str(check.kept_epoch), "majority": check.majority.detail}


_CLAUSES: dict[str, str] = {  # problem kind -> its clause, filled from the problem's values
    "collapse": "it collapsed: validation accuracy fell from {best_val_accuracy} at epoch {best_epoch} to "
    "{val_accuracy} in the model kept (epoch {epoch})",
    "unstable": "training was unstable: validation accuracy fell from {best_val_accuracy} at epoch {best_epoch} "
    "to {val_accuracy} at epoch {epoch}; the kept epoch ({kept_epoch}) is not affected",
    "at_majority": "it is no better than always answering {majority} (validation accuracy {val_accuracy} "
    "against {majority_val_accuracy})",
    "below_probe": "it is weaker than a linear probe on its own starting features (validation accuracy "
    "{val_accuracy} against {probe_val_accuracy})",
    "undertrained": "the validation loss was still falling at the last of {epochs} ({val_loss} after {before}): "
    "more epochs may help",
    "overfit": "it fits its training images far better than new ones (training accuracy {train_accuracy} "
    "against validation {val_accuracy})",
}
