"""The layouts a data set comes in, and the one reader that tells them apart.

- class folders: ``DATA_DIR/<class>/<image>`` (the split is made here, at random);
- split folders: ``DATA_DIR/train/<class>/``, ``DATA_DIR/val/<class>/`` (or ``valid``, ``validation``; optional),
  ``DATA_DIR/test/<class>/``: the classes are the union of their class folders, the split is the one given;
- a manifest: a CSV, TSV or JSON Lines table (``--labels FILE``, or ``metadata.csv`` / ``metadata.jsonl`` at
  the root of a flat folder, the ``imagefolder`` convention) of paths, labels, an optional split and metadata.

A manifest beside class or split folders (found at the root, or named by ``--labels`` without a label column)
adds its metadata to the folders' images; where its label disagrees with the folder, the folder's label is
kept and the disagreement listed. ``--labels`` with a label column makes the manifest the labels' source.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from reportgen.data.dataset import (
    IMAGE_EXTENSIONS,
    DatasetScan,
    ImageRecord,
    SkippedFile,
    check_utf8_names,
    image_files,
    scan_dataset,
    sub_folders,
)
from reportgen.data.manifest import Manifest, ManifestRow, default_manifest, read_manifest
from reportgen.data.metadata import SUBFOLDER, Metadata, MetadataColumn, typed_column
from reportgen.data.source import (
    FOLDERS_SPLIT,
    MANIFEST,
    MANIFEST_SPLIT,
    SPLIT_FOLDERS,
    DataSource,
    LabelDisagreement,
    split_name,
)
from reportgen.errors import DataError

logger = logging.getLogger(__name__)

SPLIT_ORDER = ("train", "val", "test")


def read_dataset(root: Path, *, labels: Path | None = None, label_column: str | None = None) -> DatasetScan:
    """The images of ``root`` in whichever layout it has, with their labels, given split and metadata.

    Raises:
        DataError: the layout is inconsistent (split folders mixed with others, a class with no training
            image, an empty split folder) or the manifest cannot be read; the message names folders or lines.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder '{root}' does not exist or is not a folder")
    splits = split_folders(root)
    manifest_path = labels if labels is not None else default_manifest(root)
    flat = not splits and _is_flat(root)
    if manifest_path is None and not splits and len(sub_folders(root)) < 2 and _root_images(root):
        raise DataError(
            f"data folder '{root}' holds images but no class folders: add a metadata.csv (file_name,label) or "
            "name a manifest with --labels"
        )
    manifest = None
    if manifest_path is not None:
        required = labels is not None or flat
        manifest = read_manifest(manifest_path, root, label_column=label_column, labels_required=required)
    if manifest is not None and manifest.label_column and (labels is not None or flat):
        return manifest_scan(root, manifest, splits)
    scan = with_subfolders(_split_folder_scan(root, splits) if splits else scan_dataset(root))
    return with_manifest(scan, manifest) if manifest is not None else scan


def split_folders(root: Path) -> list[tuple[str, Path]]:
    """``(split, folder)`` for the split folders at ``root``'s top, train first; empty when there are none.

    Raises:
        DataError: split folders beside other folders, two folders for one split, or no train or test folder.
    """
    folders = sub_folders(root)
    named = [(split_name(f.name), f) for f in folders]
    found = [(split, f) for split, f in named if split is not None]
    if not found:
        return []
    others = [f.name + "/" for split, f in named if split is None]
    if others:
        given = ", ".join(f.name + "/" for _, f in found)
        raise DataError(
            f"'{root}' mixes split folders ({given}) with other folders ({', '.join(others)}); "
            "put every class folder inside the split folders, or remove them"
        )
    by_split: dict[str, Path] = {}
    for split, folder in found:
        if split in by_split:
            raise DataError(
                f"'{root}' has two folders for the {split} split: {by_split[split].name}/ and {folder.name}/"
            )
        by_split[split] = folder
    for needed in ("train", "test"):
        if needed not in by_split:
            raise DataError(
                f"'{root}' has split folders ({', '.join(f.name + '/' for _, f in found)}) but no {needed} folder"
            )
    return [(s, by_split[s]) for s in SPLIT_ORDER if s in by_split]


def _is_flat(root: Path) -> bool:
    """Images at ``root``'s top, or fewer than two folders: no class folders to take labels from."""
    return _root_images(root) or len(sub_folders(root)) < 2


def _root_images(root: Path) -> bool:
    """Whether image files lie directly in ``root``."""
    return any(
        p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS for p in root.iterdir() if not p.name.startswith(".")
    )


def _split_folder_scan(root: Path, splits: list[tuple[str, Path]]) -> DatasetScan:
    """The images of each split folder's class folders; the classes are their union."""
    found: dict[str, list[tuple[str, Path]]] = {}  # class -> (split, image)
    for split, folder in splits:
        class_dirs = sub_folders(folder)
        check_utf8_names(class_dirs)
        files = [(d.name, f) for d in class_dirs for f in image_files(d)]
        if not files:
            raise DataError(f"split folder '{folder}' holds no images in class folders")
        for class_name, path in files:
            found.setdefault(class_name, []).append((split, path))
    names = tuple(sorted(found))
    if len(names) < 2:
        raise DataError(f"split folders of '{root}' need at least two class folders (found: {', '.join(names)})")
    untrained = [n for n in names if not any(s == "train" for s, _ in found[n])]
    if untrained:
        train = splits[0][1].name
        raise DataError(f"class(es) with no training image in {train}/: {', '.join(untrained)}")
    records = tuple(
        ImageRecord(path, path.relative_to(root).as_posix(), idx, split)
        for idx, name in enumerate(names)
        for split, path in sorted(
            found[name], key=lambda sp: (SPLIT_ORDER.index(sp[0]), sp[1].relative_to(root).as_posix())
        )
    )
    source = DataSource(SPLIT_FOLDERS, FOLDERS_SPLIT, tuple(f.name for _, f in splits))
    return DatasetScan(root, names, records, source=source)


def with_subfolders(scan: DatasetScan) -> DatasetScan:
    """``scan`` with a ``subfolder`` column (the first folder below the class folder) when any image is in one."""
    depth = 2 if scan.source.layout == SPLIT_FOLDERS else 1  # path parts before the class folder's contents
    parts = [r.rel_path.split("/") for r in scan.records]
    values = tuple(p[depth] if len(p) > depth + 1 else None for p in parts)
    if all(v is None for v in values):
        return scan
    return replace(scan, metadata=Metadata((MetadataColumn(SUBFOLDER, "category", values),)))


def manifest_scan(root: Path, manifest: Manifest, splits: list[tuple[str, Path]] | None = None) -> DatasetScan:
    """The images a manifest lists, labelled as it says; split by its split column, else by ``splits`` (folders)."""
    names = tuple(sorted({row.label for row in manifest.rows}))
    if len(names) < 2:
        raise DataError(
            f"{manifest.name} gives {len(names)} usable label(s) ({', '.join(names) or 'none'}); two are needed"
        )
    index = {name: i for i, name in enumerate(names)}
    rows = sorted(manifest.rows, key=lambda r: (index[r.label], r.rel_path))
    folder_split = {f.name: split for split, f in splits or ()} if not manifest.split_column else {}
    if folder_split:  # the split folders the listed images lie in
        rows = [replace(r, split=folder_split.get(r.rel_path.split("/")[0], "")) for r in rows]
        if not all(r.split for r in rows):
            folder_split = {}
            rows = [replace(r, split="") for r in rows]
    records = tuple(ImageRecord(root / r.rel_path, r.rel_path, index[r.label], r.split, r.line) for r in rows)
    metadata = Metadata(
        tuple(typed_column(c, [r.values[i] for r in rows]) for i, c in enumerate(manifest.metadata_columns))
    )
    source = DataSource(
        MANIFEST,
        MANIFEST_SPLIT if manifest.split_column else FOLDERS_SPLIT if folder_split else "",
        tuple(f.name for _, f in splits or ()) if folder_split else (),
        manifest=manifest.name,
        manifest_columns=manifest.columns,
    )
    return DatasetScan(root, names, records, manifest.skipped, metadata, source)


def with_manifest(scan: DatasetScan, manifest: Manifest) -> DatasetScan:
    """Folder-labelled ``scan`` with the manifest's metadata, its split (for class folders) and its disagreements."""
    by_path = {row.rel_path: row for row in manifest.rows}
    known = {r.rel_path for r in scan.records}
    where = "split folders" if scan.source.layout == SPLIT_FOLDERS else "class folders"
    skipped = [*manifest.skipped]
    skipped += [SkippedFile(p, f"not an image of the {where}", r.line) for p, r in by_path.items() if p not in known]
    records, split_source = list(scan.records), scan.source.split_source
    if manifest.split_column and not split_source:
        records, unlisted = _split_from(records, by_path)
        skipped += [SkippedFile(r.rel_path, f"not listed in {manifest.name}, which gives the split") for r in unlisted]
        split_source = MANIFEST_SPLIT
    disagreements = tuple(
        LabelDisagreement(
            r.rel_path, scan.class_names[r.class_idx], by_path[r.rel_path].label, by_path[r.rel_path].line
        )
        for r in records
        if manifest.label_column
        and r.rel_path in by_path
        and by_path[r.rel_path].label != scan.class_names[r.class_idx]
    )
    keep = {r.rel_path for r in records}
    own = [(c.name, c) for c in scan.metadata.columns if c.name not in manifest.metadata_columns]
    kept_own = [i for i, r in enumerate(scan.records) if r.rel_path in keep]
    columns = [MetadataColumn(n, c.kind, tuple(c.values[i] for i in kept_own)) for n, c in own]
    for i, name in enumerate(manifest.metadata_columns):
        columns.append(
            typed_column(name, [by_path[r.rel_path].values[i] if r.rel_path in by_path else None for r in records])
        )
    source = replace(
        scan.source,
        split_source=split_source,
        manifest=manifest.name,
        manifest_columns=manifest.columns,
        label_disagreements=disagreements,
    )
    return replace(
        scan, records=tuple(records), skipped=tuple(skipped), metadata=Metadata(tuple(columns)), source=source
    )


def _split_from(
    records: Sequence[ImageRecord], by_path: dict[str, ManifestRow]
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """The records the manifest lists, with its split, and the ones it does not list."""
    listed = [
        replace(r, split=by_path[r.rel_path].split, line=by_path[r.rel_path].line)
        for r in records
        if r.rel_path in by_path
    ]
    return listed, [r for r in records if r.rel_path not in by_path]
