"""End to end on real photos: a pre-split 10-class data set, and the same photos as a flat folder and a manifest."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from _layout_data import ANNOTATORS, flat_copy, link, split_folder_copy
from click.testing import CliRunner
from conftest import shared_data
from PIL import Image

from reportgen.cli import main

PER_CLASS = 25  # images per class: 15 train, 5 validation, 5 test
FAST = ["--no-cam", "--no-pdf", "-q", "--epochs", "1", "--label-folds", "2"]


def ten_classes(dst: Path) -> Path:
    """food9-64px's 9 classes and food101-pss's steak, shrunk to 64 px like them: ``PER_CLASS`` photos each."""
    food9, food101 = shared_data("food9-64px"), shared_data("food101-pss")
    for class_dir in sorted(p for p in food9.iterdir() if p.is_dir()):
        for image in sorted(class_dir.iterdir())[:PER_CLASS]:
            link(image, dst / class_dir.name / f"{class_dir.name}-{image.name}")
    (dst / "steak").mkdir(parents=True)
    for image in sorted((food101 / "steak").iterdir())[:PER_CLASS]:
        with Image.open(image) as photo:
            photo.convert("RGB").resize((64, 64)).save(dst / "steak" / f"steak-{image.stem}.jpg", quality=90)
    return dst


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def run(data: Path, out: Path, *extra: str) -> dict:
    result = CliRunner().invoke(main, ["run", str(data), "--out", str(out), *FAST, *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((out / "results.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def food(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("food")
    src = ten_classes(root / "classes")
    split_folder_copy(src, root / "split")
    flat_copy(src, root / "flat")
    return root


@pytest.fixture(scope="module")
def split_run(food: Path) -> tuple[Path, dict]:
    out = food / "out-split"
    return out, run(food / "split", out, "--split", "given")


@pytest.mark.e2e
def test_pre_split_ten_classes_are_audited_with_the_split_as_given(
    food: Path, split_run: tuple[Path, dict], tmp_path: Path
) -> None:
    out, results = split_run
    dataset = results["dataset"]
    assert len(dataset["class_names"]) == 10 and "train" not in dataset["class_names"]
    assert dataset["split_source"] == "folders" and dataset["split_folders"] == ["train", "validation", "test"]
    folder_counts = {
        split: sum(1 for _ in (food / "split" / folder).rglob("*.jpg"))
        for split, folder in (("train", "train"), ("val", "validation"), ("test", "test"))
    }
    assert {s: sum(c.values()) for s, c in dataset["split_counts"].items()} == folder_counts
    predictions = rows(out / "predictions.csv")
    test = [r for r in predictions if r["split"] == "test"]
    assert {r["path"] for r in test} == {
        p.relative_to(food / "split").as_posix() for p in (food / "split" / "test").rglob("*.jpg")
    }
    correct = sum(r["true_label"] == r["predicted_label"] for r in test)
    assert sum(m["support"] for m in results["metrics"]["per_class"]) == len(test) == 50
    assert results["metrics"]["accuracy"] == pytest.approx(correct / len(test))
    assert "Split as given by the folders train/, validation/, test/: 150 / 50 / 50 images" in dataset["split_sentence"]
    again = run(
        food / "split",
        tmp_path / "again",
        *("--checkpoint", str(out / "model.pt"), "--baseline", str(out)),
        *("--fail-under", "accuracy=0.0"),
    )  # a checkpoint, a baseline (by content hash) and a gate work with the given split
    assert again["dataset"]["split_counts"] == dataset["split_counts"] and again["training"] is None
    changes = again["changes"]["dataset"]
    assert changes["by_content"] and changes["images_added"] == changes["images_removed"] == 0
    assert again["gates"][0]["passed"]


@pytest.mark.e2e
def test_the_same_photos_as_a_flat_folder_and_metadata_csv_give_the_same_split(
    food: Path, split_run: tuple[Path, dict], tmp_path: Path
) -> None:
    by_folders = split_run[1]
    by_manifest = run(food / "flat", tmp_path / "manifest")
    assert by_manifest["dataset"]["class_names"] == by_folders["dataset"]["class_names"]
    assert by_manifest["dataset"]["split_source"] == "manifest"
    assert by_manifest["dataset"]["manifest_columns"] == ["file_name", "label", "split", "annotator"]
    split_of = {Path(i["rel_path"]).name: i["split"] for i in by_folders["images"]}
    assert {Path(i["rel_path"]).name: i["split"] for i in by_manifest["images"]} == split_of
    assert {i["metadata"]["annotator"] for i in by_manifest["images"]} == set(ANNOTATORS)
    for table in ("predictions.csv", "suspects.csv"):
        with (tmp_path / "manifest" / table).open(encoding="utf-8") as f:
            assert "annotator" in next(csv.reader(f)), table
    listed = rows(tmp_path / "manifest" / "predictions.csv")
    annotator = {r["file_name"]: r["annotator"] for r in rows(food / "flat" / "metadata.csv")}
    assert all(r["annotator"] == annotator[r["path"]] for r in listed)
