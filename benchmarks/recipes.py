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
    .venv/bin/python benchmarks/recipes.py --sets food9-64px --seeds 3 --variant fixed4 epochs=4 patience=0

``--variant NAME FIELD=VALUE ...`` adds a column: the default recipe with those fields changed
(``augment.padding=zeros`` for a nested one), to try a change before making it the default, or to set
today's recipe beside a new one.

Each recipe's columns: test accuracy; the model check's verdict with its problems (``unstable`` included,
though it is only a note); epochs run; training seconds; ``dip``, the most validation accuracy (points) any
epoch fell below the linear probe's, which the default recipe starts from.
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

from reportgen.analysis.metrics import split_accuracy
from reportgen.analysis.model_check import NOTE, check_model, references
from reportgen.config import RECIPES, TrainConfig
from reportgen.data.dataset import scan_dataset
from reportgen.data.splits import split_dataset
from reportgen.model.backbones import build_model
from reportgen.model.features import fit_probe, probe_validation, usable_recipe
from reportgen.model.history import TrainingHistory
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
    for name, *settings in args.variant:
        recipes[name] = _override(RECIPES["default"], settings)
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
    parser.add_argument("--recipes", nargs="*", default=["example", "default"], choices=sorted(RECIPES))
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        default=[],
        metavar="NAME FIELD=VALUE",
        help="a column: the default recipe with these fields changed (augment.padding=zeros for a nested one)",
    )
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
        probe_probs = probe.probs(features.embeddings)
        row["probe"] = _accuracy(probe_probs[test].argmax(1), images.labels[test])
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
                start=probe_validation(probe, features, images.labels, val) if config.head_init == "probe" else None,
            )
            seconds = time.perf_counter() - start
            # the predict stage's scores, of the validation and test splits: the model check needs both
            scored = np.concatenate([val, test])
            probs = run_model(
                model, spec, images.pixels[scored], runtime, batch_size=runtime.eval_batch_size, progress=False
            ).probs
            row.update(_recipe_row(name, probs, scored, splits, images, history, probe_probs, seconds))
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _recipe_row(
    name: str,
    probs: np.ndarray,
    scored: np.ndarray,
    splits: np.ndarray,
    images: Any,
    history: TrainingHistory,
    probe_probs: np.ndarray,
    seconds: float,
) -> dict[str, Any]:
    """One recipe's figures: test accuracy, the model check's verdict, epochs run, seconds, the largest dip."""
    predicted = np.full(len(images.labels), -1)
    predicted[scored] = probs.argmax(1)
    probe, majority = references(
        labels=images.labels, splits=splits, class_names=images.class_names, probe_probs=probe_probs
    )
    check = check_model(
        val_accuracy=split_accuracy(images.labels, predicted, splits, "val"),
        test_accuracy=split_accuracy(images.labels, predicted, splits, "test"),
        probe=probe,
        majority=majority,
        history=history,
    )
    accs = [e.val_accuracy for e in history.epochs if e.val_accuracy is not None]
    dip = max([0.0] + [probe.val_accuracy - a for a in accs]) if probe.val_accuracy is not None else 0.0
    problems = ",".join(p.kind for p in check.problems if p.severity != NOTE or p.kind == "unstable")
    return {
        name: round(float(check.test_accuracy), 3),
        f"{name}_s": round(seconds, 1),
        f"{name}_kept": history.kept,
        f"{name}_epochs": len(history.epochs),
        f"{name}_verdict": check.verdict + (f" ({problems})" if problems else ""),
        f"{name}_dip": round(100 * dip, 1),  # points of validation accuracy below the probe's, at worst
        f"{name}_val": [e.val_accuracy for e in history.epochs],
    }


def _accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    return round(float((predicted == labels).mean()), 3)


def _print_table(rows: list[dict[str, Any]], recipes: list[str]) -> None:
    """A markdown table: per set and seed, the probe, then each recipe's accuracy, verdict, epochs, seconds, dip."""
    head = ["set", "seed", "probe"]
    for r in recipes:
        head += [r, f"{r} verdict", f"{r} epochs", f"{r} s", f"{r} dip"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        cells = [row["set"], str(row["seed"]), f"{row['probe']:.3f}"]
        for r in recipes:
            cells += [f"{row[r]:.3f}", row[f"{r}_verdict"], str(row[f"{r}_epochs"]), f"{row[f'{r}_s']:.0f}"]
            cells += [f"{row[f'{r}_dip']:.1f}"]
        print("| " + " | ".join(cells) + " |")
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == name]
        cells = [name, "mean", f"{np.mean([r['probe'] for r in mine]):.3f}"]
        for r in recipes:
            sound = sum(row[f"{r}_verdict"] == "sound" for row in mine)
            cells += [f"{np.mean([row[r] for row in mine]):.3f}", f"{sound}/{len(mine)} sound"]
            cells += [f"{np.mean([row[f'{r}_epochs'] for row in mine]):.1f}"]
            cells += [f"{np.mean([row[f'{r}_s'] for row in mine]):.0f}", f"{max(row[f'{r}_dip'] for row in mine):.1f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
