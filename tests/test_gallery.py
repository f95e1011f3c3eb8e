"""Gallery photos: thumbnails and Grad-CAM overlays under OUT/assets with generated, safe names."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from reportgen.analysis.metrics import ClassMetrics
from reportgen.model.predictions import CamMaps
from reportgen.render import assets as gallery
from reportgen.report import ClassSection, GalleryImage, ProbeResult

NAMES = ("<b>x</b>", "../evil", "plain")
SAFE = re.compile(r"^assets/(larger/)?(img|cam|probe|probe-cam)-\d{6}(-c\d+)?\.jpg$")


def _image(rel_path: str, true: str, predicted: str) -> GalleryImage:
    return GalleryImage(rel_path, "test", true, predicted, 0.5, 0.5, true == predicted)


def _sections() -> tuple[ClassSection, ...]:
    metrics = ClassMetrics(NAMES[0], 1.0, 1.0, 1.0, 2)
    first = ClassSection(
        NAMES[0],
        metrics,
        {"test": 2},
        top=(_image("../evil/a.jpg", NAMES[0], NAMES[0]),),
        bottom=(_image("../evil/b.jpg", NAMES[0], NAMES[2]), _image("../evil/a.jpg", NAMES[0], NAMES[0])),
    )
    second = ClassSection(NAMES[1], metrics, {"test": 1}, top=(_image("c.png", NAMES[1], NAMES[1]),), bottom=())
    return first, second


INDEX = {"../evil/a.jpg": 0, "../evil/b.jpg": 1, "c.png": 2}
SIZES = ((400, 533), (640, 480), (50, 50))  # original (width, height): portrait, landscape, small square


@pytest.fixture
def pixels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)


def _cams(requests: list[tuple[int, int]], side: int = 64) -> CamMaps:
    maps = np.random.default_rng(1).random((len(requests), side, side)).astype(np.float32)
    return CamMaps(tuple(requests), maps)


def _write(pixels: np.ndarray, out_dir, cams: CamMaps | None, max_side: int = gallery.THUMB_SIDE):
    class_idx = {n: i for i, n in enumerate(NAMES)}
    writer = gallery.AssetWriter(out_dir, pixels, cams, class_idx, 78, max_side, sizes=SIZES)
    return writer.gallery_sections(_sections(), INDEX)


def test_cam_requests_explain_predicted_then_true_class():
    assert gallery.cam_requests(_sections(), INDEX, NAMES) == [(0, 0), (1, 2), (1, 0), (2, 1)]


def test_gallery_assets_are_written_with_safe_names(tmp_path, pixels):
    cams = _cams(gallery.cam_requests(_sections(), INDEX, NAMES))
    sections = _write(pixels, tmp_path, cams, max_side=48)
    correct, wrong = sections[0].top[0], sections[0].bottom[0]
    assert correct.thumbnail == "assets/img-000000.jpg" and correct.cam == "assets/cam-000000-c0.jpg"
    assert correct.cam_true is None
    assert wrong.cam == "assets/cam-000001-c2.jpg" and wrong.cam_true == "assets/cam-000001-c0.jpg"
    assert sections[0].bottom[1] == correct  # the same image in two galleries: same files
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 2 * (3 + 4) and all(SAFE.match(f) for f in files)  # each picture and its larger version
    with Image.open(tmp_path / wrong.cam) as image:
        assert image.format == "JPEG" and image.size == (48, 36)  # image 1 is 640 x 480


def test_pictures_get_the_original_aspect_ratio_back(tmp_path, pixels):
    """Thumbnails and overlays are stretched back from the model's square to the photo's own shape."""
    cams = _cams(gallery.cam_requests(_sections(), INDEX, NAMES))
    sections = _write(pixels, tmp_path, cams, max_side=160)
    portrait, small = sections[0].top[0], sections[1].top[0]
    for rel, size in ((portrait.thumbnail, (120, 160)), (portrait.cam, (120, 160)), (small.thumbnail, (160, 160))):
        with Image.open(tmp_path / rel) as image:
            assert image.size == size


def test_overlay_heat_is_warped_back_with_the_photo(tmp_path):
    """A map hot in the left half of the square stays in the left half of the landscape overlay."""
    pixels = np.full((1, 64, 64, 3), 128, dtype=np.uint8)
    heat = np.zeros((1, 64, 64), dtype=np.float32)
    heat[:, :, :32] = 1.0
    writer = gallery.AssetWriter(tmp_path, pixels, CamMaps(((0, 0),), heat), {"a": 0}, 95, 160, sizes=[(320, 80)])
    rel = writer.overlay(0, 0, prefix="cam")
    with Image.open(tmp_path / rel) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=float)
    assert rgb.shape == (40, 160, 3)
    left, right = rgb[:, :72], rgb[:, 88:]
    assert left[..., 0].mean() > right[..., 0].mean() + 60  # jet: red where hot, blue where cold
    assert right[..., 2].mean() > left[..., 2].mean() + 60


def test_display_size_keeps_the_aspect_ratio():
    assert gallery.display_size(400, 533, 160) == (120, 160)
    assert gallery.display_size(2000, 100, 160) == (160, 8)
    assert gallery.display_size(10, 10, 160) == (160, 160)  # small photos are drawn at the thumbnail size
    assert gallery.display_size(5000, 1, 160) == (160, 1)


def test_sizes_must_match_the_images(pixels):
    with pytest.raises(ValueError, match="sizes"):
        gallery.AssetWriter(None, pixels, None, {}, 78, 160, sizes=[(1, 1)])


def test_every_picture_has_a_larger_version(tmp_path, pixels):
    sections = _write(pixels, tmp_path, _cams(gallery.cam_requests(_sections(), INDEX, NAMES)), max_side=48)
    wrong = sections[0].bottom[0]
    for rel in (wrong.thumbnail, wrong.cam, wrong.cam_true):
        assert gallery.larger_path(rel) == rel.replace("assets/", "assets/larger/")
        with Image.open(tmp_path / gallery.larger_path(rel)) as image:
            assert max(image.size) == 64  # the pixels' own size: below LARGER_SIDE, never enlarged


def test_no_cams_writes_thumbnails_only(tmp_path, pixels):
    sections = _write(pixels, tmp_path, None)
    images = [i for s in sections for i in (*s.top, *s.bottom)]
    assert all(i.thumbnail and i.cam is None and i.cam_true is None for i in images)
    thumbnails = {p.name for p in (tmp_path / "assets").iterdir() if p.is_file()}
    assert thumbnails == {"img-000000.jpg", "img-000001.jpg", "img-000002.jpg"}


def test_missing_map_leaves_field_empty(tmp_path, pixels):
    cams = _cams([(0, 0)])
    sections = _write(pixels, tmp_path, cams)
    assert sections[0].top[0].cam is not None and sections[0].bottom[0].cam is None


def test_probe_assets(tmp_path, pixels):
    probe = ProbeResult("my <probe>.jpg", ((NAMES[2], 0.9), (NAMES[0], 0.1)))
    cams = _cams([(0, 2)])
    (result,) = gallery.write_probe_assets(
        (probe,), pixels[:1], {probe.name: 0}, NAMES, tmp_path, cams, sizes=[(300, 200)]
    )
    assert result.thumbnail == "assets/probe-000000.jpg" and result.cam == "assets/probe-cam-000000-c2.jpg"
    for rel in (result.thumbnail, result.cam):
        with Image.open(tmp_path / rel) as image:
            assert image.size == (160, 107)
    (square,) = gallery.write_probe_assets((probe,), pixels[:1], {probe.name: 0}, NAMES, tmp_path / "sq", cams)
    with Image.open(tmp_path / "sq" / square.thumbnail) as image:
        assert image.size == (160, 160)  # no sizes: square


def test_save_jpeg_keeps_small_images_and_aspect(tmp_path):
    small = np.zeros((20, 30, 3), dtype=np.uint8)
    gallery.save_jpeg(small, tmp_path / "s.jpg", max_side=160)
    large = np.zeros((300, 600, 3), dtype=np.uint8)
    gallery.save_jpeg(large, tmp_path / "l.jpg", quality=60, max_side=160)
    with Image.open(tmp_path / "s.jpg") as s, Image.open(tmp_path / "l.jpg") as big:
        assert s.size == (30, 20) and big.size == (160, 80)
