"""Where the model fails: slices of the data set the audited model gets wrong more often, tested against chance.

Each candidate (:mod:`reportgen.analysis.slice_candidates`: metadata values, image-property quintiles, feature
clusters) is scored on the validation and test images: its error rate against the rest's, with a one-sided
Fisher exact test (the hypergeometric tail: more errors in the slice than chance would put there). The
p-values are corrected (Benjamini-Hochberg) within each source: a metadata column is a question the user asked
in advance, the property quintiles and the clusters are the finder's own, and a column holding the answer
should not lose it to the dozens of automatic slices beside it (``benchmarks/planted_slices.py``, food9-64px,
draw 1 of JPEG quality 10: 40.8 % of those photos wrong against 27.8 %, p = 0.021 for the column naming them;
one family of all 52 slices tested adjusts it to 0.22, its own family of two to 0.042). A slice is reported when

* it and the rest each hold at least ``min_size`` evaluated images, and it at most :data:`MAX_SHARE` of them,
* its corrected p-value is at most ``alpha``, and
* its error rate exceeds both the rest's and the rate its own classes have elsewhere by ``min_effect``
  (so a hard class is not reported again as a slice: the per-class metrics already show it).

Slices are ranked by :func:`strength` (the lower confidence bound of their excess error rate); one that
shares most of its images with a stronger one (Jaccard index of the members >= :data:`MAX_OVERLAP`, or
:data:`MAX_INSIDE` of the smaller one's members inside the larger) is merged into it, and the stronger names
it. Beside the errors, each slice's share of suspected label errors (from the label check) says whether it is
a labelling problem rather than a model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from reportgen.analysis.slice_candidates import METADATA, Candidate

EVALUATED_SPLITS = ("val", "test")  # the images the audited model was not trained on
MAX_OVERLAP = 0.5  # Jaccard index of two slices' members from which the weaker is merged into the stronger
# share of the smaller slice's members inside the larger from which the weaker is merged too: a cluster holding
# the worst-hit 40 % of a planted group is not a second finding (food101-pss, blur+dim, draw 2 of
# benchmarks/planted_slices.py)
MAX_INSIDE = 0.8
MAX_REPORTED = 8
MAX_SHARE = 0.5  # most of the evaluated images a slice may hold (clothing-mini: a k = 2 cluster held 60 %)
WILSON_Z = 1.96  # the strength of a slice is the 95 % lower bound of its excess error rate (``strength``)


@dataclass(frozen=True)
class Slice:
    """A group of images the audited model gets wrong more often than the rest."""

    source: str  # "metadata" | "image property" | "feature cluster"
    column: str  # the metadata column or property it cuts; "cluster" for a feature cluster
    description: str  # e.g. "source = phone_b"
    members: tuple[int, ...]  # every image of the slice, all splits, in data set order
    evaluated: int  # its validation and test images
    errors: int  # of them, misclassified by the audited model
    error_rate: float
    rest_evaluated: int  # validation and test images outside it
    rest_errors: int
    rest_error_rate: float
    expected_error_rate: float  # the error rate of its images' classes outside the slice, weighted by its mix
    p_value: float  # one-sided Fisher exact test
    p_adjusted: float  # Benjamini-Hochberg over every candidate of its source tested
    mistakes: tuple[tuple[int, int], ...]  # (image, predicted class) of its evaluated mistakes, most confident first
    mistake_scores: tuple[float, ...]  # the audited model's score for each mistake's predicted class
    evaluated_per_class: tuple[int, ...]  # (C,) its evaluated images per true class
    errors_per_class: tuple[int, ...]  # (C,) its mistakes per true class
    suspects: int | None  # suspected label errors among its members; None without a label check
    suspect_share: float | None  # share of its members that are suspects
    rest_suspect_share: float | None
    merged: tuple[str, ...] = ()  # descriptions of the overlapping weaker slices merged into it


@dataclass(frozen=True)
class Slices:
    """The slices reported, strongest first (``strength``), and what was tried to find them."""

    slices: tuple[Slice, ...]  # at most MAX_REPORTED
    tried: dict[str, int]  # source -> candidates made
    tested: int  # candidates with min_size evaluated images on both sides (the correction's family)
    significant: int  # candidates passing the test and the effect rule, before overlaps were merged
    evaluated: int  # validation and test images
    error_rate: float  # of them all
    min_size: int
    min_effect: float
    alpha: float


def find_slices(
    candidates: Sequence[Candidate],
    labels: np.ndarray,
    probs: np.ndarray,
    splits: np.ndarray,
    *,
    suspects: Sequence[int] | None,
    min_size: int,
    min_effect: float,
    alpha: float,
    max_reported: int = MAX_REPORTED,
) -> Slices:
    """Score ``candidates`` against the audited model's errors on the validation and test images.

    Args:
        candidates: the groups to score (``members`` masks over the ``N`` images).
        labels: ``(N,)`` true class indices.
        probs: ``(N, C)`` the audited model's scores; the top one is its prediction.
        splits: ``(N,)`` split names; the images of :data:`EVALUATED_SPLITS` are scored.
        suspects: image indices of suspected label errors, or None when the label check did not run.
        min_size: fewest evaluated images in a slice, and in the rest.
        min_effect: least excess of the slice's error rate over the rest's and its classes' elsewhere.
        alpha: largest p-value reported, Benjamini-Hochberg corrected within each source of candidates.
        max_reported: most slices returned.
    """
    labels = np.asarray(labels).astype(np.int64)
    probs = np.asarray(probs)
    evaluated = np.isin(np.asarray(splits), EVALUATED_SPLITS)
    wrong = evaluated & (probs.argmax(axis=1) != labels)
    tried: dict[str, int] = {}
    for c in candidates:
        tried[c.source] = tried.get(c.source, 0) + 1
    sizes = np.array([int((c.members & evaluated).sum()) for c in candidates], dtype=np.int64)
    most = MAX_SHARE * evaluated.sum()  # more than half the images is most of the data set, not a slice of it
    testable = [i for i, n in enumerate(sizes) if min_size <= n <= most and evaluated.sum() - n >= min_size]
    p_values = _fisher_greater(candidates, testable, evaluated, wrong)
    adjusted = _corrected(p_values, [candidates[i].source for i in testable])
    suspect_mask = None if suspects is None else np.isin(np.arange(len(labels)), np.asarray(suspects, dtype=np.int64))
    found = []
    for k, i in enumerate(testable):
        if adjusted[k] > alpha:
            continue
        s = _slice(candidates[i], labels, probs, evaluated, wrong, suspect_mask, float(p_values[k]), float(adjusted[k]))
        if s.error_rate - max(s.rest_error_rate, s.expected_error_rate) >= min_effect:
            found.append(s)
    n_eval = int(evaluated.sum())
    return Slices(
        slices=tuple(_merge_overlaps(found)[:max_reported]),
        tried=tried,
        tested=len(testable),
        significant=len(found),
        evaluated=n_eval,
        error_rate=round(float(wrong.sum() / n_eval), 4) if n_eval else 0.0,
        min_size=min_size,
        min_effect=min_effect,
        alpha=alpha,
    )


def _corrected(p_values: np.ndarray, sources: list[str]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values, within each source's family."""
    adjusted = np.ones(len(p_values))
    for source in dict.fromkeys(sources):
        family = np.array([s == source for s in sources])
        adjusted[family] = stats.false_discovery_control(p_values[family], method="bh")
    return adjusted


def _fisher_greater(
    candidates: Sequence[Candidate], testable: list[int], evaluated: np.ndarray, wrong: np.ndarray
) -> np.ndarray:
    """One-sided Fisher exact p-values: the chance of at least the slice's errors among its evaluated images."""
    total, errors = int(evaluated.sum()), int(wrong.sum())
    inside = np.array([int((candidates[i].members & evaluated).sum()) for i in testable], dtype=np.int64)
    hits = np.array([int((candidates[i].members & wrong).sum()) for i in testable], dtype=np.int64)
    if not len(testable):
        return np.zeros(0)
    return np.clip(stats.hypergeom.sf(hits - 1, total, errors, inside), 0.0, 1.0)


def _slice(
    c: Candidate,
    labels: np.ndarray,
    probs: np.ndarray,
    evaluated: np.ndarray,
    wrong: np.ndarray,
    suspect_mask: np.ndarray | None,
    p_value: float,
    p_adjusted: float,
) -> Slice:
    num_classes = probs.shape[1]
    inside, outside = c.members & evaluated, ~c.members & evaluated
    n_in, n_out = int(inside.sum()), int(outside.sum())
    err_in, err_out = int((c.members & wrong).sum()), int((~c.members & wrong).sum())
    rest_rate = err_out / n_out
    per_class = np.bincount(labels[inside], minlength=num_classes)
    errors_per_class = np.bincount(labels[c.members & wrong], minlength=num_classes)
    rest_per_class = np.bincount(labels[outside], minlength=num_classes)
    # a class with no image outside the slice is expected to fail as often as it does inside: no evidence either way
    class_rest = np.where(
        rest_per_class > 0,
        np.bincount(labels[outside & wrong], minlength=num_classes) / np.maximum(rest_per_class, 1),
        errors_per_class / np.maximum(per_class, 1),
    )
    mistakes = np.flatnonzero(c.members & wrong)
    mistakes = mistakes[np.argsort(-probs[mistakes].max(axis=1), kind="stable")]
    suspects = share = rest_share = None
    if suspect_mask is not None:
        suspects = int((suspect_mask & c.members).sum())
        share = round(suspects / max(int(c.members.sum()), 1), 4)
        rest_share = round(int((suspect_mask & ~c.members).sum()) / max(int((~c.members).sum()), 1), 4)
    return Slice(
        source=c.source,
        column=c.column,
        description=c.description,
        members=tuple(int(i) for i in np.flatnonzero(c.members)),
        evaluated=n_in,
        errors=err_in,
        error_rate=round(err_in / n_in, 4),
        rest_evaluated=n_out,
        rest_errors=err_out,
        rest_error_rate=round(rest_rate, 4),
        expected_error_rate=round(float(per_class @ class_rest / n_in), 4),
        p_value=p_value,
        p_adjusted=p_adjusted,
        mistakes=tuple((int(i), int(probs[i].argmax())) for i in mistakes),
        mistake_scores=tuple(round(float(probs[i].max()), 4) for i in mistakes),
        evaluated_per_class=tuple(int(n) for n in per_class),
        errors_per_class=tuple(int(n) for n in errors_per_class),
        suspects=suspects,
        suspect_share=share,
        rest_suspect_share=rest_share,
    )


def strength(s: Slice) -> float:
    """How much worse the slice is at the least: the 95 % Wilson lower bound of its error rate, less the reference.

    The reference is the larger of the rest's error rate and its classes' elsewhere. A point estimate would put
    a small slice with a lucky streak first; a p-value, the largest slice (a property quintile holding a planted
    group and as many other images would rank above the planted group itself).
    """
    n, rate, z = s.evaluated, s.error_rate, WILSON_Z
    centre = rate + z * z / (2 * n)
    margin = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return float((centre - margin) / (1 + z * z / n)) - max(s.rest_error_rate, s.expected_error_rate)


def _merge_overlaps(found: list[Slice]) -> list[Slice]:
    """Strongest first (:func:`strength`); a slice overlapping a stronger one is merged into it.

    Overlapping: a Jaccard index of at least :data:`MAX_OVERLAP`, or :data:`MAX_INSIDE` of the smaller one's images
    inside the larger.

    A slice named by the user's metadata takes the place of an automatic one it overlaps (the automatic one is
    then listed as merged): a reader can act on "camera = phone_b", less so on the quintile that holds it.
    """
    ranked = sorted(found, key=lambda s: (-strength(s), s.p_adjusted, s.description))
    kept: list[tuple[Slice, set[int], list[str]]] = []
    for s in ranked:
        members = set(s.members)
        for k, (other, other_members, merged) in enumerate(kept):
            shared = len(members & other_members)
            inside = shared / min(len(members), len(other_members))  # of the smaller one
            if shared / len(members | other_members) < MAX_OVERLAP and inside < MAX_INSIDE:
                continue
            if s.source == METADATA and other.source != METADATA:
                kept[k] = (s, members, [other.description, *merged])
            else:
                merged.append(s.description)
            break
        else:
            kept.append((s, members, []))
    return [replace(s, merged=tuple(merged)) for s, _, merged in kept]
