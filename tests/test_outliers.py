from __future__ import annotations

import numpy as np
import pytest

from reportgen.analysis.outliers import find_outliers, outlier_scores


def _classes_with_strangers(n_strangers: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 32)) * 3.0
    labels = np.repeat(np.arange(3), 80)
    x = centres[labels] + rng.normal(size=(len(labels), 32))
    strangers = rng.normal(size=(n_strangers, 32)) * 3.0 + 10.0 * np.eye(32)[5]  # another domain
    return np.vstack([x, strangers]), np.concatenate([labels, rng.integers(0, 3, n_strangers)])


def test_off_domain_images_rank_first_and_are_listed():
    x, y = _classes_with_strangers()
    found = find_outliers(x, y, num_classes=3)
    assert {o.image_idx for o in found.outliers[:3]} == {240, 241, 242}
    assert len(found.outliers) <= 6
    zs = [o.z for o in found.outliers]
    assert zs == sorted(zs, reverse=True) and min(zs) >= found.min_z


def test_scores_name_the_nearest_class():
    x, y = _classes_with_strangers(0)
    scores = outlier_scores(x, y)
    assert scores.shape == (240, 2)
    assert (scores[:, 1] == y).mean() > 0.95  # in-class images sit nearest their own centroid
    assert find_outliers(x, y).outliers == () or len(find_outliers(x, y).outliers) <= 2


def test_rejects_bad_input():
    x, y = _classes_with_strangers()
    with pytest.raises(ValueError, match="embeddings"):
        outlier_scores(x[:5], y)
    with pytest.raises(ValueError, match="labels"):
        outlier_scores(x, y, num_classes=2)


@pytest.mark.e2e
def test_real_photos_off_topic_planted_among_food():
    """2 % clothing photos filed under food classes: most are listed, and the list stays short."""
    from _finder_data import embeddings, loaded

    food = loaded("food101-pss")
    clothing = embeddings("clothing-mini")
    rng = np.random.default_rng(0)
    planted = clothing[rng.choice(len(clothing), 12, replace=False)]
    x = np.vstack([embeddings("food101-pss"), planted])
    y = np.concatenate([food.labels, rng.integers(0, 3, 12)])
    found = {o.image_idx for o in find_outliers(x, y, num_classes=3).outliers}
    assert len(found & set(range(len(food.labels), len(y)))) >= 10
    assert len(found) <= 24
