"""Facts about classes from the counts: totals, under-represented classes and confusions between classes (pure)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TOP_CONFUSIONS = 5  # off-diagonal cells the report lists


@dataclass(frozen=True)
class Confusion:
    """Test images of ``true_class`` predicted as ``predicted_class``."""

    true_class: str
    predicted_class: str
    count: int
    fraction: float  # of true_class's test images


@dataclass(frozen=True)
class Representation:
    """Which classes are under-represented, with the numbers the rule compared."""

    totals: dict[str, int]  # class name -> images over all splits
    references: dict[str, float]  # class name -> median image count of the other classes
    flagged: tuple[str, ...]  # classes with fewer images than half their reference, in ``totals``' order


def class_totals(split_counts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Images per class over all splits, from ``split -> class name -> images``."""
    totals: dict[str, int] = {}
    for counts in split_counts.values():
        for name, n in counts.items():
            totals[name] = totals.get(name, 0) + int(n)
    return totals


def under_represented(class_totals: Mapping[str, int]) -> Representation:
    """Classes with fewer than half as many images as the median of the *other* classes.

    Leaving the class itself out of the median keeps a small class from lowering its own yardstick; with
    two classes the yardstick is the other class. A single class is never flagged.

    Args:
        class_totals: class name -> images of that class (all splits).
    """
    references = {name: under_represented_reference(class_totals, name) for name in class_totals}
    flagged = tuple(name for name, n in class_totals.items() if n < references[name] / 2)
    return Representation(dict(class_totals), references, flagged)


def under_represented_reference(class_totals: Mapping[str, int], class_name: str) -> float:
    """The median image count of the classes other than ``class_name`` (0 when there are none)."""
    others = [n for name, n in class_totals.items() if name != class_name]
    return float(statistics.median(others)) if others else 0.0


def class_confusions(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], class_idx: int
) -> tuple[Confusion, ...]:
    """Class ``class_idx``'s test images predicted as other classes, largest first, ties in class order.

    ``confusion`` is ``(C, C)`` counts indexed ``[true][predicted]``; fractions are of the class's test images.
    """
    row = confusion[class_idx]
    total = sum(row)
    cells = [
        Confusion(class_names[class_idx], class_names[p], int(n), round(n / total, 6))
        for p, n in enumerate(row)
        if p != class_idx and n > 0
    ]
    return tuple(sorted(cells, key=lambda c: -c.count))


def incoming_confusions(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], class_idx: int
) -> tuple[Confusion, ...]:
    """Other classes' test images predicted as class ``class_idx``, largest first, ties in class order.

    Fractions are of the *true* class's test images.
    """
    cells = []
    for t, row in enumerate(confusion):
        n = row[class_idx]
        if t != class_idx and n > 0:
            cells.append(Confusion(class_names[t], class_names[class_idx], int(n), round(n / sum(row), 6)))
    return tuple(sorted(cells, key=lambda c: -c.count))


def largest_confusions(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], limit: int = TOP_CONFUSIONS
) -> tuple[Confusion, ...]:
    """The largest off-diagonal cells, largest count first, then largest fraction, then class order."""
    cells = [c for i in range(len(class_names)) for c in class_confusions(confusion, class_names, i)]
    order = {name: i for i, name in enumerate(class_names)}
    cells.sort(key=lambda c: (-c.count, -c.fraction, order[c.true_class], order[c.predicted_class]))
    return tuple(cells[:limit])
