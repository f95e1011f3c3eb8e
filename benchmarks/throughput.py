"""Print the throughput of reportgen's heavy stages on this machine (images per second).

Usage: ``python benchmarks/throughput.py [--model efficientnet_lite0] [--data DIR]``. Compares the
choices the pipeline makes (channels_last, bf16 inference, batch-norm folded for inference,
frozen-parameter Grad-CAM) with the plain alternatives, so a change of default can be justified by
figures, not guesses. Each figure times the stage function a run calls (``load_images``, ``run_model``,
``train_model``, ``compute_cams``) at the run's batch sizes; the runtimes other than the one
``resolve_runtime`` picks, and Grad-CAM one image per call, are variants a run does not use, measured
for comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _common import REPO_EXAMPLE

from reportgen.analysis.cams import compute_cams
from reportgen.config import RECIPES
from reportgen.data.dataset import load_images, scan_dataset
from reportgen.model.backbones import build_model
from reportgen.model.predict import run_model
from reportgen.model.runtime import Runtime, resolve_runtime
from reportgen.model.train import train_model


def _timed(fn: Callable[[], object], n_images: int, repeats: int = 2) -> float:
    fn()  # warm-up: allocator, oneDNN primitive cache
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n_images / best


def _variants(base: Runtime) -> dict[str, Runtime]:
    return {
        "fp32, default layout": dataclasses.replace(base, eval_dtype=None, train_dtype=None, channels_last=False),
        "fp32, channels_last": dataclasses.replace(base, eval_dtype=None, train_dtype=None, channels_last=True),
        "bf16 autocast, channels_last": dataclasses.replace(
            base, eval_dtype=torch.bfloat16, train_dtype=torch.bfloat16, channels_last=True
        ),
    }


def main() -> None:
    """Run every measurement and print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--data", type=Path, default=REPO_EXAMPLE)
    parser.add_argument("--images", type=int, default=64, help="images per measurement")
    args = parser.parse_args()
    base = resolve_runtime("auto", "auto")
    print(f"device: {base.describe()}; torch {torch.__version__}; model {args.model}")

    scan = scan_dataset(args.data)
    model, spec = build_model(args.model, len(scan.class_names))
    start = time.perf_counter()
    images = load_images(scan, spec.image_size, progress=False)
    print(f"decode + resize to {spec.image_size}px: {len(images.labels) / (time.perf_counter() - start):7.1f} img/s")
    pixels = images.pixels[: args.images]
    labels = images.labels[: args.images]
    idx = np.arange(len(pixels))

    batch = base.eval_batch_size
    for name, runtime in _variants(base).items():
        ips = _timed(lambda r=runtime: run_model(model, spec, pixels, r, batch_size=batch, progress=False), len(pixels))
        print(f"inference, batch {batch}, {name:30s}: {ips:7.1f} img/s")
    for fold in (False, True):
        ips = _timed(
            lambda f=fold: run_model(model, spec, pixels, base, batch_size=batch, fold_batchnorm=f, progress=False),
            len(pixels),
        )
        name = "batch-norm folded" if fold else "batch-norm layers kept"
        print(f"inference, batch {batch}, {name:30s}: {ips:7.1f} img/s")
    # one epoch of `--recipe example`: its new random head needs no linear probe (the default recipe's does)
    one_epoch = dataclasses.replace(RECIPES["example"], epochs=1)
    for name, runtime in _variants(base).items():
        ips = _timed(
            lambda r=runtime: train_model(
                model,
                spec,
                pixels,
                labels,
                train_idx=idx,
                val_idx=idx[:0],
                config=one_epoch,
                runtime=r,
                seed=0,
                eval_batch_size=base.eval_batch_size,
                progress=False,
            ),
            len(pixels),
            repeats=1,
        )
        print(f"training, batch {one_epoch.batch_size}, {name:31s}: {ips:7.1f} img/s")
    requests = [(int(i), int(labels[i])) for i in idx[:32]]
    fp32 = _variants(base)["fp32, channels_last"]
    cam_batch = base.cam_batch_size
    ips = _timed(lambda: compute_cams(model, spec, pixels, requests, fp32, batch_size=cam_batch, progress=False), 32)
    print(f"Grad-CAM, batch {cam_batch}, frozen parameters          : {1000 / ips:7.1f} ms/img")
    ips = _timed(lambda: compute_cams(model, spec, pixels, requests[:8], fp32, batch_size=1, progress=False), 8)
    print(f"Grad-CAM, one image per call                   : {1000 / ips:7.1f} ms/img")


if __name__ == "__main__":
    main()
