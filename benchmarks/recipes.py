"""Compare training recipes over data sets and seeds: test accuracy and training seconds.

For each data set and seed (the seed drives the split, the augmentation and the training, as in a run):

* ``probe`` — logistic regression (C = 10) on L2-normalised pretrained features, fitted on the training
  split only: the run's own stages (:func:`reportgen.model.features.pretrained_features`,
  :func:`reportgen.model.features.fit_probe`), the model check's reference and the default recipe's starting head;
* each recipe asked for (``--recipes``): the pipeline's own ``train_model`` on the same split, from the same
  probe (:func:`reportgen.model.features.usable_recipe`), seeded and built as a run builds its model.

Usage::

    .venv/bin/python benchmarks/recipes.py                         # 3 sets x seeds 0-2, ~25 min on 2 cores
    .venv/bin/python benchmarks/recipes.py --sets food9-64px --seeds 0 1 2 3 4 --recipes default
    .venv/bin/python benchmarks/recipes.py --sets food9-64px --seeds 0 --set learning_rate=3e-3 --set epochs=3

``--set FIELD=VALUE`` overrides a field of the default recipe (``augment.padding=zeros`` for a nested one),
to try a change before making it the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import PRODUCT, REPO_EXAMPLE, SHARED, load_features

from reportgen.config import RECIPES, TrainConfig
from reportgen.data.dataset import scan_dataset
from reportgen.data.splits import split_dataset
from reportgen.model.backbones import build_model
from reportgen.model.features import fit_probe, usable_recipe
from reportgen.model.predict import run_model
from reportgen.model.runtime import resolve_runtime, seed_everything
from reportgen.model.train import train_model


def main() -> None:
    args = _parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    runtime = resolve_runtime("auto", "auto")
    if args.threads:
        torch.set_num_threads(args.threads)
    recipes = {name: RECIPES[name] for name in args.recipes}
    if args.set:
        recipes["default"] = _override(recipes.get("default", RECIPES["default"]), args.set)
    rows = []
    for name in args.sets:
        rows += _bench_set(_data_dir(name), args.seeds, recipes, runtime)
    _print_table(rows, list(recipes))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["clothing-mini", "food101-pss", "food9-64px"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--recipes", nargs="+", default=["example", "default"], choices=sorted(RECIPES))
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: one per core)")
    return parser


def _data_dir(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir() and name == "clothing-mini":
        path = REPO_EXAMPLE
    if not path.is_dir():
        raise SystemExit(f"data set {name!r} not found under {SHARED}")
    return path


def _override(config: TrainConfig, settings: list[str]) -> TrainConfig:
    for setting in settings:
        key, _, text = setting.partition("=")
        value = json.loads(text) if text[:1] in "-0123456789[tf" else text
        if key.startswith("augment."):
            config = dataclasses.replace(config, augment=dataclasses.replace(config.augment, **{key[8:]: value}))
        else:
            config = dataclasses.replace(config, **{key: value})
    return config


def _bench_set(data: Path, seeds: list[int], recipes: dict[str, TrainConfig], runtime: Any) -> list[dict[str, Any]]:
    images, features, feature_seconds = load_features(scan_dataset(data), runtime)
    num_classes = len(images.class_names)
    rows = []
    for seed in seeds:
        splits = split_dataset(images.labels, images.class_names, PRODUCT.split, seed, images.root)
        train, val, test = (np.flatnonzero(splits == s) for s in ("train", "val", "test"))
        row: dict[str, Any] = {"set": data.name, "seed": seed, "features_s": round(feature_seconds, 1)}
        probe = fit_probe(features, images.labels, train, num_classes=num_classes, seed=seed)
        row["probe"] = _accuracy(probe.probs(features.embeddings[test]).argmax(1), images.labels[test])
        for name, config in recipes.items():
            seed_everything(seed)
            model, spec = build_model(
                PRODUCT.model, num_classes, PRODUCT.weights, normalised_head=config.head_init == "probe"
            )
            start = time.perf_counter()
            history = train_model(
                model,
                spec,
                images.pixels,
                images.labels,
                train_idx=train,
                val_idx=val,
                config=usable_recipe(config, probe),
                runtime=runtime,
                seed=seed,
                probe=probe,
                eval_batch_size=runtime.eval_batch_size,
                progress=False,
            )
            seconds = time.perf_counter() - start
            # the predict stage's scores, of the test split only: the figures need no others
            probs = run_model(
                model, spec, images.pixels[test], runtime, batch_size=runtime.eval_batch_size, progress=False
            ).probs
            row[name] = _accuracy(probs.argmax(1), images.labels[test])
            row[f"{name}_s"] = round(seconds, 1)
            row[f"{name}_kept"] = history.kept
            row[f"{name}_val"] = [e.val_accuracy for e in history.epochs]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    return round(float((predicted == labels).mean()), 3)


def _print_table(rows: list[dict[str, Any]], recipes: list[str]) -> None:
    columns = ["probe", *recipes]
    print(
        f"\n{'set':<14} {'seed':>4} "
        + " ".join(f"{c:>8}" for c in columns)
        + " "
        + " ".join(f"{r + ' s':>10}" for r in recipes)
    )
    for row in rows:
        print(
            f"{row['set']:<14} {row['seed']:>4} "
            + " ".join(f"{row[c]:>8.3f}" for c in columns)
            + " "
            + " ".join(f"{row[f'{r}_s']:>10.1f}" for r in recipes)
        )
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == name]
        means = " ".join(f"{np.mean([r[c] for r in mine]):>8.3f}" for c in columns)
        secs = " ".join(f"{np.mean([r[f'{c}_s'] for r in mine]):>10.1f}" for c in recipes)
        print(f"{name:<14} {'mean':>4} {means} {secs}")


if __name__ == "__main__":
    main()
