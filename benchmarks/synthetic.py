"""Larger data sets made from a small one: random crops with colour jitter of its photos, so none is a copy.

``make_pool`` writes the new photos once, per source class; ``link_set`` then lays out a data set of any
size and number of classes from the pool with hard links, so a ladder of sizes costs one pool. The scale
benchmark (``benchmarks/scale.py``) runs the pipeline on these sets.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
from _common import jpeg_bytes
from PIL import Image, ImageEnhance, ImageOps

from reportgen.data.dataset import scan_dataset

CROP_AREA = (0.35, 1.0)  # share of the photo a crop keeps
CROP_ASPECT = (3 / 4, 4 / 3)  # width / height of a crop
JITTER = (0.7, 1.3)  # brightness, contrast and saturation factors
JPEG_QUALITY = 90


def source_photos(data_dir: Path) -> dict[str, list[Path]]:
    """The image files of a folder-per-class data set, by class name (the classes of the new sets)."""
    scan = scan_dataset(data_dir)
    photos: dict[str, list[Path]] = {name: [] for name in scan.class_names}
    for record in scan.records:
        photos[scan.class_names[record.class_idx]].append(record.path)
    return photos


def variant(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random crop of ``img`` (area and aspect ratio as ``CROP_*``), mirrored half the time, colour-jittered."""
    width, height = img.size
    area = rng.uniform(*CROP_AREA) * width * height
    aspect = math.exp(rng.uniform(math.log(CROP_ASPECT[0]), math.log(CROP_ASPECT[1])))
    crop_w = max(1, min(width, round(math.sqrt(area * aspect))))
    crop_h = max(1, min(height, round(math.sqrt(area / aspect))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    out = img.crop((left, top, left + crop_w, top + crop_h))
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        out = enhancer(out).enhance(rng.uniform(*JITTER))
    return out


def make_pool(sources: dict[str, list[Path]], root: Path, *, per_class: int, seed: int) -> dict[str, list[Path]]:
    """Write ``per_class`` new photos per source class under ``root/<class>/``; return their paths by class.

    Each new photo is a :func:`variant` of a source photo of its class; the source photos are used in a
    shuffled cycle, so every one is used before any is used twice.
    """
    rng = np.random.default_rng(seed)
    pool: dict[str, list[Path]] = {}
    for class_name, files in sources.items():
        folder = root / class_name
        folder.mkdir(parents=True, exist_ok=True)
        order = rng.permutation(len(files))
        pool[class_name] = []
        for i in range(per_class):
            with Image.open(files[order[i % len(files)]]) as img:
                photo = ImageOps.exif_transpose(img).convert("RGB")
            path = folder / f"{i:06d}.jpg"
            path.write_bytes(jpeg_bytes(variant(photo, rng), JPEG_QUALITY))
            pool[class_name].append(path)
    return pool


def link_set(pool: dict[str, list[Path]], root: Path, *, images: int, classes: int) -> Path:
    """A data set of ``images`` pool photos in ``classes`` class folders under ``root``, as hard links.

    The pool's classes are interleaved (one photo of each in turn) and photo ``i`` goes to class
    ``i % classes``: the classes are balanced, and when ``classes`` is a multiple of the pool's classes
    each new class holds photos of one source class only (its name says which).
    """
    names = sorted(pool)
    per_class = math.ceil(images / len(names))
    if any(len(pool[name]) < per_class for name in names):
        raise ValueError(f"the pool has fewer than {per_class} photos in a class; {images} images need that many")
    interleaved = [pool[name][k] for k in range(per_class) for name in names][:images]
    folders = [root / _class_name(j, names, classes) for j in range(classes)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for i, src in enumerate(interleaved):
        _link(src, folders[i % classes] / f"{i:06d}.jpg")
    return root


def _class_name(j: int, sources: list[str], classes: int) -> str:
    if classes % len(sources) == 0:
        return f"{sources[j % len(sources)]}-{j // len(sources)}"
    return f"class-{j:03d}"


def _link(src: Path, dst: Path) -> None:
    """A hard link (no copy of the bytes), or a copy where the file system has none."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
