"""Whether two images are one picture at the pixel level: the confirmation of a near-copy pair found in the features.

Pretrained features put heavily blurred, dark photos close together whatever they show, so a cosine threshold
alone calls two different degraded photos copies. A pair is confirmed when small grayscale thumbnails of the
two decoded images correlate: each image squashed to the model's square input, its luminance averaged into
``THUMB_SIDE`` x ``THUMB_SIDE`` blocks, centred and scaled to unit length (so brightness and contrast changes do
not matter); the best correlation over a mirror and a few centre zooms of either image (so light crops and
mirrored copies still match) must reach :data:`MIN_PIXEL_CORRELATION`.

Measured on decoded 224 px images (``benchmarks/copy_confirmation.py``): ``food101-pss`` (300 photos) and
``food9-64px`` (400), each photo and its altered copy, and every pair of two different photos after the
same heavy degradation (Gaussian blur of 2 % of the side, contrast x0.5, brightness x0.4):

=========================================  ======================  =====================
                                           food101-pss             food9-64px
=========================================  ======================  =====================
copies, lowest correlation: resized 0.8    1.000                   0.999
+ JPEG q80 / half size q85 / JPEG q40      1.000 / 1.000           0.996 / 0.997
brightness +15 % / mirror                  0.993 / 1.000           0.989 / 1.000
5 % crop per side                          0.907 (0.352 unzoomed)  0.904
different degraded photos, highest         0.820 (44,850 pairs)    0.855 (79,800 pairs)
different original photos, highest         0.798                   0.824
=========================================  ======================  =====================

So 0.88 lies between every copy kind the features find (a 10 % crop, which the features miss, reads 0.33-0.39)
and every pair of different photos, degraded or not. 8 x 8 thumbnails separate less (different degraded photos
up to 0.887); without the zooms a 5 % crop falls to 0.35.
"""

from __future__ import annotations

import numpy as np

THUMB_SIDE = 16
ZOOMS = (1.0, 1.06, 1.12)  # centre zooms tried on either image (1.12: a crop of 5 % per side)
MIN_PIXEL_CORRELATION = 0.88
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def pixel_correlation(pixels: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The best thumbnail correlation of each pair ``(a[k], b[k])`` of rows of ``pixels`` (``(N, S, S, 3)`` uint8)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if not len(a):
        return np.zeros(0, dtype=np.float32)
    rows = np.unique(np.concatenate([a, b]))
    where = np.searchsorted(rows, np.concatenate([a, b]))
    ia, ib = where[: len(a)], where[len(a) :]
    thumbs = {(zoom, flip): _thumbnails(pixels, rows, zoom, flip) for zoom in ZOOMS for flip in (False, True)}
    best = np.full(len(a), -1.0, dtype=np.float32)
    for za in ZOOMS:
        for zb in ZOOMS:
            if za != 1.0 and zb != 1.0:
                continue  # a zoom on one side is enough: the other side stays whole
            for flip in (False, True):
                best = np.maximum(best, np.einsum("pd,pd->p", thumbs[(za, False)][ia], thumbs[(zb, flip)][ib]))
    return best


def _thumbnails(pixels: np.ndarray, rows: np.ndarray, zoom: float, flip: bool) -> np.ndarray:
    """``(len(rows), THUMB_SIDE**2)`` centred unit thumbnails of the centre ``1 / zoom`` of each image."""
    out = np.empty((len(rows), THUMB_SIDE * THUMB_SIDE), dtype=np.float32)
    for start in range(0, len(rows), 256):  # bounded memory on a large set
        chunk = np.asarray(pixels[rows[start : start + 256]])
        gray = chunk.astype(np.float32) @ _LUMA
        side = gray.shape[1]
        margin = int(round(side * (1 - 1 / zoom) / 2))
        gray = gray[:, margin : side - margin, margin : side - margin]
        if flip:
            gray = gray[:, :, ::-1]
        cuts = np.arange(THUMB_SIDE) * gray.shape[1] // THUMB_SIDE
        thumb = np.add.reduceat(np.add.reduceat(gray, cuts, axis=1), cuts, axis=2).reshape(len(chunk), -1)
        thumb -= thumb.mean(axis=1, keepdims=True)
        out[start : start + len(chunk)] = thumb / np.maximum(np.linalg.norm(thumb, axis=1, keepdims=True), 1e-6)
    return out
