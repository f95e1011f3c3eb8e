"""The fixed-pattern check: a patch stamped on every image of one class is found, real photos are not flagged."""

from __future__ import annotations

import io

import numpy as np
import pytest
from _finder_data import loaded
from PIL import Image

from reportgen.analysis.stamps import StampThresholds, find_stamps
from reportgen.data.dataset import decode_image
from reportgen.narrative.audit import stamp_reason


def _noise_images(n: int, seed: int) -> np.ndarray:
    """Photo-like variation: smooth random colour fields, different on every image."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(c).resize((64, 64), Image.Resampling.BICUBIC)) for c in coarse])


def test_patch_on_one_class_is_flagged_with_its_region() -> None:
    pixels = _noise_images(60, seed=0)
    labels = np.repeat([0, 1, 2], 20)
    pixels[labels == 2, 44:60, 44:60] = (255, 0, 255)
    result = find_stamps(pixels, labels, 3, thresholds=StampThresholds(grid=16))
    assert result.flagged == (2,)
    stamp = result.classes[2]
    assert stamp.region == "bottom-right" and stamp.fixed_cells >= 9 and stamp.measured
    assert stamp.match_share > 0.9 and stamp.other_share < 0.1
    assert "20 images" in stamp_reason(stamp, result.thresholds)
    assert stamp_reason(result.classes[0], result.thresholds) == ""
    assert not result.classes[0].flagged and not result.classes[1].flagged


def test_no_patch_no_flag_and_tiny_classes_are_not_flagged() -> None:
    pixels = _noise_images(60, seed=1)
    labels = np.repeat([0, 1, 2], 20)
    assert find_stamps(pixels, labels, 3, thresholds=StampThresholds(grid=16)).flagged == ()
    labels = np.array([0] * 55 + [1] * 5)
    pixels[labels == 1, 0:16, 0:16] = 0  # a shared black corner, but only 5 images
    result = find_stamps(pixels, labels, 2, thresholds=StampThresholds(grid=16))
    assert result.flagged == () and result.classes[1].fixed_cells > 0
    labels = np.array([0] * 59 + [1])
    result = find_stamps(pixels, labels, 2, thresholds=StampThresholds(grid=16))
    assert not result.classes[1].measured and stamp_reason(result.classes[1], result.thresholds) == (
        "too few images to measure"
    )


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["food101-pss", "food9-64px"])
def test_real_photos_are_not_flagged_and_a_stamped_class_is(name: str) -> None:
    images = loaded(name)
    num_classes = len(images.class_names)
    assert find_stamps(images.pixels, images.labels, num_classes).flagged == ()
    target = 1
    pixels = images.pixels.copy()
    for i in np.flatnonzero(images.labels == target):
        # Stamp the photo at its original size, as on the file, then JPEG, then the normal decode.
        photo = Image.fromarray(pixels[i]).resize((images.infos[i].width, images.infos[i].height))
        side, off = int(0.12 * min(photo.size)), int(0.08 * min(photo.size))
        photo.paste((255, 0, 255), (off, off, off + side, off + side))
        buf = io.BytesIO()
        photo.save(buf, format="JPEG", quality=90)
        pixels[i], _info = decode_image(buf.getvalue(), pixels.shape[1])
    result = find_stamps(pixels, images.labels, num_classes)
    assert result.flagged == (target,)
    assert result.classes[target].region == "top-left"
