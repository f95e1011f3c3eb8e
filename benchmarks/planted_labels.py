"""Plant label flips and off-topic photos in the pretrained features of real photo sets; score the review tiers.

For each set, three draws: 5 % of the labels flipped at random to another class, then the label check as
``run_checks`` runs it (:func:`cross_val_probs` with the run's folds and seed, :func:`find_label_issues`);
and, apart, 2 % of the set added as photos of another domain (clothing-mini among food, food101-pss among
clothing) filed under random classes, then :func:`find_outliers` as ``run_checks`` calls it. Printed:
precision and recall of the "likely wrong" and "worth a look" tiers ("excl. real": images that the check
also lists with no flips planted are real errors, not false alarms), the "belongs to no class?" tier's catch
and size, the clean sets' likely-wrong lists, the timings, and with ``--compare`` cleanlab's sizing choices
on the same probabilities.

Features are the pipeline's (its features stage: EfficientNet-Lite0, ImageNet, before fine-tuning), cached
in the temp folder.

Usage::

    .venv/bin/python benchmarks/planted_labels.py             # ~4 min on 2 cores the first time, then ~30 s
    .venv/bin/python benchmarks/planted_labels.py --compare
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import SHARED, label_probs, load_features

from reportgen.analysis.label_issues import find_label_issues
from reportgen.analysis.outliers import find_outliers
from reportgen.data.dataset import scan_dataset

SETS = ("food9-64px", "clothing-mini", "food101-pss")
GUESTS = {"food9-64px": "clothing-mini", "clothing-mini": "food101-pss", "food101-pss": "clothing-mini"}
DRAWS = (0, 1, 2)


def main() -> None:
    args = _parser().parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    rows = []
    for name in args.sets:
        x, y, paths = _features(args.data / name)
        clean = _clean_run(name, x, y, paths)
        rows.extend(_label_runs(name, x, y, clean, compare=args.compare))
        guest_x, _, _ = _features(args.data / GUESTS[name])
        rows.extend(_outlier_runs(name, x, y, guest_x))
    _print_table(rows)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--compare", action="store_true", help="also score cleanlab's sizing choices")
    return parser


def _features(root: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Pretrained Lite0 embeddings, labels and paths of a set, cached by folder name and image count."""
    scan = scan_dataset(root)
    cache = Path(tempfile.gettempdir()) / f"reportgen-bench-{root.name}-{len(scan.records)}.npz"
    if cache.exists():
        saved = np.load(cache)
        return saved["x"], saved["y"], tuple(str(p) for p in saved["paths"])
    from reportgen.model.runtime import resolve_runtime

    images, features, _ = load_features(scan, resolve_runtime("cpu"))
    x = features.embeddings
    np.savez(cache, x=x, y=images.labels, paths=np.array(images.rel_paths))
    return x, images.labels, images.rel_paths


def _clean_run(name: str, x: np.ndarray, y: np.ndarray, paths: tuple[str, ...]) -> set[int]:
    start = time.perf_counter()
    probs = label_probs(x, y, num_classes=_num_classes(y))
    middle = time.perf_counter()
    issues = find_label_issues(y, probs)
    end = time.perf_counter()
    listed = [s.image_idx for s in issues.suspects]
    print(f"{name}, no flips: likely wrong {len(listed)}: {[paths[i] for i in listed]}")
    print(f"  probabilities {middle - start:.2f} s, noise model and tiers {end - middle:.2f} s")
    return set(listed)


def _num_classes(labels: np.ndarray) -> int:
    return int(labels.max()) + 1  # every class of these sets has images


def _flip(labels: np.ndarray, draw: int) -> tuple[np.ndarray, set[int]]:
    rng = np.random.default_rng(1000 + draw)
    n_classes = _num_classes(labels)
    idx = rng.choice(len(labels), round(0.05 * len(labels)), replace=False)
    noisy = labels.copy()
    noisy[idx] = (labels[idx] + rng.integers(1, n_classes, len(idx))) % n_classes
    return noisy, set(idx.tolist())


def _label_runs(name: str, x: np.ndarray, y: np.ndarray, real: set[int], *, compare: bool) -> list[dict]:
    rows = []
    for draw in DRAWS:
        noisy, truth = _flip(y, draw)
        probs = label_probs(x, noisy, num_classes=_num_classes(y))
        issues = find_label_issues(noisy, probs)
        tiers = {"likely wrong": issues.suspects, "worth a look": issues.worth_a_look}
        for tier, suspects in tiers.items():
            rows.append(_scored(name, tier, {s.image_idx for s in suspects}, truth, real))
        if compare:
            rows.extend(_cleanlab_rows(name, noisy, probs, truth, real))
    return rows


def _cleanlab_rows(name: str, labels: np.ndarray, probs: np.ndarray, truth: set[int], real: set[int]) -> list[dict]:
    """Variants the product does not run: cleanlab's own ways to size the list, on the same probabilities."""
    from cleanlab.count import num_label_issues
    from cleanlab.filter import find_label_issues as cleanlab_find
    from cleanlab.rank import get_label_quality_scores

    from reportgen.analysis.label_issues import fit_noise_model

    rows = []
    for calibrated, p in (
        ("", probs),
        ("noise-model T + ", fit_noise_model(labels, probs, min_noise_rate=0.0).calibrated),
    ):
        for rule in ("both", "confident_learning", "prune_by_noise_rate"):
            found = set(np.flatnonzero(cleanlab_find(labels, p, filter_by=rule, n_jobs=1)).tolist())
            rows.append(_scored(name, f"{calibrated}cleanlab {rule}", found, truth, real))
        order = np.argsort(get_label_quality_scores(labels, p), kind="stable")
        for method in ("off_diagonal", "off_diagonal_calibrated"):
            n = num_label_issues(labels, p, estimation_method=method)
            rows.append(_scored(name, f"{calibrated}num_label_issues {method}", set(order[:n].tolist()), truth, real))
    return rows


def _outlier_runs(name: str, x: np.ndarray, y: np.ndarray, guest_x: np.ndarray) -> list[dict]:
    rows = []
    n_planted = max(1, round(0.02 * len(y)))
    for draw in DRAWS:
        rng = np.random.default_rng(draw)
        picked = rng.choice(len(guest_x), n_planted, replace=False)
        xs = np.vstack([x, guest_x[picked]])
        ys = np.concatenate([y, rng.integers(0, _num_classes(y), n_planted)])
        start = time.perf_counter()
        found = {o.image_idx for o in find_outliers(xs, ys, num_classes=_num_classes(y)).outliers}
        seconds = time.perf_counter() - start
        planted = set(range(len(y), len(ys)))
        rows.append({**_scored(name, "belongs to no class?", found, planted, set()), "seconds": seconds})
    return rows


def _scored(name: str, tier: str, found: set[int], truth: set[int], real: set[int]) -> dict:
    hits = len(found & truth)
    false = len(found - truth)
    false_excl_real = len(found - truth - real)
    return {
        "set": name,
        "tier": tier,
        "listed": len(found),
        "precision": hits / len(found) if found else float("nan"),
        "precision_excl_real": hits / (hits + false_excl_real) if hits + false_excl_real else float("nan"),
        "recall": hits / len(truth),
        "false": false,
    }


def _print_table(rows: list[dict]) -> None:
    keys = list(dict.fromkeys((r["set"], r["tier"]) for r in rows))
    print(f"\n{'set':14s} {'tier':42s} {'listed':>6s} {'precision':>9s} {'excl. real':>10s} {'recall':>6s}")
    for name, tier in keys:
        runs = [r for r in rows if (r["set"], r["tier"]) == (name, tier)]
        mean = {k: float(np.nanmean([r[k] for r in runs])) for k in ("listed", "precision", "precision_excl_real")}
        recall = float(np.mean([r["recall"] for r in runs]))
        print(
            f"{name:14s} {tier:42s} {mean['listed']:6.1f} {mean['precision']:9.2f} "
            f"{mean['precision_excl_real']:10.2f} {recall:6.2f}"
        )
    print("means of three draws; 'belongs to no class?': recall = planted photos listed, precision = planted share")


if __name__ == "__main__":
    main()
