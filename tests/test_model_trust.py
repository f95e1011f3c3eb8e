"""The model check on real photos with the real pretrained default: it must catch a broken model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, subset
from torch import nn

from reportgen.analysis.metrics import split_accuracy
from reportgen.analysis.model_check import UNSOUND, check_model, references
from reportgen.cli import main, recipe_config
from reportgen.config import DEFAULT_MODEL, RECIPES, SplitConfig
from reportgen.data.dataset import load_images, scan_dataset
from reportgen.data.splits import split_dataset
from reportgen.model.backbones import build_model
from reportgen.model.predict import run_model
from reportgen.model.probe import fit_linear_probe
from reportgen.model.runtime import resolve_runtime
from reportgen.model.train import train_model


def test_recipe_gives_the_defaults_and_every_given_option_overrides_it() -> None:
    assert recipe_config({"recipe": "example"}) == RECIPES["example"]
    assert recipe_config({}) == RECIPES["default"]
    example = recipe_config({"recipe": "example", "learning_rate": 0.3, "scale_range": (0.8, 1.2), "flip": False})
    assert example.learning_rate == 0.3 and example.head_init == "random" and example.batchnorm == "train"
    assert (example.augment.scale_min, example.augment.scale_max, example.augment.flip) == (0.8, 1.2, False)
    default = recipe_config({"recipe": "default", "epochs": 2, "keep": "last", "padding": "zeros"})
    assert default.epochs == 2 and default.keep == "last" and default.augment.padding == "zeros"
    assert default.head_init == "probe" and default.learning_rate == RECIPES["default"].learning_rate


@pytest.mark.e2e
def test_collapse_detector_fires_on_corrupted_batchnorm_statistics(tmp_path: Path) -> None:
    data = subset(EXAMPLE, tmp_path / "clothing", per_class=10)
    scan = scan_dataset(data)
    model, spec = build_model(DEFAULT_MODEL, len(scan.class_names), normalised_head=True)
    images = load_images(scan, spec.image_size, progress=False)
    splits = split_dataset(images.labels, images.class_names, SplitConfig(), 0, images.root)
    runtime = resolve_runtime("cpu", "auto")
    features = run_model(model, spec, images.pixels, runtime, batch_size=32, embeddings=True, progress=False).embeddings
    train_idx, val_idx = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "val")
    probe = fit_linear_probe(features[train_idx], images.labels[train_idx], num_classes=len(scan.class_names), seed=0)
    config = dataclasses.replace(RECIPES["default"], epochs=1)
    history = train_model(
        model,
        spec,
        images.pixels,
        images.labels,
        train_idx=train_idx,
        val_idx=val_idx,
        config=config,
        runtime=runtime,
        seed=0,
        eval_batch_size=32,
        probe=probe,
        progress=False,
    )

    def check():
        predicted = run_model(model, spec, images.pixels, runtime, batch_size=32, progress=False).probs.argmax(1)
        probe_ref, majority = references(
            labels=images.labels, splits=splits, class_names=scan.class_names, probe_probs=probe.probs(features)
        )
        return check_model(
            val_accuracy=split_accuracy(images.labels, predicted, splits, "val"),
            test_accuracy=split_accuracy(images.labels, predicted, splits, "test"),
            probe=probe_ref,
            majority=majority,
            history=history,
        )

    sound = check()
    assert sound.verdict != UNSOUND and not any(p.kind == "collapse" for p in sound.problems)
    for layer in model.modules():  # the running statistics of a model trained on shifted black-bordered batches
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.running_mean.add_(2.0)
            layer.running_var.mul_(0.05)
    broken = check()
    assert broken.verdict == UNSOUND
    assert "collapse" in {p.kind for p in broken.problems}


@pytest.mark.e2e
def test_a_broken_model_is_called_unsound_on_page_one(tmp_path: Path) -> None:
    data = subset(EXAMPLE, tmp_path / "clothing", per_class=10)
    out = tmp_path / "out"
    args = ["--recipe", "example", "--lr", "0.3", "--epochs", "2", "--no-cam", "--no-pdf", "-q"]
    result = CliRunner().invoke(
        main, ["run", str(data), "--out", str(out), *args, "--fail-over", "model_unsound=0"], catch_exceptions=False
    )
    assert result.exit_code == 1, result.output  # the report is written, the model gate fails
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["config"]["recipe"] == "example"
    assert results["run"]["config"]["train"]["learning_rate"] == 0.3
    assert results["run"]["config"]["train"]["head_init"] == "random"
    assert results["model_check"]["verdict"] == "unsound"
    html = (out / "report.html").read_text()
    summary = html[html.index('id="summary"') : html.index('id="dataset"')]
    assert "Model: unsound." in summary and "Do not read the galleries as facts about the data" in summary
    assert "These galleries describe an unsound model" in html
