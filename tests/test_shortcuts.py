from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from reportgen.analysis.shortcuts import (
    Reliance,
    ShortcutThresholds,
    class_evidence,
    class_mean_map,
    find_shortcuts,
    reliance_masks,
)
from reportgen.narrative.audit import reliance_reason, shortcut_reason

SIZE = 64


def _blob(cx: float, cy: float, sigma: float) -> np.ndarray:
    """A Grad-CAM-like map: a Gaussian at (cx, cy) (fractions of the side), min-max scaled to [0, 1]."""
    coords = (np.arange(SIZE) + 0.5) / SIZE
    xx, yy = np.meshgrid(coords, coords)
    m = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return (m - m.min()) / (m.max() - m.min())


def _object_maps(n: int, seed: int = 0) -> np.ndarray:
    """Evidence that follows an object placed around the centre, as for a class learned from its object."""
    rng = np.random.default_rng(seed)
    centres = np.clip(rng.normal(0.5, 0.15, (n, 2)), 0.2, 0.8)
    return np.stack([_blob(x, y, rng.uniform(0.12, 0.2)) for x, y in centres])


def _patch_maps(n: int, seed: int = 0) -> np.ndarray:
    """Evidence that sits on a fixed patch near the top-left corner, plus a weaker object blob."""
    rng = np.random.default_rng(seed)
    maps = []
    for x, y in np.clip(rng.normal(0.5, 0.15, (n, 2)), 0.2, 0.8):
        jitter = rng.normal(0, 0.01, 2)
        m = _blob(0.15 + jitter[0], 0.15 + jitter[1], 0.07) + 0.3 * _blob(x, y, 0.15)
        maps.append(m / m.max())
    return np.stack(maps)


def test_object_evidence_is_not_flagged():
    ev = class_evidence(_object_maps(40), 0)
    assert ev.flags == ()
    assert ev.region == "centre"
    assert ev.centre_offset < 0.1
    assert ev.peak_spread > 0.15


def test_fixed_patch_is_flagged_with_checkable_reasons():
    ev = class_evidence(_patch_maps(40), 2)
    codes = {f.code for f in ev.flags}
    assert "fixed_position" in codes  # the weaker object evidence keeps the centroid nearer the centre
    assert ev.region == "top-left"
    assert ev.centroid[0] < 0.5 and ev.centroid[1] < 0.5
    assert ev.consistency > 0.8 and ev.peak_spread < 0.05
    fixed = next(f for f in ev.flags if f.code == "fixed_position")
    assert (
        fixed.value == pytest.approx(ev.consistency, abs=1e-6)
        and fixed.threshold == ShortcutThresholds().min_consistency
    )
    assert (
        fixed.where == "top-left"
        and fixed.n_maps == 40
        and fixed.peak_spread == pytest.approx(ev.peak_spread, abs=1e-6)
    )
    reason = shortcut_reason(fixed, ShortcutThresholds())
    assert "top-left" in reason and f"{ev.consistency:.2f}" in reason


def test_find_shortcuts_flags_the_patched_class_only_when_the_model_relies_on_it():
    maps = [_object_maps(30, seed=1), _patch_maps(30), _object_maps(30, seed=2)]
    relied = {1: Reliance(drop=0.45, control_drop=0.05, n_images=16, area=1 / 9)}
    result = find_shortcuts(maps, reliance=relied)
    assert result.flagged == (1,) and result.worth_a_look == ()
    assert [c.class_idx for c in result.classes] == [0, 1, 2] and result.classes[1].reliance == relied[1]
    json.dumps(dataclasses.asdict(result), allow_nan=False)
    as_much_elsewhere = {1: Reliance(drop=0.20, control_drop=0.15, n_images=16, area=1 / 9)}
    for reliance in (as_much_elsewhere, None):  # position alone: only worth a look
        result = find_shortcuts(maps, reliance=reliance)
        assert result.flagged == () and result.worth_a_look == (1,)
    reason = reliance_reason(as_much_elsewhere[1])
    assert reason.startswith("worth a look, not a shortcut") and "0.20" in reason and "0.15" in reason
    assert "relies on that region" in reliance_reason(relied[1]) and "0.45" in reliance_reason(relied[1])


def test_reliance_masks_take_the_mean_maps_top_and_each_images_next_evidence():
    maps = _patch_maps(10)
    region, controls = reliance_masks(maps)
    assert region.sum() == round(SIZE * SIZE / 9) and controls.shape == (10, SIZE, SIZE)
    assert region[: SIZE // 3, : SIZE // 3].mean() > 0.5  # the patch's corner
    assert not (controls & region).any() and (controls.sum(axis=(1, 2)) == region.sum()).all()


def test_border_evidence_is_flagged():
    frame = np.zeros((SIZE, SIZE))
    frame[:4], frame[-4:], frame[:, :4], frame[:, -4:] = 1.0, 1.0, 1.0, 1.0
    rng = np.random.default_rng(3)
    maps = np.stack([np.clip(frame + 0.05 * rng.random((SIZE, SIZE)), 0, 1) for _ in range(10)])
    ev = class_evidence(maps, 0)
    assert ev.border_share > 0.8
    border = next(f for f in ev.flags if f.code == "border")
    assert border.band_area == pytest.approx(ev.border_area, abs=1e-6)


def test_flat_maps_give_reference_figures():
    ev = class_evidence(np.ones((8, SIZE, SIZE)), 0)
    assert ev.concentration == pytest.approx(0.10, abs=0.01)
    assert ev.border_share == pytest.approx(ev.border_area)
    assert ev.region == "centre" and ev.region_share == pytest.approx(1 / 9, abs=0.02)
    assert ev.centroid == pytest.approx((0.5, 0.5))
    assert ev.consistency == 0.0  # constant maps have no correlation to measure
    assert ev.flags == ()
    assert sum(map(sum, ev.mean_map)) == pytest.approx(1.0, abs=1e-3)


def test_identical_maps_are_perfectly_consistent():
    maps = np.repeat(_blob(0.7, 0.3, 0.1)[None], 5, axis=0)
    ev = class_evidence(maps, 0)
    assert ev.consistency == pytest.approx(1.0)
    assert ev.peak_spread == 0.0
    assert ev.region == "top-right"


def test_empty_and_too_few_maps_are_not_flagged():
    maps = np.concatenate([_patch_maps(3), np.zeros((2, SIZE, SIZE))])
    ev = class_evidence(maps, 0)
    assert ev.n_maps == 5 and ev.n_empty == 2
    assert ev.flags == ()  # 3 usable maps < min_maps
    assert class_evidence(np.zeros((0, SIZE, SIZE)), 1).n_maps == 0
    assert class_evidence(np.zeros((4, SIZE, SIZE)), 1).n_empty == 4


def test_thresholds_are_parameters():
    strict = ShortcutThresholds(max_centre_offset=0.01, min_maps=1)
    ev = class_evidence(_blob(0.55, 0.5, 0.15)[None], 0, thresholds=strict)
    assert [f.code for f in ev.flags] == ["off_centre"]
    assert ev.flags[0].where == "right"
    assert shortcut_reason(ev.flags[0], strict).endswith("towards the right")


def test_mean_map_for_figures_and_validation():
    mean = class_mean_map(_patch_maps(5))
    assert mean.shape == (SIZE, SIZE) and mean.max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="maps"):
        class_evidence(np.ones((3, SIZE, SIZE + 1)), 0)
    with pytest.raises(ValueError, match="grid"):
        class_evidence(np.ones((3, 8, 8)), 0)


def test_the_view_counts_usable_maps_and_marks_classes_with_fewer_than_two_unmeasured():
    from reportgen.assemble.audit import shortcut_view

    one_and_empty = np.concatenate([_patch_maps(1), np.zeros((1, SIZE, SIZE))])
    found = find_shortcuts([_patch_maps(6), one_and_empty, np.zeros((0, SIZE, SIZE)), _patch_maps(2)])
    view = shortcut_view(found, ["many", "one", "none", "two"])
    assert [(c.n_maps, c.measured) for c in view.classes] == [(6, True), (1, False), (0, False), (2, True)]
    assert view.classes[0].consistency == found.classes[0].consistency  # as measured: rounded once, when printed
