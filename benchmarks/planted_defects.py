"""Plant known defects in a copy of a photo set, run the whole ``reportgen run``, and score what it finds.

Planted in one copy (outside the repository, in a temporary folder):

* label errors: ``--noise`` of the images moved into another class folder;
* duplicates: ``--copies`` images copied byte for byte (same class) and as resized re-encoded copies;
* a stamp: a magenta square (12 % of the shorter side, top-left) on every image of ``--stamp-class``.

Then ``reportgen run COPY --out OUT`` with the defaults (plus ``ARGS``) and precision / recall of the
label check, the duplicate finder and the fixed-pattern check are printed from ``OUT/results.json``.

Usage::

    .venv/bin/python benchmarks/planted_defects.py                      # food101-pss, ~2 min on 2 cores
    .venv/bin/python benchmarks/planted_defects.py --data ../shared/data/food9-64px
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import SHARED, jpeg_bytes, stamp_file
from PIL import Image, ImageOps

STAMP_SIZE = 0.12  # side of the magenta square, share of the shorter side


def main() -> None:
    args = _parser().parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="planted-") as tmp:
        copy = Path(tmp) / args.data.name
        shutil.copytree(args.data, copy)
        flipped = _flip_labels(copy, args.noise, rng)
        dup_pairs = _plant_copies(copy, args.copies, rng)
        stamped = _stamp_class(copy, args.stamp_class)
        print(f"planted in {copy}: {len(flipped)} flipped labels, {len(dup_pairs)} copies, stamp on {stamped!r}")
        out = Path(tmp) / "out"
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "reportgen", "run", str(copy), "--out", str(out), "-q", *args.args]
        subprocess.run(cmd, check=False)
        print(f"reportgen run: {time.perf_counter() - start:.0f} s")
        results = json.loads((out / "results.json").read_text())
    _score_labels(results, flipped)
    _score_duplicates(results, dup_pairs)
    _score_stamps(results, stamped)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "food101-pss")
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--stamp-class", default=None, help="class folder to stamp (default: the second)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("args", nargs="*", help="extra options for reportgen run (after --)")
    return parser


def _images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def _flip_labels(root: Path, noise: float, rng: np.random.Generator) -> dict[str, str]:
    """Move a random ``noise`` share of the images to another class; return new rel_path -> true class."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    files = _images(root)
    chosen = rng.choice(len(files), size=round(noise * len(files)), replace=False)
    moved = {}
    for i in sorted(chosen):
        src = files[i]
        true = src.relative_to(root).parts[0]
        wrong = rng.choice([c for c in classes if c != true])
        dst = root / wrong / f"flipped-{src.name}"
        src.rename(dst)
        moved[dst.relative_to(root).as_posix()] = true
    return moved


def _plant_copies(root: Path, n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Exact and resized copies of ``n`` images in their own class; return (original, copy) rel_paths."""
    files = [f for f in _images(root) if not f.name.startswith("flipped-")]
    pairs = []
    for k, i in enumerate(rng.choice(len(files), size=n, replace=False)):
        src = files[i]
        dst = src.with_name(f"copy-{k}-{src.stem}.jpg")
        if k % 2 == 0:
            shutil.copyfile(src, dst)
        else:
            img = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
            img = img.resize((max(1, int(img.width * 0.8)), max(1, int(img.height * 0.8))))
            dst.write_bytes(jpeg_bytes(img, 80))
        pairs.append((src.relative_to(root).as_posix(), dst.relative_to(root).as_posix()))
    return pairs


def _stamp_class(root: Path, name: str | None) -> str:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    target = name or classes[1]
    for path in _images(root / target):
        stamp_file(path, STAMP_SIZE)
    return target


def _pr(found: set, truth: set) -> str:
    tp = len(found & truth)
    precision = tp / len(found) if found else float("nan")
    recall = tp / len(truth) if truth else float("nan")
    return f"precision {precision:.2f} ({tp}/{len(found)}), recall {recall:.2f} ({tp}/{len(truth)})"


def _score_labels(results: dict, flipped: dict[str, str]) -> None:
    check = results["audit"]["label_issues"]
    found = {s["image"]["rel_path"] for s in check["suspects"]}
    print(f"label errors: {_pr(found, set(flipped))}; estimated noise rate {check['noise_rate']:.3f}")
    extra = sorted(found - set(flipped))
    print(f"  flagged beyond the planted ones ({len(extra)}; the originals may be truly wrong): {extra[:12]}")
    right = sum(1 for s in check["suspects"] if flipped.get(s["image"]["rel_path"]) == s["suggested_label"])
    print(f"  suggested label = true label for {right} of {len(found & set(flipped))} planted suspects found")


def _score_duplicates(results: dict, planted: list[tuple[str, str]]) -> None:
    dups = results["audit"]["duplicates"]
    found = {frozenset((p["a"]["rel_path"], p["b"]["rel_path"])) for p in dups["pairs"]}
    truth = {frozenset(p) for p in planted}
    print(f"duplicates: {_pr(found, truth)}; {dups['across_splits']} pairs straddle splits")


def _score_stamps(results: dict, stamped: str) -> None:
    flagged = set(results["audit"]["stamps"]["flagged"])
    cam = set(results["audit"]["shortcuts"]["flagged"]) if results["audit"]["shortcuts"] else set()
    print(
        f"stamp: fixed-pattern check flags {sorted(flagged)}, Grad-CAM check flags {sorted(cam)}; planted {stamped!r}"
    )


if __name__ == "__main__":
    main()
