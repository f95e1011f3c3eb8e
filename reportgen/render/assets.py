"""The report's photos: gallery thumbnails and Grad-CAM overlays as small JPEGs under ``OUT/assets``.

The model sees every image squashed to a square; the pictures written here get the original image's aspect
ratio back (an overlay is blended at the model's size, then stretched with its photo), with the longer side
``max_side`` pixels. File names are generated from image and class indices (``assets/img-000123.jpg``,
``assets/cam-000123-c4.jpg``), never from the user's folder or file names, so any class name is safe. Each
picture also gets a larger version, which its thumbnail opens in the HTML: ``assets/larger/img-000123.jpg``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from reportgen.report import ClassSection, GalleryImage, ProbeResult

if TYPE_CHECKING:
    from reportgen.model.predictions import CamMaps

logger = logging.getLogger(__name__)

ASSETS = "assets"  # folder under the output folder
THUMB_SIDE = 160  # px; about 27 mm wide in the PDF at 150 dpi
JPEG_QUALITY = 78  # a 9-class report with default galleries stays near 2-3 MB
CAM_ALPHA = 0.5  # heat map weight, as the example's plotGradCAM
LARGER_SIDE = 480  # px, the larger versions' longer side at most; the model input (224 px by default) is smaller
LARGER = "larger"  # the larger versions' folder under ASSETS


def larger_path(rel: str) -> str:
    """Where the larger version of the picture ``rel`` is written: ``assets/img-1.jpg -> assets/larger/img-1.jpg``."""
    folder, _, name = rel.rpartition("/")
    return f"{folder}/{LARGER}/{name}" if folder else f"{LARGER}/{name}"


def save_jpeg(rgb: np.ndarray, path: Path, quality: int = JPEG_QUALITY, max_side: int = THUMB_SIDE) -> None:
    """Write ``rgb`` ``(H, W, 3)`` uint8 as a JPEG whose longer side is at most ``max_side`` pixels."""
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB")
    scale = max_side / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=quality, optimize=True)


def display_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """``(width, height)`` of a picture with the original's aspect ratio and its longer side ``max_side``."""
    scale = max_side / max(width, height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def restore_aspect(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a square ``(S, S, 3)`` picture to ``size`` ``(width, height)``: undo the model input's squash."""
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB")
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(image)


def cam_requests(
    sections: Iterable[ClassSection], index_of: Mapping[str, int], class_names: Sequence[str]
) -> list[tuple[int, int]]:
    """The ``(image index, class index)`` pairs whose Grad-CAM the galleries show, for ``compute_cams``.

    Every gallery image is explained for its predicted class; a misclassified one also for its true class.
    """
    class_idx = {name: i for i, name in enumerate(class_names)}
    requests = []
    for section in sections:
        for image in (*section.top, *section.bottom):
            requests.extend((index_of[image.rel_path], class_idx[c]) for c in _explained_classes(image))
    return list(dict.fromkeys(requests))


def write_probe_assets(
    probes: Sequence[ProbeResult],
    pixels: np.ndarray,
    index_of: Mapping[str, int],
    class_names: Sequence[str],
    out_dir: Path,
    cams: CamMaps | None = None,
    *,
    sizes: Sequence[tuple[int, int]] | None = None,
    quality: int = JPEG_QUALITY,
    max_side: int = THUMB_SIDE,
) -> tuple[ProbeResult, ...]:
    """Write a thumbnail and the top class's Grad-CAM overlay for every probe image; return updated probes.

    ``index_of`` maps a probe's ``name`` to its row of ``pixels`` (the probes' own array, or rows appended to
    the data set's); ``cams`` is keyed by that row and the top class's index; ``sizes`` holds each row's
    original ``(width, height)`` (None: square pictures).
    """
    sizes = sizes if sizes is not None else [(1, 1)] * len(pixels)
    class_idx = {n: i for i, n in enumerate(class_names)}
    writer = AssetWriter(Path(out_dir), pixels, cams, class_idx, quality, max_side, sizes=sizes)
    return tuple(writer.probe(probe, index_of[probe.name]) for probe in probes)


class AssetWriter:
    """Writes each picture once, however many galleries and findings show it."""

    def __init__(
        self,
        out_dir: Path,
        pixels: np.ndarray,
        cams: CamMaps | None,
        class_idx: Mapping[str, int],
        quality: int,
        max_side: int,
        *,
        sizes: Sequence[tuple[int, int]],
    ) -> None:
        if len(sizes) != len(pixels):
            raise ValueError(f"`sizes` has {len(sizes)} entries for {len(pixels)} images")
        self.out_dir = out_dir
        self.pixels = pixels  # (N, S, S, 3) uint8
        self.sizes = sizes  # (width, height) of each original image: the pictures get its aspect ratio back
        self.cams = cams
        self.class_idx = class_idx
        self.quality = quality
        self.max_side = max_side
        self.written: set[str] = set()

    def gallery_sections(
        self, sections: Sequence[ClassSection], index_of: Mapping[str, int]
    ) -> tuple[ClassSection, ...]:
        """Sections whose gallery images point to their written thumbnails and overlays."""
        return tuple(
            dataclasses.replace(
                section,
                top=tuple(self.gallery_image(image, index_of[image.rel_path]) for image in section.top),
                bottom=tuple(self.gallery_image(image, index_of[image.rel_path]) for image in section.bottom),
            )
            for section in sections
        )

    def gallery_image(self, image: GalleryImage, image_idx: int) -> GalleryImage:
        """Thumbnail and overlays of a gallery image."""
        explained = _explained_classes(image)
        cam_paths = [self.overlay(image_idx, self.class_idx[c], prefix="cam") for c in explained]
        return dataclasses.replace(
            image,
            thumbnail=self.thumbnail(image_idx, prefix="img"),
            cam=cam_paths[0],
            cam_true=cam_paths[1] if len(cam_paths) > 1 else None,
        )

    def probe(self, probe: ProbeResult, image_idx: int) -> ProbeResult:
        """Thumbnail and top-class overlay of a probe image."""
        cam = None
        if probe.top_classes:
            cam = self.overlay(image_idx, self.class_idx[probe.top_classes[0][0]], prefix="probe-cam")
        return dataclasses.replace(probe, thumbnail=self.thumbnail(image_idx, prefix="probe"), cam=cam)

    def image_assets(self, image_idx: int, class_idx: int | None) -> tuple[str, str | None]:
        """Thumbnail of a data-set image and, when ``class_idx`` is given, its Grad-CAM overlay for that class."""
        cam = None if class_idx is None else self.overlay(image_idx, class_idx, prefix="cam")
        return self.thumbnail(image_idx, prefix="img"), cam

    def thumbnail(self, image_idx: int, *, prefix: str) -> str:
        """Write image ``image_idx`` once; return its path relative to the output folder."""
        rel = f"{ASSETS}/{prefix}-{image_idx:06d}.jpg"
        self._write(rel, image_idx, lambda: self.pixels[image_idx])
        return rel

    def overlay(self, image_idx: int, class_idx: int, *, prefix: str) -> str | None:
        """Write the Grad-CAM overlay once; None when the map was not computed."""
        if self.cams is None or (image_idx, class_idx) not in self.cams:
            logger.debug("no Grad-CAM map for image %d, class %d", image_idx, class_idx)
            return None
        from reportgen.analysis.cams import overlay_cam  # pytorch-grad-cam's blend; imports torch

        rel = f"{ASSETS}/{prefix}-{image_idx:06d}-c{class_idx}.jpg"
        cams = self.cams
        pixels = self.pixels[image_idx]
        self._write(rel, image_idx, lambda: overlay_cam(pixels, cams.get(image_idx, class_idx), CAM_ALPHA))
        return rel

    def _write(self, rel: str, image_idx: int, make_square: Callable[[], np.ndarray]) -> None:
        """Write the square picture ``make_square()`` once, at image ``image_idx``'s original aspect ratio."""
        if rel in self.written:
            return
        square, (width, height) = make_square(), self.sizes[image_idx]
        larger = min(LARGER_SIDE, max(square.shape[:2]))  # the zoom view's picture: never upsampled
        for target, side in ((rel, self.max_side), (larger_path(rel), larger)):
            picture = restore_aspect(square, display_size(width, height, side))
            save_jpeg(picture, self.out_dir / target, self.quality, side)
        self.written.add(rel)


def _explained_classes(image: GalleryImage) -> tuple[str, ...]:
    """The classes whose Grad-CAM an image's card shows: the predicted one, then the true one if different."""
    if image.correct or image.predicted_class == image.true_class:
        return (image.predicted_class,)
    return (image.predicted_class, image.true_class)
