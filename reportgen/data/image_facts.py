"""Facts about one image beyond its size and tones: its sharpness and, for a JPEG, the quality it was saved at.

Both are computed in the decode step, on the thread that decodes the image, from what is already at hand:
the luminance of the decoded ``(S, S)`` image and the file's quantisation tables (read from its header).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# libjpeg's standard luminance quantisation table (ITU-T T.81, Annex K): quality 50 saves exactly these steps
_STANDARD_LUMINANCE_SUM = sum(
    (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
)  # fmt: skip


def sharpness(luminance: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of ``(H, W)`` luminance in [0, 1] (as CleanVision's blur check).

    Low for blurred, flat or upscaled images; it is measured at the decoded size, so it compares images
    of one data set, not the files' own resolutions.
    """
    if luminance.shape[0] < 3 or luminance.shape[1] < 3:
        return 0.0
    lap = luminance[1:-1, 1:-1] * 4
    lap -= luminance[:-2, 1:-1]
    lap -= luminance[2:, 1:-1]
    lap -= luminance[1:-1, :-2]
    lap -= luminance[1:-1, 2:]
    return float(lap.var())


def jpeg_quality(img: Image.Image) -> int | None:
    """The quality (1-100) a JPEG was saved at, estimated from its luminance table; None for other files.

    libjpeg scales its standard table by ``S = 5000 / q`` (q < 50) or ``200 - 2 q`` (q >= 50), in percent,
    so the ratio of the table's sum to the standard sum gives ``S`` back (within rounding; custom tables
    give the quality of the libjpeg table with the same mean step).
    """
    tables = getattr(img, "quantization", None)
    if img.format != "JPEG" or not tables or 0 not in tables:
        return None
    scale = 100.0 * sum(tables[0]) / _STANDARD_LUMINANCE_SUM
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(np.clip(round(quality), 1, 100))
