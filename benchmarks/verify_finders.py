"""Check the data-defect finders on real photos with planted defects whose truth is known; print the figures.

Each check works on its own temporary copy of a shared data set (never inside the repository):

* labels     — ``--noise`` of the images moved into a wrong class folder; precision and recall of
               ``label_issues`` as a run computes them (the features stage's pretrained embeddings,
               K-fold logistic regression, the noise model), plus label-only redraws on the same embeddings.
* duplicates — exact byte copies (some into another class folder) and resized / re-encoded / cropped
               copies, each copy put in a different split from its source; precision and recall of
               ``duplicates`` and of its leakage and across-class classification.
* health     — planted dark, bright, flat, grayscale, tiny and panorama images among the real ones.
* calibration— synthetic scores with known calibration, then the real fine-tuned model's test scores.
* shortcuts  — a coloured square stamped at a fixed spot on every image of one class (``stamp``), or on
               one half of a class moved to its own folder so that only the patch separates the two
               (``split``), or nothing (``control``); a short fine-tune, Grad-CAM of the correctly
               classified test images, then ``shortcuts``, grouped and called as a run does. How much the
               model relies on the patch is measured directly: the share of other classes' test images the
               patch alone flips.

Usage::

    .venv/bin/python benchmarks/verify_finders.py                 # food101-pss, all checks (~10 min on 2 cores)
    .venv/bin/python benchmarks/verify_finders.py --skip-shortcuts
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import PRODUCT, SHARED, jpeg_bytes, label_probs, load_features, stamp_file, with_patch
from PIL import Image, ImageOps

from reportgen.analysis.calibration import calibration_verdict, compute_calibration
from reportgen.analysis.cams import compute_cams
from reportgen.analysis.duplicates import find_duplicates
from reportgen.analysis.explanation import measure_reliance
from reportgen.analysis.health import check_health
from reportgen.analysis.label_issues import find_label_issues
from reportgen.analysis.shortcuts import find_shortcuts
from reportgen.config import RECIPES
from reportgen.data.dataset import LoadedImages, decode_image, load_images, scan_dataset
from reportgen.data.splits import split_dataset
from reportgen.model.backbones import ModelSpec, build_model
from reportgen.model.predict import run_model
from reportgen.model.predictions import Predictions, maps_by_class
from reportgen.model.runtime import Runtime, resolve_runtime
from reportgen.model.train import train_model
from reportgen.narrative.audit import calibration_text, reliance_reason, shortcut_reason


def main() -> None:
    args = _parser().parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    runtime = resolve_runtime(args.device)
    print(f"data: {args.data}  device: {runtime.describe()}  seed: {args.seed}")
    with tempfile.TemporaryDirectory(prefix="verify-finders-") as tmp:
        work = Path(tmp)
        if not args.skip_labels:
            check_labels(args, runtime, work / "labels")
        if not args.skip_duplicates:
            images = check_duplicates(args, runtime, work / "duplicates")
            check_health_planted(images, work / "health")
        check_calibration_synthetic()
        if not args.skip_shortcuts:
            for mode in args.shortcut_modes.split(","):
                check_shortcuts(args, runtime, work / f"shortcut-{mode}", mode)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "food101-pss", help="folder-per-class photo set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.05, help="fraction of images moved to a wrong class")
    parser.add_argument("--redraws", type=int, default=10, help="label-only noise redraws on the same embeddings")
    parser.add_argument("--epochs", type=int, default=6, help="fine-tuning epochs of the shortcut check")
    parser.add_argument(
        "--lr",
        type=float,
        default=3e-3,
        help="fine-tuning learning rate of the shortcut check (the head learns 10x faster); "
        "at the example's 3e-4 the model hardly learns the patch in 10 epochs on food101-pss",
    )
    parser.add_argument("--patch-class", type=int, default=1, help="class index that gets the patch")
    parser.add_argument("--patch-size", type=float, default=0.12, help="patch side, fraction of the shorter side")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--save-maps", type=Path, help="folder to save each shortcut run's Grad-CAM maps in")
    parser.add_argument(
        "--shortcut-modes",
        default="stamp,split,control",
        help="comma-separated: stamp (patch one class), split (patch half of a class, "
        "moved to its own folder), control (no patch)",
    )
    for name in ("labels", "duplicates", "shortcuts"):
        parser.add_argument(f"--skip-{name}", action="store_true")
    return parser


# ---------------------------------------------------------------------------------------------- helpers
def _copy_set(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".*"))


def _load(root: Path) -> LoadedImages:
    return load_images(scan_dataset(root), 224, progress=False)


def _load_with_features(root: Path, runtime: Runtime) -> tuple[LoadedImages, np.ndarray, float]:
    """The images, their pretrained features (the run's features stage) and that stage's seconds."""
    images, features, seconds = load_features(scan_dataset(root), runtime)
    return images, features.embeddings, seconds


def _pr(found: set, truth: set) -> tuple[float, float]:
    hit = len(found & truth)
    return (hit / len(found) if found else 1.0), (hit / len(truth) if truth else 1.0)


# ----------------------------------------------------------------------------------------------- labels
def check_labels(args: argparse.Namespace, runtime: Runtime, root: Path) -> None:
    print(f"\n== label errors: {args.noise:.0%} of the images moved to a wrong class folder ==")
    _copy_set(args.data, root)
    original = _load(root)
    rng = np.random.default_rng(args.seed)
    n, k = len(original.labels), len(original.class_names)
    moved = rng.choice(n, int(round(args.noise * n)), replace=False)
    truth_paths: dict[str, int] = {}  # new relative path -> the class it came from
    for i in moved:
        wrong = (original.labels[i] + rng.integers(1, k)) % k
        src = root / original.rel_paths[i]
        dst = root / original.class_names[wrong] / src.name
        src.rename(dst)
        truth_paths[dst.relative_to(root).as_posix()] = int(original.labels[i])
    images, emb, embed_s = _load_with_features(root, runtime)
    truth = {i for i, p in enumerate(images.rel_paths) if p in truth_paths}
    start = time.perf_counter()
    probs = label_probs(emb, images.labels, num_classes=k, seed=args.seed)
    cv_s = time.perf_counter() - start
    start = time.perf_counter()
    issues = find_label_issues(images.labels, probs)
    cl_s = time.perf_counter() - start
    clean_labels = np.array([truth_paths.get(p, y) for p, y in zip(images.rel_paths, images.labels, strict=True)])
    before = _flag_set(emb, clean_labels, k, args.seed)
    found = {s.image_idx for s in issues.suspects}
    precision, recall = _pr(found, truth)
    adjusted = _pr(found - (before - truth), truth)[0]
    print(f"images {n}, moved {len(truth)}, flagged {len(found)}; flagged with the original labels: {len(before)}")
    print(
        f"precision {precision:.3f}  recall {recall:.3f}  "
        f"precision not counting the {len(before)} pre-existing suspects {adjusted:.3f}"
    )
    print(
        f"estimated noise rate {issues.noise_rate:.3f} (planted {len(truth) / n:.3f}); "
        f"out-of-sample accuracy vs given labels {issues.probs_accuracy:.3f}"
    )
    print(f"time: embeddings {embed_s:.1f} s, cross_val_probs {cv_s:.1f} s, find_label_issues {cl_s:.2f} s")
    _label_redraws(emb, clean_labels, before, k, args)
    # a variant a run does not compute: the calibration of the label check's out-of-sample probabilities
    cal = compute_calibration(probs, images.labels, seed=PRODUCT.seed)
    print(f"calibration of the out-of-sample probabilities: {calibration_text(cal, calibration_verdict(cal))}")


def _flag_set(emb: np.ndarray, labels: np.ndarray, k: int, seed: int) -> set[int]:
    probs = label_probs(emb, labels, num_classes=k, seed=seed)
    return {s.image_idx for s in find_label_issues(labels, probs).suspects}


def _label_redraws(emb: np.ndarray, clean: np.ndarray, before: set[int], k: int, args: argparse.Namespace) -> None:
    rows = []
    for draw in range(args.redraws):
        rng = np.random.default_rng(1000 + draw)
        flip = rng.choice(len(clean), int(round(args.noise * len(clean))), replace=False)
        noisy = clean.copy()
        noisy[flip] = (clean[flip] + rng.integers(1, k, len(flip))) % k
        found = {s.image_idx for s in find_label_issues(noisy, label_probs(emb, noisy, num_classes=k)).suspects}
        truth = set(flip.tolist())
        precision, recall = _pr(found, truth)
        rows.append((precision, _pr(found - (before - truth), truth)[0], recall))
    r = np.array(rows)
    print(
        f"{args.redraws} label-only redraws: precision mean {r[:, 0].mean():.3f} (min {r[:, 0].min():.3f}), "
        f"not counting pre-existing {r[:, 1].mean():.3f}, recall mean {r[:, 2].mean():.3f} (min {r[:, 2].min():.3f})"
    )


# ------------------------------------------------------------------------------------------- duplicates
def _halved(img: Image.Image) -> Image.Image:
    return img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)


_VARIANTS = {
    "half-size q85": lambda img: jpeg_bytes(_halved(img), 85),
    "re-encoded q60": lambda img: jpeg_bytes(img, 60),
    "crop 4% q90": lambda img: jpeg_bytes(ImageOps.crop(img, border=int(0.04 * min(img.size))), 90),
}


def check_duplicates(args: argparse.Namespace, runtime: Runtime, root: Path) -> LoadedImages:
    print("\n== duplicates: exact and altered copies, each in a different split from its source ==")
    _copy_set(args.data, root)
    base = _load(root)
    rng = np.random.default_rng(args.seed + 1)
    sources = rng.choice(len(base.labels), 24, replace=False)
    plan = _plant_copies(base, root, sources, rng)
    images, emb, embed_s = _load_with_features(root, runtime)
    index = {p: i for i, p in enumerate(images.rel_paths)}
    splits = split_dataset(images.labels, images.class_names, PRODUCT.split, args.seed, images.root)
    truth = {}
    for src, copy, kind in plan:
        a, b = index[src], index[copy]
        splits[b] = "test" if splits[a] != "test" else "train"  # the copy straddles the split
        truth[(min(a, b), max(a, b))] = kind
    start = time.perf_counter()
    hashes = [info.sha256 for info in images.infos]
    dups = find_duplicates(hashes, images.labels, emb, splits, threshold=PRODUCT.near_duplicate_threshold)
    find_s = time.perf_counter() - start
    _report_duplicates(dups, truth, images)
    print(f"time: find_duplicates {find_s:.2f} s on {len(images.labels)} images (embeddings {embed_s:.1f} s)")
    _duplicate_scaling()
    return images


def _plant_copies(base: LoadedImages, root: Path, sources: np.ndarray, rng: np.random.Generator) -> list:
    plan = []
    kinds = ["exact"] * 8 + ["exact-other-class"] * 4 + [v for v in _VARIANTS for _ in range(4)]
    for n, (i, kind) in enumerate(zip(sources, kinds, strict=True)):
        src = root / base.rel_paths[i]
        folder = src.parent
        if kind == "exact-other-class":
            other = (base.labels[i] + rng.integers(1, len(base.class_names))) % len(base.class_names)
            folder = root / base.class_names[other]
        data = src.read_bytes() if kind.startswith("exact") else _VARIANTS[kind](Image.open(src))
        dst = folder / f"zz-copy{n:02d}-{src.stem}.jpg"
        dst.write_bytes(data)
        plan.append((base.rel_paths[i], dst.relative_to(root).as_posix(), kind))
    return plan


def _report_duplicates(dups, truth: dict, images: LoadedImages) -> None:
    listed = {(p.idx_a, p.idx_b): p for p in dups.pairs}
    assert not dups.truncated
    for kind in ("exact", "near"):
        found = {k for k, p in listed.items() if p.kind == kind}
        want = {k for k, v in truth.items() if v.startswith("exact") == (kind == "exact")}
        precision, recall = _pr(found, want)
        print(
            f"{kind:5s} pairs: found {len(found)}, planted {len(want)}, precision {precision:.3f}, recall {recall:.3f}"
        )
    for variant in _VARIANTS:
        want = {k for k, v in truth.items() if v == variant}
        sims = [listed[k].similarity for k in want if k in listed]
        print(f"   {variant:15s} caught {len(sims)}/{len(want)}")
    leak_found = {k for k, p in listed.items() if p.leaks}
    across_found = {k for k, p in listed.items() if p.across_classes}
    across_want = {k for k, v in truth.items() if v == "exact-other-class"}
    print(
        f"leaking pairs: found {len(leak_found)} ({dups.leaks_by_splits}), precision/recall "
        f"{_pr(leak_found, set(truth))}; across classes: precision/recall {_pr(across_found, across_want)}"
    )
    missed = sorted(set(truth) - set(listed))
    if missed:
        print("missed:", [(images.rel_paths[b], truth[(a, b)]) for a, b in missed])


def _duplicate_scaling() -> None:
    """Time on random vectors, with a threshold that only the planted pairs reach (not the run's)."""
    rng = np.random.default_rng(0)
    emb = rng.random((10_000, 1280), dtype=np.float32)
    emb[5000:5010] = emb[:10] + 0.01
    start = time.perf_counter()
    dups = find_duplicates([str(i) for i in range(10_000)], np.zeros(10_000, int), emb, threshold=0.9999)
    print(
        f"scaling: 10,000 random 1280-d embeddings in {time.perf_counter() - start:.1f} s "
        f"({dups.n_near_pairs} planted pairs found of 10)"
    )


# ----------------------------------------------------------------------------------------------- health
def check_health_planted(images: LoadedImages, root: Path) -> None:
    print("\n== image health: planted bad images among the real ones ==")
    photo = Image.open(images.root / images.rel_paths[0]).convert("RGB")
    planted = {
        "dark": jpeg_bytes(Image.eval(photo, lambda v: int(v * 0.12)), 90),
        "bright": jpeg_bytes(Image.eval(photo, lambda v: int(235 + v * 0.08)), 90),
        "low_contrast": jpeg_bytes(Image.eval(photo, lambda v: int(120 + v * 0.06)), 90),
        "grayscale": jpeg_bytes(ImageOps.grayscale(photo).convert("RGB"), 85),
        "small": jpeg_bytes(photo.resize((48, 40)), 90),
        "aspect": jpeg_bytes(photo.resize((600, 180)), 90),
    }
    gray_l = io.BytesIO()
    ImageOps.grayscale(photo).save(gray_l, "JPEG")
    planted["grayscale (mode L)"] = gray_l.getvalue()
    infos = list(images.infos) + [decode_image(data, 224)[1] for data in planted.values()]
    labels = np.concatenate([images.labels, np.zeros(len(planted), int)])
    start = time.perf_counter()
    health = check_health(infos, labels, len(images.class_names))
    seconds = time.perf_counter() - start
    n_real = len(images.infos)
    flagged_real = [i for i in health.issues if i.image_idx < n_real]
    for k, name in enumerate(planted):
        issue = next((i for i in health.issues if i.image_idx == n_real + k), None)
        print(f"   planted {name:18s} -> {issue.reasons if issue else 'NOT FLAGGED'}")
    print(f"real images flagged: {len(flagged_real)} of {n_real}; time {seconds * 1000:.1f} ms")


# ------------------------------------------------------------------------------------------ calibration
def check_calibration_synthetic() -> None:
    print("\n== calibration: synthetic scores with known calibration (2,000 images, 3 classes) ==")
    rng = np.random.default_rng(0)
    for name, truth_prob in (
        ("calibrated", lambda c: c),
        ("over-confident", lambda c: c - 0.15),
        ("under-confident", lambda c: np.minimum(1.0, c + 0.15)),
    ):
        conf = rng.uniform(0.5, 1.0, 2000)  # the top score, so at least 1/2 of the mass
        right = rng.random(2000) < truth_prob(conf)
        labels = rng.integers(0, 3, 2000)
        predicted = np.where(right, labels, (labels + rng.integers(1, 3, 2000)) % 3)
        probs = np.full((2000, 3), 0.0)
        probs[np.arange(2000), predicted] = conf
        probs[np.arange(2000), (predicted + 1) % 3] = 1 - conf
        cal = compute_calibration(probs, labels, seed=PRODUCT.seed)
        verdict = calibration_verdict(cal)
        print(f"   truth {name:15s} -> ECE {cal.ece:.3f}, verdict {verdict.direction}")


# -------------------------------------------------------------------------------------------- shortcuts
def _patch_flip_rate(model, spec, images: LoadedImages, test: np.ndarray, runtime: Runtime, args, target: int) -> float:
    """Share of the other classes' test images that the patch alone turns into class ``target``."""
    others = test[images.labels[test] != target]
    stamped = np.stack([np.asarray(with_patch(Image.fromarray(images.pixels[i]), args.patch_size)) for i in others])
    probs = run_model(model, spec, stamped, runtime, batch_size=runtime.eval_batch_size, progress=False).probs
    return float((probs.argmax(axis=1) == target).mean())


_MODES = {
    "stamp": "every image of class '{0}' gets the patch",
    "split": "class '{0}' is split in two folders by file order; every image of '{0}-patched' gets the patch, "
    "so only the patch tells the two apart",
    "control": "no patch (control)",
}


def _plant_patch(root: Path, class_name: str, mode: str, size: float) -> str | None:
    """Modify the copy for ``mode``; return the name of the class folder that carries the patch."""
    folder = root / class_name
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if mode == "control":
        return None
    if mode == "split":
        patched = root / f"{class_name}-patched"
        patched.mkdir()
        files = [f.rename(patched / f.name) for f in files[::2]]
        folder = patched
    for path in files:
        stamp_file(path, size)
    return folder.name


def check_shortcuts(args: argparse.Namespace, runtime: Runtime, root: Path, mode: str) -> None:
    _copy_set(args.data, root)
    class_name = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))[args.patch_class]
    print(
        f"\n== shortcuts ({mode}): {_MODES[mode].format(class_name)}; magenta square of "
        f"{args.patch_size:.0%} of the shorter side near the top-left; "
        f"{args.epochs}-epoch fine-tune, lr {args.lr:g} =="
    )
    patched = _plant_patch(root, class_name, mode, args.patch_size)
    images = _load(root)
    target = images.class_names.index(patched or class_name)
    splits = split_dataset(images.labels, images.class_names, PRODUCT.split, args.seed, images.root)
    model, spec, train_s = _fine_tune(args, runtime, images, splits)
    test = np.flatnonzero(splits == "test")
    tested = _test_predictions(model, spec, images, test, runtime)
    correct = tested.correct_test_images()
    start = time.perf_counter()
    # as a run does: each correctly classified test image explained for its class, the maps grouped by class
    cams = compute_cams(
        model, spec, images.pixels[test], correct, runtime, batch_size=runtime.cam_batch_size, progress=False
    )
    cam_s = time.perf_counter() - start
    maps = maps_by_class(cams, tested)
    if args.save_maps:
        args.save_maps.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            args.save_maps / f"maps-{mode}.npz",
            class_names=np.array(images.class_names),
            **{f"class{c}": m for c, m in enumerate(maps)},
        )
    start = time.perf_counter()
    position = find_shortcuts(maps)
    reliance = {}  # as a run does: the reliance of each class whose evidence sits apart, measured with the model
    for ev in position.classes:
        if ev.flags:
            c = ev.class_idx
            indices = [test[i] for i, k in correct if k == c]
            reliance[c] = measure_reliance(
                model, spec, images.pixels, indices, c, maps[c], runtime, batch_size=runtime.eval_batch_size
            )
    result = find_shortcuts(maps, reliance=reliance)
    find_s = time.perf_counter() - start
    print(
        f"test accuracy {len(correct) / len(test):.3f}; train {train_s:.0f} s, Grad-CAM {cam_s:.0f} s, "
        f"find_shortcuts {find_s:.3f} s"
    )
    flip = _patch_flip_rate(model, spec, images, test, runtime, args, target)
    print(
        f"the patch alone turns {flip:.0%} of the other classes' test images into "
        f"'{images.class_names[target]}' (how much the model relies on it)"
    )
    _print_evidence(result, images.class_names)
    expected = {target} if patched else set()
    look = sorted(result.worth_a_look)
    print(f"flagged classes {sorted(result.flagged)} (worth a look {look}), planted {sorted(expected)}")
    cal = compute_calibration(tested.probs, tested.labels, seed=args.seed)  # as run_checks calls it
    print(f"calibration of the fine-tuned model on the test split: {calibration_text(cal, calibration_verdict(cal))}")


def _fine_tune(
    args: argparse.Namespace, runtime: Runtime, images: LoadedImages, splits: np.ndarray
) -> tuple[torch.nn.Module, ModelSpec, float]:
    """The run's training stage on a variant recipe: ``--recipe example`` with ``--epochs`` and ``--lr``.

    A run's default recipe starts from the linear probe and keeps the best epoch; this check wants a model
    that learns the patch, so it trains a new random head at a higher learning rate.
    """
    torch.manual_seed(args.seed)  # the new head's initial weights
    model, spec = build_model(PRODUCT.model, len(images.class_names), PRODUCT.weights)
    recipe = dataclasses.replace(RECIPES["example"], epochs=args.epochs, learning_rate=args.lr)
    start = time.perf_counter()
    train_model(
        model,
        spec,
        images.pixels,
        images.labels,
        train_idx=np.flatnonzero(splits == "train"),
        val_idx=np.flatnonzero(splits == "val"),
        config=recipe,
        runtime=runtime,
        seed=args.seed,
        eval_batch_size=runtime.eval_batch_size,
        progress=False,
    )
    return model, spec, time.perf_counter() - start


def _test_predictions(
    model: torch.nn.Module, spec: ModelSpec, images: LoadedImages, test: np.ndarray, runtime: Runtime
) -> Predictions:
    """The predict stage's scores of the test split, as Predictions of those images only (indices into ``test``)."""
    probs = run_model(
        model, spec, images.pixels[test], runtime, batch_size=runtime.eval_batch_size, progress=False
    ).probs
    rel_paths = tuple(images.rel_paths[i] for i in test)
    return Predictions(images.class_names, rel_paths, images.labels[test], np.full(len(test), "test"), probs)


def _print_evidence(result, class_names: tuple[str, ...]) -> None:
    for ev in result.classes:
        print(
            f"   {class_names[ev.class_idx]:14s} n={ev.n_maps:3d} consistency {ev.consistency:.2f} "
            f"peak spread {ev.peak_spread:.2f} region {ev.region} ({ev.region_share:.2f}) "
            f"centroid ({ev.centroid[0]:.2f}, {ev.centroid[1]:.2f}) offset {ev.centre_offset:.2f} "
            f"border {ev.border_share:.2f} concentration {ev.concentration:.2f}"
        )
        for flag in ev.flags:
            print(f"      FLAG {flag.code}: {shortcut_reason(flag, result.thresholds)}")
        if ev.flags:
            kind = "FLAGGED" if ev.class_idx in result.flagged else "worth a look"
            print(f"      {kind}: {reliance_reason(ev.reliance)}")


if __name__ == "__main__":
    main()
