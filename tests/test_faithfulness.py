"""The explanation check: fast ROAD, its baselines, the sanity check, the verdict and where the report says it."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from reportgen.analysis.cams import compute_cams, randomised_copy
from reportgen.analysis.explanation import check_explanations, fast_road
from reportgen.analysis.faithfulness import (
    FAITHFUL,
    NOT_INFORMATIVE,
    WEAK,
    centred_blob,
    impute,
    judge,
    perturbed,
    removal_masks,
    road_scores,
    spearman_maps,
)
from reportgen.compare.gates import evaluate_gates, parse_gates
from reportgen.model.backbones import ModelSpec
from reportgen.model.runtime import resolve_runtime
from reportgen.report import Report

SIDE = 32


class CentreNet(nn.Module):
    """Class 0's logit is the redness of the image's centre, class 1's its opposite: the evidence is the centre."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
        with torch.no_grad():
            self.features[0].weight.zero_()
            self.features[0].bias.zero_()
            for channel in range(3):
                self.features[0].weight[channel, channel] = 1.0
            self.features[0].bias[3] = 1.0  # a constant channel
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[12.0, -6.0, 0.0, -1.0], [-12.0, 6.0, 0.0, 1.0]]))
            self.fc.bias.zero_()
        coords = (torch.arange(SIDE) + 0.5) / SIDE - 0.5
        self.register_buffer("weight_map", (coords[:, None].abs() < 0.2) & (coords[None, :].abs() < 0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # (B, 4, S, S)
        w = self.weight_map.float()
        return self.fc((f * w).sum((2, 3)) / w.sum())


def _centre_images(n: int, seed: int = 0) -> np.ndarray:
    """Red squares of varying size in the centre of green, noisy backgrounds."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, SIDE, SIDE, 3), np.uint8)
    images[..., 1] = 180
    for k in range(n):
        half = int(rng.integers(5, 9))
        images[k, SIDE // 2 - half : SIDE // 2 + half, SIDE // 2 - half : SIDE // 2 + half] = (230, 20, 20)
    noise = rng.integers(-15, 15, images.shape)
    return np.clip(images.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def centre_net() -> tuple[nn.Module, ModelSpec]:
    spec = ModelSpec("centre", SIDE, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "features", "fc", "hand-set")
    return CentreNet().eval(), spec


def test_removal_masks_take_the_top_and_the_bottom_fractions() -> None:
    cam = np.arange(100, dtype=float).reshape(10, 10)
    masks = removal_masks(cam, (25, 50), rng=np.random.default_rng(0))
    assert masks.shape == (4, 10, 10)
    assert [int(m.sum()) for m in masks] == [25, 25, 50, 50]
    assert masks[0].ravel()[-25:].all() and masks[1].ravel()[:25].all()  # MoRF: the highest; LeRF: the lowest
    flat = removal_masks(np.zeros((10, 10)), (50,), rng=np.random.default_rng(0))  # ties: half each, apart
    assert flat[0].sum() == 50 and not (flat[0] & flat[1]).any()


def test_perturbed_images_fill_from_kept_pixels_only_and_road_halves_lerf_minus_morf() -> None:
    pixels = np.full((1, 16, 16, 3), 20, np.uint8)
    pixels[0, :4] = 250  # a bright top band, which the map points at
    cam = np.zeros((1, 16, 16))
    cam[0, :4] = 1.0
    out = perturbed(pixels, cam, (25,), seed=0)
    assert out.shape == (2, 16, 16, 3)
    assert (out[0, :4] == 20).all() and (out[0, 4:] == 20).all()  # MoRF: the band filled from the dark kept pixels
    assert (out[1, :4] == 250).all()  # LeRF kept it
    probs = np.array([0.2, 0.8, 0.5, 0.5])  # image 1: (MoRF, LeRF) at 2 steps
    assert road_scores(probs, (25, 50)) == pytest.approx([(0.6 / 2 + 0) / 2])


def test_impute_is_the_librarys_linear_imputation_within_a_few_grey_levels() -> None:
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    side = 64
    image = np.stack([gaussian_filter(rng.random((side, side)), 3) for _ in range(3)], axis=-1)
    image = ((image - image.min()) / np.ptp(image) * 255).astype(np.float32)
    coords = np.arange(side) - side / 2 + 0.5
    disk = coords[:, None] ** 2 + coords[None, :] ** 2 < 18**2
    removed = disk | (rng.random((side, side)) < 0.2)
    library = NoisyLinearImputer(noise=0)(torch.tensor(image).permute(2, 0, 1), torch.tensor(~removed).float())
    ours = impute(image, removed)
    assert np.array_equal(ours[~removed], image[~removed])  # kept pixels stay
    error = np.abs(ours - library.permute(1, 2, 0).numpy())[removed]
    assert error.mean() < 2.0 and error.max() < 12  # of 255; the library solves the same equations exactly
    ramp = np.broadcast_to(np.linspace(0, 255, side, dtype=np.float32)[None, :, None], (side, side, 3))
    assert np.abs(impute(ramp.copy(), disk) - ramp).max() < 2.0  # a linear image is its own linear fill


def test_verdict_needs_a_clear_gain_over_the_blob_and_the_random_map() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0.05, 0.02, 30)
    classes = np.arange(30) % 3
    names = ("a", "b", "c")

    def verdict(maps, random, blob, sanity=None):
        return judge(maps, random, blob, classes, class_names=names, method="gradcam", layer="x", sanity=sanity)

    faithful = verdict(base + 0.08, base - 0.05, base)
    assert faithful.verdict == FAITHFUL and faithful.vs_blob.mean == pytest.approx(0.08)
    assert [c.class_name for c in faithful.per_class] == ["a", "b", "c"] and faithful.per_class[0].maps.n == 10
    assert verdict(base + rng.normal(0, 0.01, 30), base - 0.05, base).verdict == WEAK  # no better than the blob
    assert verdict(base, base + rng.normal(0, 0.01, 30), base - 0.05).verdict == NOT_INFORMATIVE
    failed = verdict(base + 0.08, base - 0.05, base, sanity=np.full(30, 0.9))  # maps ignore the weights
    assert failed.verdict == NOT_INFORMATIVE and not failed.sanity_passed and failed.sanity == pytest.approx(0.9)


def test_spearman_of_maps_is_one_for_a_monotone_change_and_minus_one_reversed() -> None:
    maps = np.random.default_rng(0).random((2, 20, 20))  # no pooling below SANITY_GRID
    assert spearman_maps(maps, maps**3) == pytest.approx([1.0, 1.0])
    assert spearman_maps(maps, -maps) == pytest.approx([-1.0, -1.0])


def test_fast_road_ranks_the_true_evidence_above_its_opposite(centre_net) -> None:
    model, spec = centre_net
    pixels = _centre_images(6)
    runtime = resolve_runtime("cpu", "fp32")
    blob = np.broadcast_to(centred_blob(SIDE), (6, SIDE, SIDE))
    kwargs = {"batch_size": 32, "seed": 0}
    right = fast_road(model, spec, pixels, blob, [0] * 6, runtime, **kwargs)
    wrong = fast_road(model, spec, pixels, 1 - blob, [0] * 6, runtime, **kwargs)
    assert (right > 0.1).all() and (wrong < -0.1).all()


def test_maps_no_better_than_the_blob_are_weak_and_the_report_says_so_above_every_gallery(centre_net, tmp_path):
    from reportgen.narrative import narrate, with_narrative
    from reportgen.render.html import render_html
    from tests.report_factory import make_report

    model, spec = centre_net
    pixels = _centre_images(12)
    requests = [(k, 0) for k in range(12)]
    maps = np.broadcast_to(centred_blob(SIDE), (12, SIDE, SIDE)).copy()  # "maps" that are the blob itself
    runtime = resolve_runtime("cpu", "fp32")
    check = check_explanations(
        model, spec, pixels, requests, maps, runtime, class_names=("red", "green"), method="gradcam", seed=0,
        batch_size=32, cam_batch_size=8,
    )  # fmt: skip
    assert check.verdict == WEAK, check
    assert check.vs_blob.mean == pytest.approx(0.0, abs=1e-6) and check.vs_random.mean > 0.02
    assert check.sanity is not None and check.randomised  # the sanity check ran on the re-initialised copy

    report = make_report(tmp_path)
    report = dataclasses.replace(report, explanation_check=check)
    report = with_narrative(report, narrate(report))
    assert Report.from_dict(json.loads(json.dumps(report.to_dict()))) == report  # results.json round trip
    html = render_html(report, tmp_path).read_text("utf-8")
    summary = html[html.index('id="summary"') : html.index('id="dataset"')]
    assert "Heat maps: weak." in summary and "not clearly above the blob" in summary
    assert "for random maps" in summary and "for a centred blob" in summary
    starts = [m.start() for m in re.finditer(r'class="chapter class-section', html)]
    assert len(starts) == len(report.classes)
    for start in starts:  # the warning sits above each class's galleries
        warning = html.find("little beyond the centre of the photo", start)
        assert 0 < warning < html.index('class="gallery', start)
    gates = parse_gates(fail_over=["explanation_unfaithful=0"], fail_under=["explanation_vs_blob=0.01"])
    assert [g.passed for g in evaluate_gates(gates, report)] == [False, False]


def test_random_cam_is_seeded_and_randomised_copy_reinitialises_the_last_layers(tiny_model) -> None:
    model, spec = tiny_model
    pixels = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    runtime = resolve_runtime("cpu", "fp32")
    requests = [(0, 0), (1, 1), (2, 2)]
    a, b = (compute_cams(model, spec, pixels, requests, runtime, batch_size=2, method="random", seed=3, progress=False)
            for _ in range(2))  # fmt: skip
    np.testing.assert_array_equal(a.maps, b.maps)
    copy, names = randomised_copy(model, spec, seed=0)
    assert names == ("features.2", "features.3", "fc")  # the last two blocks of the Sequential, then the head
    assert not torch.equal(copy.fc.weight, model.fc.weight) and not torch.equal(
        copy.features[2].weight, model.features[2].weight
    )
    assert torch.equal(copy.features[0].weight, model.features[0].weight)
    for method in ("hirescam", "gradcam++", "layercam", "shapleycam"):
        maps = compute_cams(model, spec, pixels, requests, runtime, batch_size=2, method=method, progress=False).maps
        assert maps.shape == (3, 32, 32) and np.isfinite(maps).all()
