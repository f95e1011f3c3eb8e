from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

from reportgen.analysis.health import CHECKS, HealthThresholds, check_health
from reportgen.data.dataset import ImageInfo, decode_image


def _info(**changes) -> ImageInfo:
    base = ImageInfo(width=400, height=300, mode="RGB", sha256="x", brightness=0.45, contrast=0.2, colourfulness=0.1)
    return dataclasses.replace(base, **changes)


def test_each_check_fires_with_a_checkable_reason():
    infos = [
        _info(),
        _info(width=40, height=30),
        _info(width=900, height=300),
        _info(contrast=0.01),
        _info(brightness=0.03),
        _info(brightness=0.97),
        _info(mode="L", colourfulness=0.0),
        _info(colourfulness=0.002),
    ]
    health = check_health(infos, np.zeros(len(infos), int), 1)
    by_idx = {issue.image_idx: issue for issue in health.issues}
    assert 0 not in by_idx
    assert by_idx[1].checks == ("small",) and "30 < 64" in by_idx[1].reasons[0]
    assert by_idx[2].checks == ("aspect",) and "3.00 > 2.5" in by_idx[2].reasons[0]
    assert by_idx[3].checks == ("low_contrast",) and "0.010 < 0.04" in by_idx[3].reasons[0]
    assert by_idx[4].checks == ("dark",)
    assert by_idx[5].checks == ("bright",)
    assert by_idx[6].checks == ("grayscale",) and "(L," in by_idx[6].reasons[0]
    assert by_idx[7].checks == ("grayscale",)
    assert health.colour_dataset
    assert health.counts == dict.fromkeys(CHECKS, 1) | {"grayscale": 2}


def test_counts_per_class_and_multiple_reasons():
    infos = [_info(brightness=0.02, contrast=0.01), _info(), _info(width=20, height=20)]
    health = check_health(infos, np.array([1, 0, 1]), 2)
    assert health.issues[0].checks == ("low_contrast", "dark")
    assert len(health.issues[0].reasons) == 2
    assert health.counts_per_class[0] == dict.fromkeys(CHECKS, 0)
    assert health.counts_per_class[1]["dark"] == 1 and health.counts_per_class[1]["small"] == 1


def test_grayscale_is_not_flagged_in_a_grayscale_data_set():
    infos = [_info(mode="L", colourfulness=0.0)] * 3 + [_info()]
    health = check_health(infos, np.zeros(4, int), 1)
    assert not health.colour_dataset
    assert health.issues == ()


def test_thresholds_are_parameters_and_result_is_json_able():
    infos = [_info(brightness=0.15)]
    assert check_health(infos, np.zeros(1, int), 1).issues == ()
    health = check_health(infos, np.zeros(1, int), 1, HealthThresholds(min_brightness=0.2))
    assert health.issues[0].checks == ("dark",)
    json.dumps(dataclasses.asdict(health), allow_nan=False)
    with pytest.raises(ValueError, match="labels"):
        check_health(infos, np.zeros(2, int), 1)


def _jpeg(img: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def test_decoded_grayscale_photo_saved_as_rgb_is_caught():
    """A gray picture stored as an RGB JPEG keeps a little chroma noise; the default must still catch it."""
    rng = np.random.default_rng(0)
    colour = Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).resize((320, 240))
    gray_as_rgb = colour.convert("L").convert("RGB")
    infos = [decode_image(_jpeg(colour), 224)[1]] * 3 + [decode_image(_jpeg(gray_as_rgb), 224)[1]]
    health = check_health(infos, np.zeros(4, int), 1)
    assert [issue.image_idx for issue in health.issues] == [3]
    assert health.issues[0].checks == ("grayscale",)


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["food9-64px", "clothing-mini"])
def test_real_photos_are_healthy(name):
    from _finder_data import loaded

    images = loaded(name)
    health = check_health(images.infos, images.labels, len(images.class_names))
    assert health.colour_dataset
    assert health.issues == ()
