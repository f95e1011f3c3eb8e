"""Words about the model check: the one-line verdict on page 1 and a sentence per problem (pure)."""

from __future__ import annotations

from collections.abc import Callable

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
    return fmt_percent(value, 0)


def model_verdict(check: ModelCheck) -> str:
    """One sentence for page 1: how far the model can be trusted, with the numbers behind it."""
    if check.verdict == UNCHECKED:
        return (
            "The model could not be checked: the validation split is empty, so nothing tells it from a "
            "collapsed or untrained model; read the galleries with care."
        )
    serious = [p for p in check.problems if p.severity == (UNSOUND if check.verdict == UNSOUND else CAUTION)]
    if check.verdict == UNSOUND:
        return (
            "Do not read the galleries as facts about the data: the model is unsound — "
            + "; ".join(problem_clause(p, check) for p in serious)
            + "."
        )
    comparison = _comparison(check)
    if check.verdict == CAUTION:
        return (
            f"Use the model with caution ({comparison}): " + "; ".join(problem_clause(p, check) for p in serious) + "."
        )
    if check.probe_kept:
        return (
            f"The model is sound and is the linear probe itself: fine-tuning did not beat a logistic regression on "
            f"the pretrained features on validation, so that classifier was kept ({comparison})."
        )
    return f"The model is sound: {comparison}."


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
    return _CLAUSES[problem.kind](problem.values, check)


def _collapse(v: dict[str, float], _check: ModelCheck) -> str:
    return (
        f"it collapsed: validation accuracy fell from {_pct(v['best_val_accuracy'])} at epoch "
        f"{int(v['best_epoch'])} to {_pct(v['val_accuracy'])} in the model kept (epoch {int(v['epoch'])})"
    )


def _unstable(v: dict[str, float], check: ModelCheck) -> str:
    return (
        f"training was unstable: validation accuracy fell from {_pct(v['best_val_accuracy'])} at epoch "
        f"{int(v['best_epoch'])} to {_pct(v['val_accuracy'])} at epoch {int(v['epoch'])}; the kept epoch "
        f"({check.kept_epoch}) is not affected"
    )


def _at_majority(v: dict[str, float], check: ModelCheck) -> str:
    return (
        f"it is no better than always answering {check.majority.detail} (validation accuracy "
        f"{_pct(v['val_accuracy'])} against {_pct(v['majority_val_accuracy'])})"
    )


def _below_probe(v: dict[str, float], _check: ModelCheck) -> str:
    return (
        f"it is weaker than a linear probe on its own starting features (validation accuracy "
        f"{_pct(v['val_accuracy'])} against {_pct(v['probe_val_accuracy'])})"
    )


def _undertrained(v: dict[str, float], _check: ModelCheck) -> str:
    return (
        f"the validation loss was still falling at the last of {fmt_plural(int(v['epochs']), 'epoch')} "
        f"({fmt_number(v['val_loss'])} after {fmt_number(v['before'])}): more epochs may help"
    )


def _overfit(v: dict[str, float], _check: ModelCheck) -> str:
    return (
        f"it fits its training images far better than new ones (training accuracy {_pct(v['train_accuracy'])} "
        f"against validation {_pct(v['val_accuracy'])})"
    )


_CLAUSES: dict[str, Callable[[dict[str, float], ModelCheck], str]] = {
    "collapse": _collapse,
    "unstable": _unstable,
    "at_majority": _at_majority,
    "below_probe": _below_probe,
    "undertrained": _undertrained,
    "overfit": _overfit,
}
