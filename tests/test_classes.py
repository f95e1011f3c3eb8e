"""Class facts from hand-made counts: totals, under-represented classes, confusions."""

from __future__ import annotations

from reportgen.analysis.classes import (
    class_confusions,
    class_totals,
    incoming_confusions,
    largest_confusions,
    under_represented,
)


def test_under_represented_on_the_seed_example_distribution() -> None:
    food9 = {
        "caesar_salad": 120,
        "caprese_salad": 110,
        "french_fries": 150,
        "greek_salad": 45,
        "hamburger": 150,
        "hot_dog": 60,
        "pizza": 250,
        "sashimi": 43,
        "sushi": 50,
    }
    found = under_represented(food9)
    assert found.flagged == ("greek_salad", "sashimi", "sushi")  # median of the others is 115: below 57.5
    assert found.references["sushi"] == 115 and found.references["pizza"] == 85
    assert found.totals == food9


def test_under_represented_edge_cases() -> None:
    assert under_represented({"a": 100, "b": 49}).flagged == ("b",)  # two classes: half the other class
    assert under_represented({"a": 100, "b": 50}).flagged == ()  # "fewer than" is strict
    assert under_represented({"a": 30, "b": 20, "c": 30, "d": 30, "e": 40}).flagged == ()  # mildly uneven
    assert under_represented({"only": 10}).flagged == ()
    assert under_represented({"only": 10}).references == {"only": 0.0}
    assert under_represented({"a": 0, "b": 0}).flagged == ()
    assert under_represented({"a": 10, "b": 0, "c": 10}).flagged == ("b",)


def test_class_totals_add_the_splits() -> None:
    counts = {"train": {"a": 3, "b": 1}, "val": {"a": 1, "b": 0}, "test": {"a": 1, "b": 2}}
    assert class_totals(counts) == {"a": 5, "b": 3}


def test_confusions_largest_first_ties_in_class_order() -> None:
    matrix = ((4, 1, 2, 1), (0, 5, 0, 0), (3, 0, 2, 0), (1, 0, 0, 3))
    names = ("a", "b", "c", "d")
    out = class_confusions(matrix, names, 0)
    assert [(c.predicted_class, c.count) for c in out] == [("c", 2), ("b", 1), ("d", 1)]
    assert out[0].fraction == 0.25
    incoming = incoming_confusions(matrix, names, 0)
    assert [(c.true_class, c.count, c.fraction) for c in incoming] == [("c", 3, 0.6), ("d", 1, 0.25)]
    assert class_confusions(matrix, names, 1) == ()
    cells = largest_confusions(matrix, names, limit=3)
    assert [(c.true_class, c.predicted_class) for c in cells] == [("c", "a"), ("a", "c"), ("d", "a")]


def test_largest_confusions_break_ties_by_fraction_then_class_order() -> None:
    matrix = ((2, 1, 1), (0, 2, 0), (1, 0, 1))  # c->a is 1 of 2: a larger share than a->b and a->c (1 of 4)
    cells = largest_confusions(matrix, ("z", "y", "x"))
    assert [(c.true_class, c.predicted_class, c.count, c.fraction) for c in cells] == [
        ("x", "z", 1, 0.5),
        ("z", "y", 1, 0.25),
        ("z", "x", 1, 0.25),
    ]
    assert largest_confusions(((3, 0), (0, 3)), ("a", "b")) == ()
