"""The data-set map: 2-D layouts of the features, deterministic, and class-stratified samples of large sets."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.analysis.embedding_map import class_quotas, embed_2d, principal_components, stratified_sample


def _clusters(n: int, classes: int = 3, dims: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = rng.normal(scale=4.0, size=(classes, dims))
    return (centres[labels] + rng.normal(size=(n, dims))).astype(np.float32), labels


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_map_has_a_point_per_image_and_is_deterministic(method):
    x, y = _clusters(60)
    first = embed_2d(x, y, method=method, max_points=100, seed=3)
    assert first.coords.shape == (60, 2) and first.coords.dtype == np.float32
    assert np.isfinite(first.coords).all()
    assert np.array_equal(first.indices, np.arange(60)) and np.array_equal(first.labels, y)
    assert first.method == method and first.n_images == 60 and not first.subsampled
    again = embed_2d(x, y, method=method, max_points=100, seed=3)
    assert np.array_equal(first.coords, again.coords)
    spread = first.coords.astype(np.float64).var(axis=0)
    assert spread[0] >= spread[1] and np.allclose(first.coords.mean(axis=0), 0, atol=1e-4)  # landscape, centred


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_map_keeps_classes_apart(method):
    x, y = _clusters(90)
    m = embed_2d(x, y, method=method, max_points=100, seed=0)
    centres = np.stack([m.coords[m.labels == c].mean(axis=0) for c in range(3)])
    nearest = np.linalg.norm(m.coords[:, None] - centres[None], axis=2).argmin(axis=1)
    assert (nearest == m.labels).mean() > 0.95


def test_pca_matches_the_svd_up_to_sign_and_fixes_the_sign():
    rng = np.random.default_rng(0)
    for shape in ((200, 12), (12, 200)):  # more rows than columns, and fewer
        x = rng.normal(size=shape) * np.linspace(3, 1, shape[1])
        scores = principal_components(x, 2)
        centred = x - x.mean(axis=0)
        reference = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
        assert np.allclose(np.abs(scores), np.abs(reference), atol=1e-8)
        peaks = scores[np.abs(scores).argmax(axis=0), [0, 1]]
        assert (peaks > 0).all()
        assert np.allclose(principal_components(-x, 2), scores)  # a mirrored set gives the same map


def test_tiny_sets_and_constant_features_give_finite_maps():
    one = embed_2d(np.ones((1, 5)), np.array([0]), method="tsne", max_points=10, seed=0)
    assert one.coords.shape == (1, 2) and np.isfinite(one.coords).all()
    three = embed_2d(np.eye(3), np.array([0, 1, 1]), method="tsne", max_points=10, seed=0)  # PCA below 4 points
    assert three.coords.shape == (3, 2) and np.isfinite(three.coords).all()
    flat = embed_2d(np.ones((8, 4)), np.zeros(8, int), method="pca", max_points=10, seed=0)
    assert np.array_equal(flat.coords, np.zeros((8, 2)))
    narrow = embed_2d(np.arange(10.0)[:, None] + 1, np.zeros(10, int), method="pca", max_points=10, seed=0)
    assert narrow.coords.shape == (10, 2) and not narrow.coords[:, 1].any()  # one feature: the second axis is 0


@pytest.mark.parametrize(
    ("features", "labels", "kwargs", "match"),
    [
        (np.ones((3, 2)), np.zeros(2, int), {}, "`features`"),
        (np.ones((0, 2)), np.zeros(0, int), {}, "`features`"),
        (np.ones((3, 2)), np.zeros(3, int), {"method": "umap"}, "`method`"),
        (np.ones((3, 2)), np.zeros(3, int), {"max_points": 0}, "`max_points`"),
    ],
)
def test_bad_arguments_are_named(features, labels, kwargs, match):
    options = {"method": "pca", "max_points": 10, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        embed_2d(features, labels, **options)


def test_large_sets_are_sampled_per_class_in_proportion_and_every_class_stays():
    labels = np.repeat([0, 1, 2, 3], [700, 200, 99, 1])
    m = embed_2d(np.random.default_rng(0).normal(size=(1000, 4)), labels, method="pca", max_points=100, seed=0)
    assert m.subsampled and len(m.indices) == 100 and m.n_images == 1000
    assert np.array_equal(m.labels, labels[m.indices]) and np.all(np.diff(m.indices) > 0)
    assert np.bincount(m.labels).tolist() == [69, 20, 10, 1]  # 70, 20, 9.9 and 0.1 places: the singleton keeps one


def test_ties_go_to_the_lower_class_and_samples_are_stable():
    labels = np.repeat([0, 1, 2], 10)
    sample = stratified_sample(labels, 4, seed=5)
    assert np.bincount(labels[sample]).tolist() == [2, 1, 1]  # equal remainders: class 0 gets the place left
    assert np.array_equal(sample, stratified_sample(labels, 4, seed=5))
    # a class's sample depends on the seed and its own images only: adding images to class 2 leaves class 0's alone
    grown = np.concatenate([labels, [2] * 20])
    grown_sample = stratified_sample(grown, 8, seed=5)
    assert np.bincount(grown[grown_sample]).tolist() == [2, 1, 5]  # 1.6, 1.6, 4.8: remainders .8 then a tie
    assert np.array_equal(sample[labels[sample] == 0], grown_sample[grown[grown_sample] == 0])


def test_class_quotas_share_in_proportion_with_one_place_at_least():
    assert class_quotas(np.array([1000, *[1] * 15]), 20) == [5, *[1] * 15]  # the small classes' places come first
    assert class_quotas(np.array([1] * 30), 5) == [1] * 30  # more classes than places: one each
    rng = np.random.default_rng(0)
    for _ in range(300):
        counts = rng.integers(1, 200, rng.integers(1, 12))
        places = int(rng.integers(1, counts.sum() + 1))
        quotas = class_quotas(counts, places)
        assert all(1 <= q <= n for q, n in zip(quotas, counts, strict=True))
        assert sum(quotas) == max(places, len(counts))


def test_kept_images_are_always_in_the_sample():
    labels = np.repeat([0, 1], [500, 500])
    keep = [3, 7, 600, 999]
    sample = stratified_sample(labels, 20, seed=0, keep=keep)
    assert set(keep) <= set(sample.tolist()) and len(sample) == 20
    crowded = stratified_sample(labels, 4, seed=0, keep=range(5))  # more kept images than their class's share
    assert set(range(5)) <= set(crowded.tolist()) and len(crowded) == 7


def test_more_classes_than_points_keeps_one_image_of_each():
    labels = np.repeat(np.arange(12), 3)
    sample = stratified_sample(labels, 5, seed=0)
    assert sorted(set(labels[sample].tolist())) == list(range(12)) and len(sample) == 12


def test_the_run_map_marks_the_audit_and_says_why_there_is_none(tmp_path):
    from report_factory import make_report

    from reportgen.assemble.report import map_features, map_marks, planned_figures
    from reportgen.model.predictions import Features

    audit = make_report(tmp_path, audit=True, figures=()).audit
    marks, pairs = map_marks(audit)
    marked = {i for images in marks.values() for i in images}
    assert set(marks) == {"suspected label error", "label worth a look", "copy", "outlier"}
    assert {i for pair in pairs for i in pair} == set(marks["copy"]) and map_marks(None) == ({}, [])
    n = max(marked) + 1
    x, y = _clusters(n, dims=8)
    embedding, facts = map_features(Features(x), y, audit, seed=0)
    assert embedding is not None and set(embedding.indices.tolist()) >= marked
    assert (facts.method, facts.points, facts.subsampled, facts.why_not) == ("tsne", n, False, "")
    assert "dataset_map" in planned_figures(trained=True, audit=None, dataset_map=facts)
    none, why = map_features(Features(None, "the backbone has no pretrained weights"), y, audit, seed=0)
    assert none is None and why.points == 0 and why.why_not == "the backbone has no pretrained weights"
    assert "dataset_map" not in planned_figures(trained=True, audit=None, dataset_map=why)
    assert "dataset_map" not in planned_figures(trained=True, audit=None)
