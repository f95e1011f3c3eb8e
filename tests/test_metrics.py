from __future__ import annotations

import numpy as np

from reportgen.analysis.extremes import find_extremes
from reportgen.analysis.metrics import compute_metrics


def test_metrics_on_hand_made_predictions() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 0])
    predicted = np.array([0, 0, 1, 2, 1, 1, 2, 0, 1])
    splits = np.array(["test"] * 8 + ["train"])
    m = compute_metrics(labels, predicted, splits, ("a", "b", "c"))
    assert m.accuracy == 5 / 8
    assert m.confusion == ((2, 1, 1), (0, 2, 0), (1, 0, 1))
    assert m.confusion_normalised[0] == (0.5, 0.25, 0.25)
    a, b, c = m.per_class
    assert (a.precision, a.recall, a.support) == (2 / 3, 0.5, 4)
    assert b.precision == 2 / 3 and b.recall == 1.0
    assert abs(c.f1 - 0.5) < 1e-9
    assert m.split_counts["train"] == {"a": 1, "b": 0, "c": 0}
    assert m.split_counts["test"] == {"a": 4, "b": 2, "c": 2}


def test_extremes_rank_by_class_score_with_stable_ties() -> None:
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.5, 0.5], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9], [0.99, 0.01]])
    labels = np.array([0, 0, 0, 0, 1, 1, 0])
    candidates = np.array([0, 1, 2, 3, 4, 5])  # image 6 is not a test image
    ext = find_extremes(probs, labels, candidates, top_k=1, bottom_k=2)
    assert ext[0].top == (0,) and ext[0].bottom == (3, 1)  # ties 1, 2 keep data set order
    assert not ext[0].complete
    # class 1 has 2 test images, fewer than 1 + 2: both once, in the top gallery, highest first
    assert ext[1].top == (5, 4) and ext[1].bottom == () and ext[1].complete


def test_extremes_never_show_an_image_twice() -> None:
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.5, 0.5], [0.2, 0.8]])
    labels = np.zeros(4, dtype=int)
    ext = find_extremes(probs, labels, np.arange(4), top_k=2, bottom_k=2)  # 4 images, 2 + 2 shown: no overlap
    assert ext[0].top == (0, 1) and ext[0].bottom == (3, 2) and not ext[0].complete
    small = find_extremes(probs, labels, np.arange(4), top_k=4, bottom_k=9)
    assert small[0].top == (0, 1, 2, 3) and small[0].bottom == () and small[0].complete
    assert small[1].top == () and small[1].complete  # a class with no test images
