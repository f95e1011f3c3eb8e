"""Which classes need attention most: the ranking that picks the classes the PDF details (pure).

The order, most in need first: lowest test recall (as the report prints it, to 0.1 %; a class without test
images first, as nothing vouches for it), then most suspected label errors, then most flags of the audit's
checks (under-represented, shortcut, fixed pattern), then the data set's class order. Every key is a count or
a printed value, so equal classes keep the data set's order and the ranking is the same on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reportgen.errors import ReportgenError

ALL = "all"
WORST = "worst:"  # "worst:N": the N classes that need attention most
RECALL_DIGITS = 3  # recall compared as printed: 85.0 % and 85.04 % tie, then the suspects decide


@dataclass(frozen=True)
class ClassAttention:
    """One class's place in the ranking and the facts behind it."""

    class_name: str
    rank: int  # 1: needs attention most
    recall: float | None  # None: no test images
    suspects: int  # suspected label errors ("likely wrong" tier) among the class's images
    flags: tuple[str, ...]  # the checks that flag the class, in words: "under-represented", "shortcut", ...
    detailed: bool  # the PDF gives the class a chapter of its own


@dataclass(frozen=True)
class ClassSelection:
    """The classes the PDF details (``--pdf-classes``) and the ranking that chose them; the HTML shows all."""

    rule: str  # the option's value: "all" or "worst:N"
    ranking: tuple[ClassAttention, ...]  # every class, most in need of attention first
    pdf_note: str = ""  # the narrative's words on the selection, for the PDF ("" when it details every class)
    html_note: str = ""  # and for the HTML page

    @property
    def detailed(self) -> tuple[str, ...]:
        """The classes with a PDF chapter, most in need of attention first."""
        return tuple(c.class_name for c in self.ranking if c.detailed)

    @property
    def complete(self) -> bool:
        """Whether the PDF details every class."""
        return all(c.detailed for c in self.ranking)


def parse_class_limit(text: str) -> int | None:
    """The number of classes ``--pdf-classes`` keeps: N for ``worst:N``, None for ``all``.

    Raises:
        ReportgenError: one line naming the bad value and the accepted forms.
    """
    value = text.strip().lower()
    if value == ALL:
        return None
    number = value.removeprefix(WORST)
    if value.startswith(WORST) and number.isdigit() and int(number) > 0:
        return int(number)
    raise ReportgenError(f"--pdf-classes {text!r}: expected 'all' or 'worst:N' with N a whole number of 1 or more")


def rank_classes(
    class_names: Sequence[str],
    recalls: Sequence[float | None],
    suspects: Sequence[int],
    flags: Sequence[tuple[str, ...]],
    *,
    limit: int | None,
) -> tuple[ClassAttention, ...]:
    """Every class, most in need of attention first (see the module's docstring); the first ``limit`` detailed.

    The sequences are per class, in the data set's order; ``limit`` None details every class.
    """

    def need(idx: int) -> tuple[float, int, int, int]:
        recall = recalls[idx]
        measured = -1.0 if recall is None else round(recall, RECALL_DIGITS)
        return measured, -suspects[idx], -len(flags[idx]), idx

    order = sorted(range(len(class_names)), key=need)
    keep = len(order) if limit is None else limit
    return tuple(
        ClassAttention(class_names[idx], rank, recalls[idx], suspects[idx], tuple(flags[idx]), rank <= keep)
        for rank, idx in enumerate(order, start=1)
    )
