"""A corpus of bad inputs, generated (never downloaded) into a temporary folder.

Each ``make_*`` function writes one bad input under ``folder`` and returns its path. Images are tiny so
the whole corpus builds in milliseconds.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

EXIF_ORIENTATION = 0x0112
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def make_good_jpeg(folder: Path, name: str = "good.jpg", seed: int = 0) -> Path:
    """A valid 32x24 RGB JPEG of noise."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    _noise(32, 24, seed).save(path, "JPEG", quality=90)
    return path


def make_zero_byte(folder: Path) -> Path:
    """An empty file named .jpg."""
    path = folder / "empty.jpg"
    path.write_bytes(b"")
    return path


def make_truncated_jpeg(folder: Path) -> Path:
    """A JPEG cut after half of its bytes (header intact, scan data missing)."""
    buffer = io.BytesIO()
    _noise(64, 64).save(buffer, "JPEG", quality=95)
    path = folder / "truncated.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def make_text_as_jpeg(folder: Path) -> Path:
    """A text file named .jpg."""
    path = folder / "notes.jpg"
    path.write_text("this is not an image\n", "utf-8")
    return path


def make_cmyk_jpeg(folder: Path) -> Path:
    """A pure red CMYK JPEG (C=0, M=Y=100 %, K=0)."""
    path = folder / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, "JPEG", quality=95)
    return path


def make_16bit_png(folder: Path) -> Path:
    """A 16-bit grayscale PNG: a horizontal ramp from 0 to 65535."""
    ramp = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (8, 1))
    path = folder / "deep.png"
    Image.fromarray(ramp).save(path, "PNG")
    return path


def make_palette_png_with_transparency(folder: Path) -> Path:
    """A palette PNG: left half transparent (index 0), right half opaque red (index 1)."""
    img = Image.new("P", (16, 16), 0)
    img.putpalette([0, 0, 0, *RED] + [0] * (256 - 2) * 3)
    img.paste(1, (8, 0, 16, 16))
    path = folder / "palette.png"
    img.save(path, "PNG", transparency=0)
    return path


def make_grayscale(folder: Path) -> Path:
    """An 8-bit grayscale ("L") JPEG."""
    path = folder / "gray.jpg"
    Image.fromarray(np.tile(np.arange(0, 256, 8, dtype=np.uint8), (16, 1))).save(path, "JPEG")
    return path


def make_one_pixel(folder: Path) -> Path:
    """A 1x1 px PNG."""
    path = folder / "pixel.png"
    Image.new("RGB", (1, 1), RED).save(path, "PNG")
    return path


def make_png_header_bomb(folder: Path, side: int = 100_000) -> Path:
    """A tiny PNG whose header claims ``side`` x ``side`` pixels (far over Pillow's bomb limit)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
    path = folder / "bomb.png"
    path.write_bytes(data)
    return path


def make_exif_rotated_jpeg(folder: Path) -> Path:
    """A 40x20 JPEG stored left red / right blue, with EXIF orientation 6 (display rotated 90 deg clockwise).

    Shown correctly it is 20x40 (portrait), red on top and blue below.
    """
    stored = Image.new("RGB", (40, 20), RED)
    stored.paste(BLUE, (20, 0, 40, 20))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    path = folder / "rotated.jpg"
    stored.save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


SPECIAL_CLASS_NAMES = ("<b>x<\\b>", "café", 'a&b"c')  # '/' cannot be in a folder name, hence <\b>
SPECIAL_FILE_NAMES = ("<img src=x onerror=alert(1)>.jpg", "crème brûlée 🍮.jpg", "a&b\"c'd.jpg")


def make_special_names_dataset(root: Path) -> Path:
    """Three class folders with HTML-special and non-ASCII names, each holding three specially named images."""
    for class_idx, class_name in enumerate(SPECIAL_CLASS_NAMES):
        for file_idx, file_name in enumerate(SPECIAL_FILE_NAMES):
            make_good_jpeg(root / class_name, file_name, seed=10 * class_idx + file_idx)
    return root


def make_non_utf8_file_name(folder: Path) -> Path:
    """A valid JPEG whose file name is not UTF-8 (Latin-1 'caf\\xe9.jpg'), as old archives leave them."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = os.fsencode(folder) + b"/caf\xe9.jpg"
    buffer = io.BytesIO()
    _noise(32, 24).save(buffer, "JPEG")
    with open(raw, "wb") as f:
        f.write(buffer.getvalue())
    return Path(os.fsdecode(raw))


def make_hidden_entries(class_dir: Path) -> list[Path]:
    """Hidden files and folders as macOS and editors leave them, each holding a readable image."""
    paths = [
        make_good_jpeg(class_dir, ".hidden.jpg"),
        make_good_jpeg(class_dir, "._resource-fork.jpg"),
        make_good_jpeg(class_dir / ".thumbnails", "thumb.jpg"),
    ]
    (class_dir / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return paths


def make_symlink_loop(class_dir: Path) -> list[Path]:
    """A folder link back to its parent, and two file links pointing at each other."""
    loop_dir = class_dir / "loop"
    loop_dir.symlink_to(class_dir, target_is_directory=True)
    a, b = class_dir / "a.jpg", class_dir / "b.jpg"
    a.symlink_to(b)
    b.symlink_to(a)
    return [loop_dir, a, b]


def make_not_writable_parent(folder: Path) -> Path:
    """An output path under a regular file: not creatable even by root (chmod does not stop root)."""
    blocker = folder / "a-file"
    blocker.write_text("not a folder\n", "utf-8")
    return blocker / "out"


def make_checkpoint_for_classes(folder: Path, class_names: tuple[str, ...], name: str = "other.pt") -> Path:
    """A weights-only reportgen checkpoint payload for ``class_names`` (no real weights)."""
    payload = {
        "format": 1,
        "arch": "resnet18",
        "class_names": list(class_names),
        "image_size": 224,
        "normalisation": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "cam_layer": "layer4",
        "head": "fc",
        "weights_source": "test",
        "state_dict": {"fc.weight": torch.zeros(len(class_names), 512)},
        "config": {},
    }
    path = folder / name
    torch.save(payload, path)
    return path


class ArbitraryObject:
    """A class that only full unpickling can rebuild; ``weights_only=True`` must refuse it."""

    def __init__(self) -> None:
        self.note = "not weights"


def make_pickled_object_checkpoint(folder: Path) -> Path:
    """A torch.save of an arbitrary Python object (not weights-only)."""
    path = folder / "pickled.pt"
    torch.save({"format": 1, "model": ArbitraryObject()}, path)
    return path


def make_plain_pickle(folder: Path) -> Path:
    """A plain ``pickle.dumps`` file named .pt (not even a torch archive)."""
    path = folder / "plain.pt"
    path.write_bytes(pickle.dumps(ArbitraryObject()))
    return path


# --- manifests (a table of paths, labels, splits and metadata beside a flat folder of images) -----------

MANIFEST_HEADER = "file_name,label,split,annotator"


def make_manifest_dataset(root: Path) -> list[str]:
    """A flat ``root/images/`` of six good JPEGs (a0-a2 labelled a, b0-b2 labelled b); the manifest's lines."""
    lines = [MANIFEST_HEADER]
    for label in ("a", "b"):
        for i in range(3):
            make_good_jpeg(root / "images", f"{label}{i}.jpg", seed=10 * ord(label) + i)
            lines.append(f"images/{label}{i}.jpg,{label},{('train', 'train', 'test')[i]},ann{i}")
    return lines


def bad_manifest_row(root: Path, kind: str) -> str:
    """One manifest line of the row-level ``kind`` (see MANIFEST_ROW_KINDS), with the files it needs made."""
    outside = make_good_jpeg(root.parent / f"outside-{root.name}", "outside.jpg")
    if kind == "unreadable image":
        make_text_as_jpeg(root / "images")
    if kind in ("empty label", "unknown split"):
        make_good_jpeg(root / "images", "extra.jpg", seed=99)
    if kind == "symlink out":
        (root / "images" / "link.jpg").symlink_to(outside)
    return {
        "missing file": "images/nothere.jpg,a,train,x",
        "unreadable image": "images/notes.jpg,a,train,x",
        "empty label": "images/extra.jpg,,train,x",
        "unknown split": "images/extra.jpg,a,holdout,x",
        "same file, other label": "images/a0.jpg,b,train,x",
        "absolute path": f"{outside},a,train,x",
        "parent path": f"../{outside.parent.name}/outside.jpg,a,train,x",
        "symlink out": "images/link.jpg,a,train,x",
        "empty path": ",a,train,x",
    }[kind]


def bad_manifest_file(root: Path, kind: str) -> Path:
    """A manifest of the file-level ``kind`` (see MANIFEST_FILE_KINDS) beside ``make_manifest_dataset``'s images."""
    lines = make_manifest_dataset(root)
    path = root / "labels.csv"
    if kind == "no path column":
        lines[0] = "name,label,split,annotator"
    elif kind == "no label column":
        lines = [",".join(line.split(",")[:1] + line.split(",")[2:]) for line in lines]
    elif kind == "repeated column":
        lines[0] = "file_name,label,split,label"
    elif kind == "too few fields":
        lines[3] = "images/a2.jpg,a"
    elif kind == "broken quoting":
        lines[4] = 'images/b0.jpg,"b,train,ann0'
    elif kind == "empty file":
        lines = []
    elif kind == "unknown file type":
        path = root / "labels.xlsx"
    elif kind == "broken json line":
        path = root / "labels.jsonl"
        rows = [dict(zip(MANIFEST_HEADER.split(","), line.split(","), strict=True)) for line in lines[1:]]
        lines = [json.dumps(r) for r in rows]
        lines[2] = lines[2][:-5]
    text = "\n".join(lines) + ("\n" if lines else "")
    if kind == "wrong encoding":
        path.write_bytes(text.replace("ann2", "caf\xe9").encode("latin-1"))
    else:
        path.write_text(text, "utf-8")
    return path
