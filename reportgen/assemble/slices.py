"""Build "Where the model fails" of the audit block: the slice finder's results told by file and class name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reportgen.analysis.slices import Slice, Slices
from reportgen.narrative.slices import labelling_note, slice_rule, slice_text, tried_text
from reportgen.report.audit import SHOWN_SLICE_MISTAKES, AssetFn, SliceCheck, SliceMistake, SliceView

if TYPE_CHECKING:  # the index is built by reportgen.assemble.audit, which imports this module
    from reportgen.assemble.audit import DatasetIndex


def slice_check_view(
    found: Slices, index: DatasetIndex, *, assets: AssetFn | None, shown: int = SHOWN_SLICE_MISTAKES
) -> SliceCheck:
    """Name each slice's members and mistakes; its first ``shown`` mistakes get a thumbnail and a Grad-CAM."""
    return SliceCheck(
        slices=tuple(_slice_view(s, index, assets, shown) for s in found.slices),
        total=len(found.slices),
        tried=dict(found.tried),
        tested=found.tested,
        evaluated=found.evaluated,
        error_rate=found.error_rate,
        min_size=found.min_size,
        min_effect=found.min_effect,
        alpha=found.alpha,
        rule=slice_rule(found),
        tried_text=tried_text(found),
    )


def _slice_view(s: Slice, index: DatasetIndex, assets: AssetFn | None, shown: int) -> SliceView:
    names = index.class_names
    mistakes = tuple(
        SliceMistake(index.image(i, assets if rank < shown else None, p), names[p], score)
        for rank, ((i, p), score) in enumerate(zip(s.mistakes, s.mistake_scores, strict=True))
    )
    hit = sorted(((names[c], n) for c, n in enumerate(s.errors_per_class) if n), key=lambda cn: -cn[1])
    return SliceView(
        source=s.source,
        description=s.description,
        text=slice_text(s, names),
        images=len(s.members),
        evaluated=s.evaluated,
        errors=s.errors,
        error_rate=s.error_rate,
        rest_error_rate=s.rest_error_rate,
        expected_error_rate=s.expected_error_rate,
        mean_score=s.mean_score,
        rest_mean_score=s.rest_mean_score,
        p_value=s.p_value,
        p_adjusted=s.p_adjusted,
        classes=dict(hit),
        suspect_share=s.suspect_share,
        rest_suspect_share=s.rest_suspect_share,
        labelling_note=labelling_note(s),
        merged=s.merged,
        members=tuple(index.rel_paths[i] for i in s.members),
        mistakes=mistakes,
        shown=min(shown, len(mistakes)),
    )
