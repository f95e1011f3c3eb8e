"""Time and score the data-set map's methods (PCA, t-SNE) on real photos' features and on synthetic clusters.

For each set, each method lays out every image ("all") and, where the set is larger than a run's
``MAX_POINTS``, the class-stratified sample a run draws ("run"). Quality is measured on the points of each
map (at most ``--score-points`` of them, the same sample for every method of a set):

* k-NN agreement: the share of each point's 10 nearest neighbours in the map that have its class
  (the same figure in the features' own cosine geometry is printed as the set's ceiling);
* trustworthiness (sklearn.manifold, 10 neighbours): 1 when the map's neighbourhoods hold no image that is
  not also near in the features.

Synthetic sets: 20 classes of Gaussian clusters in a 32-d latent space, mapped linearly to 1280-d and
noised, so the classes overlap as real features' do.

Usage::

    .venv/bin/python benchmarks/embedding_map.py                    # both photo sets, 5,000 and 20,000 synthetic
    .venv/bin/python benchmarks/embedding_map.py --synthetic 5000 --no-photos
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
from _common import SHARED, load_features, synthetic_clusters

from reportgen.analysis.embedding_map import MAX_POINTS, METHODS, embed_2d, stratified_sample
from reportgen.data.dataset import scan_dataset
from reportgen.model.runtime import resolve_runtime

NEIGHBOURS = 10


def main() -> None:
    """Print one table row per (set, method, points)."""
    args = _parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    import sklearn.manifold  # noqa: F401  (imported once per run, like the label check's scikit-learn: not timed)

    print(f"{platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    print("| set | images | method | points | seconds | CPU s | k-NN agreement | trustworthiness |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, features, labels in _sets(args):
        score_idx = stratified_sample(labels, args.score_points, seed=1)
        ceiling = _knn_agreement(_normalised(features[score_idx]), labels[score_idx])
        print(f"| {name} | {len(labels):,} | features (cosine) | {len(score_idx):,} | | | {ceiling:.3f} | |")
        for method in METHODS:
            for points in sorted({len(labels), MAX_POINTS} & set(range(1, len(labels) + 1)), reverse=True):
                if method == "tsne" and points > args.max_tsne:
                    continue
                _row(name, features, labels, method, points, args.score_points)


def _row(name: str, x: np.ndarray, y: np.ndarray, method: str, points: int, score_points: int) -> None:
    from sklearn.manifold import trustworthiness

    start, cpu = time.perf_counter(), time.process_time()
    m = embed_2d(x, y, method=method, max_points=points, seed=0)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    scored = stratified_sample(m.labels, score_points, seed=1)  # positions on the map; all of a full small set
    coords, labels, feats = m.coords[scored], m.labels[scored], _normalised(x[m.indices[scored]])
    agreement = _knn_agreement(coords, labels)
    trust = trustworthiness(feats, coords, n_neighbors=NEIGHBOURS)
    cells = (name, f"{len(y):,}", method, f"{len(m.indices):,}", f"{seconds:.1f}", f"{cpu:.1f}")
    print("| " + " | ".join(cells) + f" | {agreement:.3f} | {trust:.3f} |", flush=True)


def _knn_agreement(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean share of each point's ``NEIGHBOURS`` nearest others (Euclidean) that have its label."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(points)
    _, idx = nn.kneighbors(points)
    return float((labels[idx[:, 1:]] == labels[:, None]).mean())


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _sets(args: argparse.Namespace):
    if not args.no_photos:
        runtime = resolve_runtime("auto", "auto")
        for name in ("food9-64px", "food101-pss"):
            if not (SHARED / name).is_dir():
                print(f"({name}: not found under {SHARED}, skipped)")
                continue
            cached = args.cache / f"{name}.npz" if args.cache else None
            if cached and cached.exists():
                with np.load(cached) as saved:
                    yield name, saved["emb"], saved["labels"]
                continue
            images, features, _ = load_features(scan_dataset(SHARED / name), runtime)
            if cached:
                np.savez(cached, emb=features.embeddings, labels=images.labels)
            yield name, features.embeddings, images.labels
    for n in args.synthetic:
        x, y = synthetic_clusters(n, seed=0)
        yield f"synthetic {n:,}", x, y


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, nargs="*", default=[5000, 20000], help="synthetic set sizes")
    parser.add_argument("--no-photos", action="store_true", help="skip the shared photo sets")
    parser.add_argument("--max-tsne", type=int, default=20000, help="largest map t-SNE lays out")
    parser.add_argument("--cache", type=Path, help="folder keeping the photo sets' features between runs")
    parser.add_argument("--score-points", type=int, default=2000, help="points scored per map")
    return parser


if __name__ == "__main__":
    main()
