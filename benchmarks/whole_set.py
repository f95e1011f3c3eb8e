"""Time the whole-set checks on synthetic embeddings of 5,000 to 100,000 images, each way, with planted defects.

The embeddings stand in for a run's pretrained features: 101 classes (as Food-101) of Gaussian clusters in a
64-d latent space, lifted to 1280-d, noised and ReLU'd (``_common.synthetic_clusters``; distinct images reach
a cosine of about 0.67, a nearest-centroid rule is right 83 % of the time). Planted, on disjoint images:

* near copies: 0.5 % of the images replaced by a copy of another at cosine 0.91-0.995, same label;
* flipped labels: 5 % of the labels moved to another class at random;
* off-domain images: 0.2 % replaced by features of another domain (clusters lifted to 1280-d another way),
  filed under random classes.

Each check runs as ``run_checks`` calls it, the way the product picks at that size and the other way up
to ``--other-up-to`` images: near copies (``find_duplicates``: exact blocked products or the faiss index),
the label check (``cross_val_probs`` with the run's folds and seed, then ``find_label_issues``: the probe
on the full features or on their principal axes) and the outlier scores (``find_outliers``). Printed per
size and way: seconds and the share of the planted defects found ("prec.": share of the listed images
that were planted), so faster is not bought with misses.

Numpy, sklearn and faiss use ``--threads`` (default: every core, as a run uses them). No torch.

Usage::

    .venv/bin/python benchmarks/whole_set.py                           # 5k-100k; ~15 min on 2 cores
    .venv/bin/python benchmarks/whole_set.py --sizes 5000 20000 --other-up-to 20000
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import faiss  # noqa: F401  (loaded before threadpool_limits, so that its OpenMP pool is limited too)
import numpy as np
from _common import PRODUCT, synthetic_clusters
from threadpoolctl import threadpool_limits

from reportgen.analysis.duplicates import find_duplicates
from reportgen.analysis.label_issues import REDUCE_FROM, cross_val_probs, find_label_issues
from reportgen.analysis.neighbours import INDEX_FROM
from reportgen.analysis.outliers import find_outliers

CLASSES = 101
NEVER = 1 << 62  # a size threshold no set reaches


def main() -> None:
    args = _parser().parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, {args.threads} threads; {CLASSES} classes, 1280-d")
    print("| images | check | way | product's way | seconds | found | prec. |")
    print("| ---: | --- | --- | --- | ---: | ---: | ---: |")
    with threadpool_limits(limits=args.threads):
        for n in args.sizes:
            x, y, planted = _planted_set(n, seed=args.seed)
            for way, index_from in (("exact", NEVER), ("faiss index", 0)):
                product = _product_way(n, index_from, INDEX_FROM)
                if product or n <= args.other_up_to:
                    _row(n, "near copies", way, product, _near(x, y, planted, index_from))
            for way, reduce_from in (("full probe", NEVER), ("256 principal axes", 0)):
                product = _product_way(n, reduce_from, REDUCE_FROM)
                if product or n <= args.other_up_to:
                    _row(n, "label check", way, product, _labels(x, y, planted, reduce_from))
            _row(n, "outliers", "class centroids", True, _outliers(x, y, planted))


def _product_way(n: int, forced_from: int, product_from: int) -> bool:
    """Whether the way forced by ``forced_from`` (0: large-set way, NEVER: small-set way) is the product's at ``n``."""
    return (n >= product_from) == (forced_from == 0)


def _planted_set(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Synthetic features and given labels with near copies, flips and off-domain images planted (docstring)."""
    x, y = synthetic_clusters(n, classes=CLASSES, latent=64, spread=0.5, seed=seed)
    rng = np.random.default_rng(seed + 1)
    n_copies, n_flips, n_odd = n // 200, n // 20, n // 500
    chosen = rng.permutation(n)[: 2 * n_copies + n_flips + n_odd]
    sources, copies = chosen[:n_copies], chosen[n_copies : 2 * n_copies]
    flips, odd = chosen[2 * n_copies : 2 * n_copies + n_flips], chosen[2 * n_copies + n_flips :]
    x[copies] = _copies_of(x[sources], rng)
    y[copies] = y[sources]
    x[odd], _ = synthetic_clusters(n_odd, classes=5, latent=64, spread=0.5, seed=seed + 2)  # another lift
    given = y.copy()
    given[flips] = (y[flips] + rng.integers(1, CLASSES, n_flips)) % CLASSES
    given[odd] = rng.integers(0, CLASSES, n_odd)
    pairs = {(min(a, b), max(a, b)) for a, b in zip(sources.tolist(), copies.tolist(), strict=True)}
    return x, given, {"pairs": pairs, "flips": set(flips.tolist()), "odd": set(odd.tolist())}


def _copies_of(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows at a cosine of 0.91-0.995 to ``x``'s, of the same norms."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    away = rng.normal(size=x.shape)
    away -= (away * unit).sum(axis=1, keepdims=True) * unit
    away /= np.linalg.norm(away, axis=1, keepdims=True)
    cos = rng.uniform(0.91, 0.995, (len(x), 1))
    return ((cos * unit + np.sqrt(1 - cos**2) * away) * np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _timed(run: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def _near(x: np.ndarray, y: np.ndarray, planted: dict, index_from: int) -> tuple[float, float, float]:
    hashes = [f"{i:064x}" for i in range(len(y))]  # no exact copies: every file differs
    threshold = PRODUCT.near_duplicate_threshold
    dups, seconds = _timed(lambda: find_duplicates(hashes, y, x, None, threshold=threshold, index_from=index_from))
    grouped = {(g[0], g[1]) for g in dups.groups if len(g) == 2}  # planted copies are disjoint pairs
    found = len(grouped & planted["pairs"])
    return seconds, found / len(planted["pairs"]), found / max(dups.n_near_pairs, 1)


def _labels(x: np.ndarray, y: np.ndarray, planted: dict, reduce_from: int) -> tuple[float, float, float]:
    def check() -> object:
        oos = cross_val_probs(
            x, y, num_classes=CLASSES, folds=PRODUCT.label_folds, seed=PRODUCT.seed, reduce_from=reduce_from
        )
        return find_label_issues(y, oos)

    issues, seconds = _timed(check)
    listed = {s.image_idx for s in issues.suspects}
    found = len(listed & planted["flips"])
    return seconds, found / len(planted["flips"]), found / max(len(listed), 1)


def _outliers(x: np.ndarray, y: np.ndarray, planted: dict) -> tuple[float, float, float]:
    result, seconds = _timed(lambda: find_outliers(x, y, num_classes=CLASSES))
    listed = {o.image_idx for o in result.outliers}
    found = len(listed & planted["odd"])
    return seconds, found / len(planted["odd"]), found / max(len(listed), 1)


def _row(n: int, check: str, way: str, product: bool, scores: tuple[float, float, float]) -> None:
    seconds, recall, precision = scores
    mark = "yes" if product else ""
    print(f"| {n:,} | {check} | {way} | {mark} | {seconds:.1f} | {recall:.3f} | {precision:.3f} |", flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 50000, 100000])
    parser.add_argument("--other-up-to", type=int, default=50000, help="largest set also timed the other way")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="default: every core")
    parser.add_argument("--seed", type=int, default=0)
    return parser


if __name__ == "__main__":
    main()
