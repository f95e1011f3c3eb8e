"""How well the pixel confirmation of near copies separates copies from different degraded photos.

For the first ``--images`` photos of a shared set: each photo decoded as a run decodes it, seven altered copies
(resized 0.8 + JPEG q80, half size + q85, q40, brightness +15 %, mirror, 5 % and 10 % crop per side) and a
heavily degraded version (Gaussian blur of 2 % of the longer side, contrast x0.5, brightness x0.4). Printed:
the lowest thumbnail correlation (``reportgen.analysis.pixel_match``) of each copy kind with its photo and the
share at or above the threshold, and the highest over every pair of two different degraded photos and of two
different originals. The numbers in ``reportgen/analysis/pixel_match.py`` come from ``--images 300`` on
food101-pss and ``--images 400`` on food9-64px.

Usage::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/copy_confirmation.py --data ../shared/data/food9-64px --images 400
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from _common import SHARED
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from reportgen.analysis.pixel_match import MIN_PIXEL_CORRELATION, pixel_correlation
from reportgen.data.dataset import decode_image

SIZE = 224


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _crop(img: Image.Image, share: float) -> Image.Image:
    w, h = img.size
    return img.crop((int(w * share), int(h * share), int(w * (1 - share)), int(h * (1 - share))))


ALTERED = {
    "resized 0.8 + q80": lambda im: _jpeg(im.resize((int(im.width * 0.8), int(im.height * 0.8))), 80),
    "half size + q85": lambda im: _jpeg(im.resize((im.width // 2, im.height // 2)), 85),
    "JPEG q40": lambda im: _jpeg(im, 40),
    "brightness +15 %": lambda im: _jpeg(ImageEnhance.Brightness(im).enhance(1.15)),
    "mirror": lambda im: _jpeg(ImageOps.mirror(im)),
    "5 % crop per side": lambda im: _jpeg(_crop(im, 0.05)),
    "10 % crop per side": lambda im: _jpeg(_crop(im, 0.10)),
}


def _degraded(im: Image.Image) -> bytes:
    im = im.filter(ImageFilter.GaussianBlur(0.02 * max(im.size)))
    return _jpeg(ImageEnhance.Brightness(ImageEnhance.Contrast(im).enhance(0.5)).enhance(0.4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "food101-pss")
    parser.add_argument("--images", type=int, default=300)
    args = parser.parse_args()
    files = sorted(p for p in args.data.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[: args.images]
    versions: dict[str, list[np.ndarray]] = {"original": [], "degraded": [], **{k: [] for k in ALTERED}}
    for path in files:
        photo = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        versions["original"].append(decode_image(path.read_bytes(), SIZE)[0])
        versions["degraded"].append(decode_image(_degraded(photo), SIZE)[0])
        for kind, alter in ALTERED.items():
            versions[kind].append(decode_image(alter(photo), SIZE)[0])
    n = len(files)
    originals = np.stack(versions["original"])
    print(f"{args.data.name}, {n} photos, threshold {MIN_PIXEL_CORRELATION}")
    for kind in ALTERED:
        both = np.concatenate([originals, np.stack(versions[kind])])
        corr = pixel_correlation(both, np.arange(n), np.arange(n) + n)
        share = np.mean(corr >= MIN_PIXEL_CORRELATION)
        print(f"  copy, {kind:20s} lowest {corr.min():.3f}, at or above the threshold {share:.0%}")
    a, b = np.triu_indices(n, 1)
    for name in ("degraded", "original"):
        corr = pixel_correlation(np.stack(versions[name]), a, b)
        print(f"  two different {name} photos ({len(a)} pairs): highest {corr.max():.3f}")


if __name__ == "__main__":
    main()
