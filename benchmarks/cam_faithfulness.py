"""How faithful each heat-map method is on real photo sets: fast and full ROAD, both baselines, sanity, patch, seconds.

For each set a model is trained once by ``reportgen run`` (the default recipe) and its ``model.pt`` reused
(``--models``); its test images are explained for their predicted class by each method at the last block's
layer (the run's) and at one earlier layer (``blocks.4``, 14 x 14). Per method:

* fast ROAD — the explanation check's score (``reportgen.analysis.explanation.fast_road``), mean ± s.e.;
* full ROAD — the library's ``ROADCombined`` (noisy linear imputation, 20/40/60/80 % removed, softmax
  target, as the issue measured it) on the first ``--full`` images, for the maps of ``--full-methods``; the
  rank correlation of the fast score with it is printed over every (image, map) pair and over the methods'
  means, and per set on what the verdict rests on (the maps' lead over each baseline, image by image, and
  the verdict each score gives);
* a random map (``RandomCAM``) and a centred blob on the same images;
* sanity — the mean Spearman correlation of the maps before and after re-initialising the head and the
  last two blocks (``randomised_copy``); low is good;
* seconds per image to compute the maps.

``--patch`` adds the planted shortcut of ``verify_finders.py`` in its ``split`` mode (one class split in two
folders by file order, a magenta square on every image of the second, so that only the patch tells them
apart; the same short fine-tune). It prints the shortcut check's flag and measured drop, and per method the
share of the map's mass on the patch over the unpatched test images that the patch flips into the patched
folder.

Usage::

    .venv/bin/python benchmarks/cam_faithfulness.py --sets clothing-mini,food9-64px,food101-pss --patch
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import REPO, REPO_EXAMPLE, SHARED, with_patch
from PIL import Image
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from scipy.stats import spearmanr

from reportgen.analysis.cams import compute_cams, randomised_copy
from reportgen.analysis.explanation import fast_road
from reportgen.analysis.faithfulness import centred_blob, spearman_maps
from reportgen.data.dataset import load_images, scan_dataset
from reportgen.model.backbones import load_checkpoint
from reportgen.model.predict import run_model
from reportgen.model.runtime import normalise, resolve_runtime, to_unit_tensor

EARLIER = "blocks.4"  # efficientnet_lite0: the 14 x 14 stage before the last two
METHODS = ("gradcam", "hirescam", "gradcam++", "layercam", "shapleycam")  # ScoreCAM: --methods ...,scorecam
SLOW = {"scorecam": 2}  # images per set for methods too slow for all: a forward pass per channel (1280 at bn2)


def main() -> None:
    args = _parser().parse_args()
    torch.manual_seed(args.seed)
    runtime = resolve_runtime("cpu", "fp32")
    pairs: list[tuple[float, float]] = []
    means: list[tuple[float, float]] = []
    every: list[dict] = []
    for name in filter(None, args.sets.split(",")):
        rows = bench_set(name, args, runtime)
        print(verdict_agreement(rows))
        every += rows
        pairs += [(f, u) for row in rows for f, u in zip(row["fast"], row["full"], strict=False)]
        means += [(_mean(row["fast"][: len(row["full"])]), _mean(row["full"])) for row in rows if len(row["full"])]
    if pairs:
        fast, full = np.array(pairs).T
        mf, mu = np.array(means).T
        print(
            f"\nagreement of fast with full ROAD: Spearman {spearmanr(fast, full).statistic:.2f} over {len(pairs)} "
            f"(image, map) pairs; {spearmanr(mf, mu).statistic:.2f} over {len(means)} (set, method) means"
        )
    if every:
        print(choose_default(every))
    if args.patch:
        bench_patch(args, runtime)


def verdict_agreement(rows: list[dict]) -> str:
    """Fast against full ROAD on what the verdict rests on: per image, the maps' lead over the blob and over
    the random map, and the verdict each score gives (the run's method at the run's layer, the first row)."""
    from reportgen.analysis.faithfulness import judge

    at_layer = {row["method"]: row for row in rows if row["layer"] == rows[0]["layer"]}  # one row per method
    maps, random, blob = at_layer[rows[0]["method"]], at_layer["random"], at_layer["blob"]
    k = min(len(maps["full"]), len(random["full"]), len(blob["full"]))
    if k < 3:
        return "verdict agreement: fewer than 3 images with the full ROAD"
    lines = []
    for name, base in (("blob", blob), ("random", random)):
        fast, full = maps["fast"][:k] - base["fast"][:k], maps["full"][:k] - base["full"][:k]
        lines.append(
            f"maps - {name}: fast {fast.mean():+.3f} ± {_se(fast):.3f}, full {full.mean():+.3f} ± {_se(full):.3f}, "
            f"per-image Spearman {spearmanr(fast, full).statistic:.2f}"
        )
    verdicts = [
        judge(maps[key][:k], random[key][:k], blob[key][:k], [0] * k, class_names=["all"], method="", layer="").verdict
        for key in ("fast", "full")
    ]
    return f"verdict agreement ({k} images): " + "; ".join(lines) + f"; verdict fast {verdicts[0]}, full {verdicts[1]}"


def choose_default(rows: list[dict]) -> str:
    """The rule of the issue: the most faithful (mean fast ROAD over the sets) whose seconds per image are at
    most twice Grad-CAM's at the run's layer, among the methods that pass the sanity check on every set."""
    from reportgen.analysis.faithfulness import SANITY_MAX

    by: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row["method"] not in ("random", "blob"):
            by.setdefault((row["method"], row["layer"]), []).append(row)
    base = [r["seconds"] for (m, layer), rs in by.items() if m == "gradcam" and layer != EARLIER for r in rs]
    limit = 2 * float(np.mean(base)) if base else float("inf")
    scored = []
    for (method, layer), rs in by.items():
        cost = float(np.mean([r["seconds"] for r in rs]))
        sane = all(r["sanity"] <= SANITY_MAX for r in rs)
        road = float(np.mean([np.mean(r["fast"]) for r in rs]))
        scored.append((road, method, layer, cost, sane))
        print(f"{method:11s} {layer:10s} mean fast ROAD {road:.3f}, {cost:.2f} s/image, sanity passed: {sane}")
    eligible = [s for s in scored if s[4] and s[3] <= limit]
    if not eligible:
        return "no method qualifies"
    # equal scores (HiResCAM and ShapleyCAM give Grad-CAM's maps at the last block): Grad-CAM, then the cheaper
    road, method, layer, cost, _ = max(eligible, key=lambda s: (round(s[0], 3), s[1] == "gradcam", -s[3]))
    return f"default supported by the table: {method} at {layer} (mean fast ROAD {road:.3f}, {cost:.2f} s/image)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="clothing-mini,food9-64px,food101-pss")
    parser.add_argument("--models", type=Path, default=Path(tempfile.gettempdir()) / "reportgen-cam-models")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--images", type=int, default=24, help="test images per set")
    parser.add_argument("--earlier-methods", default="gradcam", help="methods also measured at the earlier layer")
    parser.add_argument("--full", type=int, default=12, help="images per set scored by the library's full ROAD")
    parser.add_argument(
        "--full-methods", default="gradcam,gradcam++,random,blob", help="the maps the full ROAD scores (slow)"
    )
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs of the set's model (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patch", action="store_true", help="also the planted patch (verify_finders set-up)")
    parser.add_argument("--patch-data", type=Path, default=SHARED / "food101-pss", help="verify_finders.py's default")
    parser.add_argument("--patch-epochs", type=int, default=6)
    parser.add_argument("--patch-images", type=int, default=12)
    return parser


def _root(name: str) -> Path:
    return REPO_EXAMPLE if name == "clothing-mini" and not (SHARED / name).is_dir() else SHARED / name


def _trained(name: str, args: argparse.Namespace) -> Path:
    """The set's output folder of one ``reportgen run`` (trained once, then reused)."""
    out = args.models / name
    if not (out / "model.pt").is_file():
        command = [
            sys.executable,
            "-m",
            "reportgen",
            "run",
            str(_root(name)),
            "--out",
            str(out),
            "--no-pdf",
            "--no-audit",
            "--no-explanation-check",
            "--seed",
            str(args.seed),
        ]
        if args.epochs is not None:
            command += ["--epochs", str(args.epochs)]
        subprocess.run(command, check=True, cwd=REPO)
    return out


def bench_set(name: str, args: argparse.Namespace, runtime) -> list[dict]:
    """Print the table of one set; return its rows (with per-image fast and full scores)."""
    out = _trained(name, args)
    scan = scan_dataset(_root(name))
    model, spec = load_checkpoint(out / "model.pt", scan.class_names)
    model.eval()
    images = load_images(scan, spec.image_size, progress=False)
    splits = _splits(out / "predictions.csv", images.rel_paths)
    rng = np.random.default_rng(args.seed)
    test = np.flatnonzero(splits == "test")
    test = np.sort(rng.choice(test, min(args.images, len(test)), replace=False))
    pixels = images.pixels[test]
    probs = run_model(model, spec, pixels, runtime, batch_size=runtime.eval_batch_size, progress=False).probs
    classes = [int(c) for c in probs.argmax(axis=1)]
    local = list(enumerate(classes))
    randomised, _ = randomised_copy(model, spec, seed=args.seed)
    print(f"\n== {name}: {len(test)} test images, model {out / 'model.pt'} ==")
    print("method      layer      fast ROAD        full ROAD (n)     sanity  s/image: maps  score fast / full")
    rows = []
    for layer in (spec.cam_layer, EARLIER):
        for method in [*args.methods.split(","), "random", "blob"]:
            if layer != spec.cam_layer and method not in args.earlier_methods.split(","):
                continue
            n = SLOW.get(method, len(test))

            def maps_of(net: torch.nn.Module, n: int = n, method: str = method, layer: str = layer) -> np.ndarray:
                """The maps of ``net`` (the model or its randomised copy) for the first ``n`` images."""
                return compute_cams(
                    net,
                    spec,
                    pixels[:n],
                    local[:n],
                    runtime,
                    batch_size=runtime.cam_batch_size,
                    method=method,
                    layer=layer,
                    seed=args.seed,
                    progress=False,
                ).maps

            start = time.perf_counter()
            if method == "blob":
                maps = np.broadcast_to(centred_blob(spec.image_size), (n, *pixels.shape[1:3])).copy()
            else:
                maps = maps_of(model)
            seconds = (time.perf_counter() - start) / n
            start = time.perf_counter()
            fast = fast_road(
                model, spec, pixels[:n], maps, classes[:n], runtime, batch_size=runtime.eval_batch_size, seed=args.seed
            )
            fast_seconds = (time.perf_counter() - start) / n
            sanity = float("nan")
            if method not in ("blob", "random"):
                sanity = float(spearman_maps(maps, maps_of(randomised)).mean())
            k = min(args.full, n) if layer == spec.cam_layer and method in args.full_methods.split(",") else 0
            start = time.perf_counter()
            full = full_road(model, spec, pixels[:k], maps[:k], classes[:k], runtime) if k else np.zeros(0)
            scoring = (
                f"{fast_seconds:.2f} / {(time.perf_counter() - start) / k:.1f}" if k else f"{fast_seconds:.2f} / -"
            )
            rows.append(
                {"method": method, "layer": layer, "fast": fast, "full": full, "sanity": sanity, "seconds": seconds}
            )
            full_text = f"{full.mean():.3f} ± {_se(full):.3f} ({k})" if k else "-"
            print(
                f"{method:11s} {layer:10s} {fast.mean():.3f} ± {_se(fast):.3f}  {full_text:17s} "
                f"{sanity:6.2f}  {seconds:.2f}    {scoring}"
            )
    return rows


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values))


def _se(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def _splits(csv: Path, rel_paths: tuple[str, ...]) -> np.ndarray:
    import csv as csv_module

    with csv.open(newline="", encoding="utf-8") as f:
        split_of = {row["path"]: row["split"] for row in csv_module.DictReader(f)}
    return np.array([split_of.get(p, "") for p in rel_paths])


def full_road(model, spec, pixels: np.ndarray, maps: np.ndarray, classes, runtime) -> np.ndarray:
    """The library's ROADCombined at 20/40/60/80 % with the softmax of the explained class, per image."""
    x = normalise(to_unit_tensor(pixels, runtime), spec, runtime)
    targets = [ClassifierOutputSoftmaxTarget(c) for c in classes]
    scores = ROADCombined(percentiles=[20, 40, 60, 80])(x, np.asarray(maps, np.float32), targets, model)
    return np.asarray(scores, dtype=np.float64)


def bench_patch(args: argparse.Namespace, runtime) -> None:
    """The planted patch: per method, the map's mass on the patch for the images the patch flips."""
    from _common import PRODUCT
    from verify_finders import _fine_tune, _plant_patch

    from reportgen.data.splits import split_dataset
    from reportgen.model.backbones import build_model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "set"
        shutil.copytree(args.patch_data, root, ignore=shutil.ignore_patterns(".*"))
        class_name = _plant_patch(root, sorted(p.name for p in root.iterdir() if p.is_dir())[1], "split", 0.12)
        scan = scan_dataset(root)
        _, spec0 = build_model(PRODUCT.model, len(scan.class_names), PRODUCT.weights)
        images = load_images(scan, spec0.image_size, progress=False)
        splits = split_dataset(images.labels, images.class_names, PRODUCT.split, args.seed, images.root)
        ft = argparse.Namespace(epochs=args.patch_epochs, lr=3e-3, seed=args.seed)
        model, spec, _ = _fine_tune(ft, runtime, images, splits)
    model.eval()
    target = images.class_names.index(class_name)
    _patch_flag(model, spec, images, splits, target, runtime)
    others = [i for i in np.flatnonzero(splits == "test") if images.labels[i] != target]
    stamped = np.stack([np.asarray(with_patch(Image.fromarray(images.pixels[i]), 0.12)) for i in others])
    probs = run_model(model, spec, stamped, runtime, batch_size=runtime.eval_batch_size, progress=False).probs
    flips = probs.argmax(axis=1) == target
    flipped = stamped[flips][: args.patch_images]
    print(
        f"\n== planted patch on '{class_name}' ({args.patch_data.name}): flips {int(flips.sum())} of {len(others)} "
        f"unpatched test images; the first {len(flipped)} scored =="
    )
    if not len(flipped):
        return
    patch = (flipped[..., 0] > 200) & (flipped[..., 1] < 60) & (flipped[..., 2] > 200)  # the magenta square
    requests = [(k, target) for k in range(len(flipped))]
    for method in args.methods.split(","):
        n = SLOW.get(method, len(flipped))
        maps = compute_cams(
            model,
            spec,
            flipped[:n],
            requests[:n],
            runtime,
            batch_size=runtime.cam_batch_size,
            method=method,
            progress=False,
        ).maps
        mass = (maps * patch[:n]).sum(axis=(1, 2)) / np.maximum(maps.sum(axis=(1, 2)), 1e-9)
        area = patch.mean()
        print(f"{method:11s} mass on the patch {mass.mean():.3f} ± {_se(mass):.3f} ({n} images; area {area:.3f})")


def _patch_flag(model, spec, images, splits: np.ndarray, target: int, runtime) -> None:
    """The shortcut check as a run calls it (position, then measured reliance) on the patched model."""
    from reportgen.analysis.explanation import measure_reliance
    from reportgen.analysis.shortcuts import find_shortcuts
    from reportgen.narrative.audit import reliance_reason

    test = np.flatnonzero(splits == "test")
    probs = run_model(model, spec, images.pixels[test], runtime, batch_size=runtime.eval_batch_size, progress=False)
    predicted = probs.probs.argmax(axis=1)
    correct = [(int(i), int(images.labels[i])) for i, p in zip(test, predicted, strict=True) if p == images.labels[i]]
    cams = compute_cams(model, spec, images.pixels, correct, runtime, batch_size=runtime.cam_batch_size, progress=False)
    maps = [
        np.stack([cams.get(i, k) for i, k in correct if k == c] or [np.zeros((spec.image_size,) * 2)])
        for c in range(len(images.class_names))
    ]
    position = find_shortcuts(maps)
    reliance = {
        ev.class_idx: measure_reliance(
            model,
            spec,
            images.pixels,
            [i for i, k in correct if k == ev.class_idx],
            ev.class_idx,
            maps[ev.class_idx],
            runtime,
            batch_size=runtime.eval_batch_size,
        )
        for ev in position.classes
        if ev.flags
    }
    result = find_shortcuts(maps, reliance=reliance)
    for ev in result.classes:
        if ev.flags:
            kind = "FLAGGED" if ev.class_idx in result.flagged else "worth a look"
            print(f"shortcut check: {images.class_names[ev.class_idx]} {kind}: {reliance_reason(ev.reliance)}")
    flagged = [images.class_names[c] for c in result.flagged]
    print(f"shortcut check: flagged {flagged}, planted {images.class_names[target]}")


if __name__ == "__main__":
    main()
