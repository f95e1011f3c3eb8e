"""Where a data set's images, labels and split came from: its layout, split folders and manifest."""

from __future__ import annotations

from dataclasses import dataclass

CLASS_FOLDERS, SPLIT_FOLDERS, MANIFEST = "class-folders", "split-folders", "manifest"  # the layouts
FOLDERS_SPLIT, MANIFEST_SPLIT = "folders", "manifest"  # where a given split came from


@dataclass(frozen=True)
class LabelDisagreement:
    """A manifest row whose label is not the class folder its image lies in (the folder's label is kept)."""

    rel_path: str
    folder_label: str
    manifest_label: str
    line: int  # the manifest's line


@dataclass(frozen=True)
class DataSource:
    """How the data set is laid out, and where its split and its labels came from."""

    layout: str = CLASS_FOLDERS  # CLASS_FOLDERS, SPLIT_FOLDERS or MANIFEST (labels from the manifest)
    split_source: str = ""  # FOLDERS_SPLIT, MANIFEST_SPLIT or "" (no split given)
    split_folders: tuple[str, ...] = ()  # the split folders' names as on disk, train first, then val, test
    manifest: str = ""  # the manifest's file name ("" without one)
    manifest_columns: tuple[str, ...] = ()  # its columns, as in its header
    label_disagreements: tuple[LabelDisagreement, ...] = ()


SPLIT_NAMES = {  # a split folder's or a split column's value (lower case) -> the split
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


def split_name(value: str) -> str | None:
    """The split (train, val, test) that a folder name or a manifest value means, any case; None: none."""
    return SPLIT_NAMES.get(value.strip().lower())
