"""Decode throughput (one thread, a thread pool, a process pool) and the peak memory of decoding a large set.

Throughput: each variant decodes a whole set at ``--size`` into a preallocated array, as ``load_images``
does; the variants take turns within each of ``--repeats`` rounds, and the median round is printed with
its ratio to one thread, so a machine busy with other work slows every variant alike.

Memory: ``--memory-images`` synthetic JPEGs (crops of the shared photos, 48 to 320 px a side, or noise
without them) are written to a temporary folder and decoded by ``load_images`` in a fresh process, at
``--size``; the process's peak resident memory (``VmHWM``) is printed with its anonymous and file-backed
parts (sampled), and the slope between two counts when several are given. Past 4 GB of pixels the array
is a memory map on disk, so its pages are file-backed.

Usage::

    .venv/bin/python benchmarks/decode.py                                   # food101-pss, food9-64px; 50,000
    .venv/bin/python benchmarks/decode.py --sets food9-64px --memory-images 20000 50000
    .venv/bin/python benchmarks/decode.py --memory-images                   # throughput only
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import SHARED
from PIL import Image

from reportgen.data.dataset import DatasetScan, decode_files, load_images, scan_dataset
from reportgen.data.workers import usable_cores

DISTINCT_FILES = 500  # synthetic set: distinct JPEGs, repeated under new names up to the count asked for
CLASSES = 10


def main() -> None:
    """Print the throughput of each set, then the memory figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="*", default=["food101-pss", "food9-64px"])
    parser.add_argument("--size", type=int, default=224, help="decoded side (the default model's input)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-images", type=int, nargs="*", default=[50_000])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # internal: decode this folder, print JSON
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_decode_and_measure(args.child, args.size)))
        return
    load = os.getloadavg()
    print(f"{platform.machine()}, {usable_cores()} usable cores, Python {platform.python_version()}")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other work slows every variant)")
    for name in args.sets:
        if not (SHARED / name).is_dir():
            print(f"{name}: not found under {SHARED}, skipped")
            continue
        _print_throughput(name, scan_dataset(SHARED / name), args.size, args.repeats)
    _print_memory(args.memory_images, args.size)


def _variants(cores: int) -> dict[str, dict[str, object]]:
    return {
        "one thread": {"workers": 1},
        f"{cores} threads": {"workers": cores},
        f"{cores + 1} threads": {"workers": cores + 1},
        f"{cores} processes": {"workers": cores, "processes": True},
    }


def _print_throughput(name: str, scan: DatasetScan, size: int, repeats: int) -> None:
    variants = _variants(usable_cores())
    rounds: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(repeats):
        for label, options in variants.items():
            start = time.perf_counter()
            _decode_into_array(scan, size, **options)  # type: ignore[arg-type]
            rounds[label].append(len(scan.records) / (time.perf_counter() - start))
    serial = statistics.median(rounds["one thread"])
    print(f"\n{name}: {len(scan.records)} files at {size} px, median of {repeats} rounds")
    for label, ips in rounds.items():
        median = statistics.median(ips)
        spread = f"{min(ips):.0f}-{max(ips):.0f}"
        print(f"  {label:14s} {median:7.1f} img/s  ({spread})  x{median / serial:.2f}")


def _decode_into_array(scan: DatasetScan, size: int, *, workers: int, processes: bool = False) -> int:
    """``load_images``'s loop: every decoded image copied into one preallocated array, in order."""
    pixels = np.empty((len(scan.records), size, size, 3), dtype=np.uint8)
    kept = 0
    for outcome in decode_files(scan.records, size, workers=workers, processes=processes):
        if not isinstance(outcome, str):
            pixels[kept] = outcome[0]
            kept += 1
    return kept


def _print_memory(counts: list[int], size: int) -> None:
    results = []
    for count in counts:
        with tempfile.TemporaryDirectory(prefix="reportgen-decode-bench-") as folder:
            start = time.perf_counter()
            _write_synthetic_set(Path(folder), count)
            written = time.perf_counter() - start
            child = [sys.executable, __file__, "--child", folder, "--size", str(size)]
            result = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
        results.append(result)
        print(
            f"\nmemory, {count} synthetic JPEGs at {size} px ({count * size * size * 3 / 1e9:.1f} GB of pixels; "
            f"written in {written:.0f} s): decoded in {result['seconds']:.0f} s ({count / result['seconds']:.0f} img/s)"
            f"{', memory-mapped' if result['memmap'] else ''}"
        )
        print(
            f"  peak resident {result['vmhwm_gb']:.2f} GB (VmHWM); sampled peaks: anonymous "
            f"{result['anon_gb']:.2f} GB, file-backed {result['file_gb']:.2f} GB"
        )
    for low, high in zip(results, results[1:], strict=False):
        slope = (high["vmhwm_gb"] - low["vmhwm_gb"]) / (high["images"] - low["images"]) * 1e6
        print(f"  slope {low['images']} -> {high['images']} images: {slope:.1f} KB of peak memory per image")


def _write_synthetic_set(root: Path, count: int) -> None:
    """``count`` JPEGs in ``CLASSES`` folders: ``DISTINCT_FILES`` crops of varied size, repeated under new names."""
    rng = np.random.default_rng(0)
    photos = sorted((SHARED / "food101-pss").rglob("*.jpg"))[:50]
    blobs = []
    for i in range(DISTINCT_FILES):
        if photos:
            with Image.open(photos[i % len(photos)]) as photo:
                img = photo.convert("RGB")
            w, h = img.size
            left, top = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
            img = img.crop((left, top, left + w // 2, top + h // 2))
        else:
            img = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        side = rng.integers(48, 321, size=2)
        buffer = io.BytesIO()
        img.resize((int(side[0]), int(side[1]))).save(buffer, "JPEG", quality=85)
        blobs.append(buffer.getvalue())
    for c in range(CLASSES):
        (root / f"class{c}").mkdir()
    for i in range(count):
        (root / f"class{i % CLASSES}" / f"{i:06d}.jpg").write_bytes(blobs[i % DISTINCT_FILES])


def _decode_and_measure(folder: Path, size: int) -> dict[str, object]:
    """Decode ``folder`` as a run does and report the peak memory of this process."""
    peaks = {"RssAnon": 0, "RssFile": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            for key, kb in _status_kb(("RssAnon", "RssFile")).items():
                peaks[key] = max(peaks[key], kb)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    images = load_images(scan_dataset(folder), size, progress=False)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return {
        "images": len(images.labels),
        "seconds": seconds,
        "memmap": isinstance(images.pixels, np.memmap),
        "vmhwm_gb": _status_kb(("VmHWM",))["VmHWM"] / 1e6,
        "anon_gb": peaks["RssAnon"] / 1e6,
        "file_gb": peaks["RssFile"] / 1e6,
    }


def _status_kb(keys: tuple[str, ...]) -> dict[str, int]:
    """Fields of ``/proc/self/status`` in kB."""
    found = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in keys:
                found[name] = int(value.split()[0])
    return found


if __name__ == "__main__":
    main()
