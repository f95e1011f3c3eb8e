from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from reportgen.analysis.label_issues import LabelIssues, cross_val_probs, find_label_issues


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
    probs = cross_val_probs(x, y, seed=3)
    assert probs.shape == (300, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(probs, cross_val_probs(x, y, seed=3))  # seeded
    assert (probs.argmax(axis=1) == y).mean() > 0.95


def test_cross_val_probs_are_out_of_sample():
    # A lone point labelled 1 inside class 0's cluster: in-sample it could vouch for itself, out of sample not.
    x, y = _blobs(n_per_class=60, n_classes=2)
    y = y.copy()
    y[0] = 1
    probs = cross_val_probs(x, y)
    assert probs[0, 1] < 0.2


def test_cross_val_probs_small_class_and_missing_class_in_fold():
    x, y = _blobs(n_per_class=30, n_classes=3)
    keep = np.concatenate([np.arange(60), [60, 61]])  # class 2 has only two images
    probs = cross_val_probs(x[keep], y[keep], num_classes=4)
    assert probs.shape == (62, 4)
    assert np.all(probs[:, 3] == 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)


def test_cross_val_probs_rejects_bad_input():
    x, y = _blobs()
    with pytest.raises(ValueError, match="embeddings"):
        cross_val_probs(x[:10], y)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cross_val_probs(bad, y)


def test_finds_flipped_labels_on_separable_blobs():
    x, y = _blobs()
    noisy, truth = _flip(y, 15, 3)
    issues = find_label_issues(noisy, cross_val_probs(x, noisy))
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
    issues = find_label_issues(noisy, cross_val_probs(x, noisy))
    qualities = [s.quality for s in issues.suspects]
    assert qualities == sorted(qualities)
    assert all(s.suggested_idx != s.given_idx for s in issues.suspects)
    assert all(s.given_prob == pytest.approx(s.quality, abs=1e-6) for s in issues.suspects)  # self_confidence
    assert sum(issues.suspects_per_class) == len(issues.suspects)
    assert sum(map(sum, issues.suspect_flows)) == len(issues.suspects)
    assert all(issues.suspect_flows[c][c] == 0 for c in range(3))
    assert issues.suspect_rate == pytest.approx(len(issues.suspects) / 300)
    json.dumps(dataclasses.asdict(issues), allow_nan=False)


def test_clean_confident_labels_give_no_suspects():
    labels = np.repeat(np.arange(3), 20)
    probs = np.full((60, 3), 0.01)
    probs[np.arange(60), labels] = 0.98
    issues = find_label_issues(labels, probs)
    assert isinstance(issues, LabelIssues)
    assert issues.suspects == ()
    assert issues.noise_rate == pytest.approx(0.0, abs=1e-9)
    assert issues.class_noise_rates == (0.0, 0.0, 0.0)
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
    before = {s.image_idx for s in find_label_issues(images.labels, cross_val_probs(emb, images.labels)).suspects}
    noisy, truth = _flip(images.labels, 30, 3, seed=1000)
    issues = find_label_issues(noisy, cross_val_probs(emb, noisy))
    found = {s.image_idx for s in issues.suspects}
    hits = len(found & truth)
    assert hits / len(truth) >= 0.7
    assert hits / len(found - (before - truth)) >= 0.75  # real Food-101 label errors are not false alarms
    assert 0.04 <= issues.noise_rate <= 0.12
