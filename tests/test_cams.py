from __future__ import annotations

import numpy as np

from reportgen.analysis.cams import compute_cams, overlay_cam
from reportgen.model.runtime import resolve_runtime


def test_batched_cams_match_one_at_a_time_and_leave_parameters_trainable(tiny_model) -> None:
    model, spec = tiny_model
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    runtime = resolve_runtime("cpu", "fp32")
    requests = [(0, 0), (1, 2), (2, 1), (0, 1), (4, 2), (0, 0)]  # duplicate request computed once
    batched = compute_cams(model, spec, pixels, requests, runtime, batch_size=4, progress=False)
    assert batched.keys == ((0, 0), (1, 2), (2, 1), (0, 1), (4, 2))
    assert batched.maps.shape == (5, 32, 32) and batched.maps.min() >= 0 and batched.maps.max() <= 1
    for key in batched.keys:
        single = compute_cams(model, spec, pixels, [key], runtime, batch_size=1, progress=False)
        np.testing.assert_allclose(batched.get(*key), single.get(*key), atol=1e-4)
    assert not np.allclose(batched.get(0, 0), batched.get(0, 1))  # the target class matters
    assert all(p.requires_grad for p in model.parameters())
    assert (0, 1) in batched and (3, 0) not in batched


def test_overlay_is_rgb_uint8_and_weighs_the_map_by_alpha() -> None:
    rgb = np.full((16, 16, 3), 128, np.uint8)
    cam = np.zeros((16, 16), np.float32)
    cam[:8] = 1.0
    out = overlay_cam(rgb, cam)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] > out[-1, -1, 0]  # hot (red) where the map is high
    assert np.array_equal(overlay_cam(rgb, cam, alpha=0.0), overlay_cam(rgb, np.zeros_like(cam), alpha=0.0))
