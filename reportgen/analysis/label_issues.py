"""Label errors over the whole data set: out-of-sample probabilities, a calibrated noise model, two tiers.

1. :func:`cross_val_probs` — K-fold cross-validated logistic regression on embeddings from the
   *pretrained* backbone (before fine-tuning, so the features never saw the labels being checked).
2. :func:`fit_noise_model` — a temperature and the share of wrong labels fitted together to those
   probabilities (uniform flips; the share never below 2 %); each image gets the posterior probability that
   its given label is wrong. A hard-but-correct image (given class merely unlikely) keeps a low posterior.
3. :func:`find_label_issues` — "likely wrong": the images of highest posterior, as many as the expected
   number of wrong labels (sum of the posteriors); "worth a look": the next ones by rank.

How the list is sized, what else was tried for better probabilities, and the large-set way: the
measurements are in ``docs/label-check.md``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from reportgen.data.splits import stratified_folds

logger = logging.getLogger(__name__)

# Least share of wrong labels the posteriors assume. The fitted share of a set with only a handful of real
# errors is 0, which explains them away (Food-101's own errors; docs/label-check.md).
MIN_NOISE_RATE = 0.02
REVIEW_MIN = 12  # the "worth a look" tier holds as many images as "likely wrong", and at least this many
FILTER_BY = "expected_wrong_labels"  # the likely-wrong tier holds round(sum of posteriors) images
RANK_BY = "wrong_label_posterior"
# From this many images the large-set way. Synthetic 1280-d, 101 classes, 5 % flipped (benchmarks/whole_set.py),
# 2-core x86_64 shared (load 2-3): the label check took 13.3 / 24.0 / 37.8 s at 20k / 50k / 100k images, flips
# found 0.92 / 0.94 / 0.94 (precision 0.92 / 0.93 / 0.94); at 100k all training rows to convergence took 75.7 s.
REDUCE_FROM = 20_000
REDUCED_DIMS = 256  # principal axes kept: 89 % of food9-64px's feature variance, 92 % of food101-pss's
FIT_ROWS = 16_000  # each fold's probe starts from this many training rows (the training part at 20,000 images)
REFINE_ITERATIONS = 10  # ... then this many lbfgs iterations on all rows; 20 gave the same scores, 54 s at 100k
# BLAS threads of the large-set way: OpenBLAS's 2 threads spin on busy cores. One fold at 20,000 images: 7.6-16.8 s
# on 2 threads (7.6-11 s of CPU), 2.2-2.7 s on one (1.3 s), load 6-7; at 100,000, 187 s on 2 threads (load 7-8).
PROBE_THREADS = 1
NOISE_RATE_METHOD = "noise model fitted to the out-of-sample probabilities"


@dataclass(frozen=True)
class LabelSuspect:
    """One image whose given label the out-of-sample probabilities contradict."""

    image_idx: int  # index into the data set arrays
    given_idx: int  # class index of the folder the image sits in
    suggested_idx: int  # most probable class other than the given one
    given_prob: float  # out-of-sample probability of the given class
    suggested_prob: float  # out-of-sample probability of the suggested class
    quality: float  # label quality in [0, 1]: temperature-scaled probability of the given class; low = suspect
    wrong_prob: float  # posterior probability that the given label is wrong (see fit_noise_model)


@dataclass(frozen=True)
class LabelIssues:
    """Suspected label errors of a whole data set in two tiers, most likely first."""

    suspects: tuple[LabelSuspect, ...]  # "likely wrong": as many as the expected number of wrong labels
    worth_a_look: tuple[LabelSuspect, ...]  # the next ones by rank
    n_images: int
    suspects_per_class: tuple[int, ...]  # (C,) likely-wrong suspects by given class
    suspect_flows: tuple[tuple[int, ...], ...]  # (C, C) likely-wrong suspects by [given][suggested] class
    noise_rate: float  # estimated fraction of wrong labels in the whole data set
    class_noise_rates: tuple[float, ...]  # (C,) estimated fraction of wrong labels among each class's images
    noise_rate_method: str
    probs_accuracy: float  # how often the out-of-sample probabilities' argmax equals the given label
    temperature: float  # fitted temperature of the out-of-sample probabilities
    filter_by: str  # how the likely-wrong tier is sized
    rank_by: str  # what orders the suspects


@dataclass(frozen=True)
class NoiseModel:
    """Temperature-scaled probabilities and each image's probability of a wrong label (see :func:`fit_noise_model`)."""

    temperature: float  # divides the log-probabilities; > 1 flattens, < 1 sharpens
    noise_rate: float  # fitted share of wrong labels, at least the floor
    calibrated: np.ndarray  # (N, C) temperature-scaled probabilities
    wrong_probs: np.ndarray  # (N,) posterior probability that the given label is wrong


def cross_val_probs(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int | None = None,
    folds: int,
    seed: int,
    c: float = 1.0,
    max_iter: int = 1000,
    reduce_from: int = REDUCE_FROM,
    fit_rows: int = FIT_ROWS,
) -> np.ndarray:
    """Out-of-sample class probabilities from stratified K-fold logistic regression on ``embeddings``.

    Each image's probabilities come from a model fitted on the other folds only, so a wrong label cannot
    vouch for itself. Rows are L2-normalised first (cosine geometry, as the backbone's features are used
    for retrieval); ``c`` is sklearn's inverse regularisation strength (see the module table for why 1.0).

    Args:
        embeddings: ``(N, D)`` float features of every image, from a model that never saw ``labels``.
        labels: ``(N,)`` int given class indices.
        num_classes: number of classes ``C``; ``labels.max() + 1`` when None.
        folds: number of folds; lowered to the smallest class's size (at least 2) when a class is smaller.
        seed: seed of the fold assignment (and of the large-set way's rows).
        c: inverse L2 regularisation strength of the logistic regression.
        max_iter: iteration cap of the lbfgs solver.
        reduce_from: from this many images, the probe is fitted on the :data:`REDUCED_DIMS` leading principal
            axes in float32, on one BLAS thread, each fold's from ``fit_rows`` training rows (:func:`_fit_large`).
        fit_rows: see ``reduce_from`` and :data:`FIT_ROWS`.

    Returns:
        ``(N, C)`` float64 probabilities; each row sums to 1.
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    x, y, n_classes = _validate_inputs(embeddings, labels, num_classes)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    large = len(y) >= reduce_from
    probs = np.zeros((len(y), n_classes))
    splits = stratified_folds(y, folds, seed)
    with threadpool_limits(limits=PROBE_THREADS if large else None):  # None: as many as the run has
        if large:
            x = _principal_components(x, REDUCED_DIMS)
            logger.info("label check: %d images, probe fitted on %d principal axes", len(y), x.shape[1])
        for fold, (train, held_out) in enumerate(splits):
            if large:
                model = _fit_large(x, y, train, c=c, max_iter=max_iter, fit_rows=fit_rows, seed=seed + fold)
            else:
                model = LogisticRegression(C=c, max_iter=max_iter).fit(x[train], y[train])
            probs[np.ix_(held_out, model.classes_)] = model.predict_proba(x[held_out])
            logger.debug("label check fold %d/%d: %d held out", fold + 1, len(splits), len(held_out))
    return probs


def _fit_large(x: np.ndarray, y: np.ndarray, train: np.ndarray, *, c: float, max_iter: int, fit_rows: int, seed: int):
    """One fold's probe: fitted on at most ``fit_rows`` of ``train`` (seeded, every class kept), then refined.

    :data:`REFINE_ITERATIONS` lbfgs iterations on all of ``train`` from there: the start comes from this fold's
    own training rows, never from another fold's model (which saw the held-out rows' labels).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=max_iter, warm_start=True)
    if len(train) <= fit_rows:
        return model.fit(x[train], y[train])
    order = np.random.default_rng(seed).permutation(train)
    _, first = np.unique(y[order], return_index=True)  # one row of every class, so that the refit keeps them
    part = np.union1d(order[:fit_rows], order[first])
    model.fit(x[part], y[part])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the refinement stops early on purpose
        return model.set_params(max_iter=REFINE_ITERATIONS).fit(x[train], y[train])


def _principal_components(x: np.ndarray, dims: int) -> np.ndarray:
    """``(N, min(dims, D))`` float32: ``x`` centred and projected on its leading principal axes (no labels used)."""
    x = x.astype(np.float32)
    x -= x.mean(axis=0)
    _, axes = np.linalg.eigh((x.T @ x).astype(np.float64))  # (D, D), eigenvalues ascending
    return x @ axes[:, ::-1][:, :dims].astype(np.float32)


def _validate_inputs(
    embeddings: np.ndarray, labels: np.ndarray, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"`embeddings` must be (N, D) and `labels` (N,); got {x.shape} and {y.shape}")
    if not np.isfinite(x).all():
        raise ValueError("`embeddings` holds NaN or infinite values")
    n_classes = int(y.max()) + 1 if num_classes is None else num_classes
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"`labels` must lie in [0, {n_classes}); got {y.min()}..{y.max()}")
    return x, y.astype(np.int64), n_classes


def find_label_issues(
    labels: np.ndarray,
    oos_probs: np.ndarray,
    *,
    min_noise_rate: float = MIN_NOISE_RATE,
    review_min: int = REVIEW_MIN,
) -> LabelIssues:
    """Size and rank the images whose given label is probably wrong, from out-of-sample probabilities.

    The probabilities are first made honest: a temperature and the share of wrong labels are fitted
    together (:func:`fit_noise_model`), so that the few wrong labels are explained as flips rather than by
    flattening every image's probabilities. Each image then gets the posterior probability that its given
    label is wrong; the "likely wrong" tier holds the images of highest posterior, as many as the expected
    number of wrong labels (the sum of the posteriors), and "worth a look" the next ones by rank, as many
    again but at least ``review_min``.

    Args:
        labels: ``(N,)`` int given class indices.
        oos_probs: ``(N, C)`` out-of-sample probabilities (e.g. from :func:`cross_val_probs`, or from
            models fine-tuned on other folds); in-sample ones collapse to 0/1 and find nothing.
        min_noise_rate: the least share of wrong labels the posteriors assume (see :data:`MIN_NOISE_RATE`).
        review_min: the least number of images in the "worth a look" tier (fewer if the data set is small).

    Returns:
        The two tiers, per-class counts and the estimated share of wrong labels.
    """
    y, probs = _validate_probs(labels, oos_probs)
    model = fit_noise_model(y, probs, min_noise_rate=min_noise_rate)
    wrong = model.wrong_probs
    order = np.lexsort((np.arange(len(y)), -wrong))  # most likely wrong first, ties by index
    n_likely = int(round(float(wrong.sum())))
    n_review = min(max(n_likely, review_min), len(y) - n_likely)
    likely = _suspects(order[:n_likely], y, probs, model.calibrated, wrong)
    review = _suspects(order[n_likely : n_likely + n_review], y, probs, model.calibrated, wrong)
    return LabelIssues(
        suspects=likely,
        worth_a_look=review,
        n_images=len(y),
        suspects_per_class=_per_class(likely, probs.shape[1]),
        suspect_flows=_flows(likely, probs.shape[1]),
        noise_rate=round(float(wrong.mean()), 6),
        class_noise_rates=_class_noise(y, wrong, probs.shape[1]),
        noise_rate_method=NOISE_RATE_METHOD,
        probs_accuracy=round(float((probs.argmax(axis=1) == y).mean()), 6),
        temperature=round(model.temperature, 6),
        filter_by=FILTER_BY,
        rank_by=RANK_BY,
    )


def fit_noise_model(labels: np.ndarray, oos_probs: np.ndarray, *, min_noise_rate: float = MIN_NOISE_RATE) -> NoiseModel:
    """Fit a temperature ``T`` and a flip rate ``e`` to the given labels, then each label's posterior of being wrong.

    Model: a label is kept with probability ``1 - e`` and otherwise moved to one of the other ``C - 1``
    classes at random, so ``P(given = j | x) = (1 - e) q_j + e (1 - q_j) / (C - 1)`` with ``q = softmax(log
    p / T)``. ``T`` and ``e`` maximise that likelihood; ``e`` is then raised to ``min_noise_rate``. Fitting
    ``T`` under the noise model keeps the wrong labels from flattening everyone's probabilities (plain temperature
    scaling on noisy labels does), and an image that is merely hard — ``q_j`` small but not tiny — keeps a
    low posterior, so it is not counted as an error. Posterior: ``e (1 - q_j) / (C - 1) / P(given = j | x)``.
    """
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    y, probs = _validate_probs(labels, oos_probs)
    n_classes = probs.shape[1]
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    rows = np.arange(len(y))

    def given_prob(temperature: float) -> np.ndarray:
        return np.exp(log_softmax(logp / temperature, axis=1)[rows, y])

    def neg_log_likelihood(theta: np.ndarray) -> float:
        temperature, rate = theta
        q = given_prob(temperature)
        likelihood = (1 - rate) * q + rate * (1 - q) / max(n_classes - 1, 1)
        return -float(np.log(np.maximum(likelihood, 1e-300)).sum())

    fit = minimize(neg_log_likelihood, np.array([1.0, 0.02]), bounds=[(0.05, 20.0), (1e-4, 0.5)], method="L-BFGS-B")
    temperature, rate = float(fit.x[0]), max(float(fit.x[1]), min_noise_rate)
    q = given_prob(temperature)
    flipped_in = rate * (1 - q) / max(n_classes - 1, 1)
    wrong = flipped_in / np.maximum(flipped_in + (1 - rate) * q, 1e-300)
    calibrated = np.exp(log_softmax(logp / temperature, axis=1))
    logger.debug("label noise model: T=%.3f, wrong-label rate %.4f", temperature, rate)
    return NoiseModel(temperature, rate, calibrated, wrong)


def _validate_probs(labels: np.ndarray, oos_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64)
    probs = np.asarray(oos_probs, dtype=np.float64)
    if probs.ndim != 2 or y.ndim != 1 or len(probs) != len(y):
        raise ValueError(f"`oos_probs` must be (N, C) and `labels` (N,); got {probs.shape} and {y.shape}")
    if y.min() < 0 or y.max() >= probs.shape[1]:
        raise ValueError(f"`labels` must lie in [0, {probs.shape[1]}); got {y.min()}..{y.max()}")
    if not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("`oos_probs` rows must sum to 1")
    return y, probs


def _suspects(
    chosen: np.ndarray, labels: np.ndarray, probs: np.ndarray, calibrated: np.ndarray, wrong: np.ndarray
) -> tuple[LabelSuspect, ...]:
    others = probs.copy()
    others[np.arange(len(labels)), labels] = -1.0  # the suggestion is never the given class
    suggested = others.argmax(axis=1)
    return tuple(
        LabelSuspect(
            image_idx=int(i),
            given_idx=int(labels[i]),
            suggested_idx=int(suggested[i]),
            given_prob=round(float(probs[i, labels[i]]), 6),
            suggested_prob=round(float(probs[i, suggested[i]]), 6),
            quality=round(float(calibrated[i, labels[i]]), 6),
            wrong_prob=round(float(wrong[i]), 6),
        )
        for i in chosen
    )


def _per_class(suspects: tuple[LabelSuspect, ...], n_classes: int) -> tuple[int, ...]:
    counts = np.bincount([s.given_idx for s in suspects], minlength=n_classes)
    return tuple(int(v) for v in counts)


def _flows(suspects: tuple[LabelSuspect, ...], n_classes: int) -> tuple[tuple[int, ...], ...]:
    flows = np.zeros((n_classes, n_classes), dtype=np.int64)
    for s in suspects:
        flows[s.given_idx, s.suggested_idx] += 1
    return tuple(tuple(int(v) for v in row) for row in flows)


def _class_noise(labels: np.ndarray, wrong: np.ndarray, n_classes: int) -> tuple[float, ...]:
    """Mean posterior of a wrong label among each given class's images."""
    counts = np.bincount(labels, minlength=n_classes)
    sums = np.bincount(labels, weights=wrong, minlength=n_classes)
    rates = np.divide(sums, counts, out=np.zeros(n_classes), where=counts > 0)
    return tuple(round(float(v), 6) for v in rates)
