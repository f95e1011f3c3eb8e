from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from reportgen.analysis.label_issues import LabelIssues, cross_val_probs, find_label_issues
from reportgen.config import RunConfig

FOLDS = RunConfig.label_folds  # as a default run


def _blobs(n_per_class: int = 100, n_classes: int = 3, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 3.0
    labels = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[labels] + rng.normal(size=(len(labels), dim))
    return x.astype(np.float32), labels


def _flip(labels: np.ndarray, n: int, n_classes: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(labels), n, replace=False)
    noisy = labels.copy()
    noisy[idx] = (labels[idx] + rng.integers(1, n_classes, n)) % n_classes
    return noisy, set(idx.tolist())


def test_cross_val_probs_shape_and_rows():
    x, y = _blobs()
    probs = cross_val_probs(x, y, folds=FOLDS, seed=3)
    assert probs.shape == (300, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(probs, cross_val_probs(x, y, folds=FOLDS, seed=3))  # seeded
    assert (probs.argmax(axis=1) == y).mean() > 0.95


def test_cross_val_probs_are_out_of_sample():
    # A lone point labelled 1 inside class 0's cluster: in-sample it could vouch for itself, out of sample not.
    x, y = _blobs(n_per_class=60, n_classes=2)
    y = y.copy()
    y[0] = 1
    probs = cross_val_probs(x, y, folds=FOLDS, seed=0)
    assert probs[0, 1] < 0.2


def test_cross_val_probs_small_class_and_missing_class_in_fold():
    x, y = _blobs(n_per_class=30, n_classes=3)
    keep = np.concatenate([np.arange(60), [60, 61]])  # class 2 has only two images
    probs = cross_val_probs(x[keep], y[keep], num_classes=4, folds=FOLDS, seed=0)
    assert probs.shape == (62, 4)
    assert np.all(probs[:, 3] == 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)


def test_cross_val_probs_rejects_bad_input():
    x, y = _blobs()
    with pytest.raises(ValueError, match="embeddings"):
        cross_val_probs(x[:10], y, folds=FOLDS, seed=0)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cross_val_probs(bad, y, folds=FOLDS, seed=0)


def test_finds_flipped_labels_on_separable_blobs():
    x, y = _blobs()
    noisy, truth = _flip(y, 15, 3)
    issues = find_label_issues(noisy, cross_val_probs(x, noisy, folds=FOLDS, seed=0))
    found = {s.image_idx for s in issues.suspects}
    assert len(found & truth) / len(found) >= 0.9
    assert len(found & truth) / len(truth) >= 0.9
    assert 0.03 <= issues.noise_rate <= 0.08  # planted 15 / 300 = 0.05
    for s in issues.suspects:
        if s.image_idx in truth:
            assert s.suggested_idx == y[s.image_idx]  # suggests the true class


def test_suspects_are_ranked_and_counted():
    x, y = _blobs()
    noisy, _ = _flip(y, 20, 3)
    issues = find_label_issues(noisy, cross_val_probs(x, noisy, folds=FOLDS, seed=0))
    qualities = [s.quality for s in issues.suspects]
    assert qualities == sorted(qualities)  # the posterior falls as the calibrated given-class probability rises
    assert all(s.suggested_idx != s.given_idx for s in issues.suspects)
    wrong = [s.wrong_prob for s in (*issues.suspects, *issues.worth_a_look)]
    assert wrong == sorted(wrong, reverse=True)  # one ranking across both tiers
    assert sum(issues.suspects_per_class) == len(issues.suspects)
    assert sum(map(sum, issues.suspect_flows)) == len(issues.suspects)
    assert all(issues.suspect_flows[c][c] == 0 for c in range(3))
    assert issues.n_images == 300
    json.dumps(dataclasses.asdict(issues), allow_nan=False)


def test_clean_confident_labels_give_no_suspects():
    labels = np.repeat(np.arange(3), 20)
    probs = np.full((60, 3), 0.01)
    probs[np.arange(60), labels] = 0.98
    issues = find_label_issues(labels, probs)
    assert isinstance(issues, LabelIssues)
    assert issues.suspects == ()
    assert issues.noise_rate < 1e-3  # the posteriors assume a 2 % floor, but these labels are far from doubt
    assert max(issues.class_noise_rates) < 1e-3
    assert issues.probs_accuracy == 1.0


def test_find_label_issues_rejects_bad_probs():
    labels = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="sum to 1"):
        find_label_issues(labels, np.ones((3, 3)))
    with pytest.raises(ValueError, match="labels"):
        find_label_issues(np.array([0, 1, 5]), np.eye(3))


@pytest.mark.e2e
def test_real_photos_five_percent_noise():
    """Pretrained embeddings of food101-pss, 5 % of the labels flipped: the finder's figures hold."""
    from _finder_data import embeddings, loaded

    images = loaded("food101-pss")
    emb = embeddings("food101-pss")
    clean = cross_val_probs(emb, images.labels, folds=FOLDS, seed=0)
    before = {s.image_idx for s in find_label_issues(images.labels, clean).suspects}
    noisy, truth = _flip(images.labels, 30, 3, seed=1000)
    issues = find_label_issues(noisy, cross_val_probs(emb, noisy, folds=FOLDS, seed=0))
    found = {s.image_idx for s in issues.suspects}
    hits = len(found & truth)
    assert hits / len(truth) >= 0.7
    assert hits / len(found - (before - truth)) >= 0.75  # real Food-101 label errors are not false alarms
    assert 0.04 <= issues.noise_rate <= 0.12


def _confusable_probs(seed: int = 0):
    """Probabilities of 400 images, 4 classes: 40 hard-but-correct images (given class 0.2-0.4, the rest on a
    look-alike class) and 12 flipped labels (given class below 0.01), the others confidently right."""
    rng = np.random.default_rng(seed)
    n, k = 400, 4
    labels = np.repeat(np.arange(k), n // k)
    probs = np.full((n, k), 0.02)
    probs[np.arange(n), labels] = 0.94
    hard = rng.choice(n, 40, replace=False)
    given_hard = rng.uniform(0.2, 0.4, len(hard))
    probs[hard] = 0.01
    probs[hard, labels[hard]] = given_hard
    probs[hard, (labels[hard] + 1) % k] = 1 - given_hard - 0.02
    flipped = rng.choice(np.setdiff1d(np.arange(n), hard), 12, replace=False)
    probs[flipped] = 0.003
    probs[flipped, (labels[flipped] + 2) % k] = 1 - 0.003 * (k - 1)
    return labels, probs / probs.sum(axis=1, keepdims=True), set(flipped.tolist()), set(hard.tolist())


def test_likely_wrong_tier_is_sized_to_the_flips_not_the_hard_images():
    labels, probs, flipped, hard = _confusable_probs()
    issues = find_label_issues(labels, probs)
    likely = {s.image_idx for s in issues.suspects}
    assert flipped <= likely and len(likely) <= len(flipped) + 2  # hard images add only their small posteriors
    assert 0.02 <= issues.noise_rate <= 0.05  # 12 / 400 = 0.03
    review = {s.image_idx for s in issues.worth_a_look}
    assert len(review) == len(likely) and review <= hard  # the next by rank: hard images


def test_noise_floor_keeps_a_real_error_in_a_clean_set():
    labels, probs, flipped, _ = _confusable_probs()
    keep = np.setdiff1d(np.arange(len(labels)), sorted(flipped)[1:])  # one wrong label among 389
    one = next(i for i, k in enumerate(keep) if k == sorted(flipped)[0])
    issues = find_label_issues(labels[keep], probs[keep])
    assert issues.suspects[0].image_idx == one and len(issues.suspects) <= 2
    no_floor = find_label_issues(labels[keep], probs[keep], min_noise_rate=0.0)
    assert no_floor.suspects == ()  # the fitted share alone explains the lone error away


def test_noise_model_temperature_sharpens_underconfident_probabilities():
    from reportgen.analysis.label_issues import fit_noise_model

    labels, probs, _, _ = _confusable_probs()
    flat = np.exp(np.log(probs) / 3.0)
    flat /= flat.sum(axis=1, keepdims=True)
    model = fit_noise_model(labels, flat)
    assert model.temperature < 0.6  # undoes most of the flattening by 3
    np.testing.assert_allclose(model.calibrated.sum(axis=1), 1.0, atol=1e-9)
    assert model.wrong_probs.shape == (len(labels),)


@pytest.mark.e2e
def test_real_photos_clean_tier_holds_the_known_errors():
    """food101-pss as it is: a short likely-wrong list with the real Food-101 errors a look confirmed."""
    from _finder_data import embeddings, loaded

    images = loaded("food101-pss")
    issues = find_label_issues(
        images.labels, cross_val_probs(embeddings("food101-pss"), images.labels, folds=FOLDS, seed=0)
    )
    listed = {images.rel_paths[s.image_idx] for s in issues.suspects}
    assert len(listed) <= 6
    assert {"steak/1524526.jpg", "sushi/1303005.jpg"} <= listed  # raw meat above wine bottles; orange chicken


def test_large_set_path_on_principal_axes_still_finds_planted_flips():
    # Forced (reduce_from=0) on a small set of 40-d blobs: fitted on their leading axes, the flips stay found.
    x, y = _blobs(n_per_class=80, n_classes=4, dim=40, seed=2)
    noisy, flipped = _flip(y, 16, 4)
    full = cross_val_probs(x, noisy, folds=FOLDS, seed=0)
    reduced = cross_val_probs(x, noisy, folds=FOLDS, seed=0, reduce_from=0)
    assert reduced.shape == full.shape
    np.testing.assert_allclose(reduced.sum(axis=1), 1.0, atol=1e-5)
    assert (reduced.argmax(axis=1) == full.argmax(axis=1)).mean() > 0.95
    listed = {s.image_idx for s in find_label_issues(noisy, reduced).suspects}
    assert len(listed & flipped) >= 14 and len(listed - flipped) <= 3


def test_principal_axes_keep_the_set_when_it_has_fewer_dimensions():
    from reportgen.analysis.label_issues import REDUCED_DIMS, _principal_components

    x = np.random.default_rng(0).normal(size=(50, 12))
    z = _principal_components(x, REDUCED_DIMS)
    assert z.shape == (50, 12) and z.dtype == np.float32
    np.testing.assert_allclose(z @ z.T, (x - x.mean(0)) @ (x - x.mean(0)).T, atol=1e-3)  # a rotation


@pytest.mark.parametrize("fit_rows", [1, 60])
def test_large_set_path_started_from_a_few_rows_still_finds_planted_flips(fit_rows):
    # Forced: each fold starts from fit_rows training rows (1: one per class is added), refined on all of them.
    x, y = _blobs(n_per_class=80, n_classes=4, dim=40, seed=2)
    noisy, flipped = _flip(y, 16, 4)
    probs = cross_val_probs(x, noisy, folds=FOLDS, seed=0, reduce_from=0, fit_rows=fit_rows)
    assert probs.shape == (320, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(
        probs, cross_val_probs(x, noisy, folds=FOLDS, seed=0, reduce_from=0, fit_rows=fit_rows)
    )
    listed = {s.image_idx for s in find_label_issues(noisy, probs).suspects}
    assert len(listed & flipped) >= 14 and len(listed - flipped) <= 3


def test_large_set_path_is_out_of_sample_and_keeps_missing_classes():
    x, y = _blobs(n_per_class=60, n_classes=2)
    y = y.copy()
    y[0] = 1  # a lone point labelled 1 inside class 0's cluster
    probs = cross_val_probs(x, y, num_classes=3, folds=FOLDS, seed=0, reduce_from=0, fit_rows=20)
    assert probs[0, 1] < 0.2
    assert np.all(probs[:, 2] == 0)
