"""``--probe`` images from outside the data set: classified, explained with Grad-CAM, written as assets."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import nn

from reportgen.analysis.cams import compute_cams
from reportgen.data import image_size
from reportgen.gallery import write_probe_assets
from reportgen.model import ModelSpec
from reportgen.predict import run_model
from reportgen.report import ProbeResult
from reportgen.runtime import Runtime

TOP_CLASSES = 3  # classes listed per probe image


def classify_probes(
    model: nn.Module,
    spec: ModelSpec,
    pixels: np.ndarray,
    runtime: Runtime,
    *,
    paths: Sequence[Path],
    class_names: tuple[str, ...],
    cam: bool,
    batch_size: int,
    cam_batch_size: int,
    out_dir: Path,
    progress: bool,
) -> tuple[ProbeResult, ...]:
    """Each probe's top classes, with its thumbnail and (with ``cam``) the top class's overlay under ``out_dir``."""
    probs = run_model(model, spec, pixels, runtime, batch_size=batch_size, progress=False).probs
    top = np.argsort(-probs, axis=1, kind="stable")[:, : min(TOP_CLASSES, len(class_names))]
    probes = tuple(
        ProbeResult(
            name=path.name,
            top_classes=tuple((class_names[c], round(float(probs[i, c]), 6)) for c in top[i]),
        )
        for i, path in enumerate(paths)
    )
    cams = None
    if cam:
        requests = [(i, int(top[i, 0])) for i in range(len(pixels))]
        cams = compute_cams(model, spec, pixels, requests, runtime, batch_size=cam_batch_size, progress=progress)
    index_of = {probe.name: i for i, probe in enumerate(probes)}
    if len(index_of) < len(probes):  # two probes with one file name: key by position instead
        probes = tuple(dataclasses.replace(p, name=f"{i + 1}: {p.name}") for i, p in enumerate(probes))
        index_of = {probe.name: i for i, probe in enumerate(probes)}
    sizes = [_original_size(path) for path in paths]
    return write_probe_assets(probes, pixels, index_of, class_names, out_dir, cams, sizes=sizes)


def _original_size(path: Path) -> tuple[int, int]:
    """A probe's original ``(width, height)``, for its pictures' aspect ratio; square when unreadable."""
    try:
        return image_size(path)
    except (OSError, ValueError):  # read fine for the model a moment ago: a file changed since shows square
        return (1, 1)
