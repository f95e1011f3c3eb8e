from __future__ import annotations

from pathlib import Path

import badinputs as bad
import numpy as np
import pytest
from conftest import COLOURS, make_dataset, write_image
from PIL import Image, ImageFile

from reportgen.config import SplitConfig
from reportgen.data import dataset as data
from reportgen.data.dataset import decode_image, image_size, load_images, scan_dataset
from reportgen.data.splits import split_dataset
from reportgen.errors import DataError


def test_scan_finds_nested_images_any_case_and_ignores_hidden(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", per_class=3)
    write_image(root / "red" / "deeper" / "nested" / "X.JPG", COLOURS["red"], fmt="JPEG")
    write_image(root / "red" / ".hidden.png", COLOURS["red"])
    write_image(root / "red" / ".cache" / "a.png", COLOURS["red"])
    (root / "red" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("stray top-level file")
    (root / ".git").mkdir()
    scan = scan_dataset(root)
    assert scan.class_names == ("blue", "green", "red")
    red = [r.rel_path for r in scan.records if r.class_idx == 2]
    assert red == ["red/deeper/nested/X.JPG", "red/img_00.png", "red/img_01.png", "red/img_02.png"]


def test_one_class_folder_is_an_error_naming_the_folder(tmp_path: Path) -> None:
    write_image(tmp_path / "only" / "a.png", COLOURS["red"])
    with pytest.raises(DataError, match="at least two class folders"):
        scan_dataset(tmp_path)


def test_empty_class_folder_is_an_error(tmp_path: Path) -> None:
    make_dataset(tmp_path, per_class=3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        scan_dataset(tmp_path)


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        scan_dataset(tmp_path / "nope")


def test_corrupt_and_fake_images_are_skipped_with_reasons(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, per_class=4)
    (root / "red" / "fake.jpg").write_text("this is text, not a JPEG")
    good = (root / "green" / "img_00.png").read_bytes()
    (root / "green" / "truncated.png").write_bytes(good[: len(good) // 3])
    (root / "blue" / "zero.png").write_bytes(b"")
    images = load_images(scan_dataset(root), 16, progress=False)
    skipped = {s.rel_path: s.reason for s in images.skipped}
    assert set(skipped) == {"red/fake.jpg", "green/truncated.png", "blue/zero.png"}
    assert all(reason for reason in skipped.values())
    assert images.pixels.shape == (12, 16, 16, 3)
    assert len(images.rel_paths) == len(images.labels) == len(images.infos) == 12


def test_decode_pool_gives_the_serial_bytes_infos_and_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_dataset(tmp_path, per_class=5)
    for i in range(4):  # JPEGs of a few sizes, some decoded at a reduced scale by draft()
        bad.make_good_jpeg(root / "red", f"photo{i}.jpg", seed=i)
        Image.open(root / "red" / f"photo{i}.jpg").resize((40 + 90 * i, 30 + 60 * i)).save(root / "blue" / f"p{i}.jpg")
    bad.make_truncated_jpeg(root / "green")
    bad.make_text_as_jpeg(root / "blue")
    bad.make_zero_byte(root / "red")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as WeasyPrint leaves it
    scan = scan_dataset(root)
    serial = load_images(scan, 24, progress=False, workers=1)
    monkeypatch.setattr(data, "_IN_MEMORY_LIMIT", 0)  # and the pool writes into a memory map,
    monkeypatch.setattr(data, "_RELEASE_ROWS", 4)  # dropping its written pages from memory as it goes
    pooled = load_images(scan, 24, progress=False, workers=3)
    assert isinstance(pooled.pixels, np.memmap) and pooled.pixels.tobytes() == serial.pixels.tobytes()
    assert (pooled.infos, pooled.rel_paths, pooled.skipped) == (serial.infos, serial.rel_paths, serial.skipped)
    assert np.array_equal(pooled.labels, serial.labels)
    reasons = {s.rel_path: s.reason for s in pooled.skipped}
    assert reasons["green/truncated.jpg"].startswith("cannot decode: image file is truncated")
    assert set(reasons) == {"green/truncated.jpg", "blue/notes.jpg", "red/empty.jpg"} and len(pooled.infos) == 23
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored after the pool


def test_class_with_only_unreadable_images_is_an_error(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, per_class=3)
    (root / "broken").mkdir()
    (root / "broken" / "a.jpg").write_text("nope")
    with pytest.raises(DataError, match="no readable images"):
        load_images(scan_dataset(root), 16, progress=False)


def test_decode_applies_exif_orientation_and_converts_modes(tmp_path: Path) -> None:
    wide = Image.new("RGB", (40, 20), (255, 0, 0))
    wide.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rot.jpg"
    wide.save(path, exif=exif, quality=95)
    array, info = decode_image(path.read_bytes(), 20)
    assert (info.width, info.height) == (20, 40)  # portrait after EXIF orientation
    assert image_size(path) == (20, 40)  # the same size from the header alone (probes' aspect ratio)
    assert array[1, 10, 2] > 200 and array[-2, 10, 0] > 200  # blue on top, red below
    gray = tmp_path / "g.png"
    Image.new("L", (8, 8), 128).save(gray)
    array, info = decode_image(gray.read_bytes(), 8)
    assert array.shape == (8, 8, 3) and info.mode == "L" and info.colourfulness == 0.0


def test_split_is_stratified_seeded_and_complete() -> None:
    labels = np.repeat(np.arange(3), [10, 20, 45])
    names = ("a", "b", "c")
    s1 = split_dataset(labels, names, SplitConfig(), 7, Path("root"))
    s2 = split_dataset(labels, names, SplitConfig(), 7, Path("root"))
    s3 = split_dataset(labels, names, SplitConfig(), 8, Path("root"))
    assert (s1 == s2).all() and not (s1 == s3).all()
    for c, n in enumerate([10, 20, 45]):
        members = s1[labels == c]
        assert (members == "train").sum() == n - 2 * round(n * 0.2)
        assert (members == "test").sum() == round(n * 0.2) == (members == "val").sum()


def test_too_small_class_is_an_error_naming_its_folder() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    with pytest.raises(DataError, match="'root/b' has 2 readable"):
        split_dataset(labels, ("a", "b"), SplitConfig(), 0, Path("root"))
