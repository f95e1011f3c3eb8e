"""End-to-end runs of the ``reportgen`` command on real photos with the real pretrained default."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, SHARED_WEIGHTS, make_dataset, shared_data, subset

from reportgen.cli import main

FAST = ["--no-cam", "--no-pdf", "-q"]


def _run(*args: str) -> object:
    return CliRunner().invoke(main, ["run", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def clothing_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = subset(EXAMPLE, tmp_path_factory.mktemp("data") / "clothing", per_class=10)
    out = tmp_path_factory.mktemp("runs") / "out"
    result = _run(str(data), "--out", str(out), "--epochs", "2", "--bottom-k", "3", *FAST)
    assert result.exit_code == 0, result.output
    return data, out


def _scores(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


def test_run_writes_every_output(clothing_run: tuple[Path, Path]) -> None:
    _data, out = clothing_run
    assert {"model.pt", "results.json", "predictions.csv", "suspects.csv", "duplicates.csv"} <= {
        p.name for p in out.iterdir()
    }
    results = json.loads((out / "results.json").read_text())
    rows = _scores(out / "suspects.csv")
    likely = [r for r in rows[1:] if r[6].startswith("likely_wrong")]
    assert rows[0][:3] == ["path", "split", "given_label"]
    assert [r[0] for r in likely] == [
        results["images"][s["image_idx"]]["rel_path"] for s in results["audit"]["label_issues"]["suspects"]
    ]
    assert results["schema_version"] == 1
    assert results["dataset"]["class_names"] == ["dress", "hat", "pants", "shoes", "t-shirt"]
    assert results["dataset"]["split_counts"]["test"] == {c: 2 for c in results["dataset"]["class_names"]}
    assert [e["epoch"] for e in results["training"]] == [1, 2]
    assert set(results["run"]["timings"]) >= {"scan", "decode", "train", "predict"}
    assert results["run"]["seed"] == 0 and results["run"]["versions"]["torch"]
    assert results["model"]["arch"] == "efficientnet_lite0" and results["model"]["trained"] is True
    metrics = results["metrics"]
    assert len(metrics["confusion"]) == 5 and sum(map(sum, metrics["confusion"])) == 10
    for section in results["classes"]:
        # only 2 test images per class: one gallery shows both, once each
        assert len(section["top"]) == 2 and section["bottom"] == [] and section["complete"] is True
        assert all(img["true_class"] == section["class_name"] and img["split"] == "test" for img in section["top"])
        assert section["top"][0]["score"] >= section["top"][1]["score"]
    rows = _scores(out / "predictions.csv")
    assert rows[0][:4] == ["path", "split", "true_label", "predicted_label"] and len(rows) == 51
    assert {r[1] for r in rows[1:]} == {"train", "val", "test"}


def test_checkpoint_reproduces_predictions_without_training(clothing_run: tuple[Path, Path], tmp_path: Path) -> None:
    data, out = clothing_run
    again = tmp_path / "again"
    result = _run(str(data), "--out", str(again), "--checkpoint", str(out / "model.pt"), *FAST)
    assert result.exit_code == 0, result.output
    assert _scores(again / "predictions.csv") == _scores(out / "predictions.csv")
    results = json.loads((again / "results.json").read_text())
    assert results["training"] is None and results["model"]["trained"] is False
    assert "train" not in results["run"]["timings"]


def test_same_seed_same_numbers(clothing_run: tuple[Path, Path], tmp_path: Path) -> None:
    data, out = clothing_run
    result = _run(str(data), "--out", str(tmp_path / "b"), "--epochs", "2", "--bottom-k", "3", *FAST)
    assert result.exit_code == 0
    assert _scores(tmp_path / "b" / "predictions.csv") == _scores(out / "predictions.csv")


def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    make_dataset(tmp_path / "one", per_class=3, classes={"only": (1, 2, 3)})
    result = CliRunner().invoke(main, ["run", str(tmp_path / "one"), "--out", str(tmp_path / "o"), *FAST])
    assert result.exit_code == 2
    assert "at least two class folders" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_checkpoint_for_other_classes_is_refused(clothing_run: tuple[Path, Path], tmp_path: Path) -> None:
    _data, out = clothing_run
    other = make_dataset(tmp_path / "colours", per_class=3)
    result = CliRunner().invoke(
        main, ["run", str(other), "--out", str(tmp_path / "o"), "--checkpoint", str(out / "model.pt"), *FAST]
    )
    assert result.exit_code == 2 and "trained on classes" in result.output


def test_torchvision_model_with_local_weights_file(tmp_path: Path) -> None:
    weights = SHARED_WEIGHTS / "mobilenet_v2_imagenet.pth"
    if not weights.is_file():
        pytest.skip(f"{weights} is absent")
    data = subset(EXAMPLE, tmp_path / "clothing", per_class=5)
    out = tmp_path / "out"
    result = _run(
        str(data), "--out", str(out), "--model", "mobilenet_v2", "--weights", str(weights), "--epochs", "1", *FAST
    )
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["arch"] == "mobilenet_v2"
    assert results["model"]["weights_source"] == "local file mobilenet_v2_imagenet.pth"
    assert results["model"]["cam_layer"] == "features"


@pytest.mark.e2e
def test_real_food_photos_are_learned(tmp_path: Path) -> None:
    data = subset(shared_data("food101-pss"), tmp_path / "food", per_class=40)
    out = tmp_path / "out"
    result = _run(str(data), "--out", str(out), *FAST)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert (
        results["metrics"]["accuracy"] >= 0.75
    )  # pizza / steak / sushi, 72 training photos, default recipe; chance is 0.33


def test_label_check_by_fine_tuning_scores_every_image_out_of_sample(tmp_path: Path) -> None:
    data = subset(EXAMPLE, tmp_path / "clothing", per_class=5)
    out = tmp_path / "out"
    args = ["--epochs", "1", "--label-check", "finetune", "--label-folds", "2", *FAST]
    result = _run(str(data), "--out", str(out), *args)
    assert result.exit_code == 0, result.output
    check = json.loads((out / "results.json").read_text())["audit"]["label_issues"]
    assert check["method"] == "finetune" and check["folds"] == 2 and check["n_images"] == 25
    assert "fine-tuned model" in check["method_text"]


def test_audit_off_and_no_pretrained_weights_say_why_checks_did_not_run(tmp_path: Path) -> None:
    data = subset(EXAMPLE, tmp_path / "clothing", per_class=4)
    result = _run(str(data), "--out", str(tmp_path / "off"), "--epochs", "0", "--no-audit", *FAST)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "off" / "results.json").read_text())["audit"] is None
    result = _run(str(data), "--out", str(tmp_path / "none"), "--epochs", "0", "--weights", "none", *FAST)
    assert result.exit_code == 0, result.output
    audit = json.loads((tmp_path / "none" / "results.json").read_text())["audit"]
    assert audit["label_issues"] is None and "no pretrained weights" in audit["not_run"]["label_issues"]
    assert audit["duplicates"] is not None and "near_duplicates" in audit["not_run"]
