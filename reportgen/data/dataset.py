"""Data set stage: scan class folders, decode and validate images, split them per class."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import mmap
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps
from tqdm import tqdm

from reportgen.data.image_facts import jpeg_quality
from reportgen.data.metadata import Metadata
from reportgen.data.pixels import ImageInfo, fit_square, image_info, to_rgb
from reportgen.data.source import CLASS_FOLDERS, DataSource
from reportgen.data.workers import ordered_map, usable_cores
from reportgen.errors import DataError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
SPLITS = ("train", "val", "test")
_IN_MEMORY_LIMIT = 4 * 1024**3  # decoded pixels above this go to a memory-mapped temp file
# memory-mapped pixels: written rows leave resident memory every this many images (150 MB at 224 px); decoding
# 50,000 images at 224 px (7.5 GB) then peaks at 0.25 GB resident instead of 7.45 (benchmarks/decode.py)
_RELEASE_ROWS = 1024


@dataclass(frozen=True)
class ImageRecord:
    """One image file found under a class folder."""

    path: Path
    rel_path: str  # relative to the data set root, '/'-separated
    class_idx: int
    split: str = ""  # the split given by a split folder or a manifest ("" when none is given)
    line: int | None = None  # the manifest line that lists it


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the audit, with the reason a reader can check."""

    rel_path: str
    reason: str
    line: int | None = None  # the manifest line that lists it, when a manifest does


@dataclass(frozen=True)
class DatasetScan:
    """The class folders and image files of a data set root, before any decoding."""

    root: Path
    class_names: tuple[str, ...]
    records: tuple[ImageRecord, ...]
    skipped: tuple[SkippedFile, ...] = ()  # manifest rows that name no usable file
    metadata: Metadata = Metadata()  # a value per record
    source: DataSource = DataSource()


@dataclass(frozen=True)
class LoadedImages:
    """Every readable image of a data set, decoded once at the model's input size."""

    root: Path
    class_names: tuple[str, ...]
    rel_paths: tuple[str, ...]
    labels: np.ndarray  # (N,) int64 class indices
    pixels: np.ndarray  # (N, S, S, 3) uint8, squashed to the model's square input like the example
    infos: tuple[ImageInfo, ...]
    skipped: tuple[SkippedFile, ...]
    metadata: Metadata = Metadata()  # columns beside the images (a manifest's, the sub-folders)
    given_splits: tuple[str, ...] = ()  # per image, the split its folder or manifest row gives ("": none)
    source: DataSource = DataSource()  # the layout, and where the split and labels came from


def scan_dataset(root: Path) -> DatasetScan:
    """List the class folders of ``root`` and the image files inside them (nested folders included).

    Hidden files and folders and stray top-level files are ignored; symbolic links to folders are not
    followed, so a link loop cannot hang the scan.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder '{root}' does not exist or is not a folder")
    class_dirs = sub_folders(root)
    check_utf8_names(class_dirs)
    if len(class_dirs) < 2:
        found = ", ".join(p.name for p in class_dirs) or "none"
        raise DataError(f"data folder '{root}' needs at least two class folders (found: {found})")
    records: list[ImageRecord] = []
    for class_idx, class_dir in enumerate(class_dirs):
        files = image_files(class_dir)
        if not files:
            raise DataError(f"class folder '{class_dir}' holds no images ({extension_hint()})")
        records.extend(ImageRecord(f, f.relative_to(root).as_posix(), class_idx) for f in files)
    return DatasetScan(root, tuple(p.name for p in class_dirs), tuple(records))


def sub_folders(folder: Path) -> list[Path]:
    """The folders directly inside ``folder``, by name; hidden ones and links to folders left out."""
    return sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def check_utf8_names(class_dirs: list[Path]) -> None:
    """Class names go into JSON and HTML, which hold only valid Unicode: refuse undecodable folder names."""
    for class_dir in class_dirs:
        if _printable(class_dir.name) != class_dir.name:
            raise DataError(f"class folder name '{_printable(class_dir.name)}' is not valid UTF-8; rename the folder")


def _printable(name: str) -> str:
    """Return ``name`` with the undecodable bytes of a non-UTF-8 file name written as backslash escapes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def image_files(class_dir: Path) -> list[Path]:
    """The image files under ``class_dir`` (nested folders included, hidden ones and links to folders not), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: p.relative_to(class_dir).as_posix())


def extension_hint() -> str:
    """The image file extensions looked for, in words."""
    return "looked for " + ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))


def load_images(scan: DatasetScan, size: int, *, progress: bool = True, workers: int | None = None) -> LoadedImages:
    """Decode every image of ``scan`` once, at ``size`` x ``size``; unreadable files are skipped.

    ``workers`` threads decode (default: the usable cores); the result does not depend on their number.
    A skipped file is logged as a warning and listed with its reason, never raised.
    """
    n = len(scan.records)
    pixels = _allocate(n, size)
    kept: list[int] = []
    infos: list[ImageInfo] = []
    skipped: list[SkippedFile] = []
    outcomes = decode_files(scan.records, size, workers=usable_cores() if workers is None else workers)
    bar = tqdm(outcomes, total=n, desc="Decoding images", unit="img", disable=not progress, leave=False)
    for record_idx, outcome in enumerate(bar):
        name = _printable(scan.records[record_idx].rel_path)
        if isinstance(outcome, str):
            logger.warning("skipping %s: %s", name, outcome)
            skipped.append(SkippedFile(name, outcome, scan.records[record_idx].line))
            continue
        pixels[len(kept)], info = outcome
        kept.append(record_idx)
        infos.append(info)
        if len(kept) % _RELEASE_ROWS == 0:
            _release_written(pixels, len(kept))
    return _loaded(scan, pixels[: len(kept)], kept, infos, skipped)


def loaded_from_rows(
    scan: DatasetScan, pixels: np.ndarray, outcomes: Sequence[ImageInfo | str], *, warn: bool = True
) -> LoadedImages:
    """The data set from pixels decoded into the row of each record (``decode_files`` run in parts).

    ``outcomes[i]`` is record i's facts or the reason it was skipped. Rows of skipped records must have
    been removed first (:func:`compact_rows`), so the kept images are ``pixels``' first rows.
    """
    kept = [i for i, outcome in enumerate(outcomes) if not isinstance(outcome, str)]
    reasons = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, str)]
    skipped = [SkippedFile(_printable(scan.records[i].rel_path), reason, scan.records[i].line) for i, reason in reasons]
    for skip in skipped if warn else ():
        logger.warning("skipping %s: %s", skip.rel_path, skip.reason)
    infos = [outcomes[i] for i in kept]
    return _loaded(scan, pixels[: len(kept)], kept, infos, skipped)  # type: ignore[arg-type]


def compact_rows(pixels: np.ndarray, outcomes: Sequence[ImageInfo | str]) -> None:
    """Move the rows of the kept records up over those of skipped ones, in place, order kept."""
    kept = [i for i, outcome in enumerate(outcomes) if not isinstance(outcome, str)]
    for row, i in enumerate(kept):
        if row != i:
            pixels[row] = pixels[i]


def _loaded(
    scan: DatasetScan, pixels: np.ndarray, kept: list[int], infos: list[ImageInfo], skipped: list[SkippedFile]
) -> LoadedImages:
    labels = np.array([scan.records[i].class_idx for i in kept], dtype=np.int64)
    _check_classes_left(scan, labels)
    return LoadedImages(
        root=scan.root,
        class_names=scan.class_names,
        rel_paths=tuple(scan.records[i].rel_path for i in kept),
        labels=labels,
        pixels=pixels,
        infos=tuple(infos),
        skipped=(*scan.skipped, *skipped),
        metadata=scan.metadata.select(kept),
        given_splits=tuple(scan.records[i].split for i in kept) if scan.source.split_source else (),
        source=scan.source,
    )


def decode_files(
    records: Sequence[ImageRecord], size: int, *, workers: int, processes: bool = False
) -> Iterator[tuple[np.ndarray, ImageInfo] | str]:
    """Each record's decoded ``(size, size, 3)`` pixels and facts, or the reason it is skipped, in order.

    ``workers`` threads decode at once (processes with ``processes``, for comparison only), with a bounded
    number of images decoded ahead of the caller. Truncated files are refused throughout.
    """
    with _strict_decoding():
        yield from ordered_map(
            functools.partial(_decode_file, size=size), records, workers=workers, processes=processes
        )


def _decode_file(record: ImageRecord, size: int) -> tuple[np.ndarray, ImageInfo] | str:
    """One file's decoded pixels and facts, or why it cannot be audited (any failure: a reason, never raised)."""
    try:
        if _printable(record.rel_path) != record.rel_path:
            raise _Unusable("file name is not valid UTF-8; rename the file")
        return _decode(record.path.read_bytes(), size)
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "skip this file"
        return _describe_failure(exc)


def _allocate(n: int, size: int) -> np.ndarray:
    nbytes = n * size * size * 3
    if nbytes <= _IN_MEMORY_LIMIT:
        return np.empty((n, size, size, 3), dtype=np.uint8)
    import tempfile

    handle = tempfile.NamedTemporaryFile(prefix="reportgen-pixels-", suffix=".u8")  # noqa: SIM115
    logger.info("decoded images need %.1f GB: keeping them in %s", nbytes / 1e9, handle.name)
    return np.memmap(handle, dtype=np.uint8, mode="w+", shape=(n, size, size, 3))


def _release_written(pixels: np.ndarray, rows: int) -> None:
    """Let the first ``rows`` of a memory map leave this process's resident memory; the file keeps them.

    Written pages of a shared file mapping stay resident until the kernel wants the memory back, so the
    process would grow by the whole array; dropping them after writing keeps it bounded.
    """
    mapping = getattr(pixels, "_mmap", None)  # np.memmap's mmap object, from the file's start
    if mapping is None or sys.platform != "linux":
        return
    length = rows * pixels[0].nbytes // mmap.PAGESIZE * mmap.PAGESIZE
    mapping.madvise(mmap.MADV_DONTNEED, 0, length)  # shared file mapping: the pages stay in the page cache and file


def _check_classes_left(scan: DatasetScan, labels: np.ndarray) -> None:
    counts = np.bincount(labels, minlength=len(scan.class_names))
    for class_idx, count in enumerate(counts):
        if count == 0 and scan.source.layout == CLASS_FOLDERS:
            raise DataError(f"class folder '{scan.root / scan.class_names[class_idx]}' has no readable images")
        if count == 0:
            raise DataError(f"class '{scan.class_names[class_idx]}' of '{scan.root}' has no readable images")


class _Unusable(ValueError):
    """A file that cannot be audited; the message is the whole reason."""


def _describe_failure(exc: Exception) -> str:
    if isinstance(exc, _Unusable):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:  # the file system's, not Pillow's, OSError
        return f"cannot read: {exc.strerror}"
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"image too large to decode safely ({exc})"
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not an image file Pillow can read"
    text = str(exc).strip() or type(exc).__name__
    return f"cannot decode: {text}"


_EXIF_ORIENTATION = 0x0112
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height


def decode_image(data: bytes, size: int) -> tuple[np.ndarray, ImageInfo]:
    """Decode image bytes to an RGB ``(size, size, 3)`` uint8 array, EXIF orientation applied."""
    with _strict_decoding():
        return _decode(data, size)


def _decode(data: bytes, size: int) -> tuple[np.ndarray, ImageInfo]:
    """:func:`decode_image`, inside :func:`_strict_decoding` (entered once around a whole pool of threads)."""
    if not data:
        raise _Unusable("empty file (0 bytes)")
    with Image.open(io.BytesIO(data)) as img:
        mode, file_format, quality = img.mode, img.format or "", jpeg_quality(img)
        width, height = _oriented_size(img)  # the file's own size, before draft() shrinks the decode
        img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, still >= size
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # in place: no copy of an image already upright
        if width < 1 or height < 1:
            raise ValueError("image has no pixels")
        array = np.asarray(fit_square(to_rgb(img), size), dtype=np.uint8)
    info = image_info(array, width, height, mode, hashlib.sha256(data).hexdigest(), file_format, quality)
    return array, info


@contextlib.contextmanager
def _strict_decoding() -> Iterator[None]:
    """Refuse truncated files and decompression bombs while decoding.

    Another library may have set Pillow's process-wide ``LOAD_TRUNCATED_IMAGES`` (WeasyPrint does, on import).
    Both it and the warnings filter are process-wide, not per thread: set them once around a pool's work,
    never per image in a worker thread (one thread's restore would undo another's setting).
    """
    lenient = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = lenient


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    """``(width, height)`` of an opened image after its EXIF orientation is applied."""
    width, height = img.size
    if img.getexif().get(_EXIF_ORIENTATION, 1) in _TRANSPOSING_ORIENTATIONS:
        return height, width
    return width, height


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file, EXIF orientation applied, from its header (no decode)."""
    with Image.open(path) as img:
        return _oriented_size(img)


def load_probes(paths: tuple[Path, ...], size: int) -> np.ndarray:
    """Decode images from outside the data set (``--probe``); an unreadable one is an error naming it."""
    pixels = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            pixels[i], _info = decode_image(Path(path).read_bytes(), size)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is reported the same way
            raise DataError(f"probe image '{path}': {_describe_failure(exc)}") from exc
    return pixels
