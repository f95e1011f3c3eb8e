"""The layouts a data set comes in: split folders, manifests beside flat or class folders, and their metadata."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from _layout_data import ANNOTATORS, flat_copy, split_folder_copy, write_manifest
from conftest import EXAMPLE, make_dataset

from reportgen.config import SplitConfig
from reportgen.data.dataset import LoadedImages, load_images
from reportgen.data.layouts import read_dataset
from reportgen.data.metadata import CATEGORY, DATE, NUMBER, typed_column
from reportgen.data.splits import choose_split
from reportgen.errors import DataError

SIZE = 16
CLASSES = ("blue", "green", "red")


def load(root: Path, **options: object) -> LoadedImages:
    return load_images(read_dataset(root, **options), SIZE, progress=False)  # type: ignore[arg-type]


def split_counts(splits: np.ndarray) -> dict[str, int]:
    return {s: int((splits == s).sum()) for s in ("train", "val", "test")}


def test_train_and_test_folders_never_become_classes(tmp_path: Path) -> None:
    # the layout trap: a 3-class set as train/<class>/ and test/<class>/ was audited as two classes "train", "test"
    src = make_dataset(tmp_path / "src", per_class=5)
    given = split_folder_copy(src, tmp_path / "data", folders={"train": "train", "test": "test"})
    images = load(tmp_path / "data")
    assert images.class_names == CLASSES
    choice = choose_split(images, SplitConfig(), seed=0)
    counts = split_counts(choice.splits)
    assert choice.source == "folders" and choice.val_carved
    assert counts["test"] == given["test"] == 3  # the test folder, exactly
    assert counts["train"] + counts["val"] == given["train"] and counts["val"] == 3  # one per class carved
    test_paths = {p for p, s in zip(images.rel_paths, choice.splits, strict=True) if s == "test"}
    assert all(p.startswith("test/") for p in test_paths) and len(test_paths) == 3


def test_split_folders_are_the_split_as_given(tmp_path: Path) -> None:
    given = split_folder_copy(EXAMPLE, tmp_path / "data")
    images = load(tmp_path / "data")
    assert images.class_names == ("dress", "hat", "pants", "shoes", "t-shirt")
    assert images.source.split_folders == ("train", "validation", "test")
    choice = choose_split(images, SplitConfig(), seed=0)
    assert split_counts(choice.splits) == given and not choice.val_carved
    for path, split in zip(images.rel_paths, choice.splits, strict=True):
        assert path.split("/")[0] == {"val": "validation"}.get(split, split)


def test_split_random_re_splits_and_given_fails_without_a_split(tmp_path: Path) -> None:
    split_folder_copy(make_dataset(tmp_path / "src", per_class=10), tmp_path / "data")
    images = load(tmp_path / "data")
    random = choose_split(images, SplitConfig(source="random"), seed=0)
    assert random.source == "random" and split_counts(random.splits) == {"train": 18, "val": 6, "test": 6}
    assert list(random.splits) != list(images.given_splits)
    plain = load(tmp_path / "src")
    assert choose_split(plain, SplitConfig(), seed=0).source == "random"
    with pytest.raises(DataError, match="--split given: .* has no train/ test/ folders"):
        choose_split(plain, SplitConfig(source="given"), seed=0)


def test_split_folders_beside_other_folders_are_an_error_naming_them(tmp_path: Path) -> None:
    split_folder_copy(make_dataset(tmp_path / "src", per_class=5), tmp_path / "data")
    (tmp_path / "data" / "extras" / "x").mkdir(parents=True)
    with pytest.raises(
        DataError, match=r"mixes split folders \(test/, train/, validation/\) with other folders \(extras/\)"
    ):
        read_dataset(tmp_path / "data")


def test_a_class_with_no_training_image_is_an_error(tmp_path: Path) -> None:
    split_folder_copy(make_dataset(tmp_path / "src", per_class=5), tmp_path / "data")
    for image in (tmp_path / "data" / "train" / "red").iterdir():
        image.unlink()
    with pytest.raises(DataError, match=r"no training image in train/: red$"):
        read_dataset(tmp_path / "data")


def test_an_empty_split_folder_is_an_error(tmp_path: Path) -> None:
    split_folder_copy(make_dataset(tmp_path / "src", per_class=5), tmp_path / "data")
    for image in (tmp_path / "data" / "validation").rglob("*.png"):
        image.unlink()
    with pytest.raises(DataError, match=r"split folder '.*validation' holds no images"):
        read_dataset(tmp_path / "data")


def test_a_class_with_no_test_image_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    split_folder_copy(make_dataset(tmp_path / "src", per_class=5), tmp_path / "data")
    for image in (tmp_path / "data" / "test" / "green").iterdir():
        image.unlink()
    with caplog.at_level(logging.WARNING):
        choice = choose_split(load(tmp_path / "data"), SplitConfig(), seed=0)
    assert choice.classes_without_test == ("green",)
    assert "no image of: green" in caplog.text


def test_flat_folder_and_manifest_give_the_same_classes_and_split_as_the_folders(tmp_path: Path) -> None:
    split_folder_copy(EXAMPLE, tmp_path / "split")
    rows = flat_copy(EXAMPLE, tmp_path / "flat")
    by_folders, by_manifest = load(tmp_path / "split"), load(tmp_path / "flat")
    assert by_manifest.class_names == by_folders.class_names
    assert by_manifest.source.layout == "manifest" and by_manifest.source.split_source == "manifest"
    assert by_manifest.source.manifest_columns == ("file_name", "label", "split", "annotator")
    name = {Path(p).name: s for p, s in zip(by_folders.rel_paths, by_folders.given_splits, strict=True)}
    assert {Path(p).name: s for p, s in zip(by_manifest.rel_paths, by_manifest.given_splits, strict=True)} == name
    annotator = by_manifest.metadata.column("annotator")
    assert annotator is not None and annotator.kind == CATEGORY and set(annotator.values) == set(ANNOTATORS)
    row_of = {r["file_name"]: r for r in rows}
    assert all(row_of[p]["annotator"] == a for p, a in zip(by_manifest.rel_paths, annotator.values, strict=True))


@pytest.mark.parametrize("kind", ["tsv", "jsonl"])
def test_tsv_and_json_lines_manifests_read_like_the_csv(tmp_path: Path, kind: str) -> None:
    rows = flat_copy(EXAMPLE, tmp_path / "flat")
    (tmp_path / "flat" / "metadata.csv").rename(tmp_path / "metadata.csv")
    path = tmp_path / f"labels.{kind}"
    if kind == "tsv":
        write_manifest(path, rows, delimiter="\t")
    else:
        path.write_text("".join(json.dumps({**r, "score": i / 2}) + "\n" for i, r in enumerate(rows)), "utf-8")
    csv_read = load(tmp_path / "flat", labels=tmp_path / "metadata.csv")
    other = load(tmp_path / "flat", labels=path)
    assert other.rel_paths == csv_read.rel_paths and other.given_splits == csv_read.given_splits
    assert other.metadata.column("annotator") == csv_read.metadata.column("annotator")
    if kind == "jsonl":
        assert other.metadata.column("score").kind == NUMBER  # type: ignore[union-attr]


def test_metadata_csv_beside_class_folders_adds_metadata_and_lists_disagreeing_labels(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "data", per_class=3)
    rows = [
        {"file_name": "red/img_00.png", "label": "red", "camera": "x100", "taken": "2024-05-01"},
        {"file_name": "red/img_01.png", "label": "blue", "camera": "x200", "taken": "2024-05-02T10:30:00"},
        {"file_name": "green/img_00.png", "label": "green", "camera": "", "taken": ""},
        {"file_name": "red/gone.png", "label": "red", "camera": "x1", "taken": "2024-01-01"},
    ]
    write_manifest(root / "metadata.csv", rows)
    images = load(root)
    assert images.class_names == CLASSES and images.source.layout == "class-folders"
    assert images.source.split_source == ""  # no split column: the split is made at random
    (disagreement,) = images.source.label_disagreements
    assert (disagreement.rel_path, disagreement.folder_label, disagreement.manifest_label) == (
        "red/img_01.png",
        "red",
        "blue",
    )
    assert disagreement.line == 3
    camera, taken = images.metadata.columns
    assert (camera.kind, taken.kind) == (CATEGORY, DATE)
    values = dict(zip(images.rel_paths, camera.values, strict=True))
    assert (
        values["red/img_01.png"] == "x200" and values["green/img_00.png"] is None and values["blue/img_00.png"] is None
    )
    (skipped,) = images.skipped
    assert (skipped.rel_path, skipped.reason, skipped.line) == ("red/gone.png", "file not found", 5)


def test_sub_folders_of_class_folders_become_a_metadata_column(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "data", per_class=3)
    (root / "red" / "studio").mkdir()
    (root / "red" / "img_00.png").rename(root / "red" / "studio" / "img_00.png")
    images = load(root)
    (column,) = images.metadata.columns
    assert column.name == "subfolder" and column.kind == CATEGORY
    assert dict(zip(images.rel_paths, column.values, strict=True))["red/studio/img_00.png"] == "studio"
    assert sum(v is None for v in column.values) == 8
    assert not load(make_dataset(tmp_path / "plain", per_class=3)).metadata.columns  # no sub-folder: no column


def test_metadata_kinds_are_inferred() -> None:
    assert typed_column("n", ["1", " 2.5", "", None]).values == (1.0, 2.5, None, None)
    assert typed_column("n", ["1", "2"]).kind == NUMBER
    assert typed_column("d", ["2024-01-31", "2024-02-01 08:00", ""]).kind == DATE
    assert typed_column("d", ["2024-02-30"]).kind == CATEGORY  # not a date
    assert typed_column("c", ["1", "x"]).kind == CATEGORY
    assert typed_column("c", [True, None, 3]).values == ("true", None, "3")
    assert typed_column("n", ["nan", "1"]).kind == CATEGORY  # not a finite number


def test_a_copy_of_a_training_image_in_the_given_test_folder_is_a_leak(tmp_path: Path) -> None:
    import shutil

    from reportgen.analysis.duplicates import find_duplicates

    split_folder_copy(make_dataset(tmp_path / "src", per_class=5), tmp_path / "data")
    shutil.copy(tmp_path / "data" / "train" / "red" / "img_00.png", tmp_path / "data" / "test" / "red" / "copy.png")
    images = load(tmp_path / "data")
    choice = choose_split(images, SplitConfig(), seed=0)
    hashes = [info.sha256 for info in images.infos]
    found = find_duplicates(hashes, images.labels, None, choice.splits, threshold=0.9)
    (pair,) = found.pairs
    names = {images.rel_paths[pair.idx_a], images.rel_paths[pair.idx_b]}
    assert names == {"train/red/img_00.png", "test/red/copy.png"}
    assert pair.leaks and found.leaks_by_splits == {"train-test": 1}


def test_a_flat_folder_without_a_manifest_says_what_is_missing(tmp_path: Path) -> None:
    make_dataset(tmp_path / "data", per_class=2)
    for image in list((tmp_path / "data").rglob("*.png")):
        image.rename(tmp_path / "data" / f"{image.parent.name}-{image.name}")
    for folder in CLASSES:
        (tmp_path / "data" / folder).rmdir()
    with pytest.raises(DataError, match=r"holds images but no class folders: add a metadata\.csv"):
        read_dataset(tmp_path / "data")
    root = make_dataset(tmp_path / "classes", per_class=2)
    (root / "green" / "img_00.png").rename(root / "stray.png")  # beside class folders: ignored, as before
    assert len(read_dataset(root).records) == 5


def test_labels_option_over_split_folders_keeps_the_folders_split(tmp_path: Path) -> None:
    given = split_folder_copy(make_dataset(tmp_path / "src", per_class=5), tmp_path / "data")
    paths = sorted(p.relative_to(tmp_path / "data").as_posix() for p in (tmp_path / "data").rglob("*.png"))
    rows = [{"path": p, "class": "warm" if "/red/" in p else "cool"} for p in paths]  # relabelled by the manifest
    images = load(tmp_path / "data", labels=write_manifest(tmp_path / "labels.csv", rows))
    assert images.class_names == ("cool", "warm") and images.source.layout == "manifest"
    choice = choose_split(images, SplitConfig(), seed=0)
    assert choice.source == "folders" and split_counts(choice.splits) == given
