"""Each generated bad input gives a clear one-line error, a skip with its reason, or a correct decode.

Fast: no training; the data, model and output stages are called directly on files from ``badinputs``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import badinputs as bad
import numpy as np
import pytest
from PIL import Image

from reportgen.config import SplitConfig
from reportgen.data.dataset import LoadedImages, load_images, scan_dataset
from reportgen.data.layouts import read_dataset
from reportgen.data.splits import split_dataset
from reportgen.errors import DataError, ModelError, OutputError, ReportgenError
from reportgen.model.backbones import build_model, load_checkpoint
from reportgen.render.output import staged_output, write_json

SIZE = 16


def assert_one_line(exc: pytest.ExceptionInfo[ReportgenError]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message and "\x1b" not in message and len(message) < 400, message
    return message


def dataset_with(root: Path, maker: Callable[[Path], object]) -> Path:
    """Two classes of three good JPEGs; ``maker`` adds its bad input to class ``a``."""
    for class_name in ("a", "b"):
        for i in range(3):
            bad.make_good_jpeg(root / class_name, f"good{i}.jpg", seed=i)
    maker(root / "a")
    return root


def load(root: Path) -> LoadedImages:
    return load_images(scan_dataset(root), SIZE, progress=False)


def only_extra(images: LoadedImages) -> int:
    """Index of the one image of class ``a`` that is not a good*.jpg."""
    (idx,) = [i for i, p in enumerate(images.rel_paths) if p.startswith("a/") and "/good" not in p]
    return idx


# --- files that are skipped with a reason -------------------------------------------------------------


@pytest.mark.parametrize(
    ("maker", "name", "reason"),
    [
        (bad.make_zero_byte, "empty.jpg", r"^empty file \(0 bytes\)$"),
        (bad.make_truncated_jpeg, "truncated.jpg", r"^cannot decode: image file is truncated"),
        (bad.make_text_as_jpeg, "notes.jpg", r"^not an image file Pillow can read$"),
        (
            bad.make_png_header_bomb,
            "bomb.png",
            r"^image too large to decode safely \(Image size \(10000000000 pixels",
        ),
    ],
    ids=["zero-byte", "truncated-jpeg", "text-named-jpg", "png-header-bomb"],
)
def test_unreadable_file_is_skipped_with_its_reason(
    tmp_path: Path, maker: Callable[[Path], Path], name: str, reason: str
) -> None:
    images = load(dataset_with(tmp_path, maker))
    (skipped,) = images.skipped
    assert skipped.rel_path == f"a/{name}"
    assert re.search(reason, skipped.reason), skipped.reason
    assert len(images.rel_paths) == 6 and images.pixels.shape == (6, SIZE, SIZE, 3)


@pytest.mark.parametrize(("side", "kind"), [(40, "warning"), (50, "error")])
def test_image_over_a_lowered_bomb_limit_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int, kind: str
) -> None:
    # the good images are 32x24 = 768 px; 40x40 = 1600 px trips Pillow's warning (> limit), 50x50 its error (> 2x)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    root = dataset_with(tmp_path, lambda d: Image.new("RGB", (side, side), bad.RED).save(d / "big.png"))
    (skipped,) = load(root).skipped
    assert skipped.rel_path == "a/big.png"
    assert skipped.reason.startswith("image too large to decode safely"), (kind, skipped.reason)


def test_symlink_loop_files_are_skipped_and_folder_loop_not_followed(tmp_path: Path) -> None:
    root = dataset_with(tmp_path, bad.make_symlink_loop)
    scan = scan_dataset(root)  # returns: the folder link to its parent is not followed
    assert not any("loop/" in r.rel_path for r in scan.records)
    images = load_images(scan, SIZE, progress=False)
    reasons = {s.rel_path: s.reason for s in images.skipped}
    assert reasons == {
        "a/a.jpg": "cannot read: Too many levels of symbolic links",
        "a/b.jpg": "cannot read: Too many levels of symbolic links",
    }


def non_utf8_name_or_skip(make: Callable[[], object]) -> None:
    try:
        make()
    except OSError as exc:  # e.g. macOS APFS refuses names that are not UTF-8
        pytest.skip(f"this file system refuses non-UTF-8 names: {exc}")


def test_non_utf8_file_name_is_skipped_and_json_stays_writable(tmp_path: Path) -> None:
    root = dataset_with(tmp_path, lambda d: None)
    non_utf8_name_or_skip(lambda: bad.make_non_utf8_file_name(root / "a"))
    images = load(root)
    (skipped,) = images.skipped
    assert skipped.rel_path == "a/caf\\xe9.jpg" and skipped.reason == "file name is not valid UTF-8; rename the file"
    write_json(tmp_path / "r.json", {"skipped": [skipped.rel_path], "paths": list(images.rel_paths)})
    assert json.loads((tmp_path / "r.json").read_text("utf-8"))["skipped"] == ["a/caf\\xe9.jpg"]


def test_non_utf8_class_folder_is_a_clear_error(tmp_path: Path) -> None:
    bad.make_good_jpeg(tmp_path / "b", "x.jpg")
    non_utf8_name_or_skip(lambda: os.makedirs(os.fsencode(tmp_path) + b"/caf\xe9"))
    with pytest.raises(DataError) as exc:
        scan_dataset(tmp_path)
    assert assert_one_line(exc) == "class folder name 'caf\\xe9' is not valid UTF-8; rename the folder"


# --- unusual but valid images decode correctly --------------------------------------------------------


def test_cmyk_jpeg_decodes_to_the_right_colour(tmp_path: Path) -> None:
    images = load(dataset_with(tmp_path, bad.make_cmyk_jpeg))
    i = only_extra(images)
    assert images.infos[i].mode == "CMYK" and not images.skipped
    assert np.abs(images.pixels[i].astype(int) - bad.RED).max() <= 8


def test_16bit_png_keeps_its_ramp(tmp_path: Path) -> None:
    images = load(dataset_with(tmp_path, bad.make_16bit_png))
    i = only_extra(images)
    assert images.infos[i].mode.startswith("I") and images.infos[i].colourfulness == 0.0
    row = images.pixels[i][SIZE // 2, :, 0].astype(int)
    assert row[0] < 20 and row[-1] > 235 and (np.diff(row) >= 0).all()


def test_palette_png_transparency_is_composited_on_white(tmp_path: Path) -> None:
    images = load(dataset_with(tmp_path, bad.make_palette_png_with_transparency))
    pixels = images.pixels[only_extra(images)]
    assert (pixels[:, 1] == bad.WHITE).all() and (pixels[:, -2] == bad.RED).all()


def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    images = load(dataset_with(tmp_path, bad.make_grayscale))
    i = only_extra(images)
    pixels = images.pixels[i]
    assert images.infos[i].mode == "L" and (pixels[..., 0] == pixels[..., 1]).all()
    assert (pixels[..., 1] == pixels[..., 2]).all()


def test_one_pixel_image_is_kept_with_its_true_size_for_the_health_check(tmp_path: Path) -> None:
    images = load(dataset_with(tmp_path, bad.make_one_pixel))
    i = only_extra(images)
    assert (images.infos[i].width, images.infos[i].height) == (1, 1)
    assert (images.pixels[i] == bad.RED).all()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    images = load(dataset_with(tmp_path, bad.make_exif_rotated_jpeg))
    i = only_extra(images)
    assert (images.infos[i].width, images.infos[i].height) == (20, 40)  # portrait once rotated
    pixels = images.pixels[i].astype(int)
    assert np.abs(pixels[1] - bad.RED).max() <= 16, "red must be on top"
    assert np.abs(pixels[-2] - bad.BLUE).max() <= 16, "blue must be below"


# --- folder structure ---------------------------------------------------------------------------------


def test_special_characters_in_class_and_file_names_survive_to_json(tmp_path: Path) -> None:
    root = bad.make_special_names_dataset(tmp_path / "data")
    images = load(root)
    assert images.class_names == tuple(sorted(bad.SPECIAL_CLASS_NAMES)) and not images.skipped
    expected = {f"{c}/{f}" for c in bad.SPECIAL_CLASS_NAMES for f in bad.SPECIAL_FILE_NAMES}
    assert set(images.rel_paths) == expected
    write_json(tmp_path / "r.json", {"classes": list(images.class_names), "paths": list(images.rel_paths)})
    text = (tmp_path / "r.json").read_text("utf-8")
    assert "café" in text and "🍮" in text  # written as characters, not \\u escapes
    assert set(json.loads(text)["paths"]) == expected


def test_hidden_files_and_folders_are_ignored(tmp_path: Path) -> None:
    root = dataset_with(tmp_path, bad.make_hidden_entries)
    bad.make_good_jpeg(root / ".hidden-class", "x.jpg")
    scan = scan_dataset(root)
    assert scan.class_names == ("a", "b")
    assert sorted(r.rel_path for r in scan.records if r.class_idx == 0) == [f"a/good{i}.jpg" for i in range(3)]


def test_empty_class_folder_is_a_clear_error(tmp_path: Path) -> None:
    root = dataset_with(tmp_path, lambda d: None)
    (root / "empty").mkdir()
    with pytest.raises(DataError) as exc:
        scan_dataset(root)
    assert assert_one_line(exc).startswith(f"class folder '{root / 'empty'}' holds no images")


def test_class_with_one_image_is_a_clear_error_at_the_split(tmp_path: Path) -> None:
    root = dataset_with(tmp_path, lambda d: None)
    bad.make_good_jpeg(root / "single", "only.jpg")
    images = load(root)
    with pytest.raises(DataError) as exc:
        split_dataset(images.labels, images.class_names, SplitConfig(), 0, root)
    assert f"'{root / 'single'}' has 1 readable image(s)" in assert_one_line(exc)


# --- output folder ------------------------------------------------------------------------------------


def test_output_under_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    out = bad.make_not_writable_parent(tmp_path)
    with pytest.raises(OutputError) as exc, staged_output(out):
        pass
    assert assert_one_line(exc).endswith(f"'{out.parent}' is a file, not a folder")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc, where no one can create folders")
def test_output_in_proc_is_a_clear_error_even_for_root(tmp_path: Path) -> None:
    with pytest.raises(OutputError) as exc, staged_output(Path("/proc") / f"reportgen-test-{os.getpid()}"):
        pass
    assert assert_one_line(exc).startswith("cannot write in output folder '/proc'")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 0o555; the /proc and file cases cover root")
def test_read_only_output_parent_is_a_clear_error(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(OutputError) as exc, staged_output(parent / "out"):
            pass
    finally:
        parent.chmod(0o755)
    assert "not writable" in assert_one_line(exc)


# --- checkpoints and weights --------------------------------------------------------------------------


def test_checkpoint_for_other_classes_names_the_difference(tmp_path: Path) -> None:
    path = bad.make_checkpoint_for_classes(tmp_path, ("cat", "dog", "sushi"))
    with pytest.raises(ModelError) as exc:
        load_checkpoint(path, ("cat", "dog", "pizza"))
    message = assert_one_line(exc)
    assert "trained on classes" in message and "['sushi']" in message and "['pizza']" in message


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the plain pickle
@pytest.mark.parametrize(
    ("maker", "reason"),
    [
        (bad.make_pickled_object_checkpoint, "it holds a pickled Python object (badinputs.ArbitraryObject)"),
        (bad.make_plain_pickle, "it holds more than tensors and plain values"),
        (bad.make_zero_byte, "the file is empty or cut short"),
        (bad.make_text_as_jpeg, "not a file written by torch.save"),
    ],
    ids=["pickled-object", "plain-pickle", "zero-byte", "text"],
)
def test_checkpoint_that_is_not_weights_only_is_one_clear_line(
    tmp_path: Path, maker: Callable[[Path], Path], reason: str
) -> None:
    with pytest.raises(ModelError) as exc:
        load_checkpoint(maker(tmp_path), ("a", "b"))
    assert reason in assert_one_line(exc)


def test_pickled_object_as_weights_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as exc:
        build_model("resnet18", 2, weights=str(bad.make_pickled_object_checkpoint(tmp_path)))
    assert "pickled Python object" in assert_one_line(exc)


def test_incomplete_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    import torch

    torch.save({"format": 1, "class_names": ["a", "b"]}, tmp_path / "part.pt")
    with pytest.raises(ModelError) as exc:
        load_checkpoint(tmp_path / "part.pt", ("a", "b"))
    assert "is incomplete: it has no arch" in assert_one_line(exc)


def test_checkpoint_whose_weights_do_not_fit_its_arch_is_a_clear_error(tmp_path: Path) -> None:
    path = bad.make_checkpoint_for_classes(tmp_path, ("a", "b"))  # resnet18 with only a head tensor
    with pytest.raises(ModelError) as exc:
        load_checkpoint(path, ("a", "b"))
    assert "holds weights that do not fit resnet18: Missing key(s)" in assert_one_line(exc)


# --- manifests ----------------------------------------------------------------------------------------

BAD_ROW_LINE = 8  # the header, six good rows, then the bad one


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing file", r"^file not found$"),
        ("unreadable image", r"^not an image file Pillow can read$"),
        ("empty label", r"^empty label$"),
        ("unknown split", r"^unknown split 'holdout' \(use train, training, val"),
        ("same file, other label", r"^listed twice with different labels or splits \(lines 2 and 8\)$"),
        ("absolute path", r"^absolute path: paths must be relative to DATA_DIR$"),
        ("parent path", r"^path leaves DATA_DIR \('\.\.'\)$"),
        ("symlink out", r"^link leads outside DATA_DIR$"),
        ("empty path", r"^empty path$"),
    ],
)
def test_unusable_manifest_row_is_a_skipped_file_with_its_reason_and_line(
    tmp_path: Path, kind: str, reason: str
) -> None:
    root = tmp_path / "data"
    lines = bad.make_manifest_dataset(root)
    lines.append(bad.bad_manifest_row(root, kind))
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", "utf-8")  # found without --labels
    images = load_images(read_dataset(root), SIZE, progress=False)
    (skipped,) = [s for s in images.skipped if s.line == BAD_ROW_LINE]
    assert re.search(reason, skipped.reason), skipped.reason
    assert len(images.rel_paths) == (5 if kind == "same file, other label" else 6)  # nothing else is lost
    assert images.metadata.column("annotator") is not None and len(images.given_splits) == len(images.rel_paths)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("no path column", r"^labels\.csv line 1: no path column \(looked for file_name, "),
        ("no label column", r"^labels\.csv line 1: no label column \(looked for label, class"),
        ("repeated column", r"^labels\.csv line 1: a repeated column name 'label'$"),
        ("too few fields", r"^labels\.csv line 4: 2 fields where the header has 4$"),
        ("broken quoting", r"^labels\.csv line 5: broken line \("),
        ("empty file", r"^labels\.csv line 1: empty file, no header line$"),
        ("unknown file type", r"^manifest 'labels\.xlsx': unknown file type '\.xlsx'"),
        ("broken json line", r"^labels\.jsonl line 3: broken JSON \("),
        ("wrong encoding", r"^labels\.csv line 4: not UTF-8 text \(save the file as UTF-8\)$"),
    ],
)
def test_unreadable_manifest_is_one_line_naming_file_and_line(tmp_path: Path, kind: str, message: str) -> None:
    root = tmp_path / "data"
    path = bad.bad_manifest_file(root, kind)
    with pytest.raises(DataError) as exc:
        read_dataset(root, labels=path)
    assert re.search(message, assert_one_line(exc)), str(exc.value)


def test_label_column_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "labels.csv").parent.mkdir(parents=True)
    (root / "labels.csv").write_text("\n".join(bad.make_manifest_dataset(root)) + "\n", "utf-8")
    with pytest.raises(DataError) as exc:
        read_dataset(root, labels=root / "labels.csv", label_column="species")
    assert assert_one_line(exc) == "labels.csv line 1: no column 'species' (named by --label-column)"


def test_bad_manifest_on_the_command_line_exits_2_without_a_traceback(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from reportgen.cli import main

    root = tmp_path / "data"
    path = bad.bad_manifest_file(root, "wrong encoding")
    args = ["run", str(root), "--labels", str(path), "--out", str(tmp_path / "o"), "--no-pdf", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "labels.csv line 4: not UTF-8 text" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
