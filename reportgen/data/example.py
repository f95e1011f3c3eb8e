"""Download and unpack the MathWorks example's data set (or any zip of class folders)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from reportgen.errors import DataError

logger = logging.getLogger(__name__)

EXAMPLE_FOOD_URL = "https://www.mathworks.com/supportfiles/nnet/data/ExampleFoodImageDataset.zip"


def download_dataset(url: str, dest: Path, *, progress: bool = True) -> Path:
    """Fetch the zip at ``url`` into ``dest`` and return the folder that holds the class folders.

    ``dest`` is filled only when the download and the unpacking both succeed.
    """
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise DataError(f"destination '{dest}' is not empty")
    with tempfile.TemporaryDirectory(prefix="reportgen-download-") as tmp:
        archive = Path(tmp) / "data.zip"
        _fetch(url, archive, progress=progress)
        unpacked = Path(tmp) / "unpacked"
        _safe_extract(archive, unpacked)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            dest.rmdir()
        shutil.move(str(unpacked), dest)
    return class_root(dest)


def _fetch(url: str, target: Path, *, progress: bool) -> None:
    logger.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="Downloading", disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as exc:
        raise DataError(f"could not download {url}: {exc}") from exc


def _safe_extract(archive: Path, target: Path) -> None:
    """Unzip, refusing members that would land outside ``target`` (absolute paths, ``..``)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                parts = PurePosixPath(member.filename).parts
                if member.filename.startswith("/") or ".." in parts:
                    raise DataError(f"refusing unsafe path in archive: {member.filename}")
                if parts and parts[0] == "__MACOSX":
                    continue
                zf.extract(member, target)
    except zipfile.BadZipFile as exc:
        raise DataError(f"downloaded file is not a zip archive: {exc}") from exc


def class_root(folder: Path) -> Path:
    """Descend through single wrapper folders (``Example.zip/ExampleFoodImageDataset/<classes>``)."""
    current = Path(folder)
    while True:
        children = [p for p in current.iterdir() if not p.name.startswith(".")]
        dirs = [p for p in children if p.is_dir()]
        if len(dirs) == 1 and len(children) == 1:
            current = dirs[0]
        else:
            return current
