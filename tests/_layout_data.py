"""Copies of a class-folder data set in the other layouts: split folders, and a flat folder with a manifest.

Files are hard-linked (copied where links are refused), so the layouts cost no disk; no new photos.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

SPLIT_FOLDERS = {"train": "train", "val": "validation", "test": "test"}  # split -> folder name
ANNOTATORS = ("ana", "ben", "chloe")


def link(src: Path, dst: Path) -> None:
    """Hard-link ``src`` at ``dst`` (copy it where the file system refuses)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy(src, dst)


def planned_split(index: int) -> str:
    """The split of a class's ``index``-th image: 3 of every 5 train, 1 val, 1 test."""
    return ("train", "train", "train", "val", "test")[index % 5]


def class_images(src: Path) -> list[tuple[str, Path]]:
    """(class, image) of a class-folder set, by class then file name."""
    return [
        (d.name, f)
        for d in sorted(p for p in src.iterdir() if p.is_dir())
        for f in sorted(p for p in d.iterdir() if p.is_file())
    ]


def split_folder_copy(src: Path, dst: Path, *, folders: dict[str, str] | None = None) -> dict[str, int]:
    """``src`` as ``dst/<split folder>/<class>/<image>`` by :func:`planned_split`; returns images per split."""
    folders = SPLIT_FOLDERS if folders is None else folders
    counts: dict[str, int] = {}
    index: dict[str, int] = {}
    for class_name, image in class_images(src):
        split = planned_split(index.setdefault(class_name, 0))
        index[class_name] += 1
        if split not in folders:
            split = "train"
        link(image, dst / folders[split] / class_name / image.name)
        counts[split] = counts.get(split, 0) + 1
    return counts


def flat_copy(src: Path, dst: Path, *, manifest: str = "metadata.csv") -> list[dict[str, str]]:
    """``src`` as one flat ``dst/images/`` folder and a manifest ``file_name,label,split,annotator``; its rows.

    The file names of ``src`` must differ across classes (they share one folder here).
    """
    rows, index = [], {}
    for class_name, image in class_images(src):
        i = index.setdefault(class_name, 0)
        index[class_name] += 1
        if (dst / "images" / image.name).exists():
            raise ValueError(f"two classes have a file named {image.name}")
        link(image, dst / "images" / image.name)
        split = planned_split(i)
        rows.append(
            {"file_name": f"images/{image.name}", "label": class_name, "split": split, "annotator": ANNOTATORS[i % 3]}
        )
    write_manifest(dst / manifest, rows)
    return rows


def write_manifest(path: Path, rows: list[dict[str, str]], *, delimiter: str = ",") -> Path:
    """Write ``rows`` as a CSV (or, with ``delimiter='\\t'``, TSV) with the first row's keys as the header."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path
