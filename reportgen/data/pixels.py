"""Pixels of a decoded image: squashed to the model's square, converted to RGB, and the facts kept about them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from reportgen.data.image_facts import sharpness


@dataclass(frozen=True)
class ImageInfo:
    """Facts about one decoded image, kept for image-health checks and duplicate search."""

    width: int  # after EXIF orientation
    height: int
    mode: str  # Pillow mode of the file ("RGB", "L", "CMYK", "P", "I;16", ...)
    sha256: str  # of the file's bytes
    brightness: float  # mean luminance in [0, 1]
    contrast: float  # standard deviation of luminance in [0, 1]
    colourfulness: float  # mean absolute channel difference in [0, 1]; ~0 for grayscale
    sharpness: float = 0.0  # variance of the luminance's Laplacian at the decoded size (data/image_facts.py)
    format: str = ""  # Pillow's name of the file format ("JPEG", "PNG", ...)
    jpeg_quality: int | None = None  # estimated quality a JPEG was saved at; None for other formats


def fit_square(img: Image.Image, size: int) -> Image.Image:
    """Squash the whole image to ``size`` x ``size`` (as MATLAB's augmentedImageDatastore does)."""
    return img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, compositing transparency on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = float(values.max()) or 1.0
        return Image.fromarray(np.clip(values / top * 255.0, 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode == "RGB":
        return img  # no copy: resizing makes the new image
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def image_info(
    array: np.ndarray, width: int, height: int, mode: str, sha256: str, fmt: str = "", quality: int | None = None
) -> ImageInfo:
    """The facts of decoded ``array`` (brightness, contrast, colourfulness, sharpness) with the file's facts."""
    rgb = array.astype(np.float32)
    rgb /= 255.0  # in place, here and below: the same float32 operations as out of place, fewer buffers
    luminance = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    channel_diff = np.abs(rgb[..., 0] - rgb[..., 1])
    channel_diff += np.abs(rgb[..., 1] - rgb[..., 2])
    channel_diff /= 2
    return ImageInfo(
        width=width,
        height=height,
        mode=mode,
        sha256=sha256,
        brightness=round(float(luminance.mean()), 4),
        contrast=round(float(luminance.std()), 4),
        colourfulness=round(float(channel_diff.mean()), 4),
        sharpness=round(sharpness(luminance), 6),
        format=fmt,
        jpeg_quality=quality,
    )
