"""Words about the explanation check: page 1's verdict, the galleries' warning and the rule (pure).

The verdict reads as the model check's does: page 1 prints ``Heat maps: <verdict>.`` and then this
module's sentence, which gives the numbers and does not repeat the verdict.
"""

from __future__ import annotations

from reportgen.analysis.faithfulness import (
    BLOB_SIGMA,
    FAITHFUL,
    FULL_ROAD_LEAD,
    FULL_ROAD_PAIRS,
    IMPUTATION,
    MIN_MARGIN,
    NOT_INFORMATIVE,
    SANITY_MAX,
    UNCHECKED,
    WEAK,
    ExplanationCheck,
    Score,
    Z,
)
from reportgen.narrative.format import fmt_number, fmt_plural

VERDICT_WORDS = {FAITHFUL: "faithful", WEAK: "weak", NOT_INFORMATIVE: "not informative", UNCHECKED: "unchecked"}
METHOD_NAMES = {
    "gradcam": "Grad-CAM",
    "hirescam": "HiResCAM",
    "gradcam++": "Grad-CAM++",
    "layercam": "LayerCAM",
    "scorecam": "Score-CAM",
    "shapleycam": "ShapleyCAM",
}
EXPLANATION_RULE = (
    "each shown map is scored by ROAD (Rong et al., 2022): the share of the explained class's score the model "
    "keeps when the pixels the map ranks lowest are removed, minus when those it ranks highest are (removed "
    f"pixels take the {IMPUTATION}), halved and averaged over removing 25, 50 and 75 % of the "
    "image; higher is more faithful (-0.5 to 0.5). A random map (RandomCAM) and a centred blob (standard "
    f"deviation {BLOB_SIGMA:g} of the side), the same for every image, are scored on the same images. Faithful "
    f"when the maps beat the blob by more than {MIN_MARGIN:g} and by {Z:g} standard errors of the paired "
    "difference; weak when they so beat the random map but not the blob; not informative when they do not beat "
    "the random map, or when their rank correlation with the maps of a copy of the model whose head and last "
    f"blocks are re-initialised is above {SANITY_MAX:g} (the sanity check of Adebayo et al., 2018: the maps "
    "must depend on what the model learnt)."
)


def method_name(method: str) -> str:
    """The CAM method's usual name, e.g. ``Grad-CAM``."""
    return METHOD_NAMES.get(method, method)


def verdict_words(check: ExplanationCheck) -> str:
    """The verdict as page 1 prints it after ``Heat maps:``."""
    return VERDICT_WORDS.get(check.verdict, check.verdict)


def _pm(s: Score) -> str:
    return f"{fmt_number(s.mean, 3)} ± {fmt_number(s.se, 3)}"


def scores_clause(check: ExplanationCheck) -> str:
    """``Grad-CAM scores 0.144 ± 0.012 (ROAD, 36 gallery images), against ... for random maps and ... for a blob``."""
    return (
        f"{method_name(check.method)} scores {_pm(check.maps)} (ROAD, {fmt_plural(check.maps.n, 'gallery image')}), "
        f"against {_pm(check.random)} for random maps and {_pm(check.blob)} for a centred blob"
    )


def explanation_verdict(check: ExplanationCheck) -> str:
    """One sentence for page 1: how far the heat maps show what the model used, with the numbers."""
    if check.verdict == UNCHECKED:
        return "No gallery image had a map to score."
    scores = scores_clause(check)
    if not check.sanity_passed:
        return (
            f"Do not read the maps as what the model looked at: they barely change when the model's last layers "
            f"are re-initialised (rank correlation {fmt_number(check.sanity, 2)}); {scores}."
        )
    if check.verdict == NOT_INFORMATIVE:
        return f"Do not read the maps as what the model looked at: {scores}, no clear gain over random maps."
    if check.verdict == WEAK:
        return f"The maps show little beyond the centre of the photo: {scores}, not clearly above the blob."
    return f"{scores}: the maps show where the evidence is, beyond the centre of the photo."


def explanation_warning(check: ExplanationCheck) -> str:
    """The sentence above every gallery when the maps are not faithful; empty when they are (or were not scored)."""
    if check.verdict in (FAITHFUL, UNCHECKED):
        return ""
    if check.verdict == WEAK:
        return (
            "These maps show little beyond the centre of the photo: they score no better than a centred blob that "
            "knows nothing of the image (see the explanation check). Read them as a rough guide only."
        )
    return (
        "These maps are not informative: they score no better than random maps or do not depend on what the model "
        "learnt (see the explanation check). Do not read them as what the model looked at."
    )


def explanation_notes(check: ExplanationCheck) -> tuple[str, ...]:
    """The explanation check's details, a sentence each, for its section."""
    notes = [f"{scores_clause(check)}; layer {check.layer}."]
    lead = ", ".join(f"{r:.2f} on {name}" for name, r in FULL_ROAD_LEAD)
    closing = (
        f"The fast score's rank correlation with the library's full ROAD is {FULL_ROAD_PAIRS[0]:.2f} over "
        f"{FULL_ROAD_PAIRS[1]} (image, map) pairs of three photo sets; on the maps' lead over the blob, image by "
        f"image, it is {lead}."
    )
    if check.sanity is not None:
        outcome = "passes" if check.sanity_passed else "fails"
        notes.append(
            f"Sanity check {outcome}: with the {', '.join(check.randomised)} re-initialised, the maps' rank "
            f"correlation with the trained model's is {fmt_number(check.sanity, 2)} (at most {SANITY_MAX:g} passes)."
        )
    return (*notes, closing)
