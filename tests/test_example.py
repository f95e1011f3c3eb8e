from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from conftest import COLOURS, make_dataset

from reportgen.data.example import download_dataset
from reportgen.errors import DataError


def _zip_of(folder: Path, archive: Path, prefix: str) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f"{prefix}/{f.relative_to(folder).as_posix()}")
        zf.writestr("__MACOSX/._junk", "resource fork")
    return archive


def test_download_unpacks_a_zip_of_class_folders(tmp_path: Path) -> None:
    """The real download code, pointed at a local zip laid out like the MathWorks archive."""
    src = make_dataset(tmp_path / "src", per_class=2)
    archive = _zip_of(src, tmp_path / "ExampleFoodImageDataset.zip", "ExampleFoodImageDataset")
    root = download_dataset(archive.as_uri(), tmp_path / "dest", progress=False)
    assert root == tmp_path / "dest" / "ExampleFoodImageDataset"
    assert sorted(p.name for p in root.iterdir()) == sorted(COLOURS)
    assert not (tmp_path / "dest" / "__MACOSX").exists()


def test_unsafe_archive_paths_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DataError, match="unsafe path"):
        download_dataset(archive.as_uri(), tmp_path / "dest", progress=False)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "dest").exists()


def test_unreachable_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="could not download"):
        download_dataset((tmp_path / "missing.zip").as_uri(), tmp_path / "dest", progress=False)
