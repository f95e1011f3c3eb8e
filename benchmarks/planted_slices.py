"""Plant a slice where the model fails (a second, worse camera) in the shared photo sets and score the slice finder.

For each set, every photo is degraded once in each of three ways and its pretrained features computed:

* ``blur_dim``: Gaussian blur of 2 % of the longer side, contrast x0.5, brightness x0.4 (saved at the photo's
  own JPEG quality);
* ``jpeg10``: re-saved at JPEG quality 10;
* ``crop``: the centre quarter of the area (half of each side), saved at the photo's own quality.

Then, in each of ``--draws`` draws, a random 15-20 % of each class is swapped for its degraded version, the
data set is split as ``reportgen run`` splits it, and the audited model is the cheapest honest one: the linear
probe on the pretrained features, fitted on the training split (``reportgen.model.probe``, the default
recipe's first stage; no fine-tuning, so a draw costs seconds). The slice finder runs with the run's defaults
on the metadata (with and without a column ``camera`` naming the degraded photos), the image properties and
the feature clusters. No label check runs (suspect shares are not scored).

Printed per set, degradation and metadata: in how many draws the planted slice is found (a reported slice
sharing at least half its validation+test images with it, Jaccard), its ranks, and the precision and recall of
the first reported slice's validation+test members against the planted ones (means over the draws). Then, on
the clean sets, the slices reported, with a contact sheet of each one's images in ``--sheets``. Beside it, for
each draw, the pairs at the near-copy threshold in the features and those the pixels confirm (no copy is
planted here, so a confirmed pair is a copy the set already held, or a false one).

Usage::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/planted_slices.py                 # ~15 min on 2 shared cores
    PYTHONPATH=$PWD .venv/bin/python benchmarks/planted_slices.py --sets food9-64px --draws 1
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import PRODUCT, SHARED, load_features
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from reportgen.analysis.neighbours import similar_pairs
from reportgen.analysis.pixel_match import MIN_PIXEL_CORRELATION, pixel_correlation
from reportgen.analysis.slice_candidates import (
    METADATA,
    cluster_candidates,
    metadata_candidates,
    property_candidates,
)
from reportgen.analysis.slices import EVALUATED_SPLITS, Slices, find_slices
from reportgen.data.dataset import ImageInfo, decode_image, scan_dataset
from reportgen.data.image_facts import jpeg_quality
from reportgen.data.metadata import Metadata, MetadataColumn
from reportgen.data.splits import split_dataset
from reportgen.model.probe import fit_linear_probe

KINDS = ("blur_dim", "jpeg10", "crop")
SHARE = (0.15, 0.20)  # share of each class degraded, drawn uniformly


@dataclasses.dataclass(frozen=True)
class Version:
    """One version of every photo of a set: facts, features, labels."""

    infos: tuple[ImageInfo, ...]
    embeddings: np.ndarray
    labels: np.ndarray
    rel_paths: tuple[str, ...]
    class_names: tuple[str, ...]


def main() -> None:
    args = _parser().parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.sets:
        original = _version(args.cache, name, None)
        for kind in KINDS:
            degraded = _version(args.cache, name, kind)
            if degraded.rel_paths != original.rel_paths:
                raise SystemExit(f"{name} {kind}: the degraded copy lists other files")
            for draw in range(args.draws):
                rows += _draw(name, kind, draw, original, degraded)
    if rows:
        _summary(rows)
    for name in args.clean:
        _clean(name, _version(args.cache, name, None), args.sheets)
    if args.time_at:
        _time_at(args.time_at, [_version(args.cache, name, kind) for name in args.sets for kind in (None, *KINDS)])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["food101-pss", "food9-64px"])
    parser.add_argument("--clean", nargs="*", default=["food101-pss", "food9-64px", "clothing-mini"])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "planted-slices-cache")
    parser.add_argument("--sheets", type=Path, default=Path(tempfile.gettempdir()) / "planted-slices-sheets")
    parser.add_argument("--time-at", type=int, default=5000, help="images of the timed set (0: no timing)")
    return parser


def _version(cache: Path, name: str, kind: str | None) -> Version:
    """The set's photos (degraded by ``kind``, or as they are), decoded and embedded once, then cached."""
    path = cache / f"{name}-{kind or 'original'}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    from reportgen.model.runtime import resolve_runtime

    source = SHARED / name
    with tempfile.TemporaryDirectory(prefix="slices-") as tmp:
        root = source if kind is None else _degraded_copy(source, Path(tmp) / name, kind)
        start = time.perf_counter()
        images, features, _ = load_features(scan_dataset(root), resolve_runtime("cpu"))
        print(
            f"{name} {kind or 'original'}: {len(images.labels)} photos embedded in {time.perf_counter() - start:.0f} s"
        )
    version = Version(images.infos, features.embeddings, images.labels, images.rel_paths, images.class_names)
    path.write_bytes(pickle.dumps(version))
    return version


def _degraded_copy(source: Path, target: Path, kind: str) -> Path:
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as img:
            quality = jpeg_quality(img) or 90
            photo = ImageOps.exif_transpose(img).convert("RGB")
        out.write_bytes(_degrade(photo, kind, quality))
    return target


def _degrade(photo: Image.Image, kind: str, quality: int) -> bytes:
    if kind == "blur_dim":
        photo = photo.filter(ImageFilter.GaussianBlur(0.02 * max(photo.size)))
        photo = ImageEnhance.Brightness(ImageEnhance.Contrast(photo).enhance(0.5)).enhance(0.4)
    elif kind == "jpeg10":
        quality = 10
    elif kind == "crop":
        w, h = photo.size
        photo = photo.crop((w // 4, h // 4, w - w // 4, h - h // 4))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _draw(name: str, kind: str, draw: int, original: Version, degraded: Version) -> list[dict]:
    rng = np.random.default_rng(draw)
    labels = original.labels
    planted = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        planted[rng.choice(members, round(rng.uniform(*SHARE) * len(members)), replace=False)] = True
    infos = tuple(d if p else o for o, d, p in zip(original.infos, degraded.infos, planted, strict=True))
    embeddings = np.where(planted[:, None], degraded.embeddings, original.embeddings)
    splits, probs = _audited_model(embeddings, labels, original.class_names)
    copies = _copies(name, kind, original.rel_paths, embeddings, planted)
    rows = []
    for with_meta in (True, False):
        meta = Metadata((MetadataColumn("camera", "category", tuple(np.where(planted, "second", "first"))),))
        start = time.perf_counter()
        found = _find(infos, embeddings, labels, splits, probs, meta if with_meta else Metadata())
        seconds = time.perf_counter() - start
        row = _score(found, planted, splits, probs, labels)
        row.update(set=name, kind=kind, meta=with_meta, draw=draw, seconds=round(seconds, 2), **copies)
        print(json.dumps(row))
        rows.append(row)
    return rows


def _copies(name: str, kind: str, rel_paths: tuple[str, ...], embeddings: np.ndarray, planted: np.ndarray) -> dict:
    """Pairs at the near-copy threshold in the features, and those the pixels confirm (decoded again, few)."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    a, b, _ = similar_pairs(unit.astype(np.float32), PRODUCT.near_duplicate_threshold)
    rows = np.unique(np.concatenate([a, b]))
    pixels = np.zeros((len(rows), 224, 224, 3), np.uint8)
    for k, i in enumerate(rows):
        path = SHARED / name / rel_paths[i]
        data = path.read_bytes()
        if planted[i]:
            with Image.open(path) as img:
                quality = jpeg_quality(img) or 90
                data = _degrade(ImageOps.exif_transpose(img).convert("RGB"), kind, quality)
        pixels[k] = decode_image(data, 224)[0]
    where = {int(i): k for k, i in enumerate(rows)}
    ia, ib = np.array([where[int(i)] for i in a], int), np.array([where[int(i)] for i in b], int)
    confirmed = pixel_correlation(pixels, ia, ib) >= MIN_PIXEL_CORRELATION
    both = planted[a] & planted[b]
    kept = [f"{rel_paths[i]} ~ {rel_paths[j]}" for i, j, ok in zip(a, b, confirmed, strict=True) if ok]
    return {"feature_pairs": len(a), "degraded_pairs": int(both.sum()), "pixel_confirmed": kept}


def _audited_model(embeddings: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]):
    splits = split_dataset(labels, class_names, PRODUCT.split, PRODUCT.seed, Path("."))
    train = splits == "train"
    probe = fit_linear_probe(embeddings[train], labels[train], num_classes=len(class_names), seed=PRODUCT.seed)
    return splits, probe.probs(embeddings)


def _find(infos, embeddings, labels, splits, probs, meta: Metadata) -> Slices:
    candidates = [
        *metadata_candidates(meta, len(labels)),
        *property_candidates(infos),
        *cluster_candidates(embeddings, labels, seed=PRODUCT.seed),
    ]
    return find_slices(
        candidates,
        labels,
        probs,
        splits,
        suspects=None,
        min_size=PRODUCT.slice_min_size,
        min_effect=PRODUCT.slice_min_effect,
        alpha=PRODUCT.slice_alpha,
    )


def _score(found: Slices, planted: np.ndarray, splits: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> dict:
    evaluated = np.isin(splits, EVALUATED_SPLITS)
    wrong = probs.argmax(1) != labels
    scores = probs[np.arange(len(labels)), labels]
    truth = planted & evaluated
    rank, top = None, {}
    for k, s in enumerate(found.slices, 1):
        members = np.zeros(len(planted), bool)
        members[list(s.members)] = True
        members &= evaluated
        hit = int((members & truth).sum())
        if k == 1:
            top = {"top": s.description, "top_source": s.source, "precision": hit / max(members.sum(), 1)}
            top["recall"] = hit / max(truth.sum(), 1)
        if rank is None and hit / (members | truth).sum() >= 0.5:
            rank = k
    return {
        "planted_error": round(float(wrong[truth].mean()), 3),
        "rest_error": round(float(wrong[evaluated & ~planted].mean()), 3),
        "planted_score": round(float(scores[truth].mean()), 3),
        "rest_score": round(float(scores[evaluated & ~planted].mean()), 3),
        "slices": len(found.slices),
        "rank": rank,
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in top.items()},
    }


def _summary(rows: list[dict]) -> None:
    print(
        "\n| set | degradation | metadata column | error planted / rest | true-class score planted / rest | "
        "found (draws) | ranks | first slice's source | precision | recall |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    keys = dict.fromkeys((r["set"], r["kind"], r["meta"]) for r in rows)
    for name, kind, meta in keys:
        group = [r for r in rows if (r["set"], r["kind"], r["meta"]) == (name, kind, meta)]
        found = sum(r["rank"] is not None for r in group)
        ranks = ",".join(str(r["rank"] or "-") for r in group)
        sources = ",".join(sorted({r.get("top_source", "none").replace(METADATA, "metadata") for r in group}))
        p = np.mean([r.get("precision", 0.0) for r in group])
        rec = np.mean([r.get("recall", 0.0) for r in group])
        err = f"{np.mean([r['planted_error'] for r in group]):.1%} / {np.mean([r['rest_error'] for r in group]):.1%}"
        score = " ".join(f"{r['planted_score']:.2f}/{r['rest_score']:.2f}" for r in group)
        print(
            f"| {name} | {kind} | {'yes' if meta else 'no'} | {err} | {score} | {found}/{len(group)} | {ranks} | "
            f"{sources} | {p:.2f} | {rec:.2f} |"
        )
    print(f"slice finder seconds per draw: max {max(r['seconds'] for r in rows):.2f}")
    print("\n| set | degradation | pairs >= threshold in the features (of them both degraded) | confirmed in pixels |")
    print("|---|---|---|---|")
    for name, kind in dict.fromkeys((r["set"], r["kind"]) for r in rows):
        group = [r for r in rows if (r["set"], r["kind"], r["meta"]) == (name, kind, True)]
        pairs = ", ".join(f"{r['feature_pairs']} ({r['degraded_pairs']})" for r in group)
        kept = sorted({p for r in group for p in r["pixel_confirmed"]})
        print(f"| {name} | {kind} | {pairs} | {len(kept)}: {'; '.join(kept) or '-'} |")


def _clean(name: str, version: Version, sheets: Path) -> None:
    splits, probs = _audited_model(version.embeddings, version.labels, version.class_names)
    found = _find(version.infos, version.embeddings, version.labels, splits, probs, Metadata())
    print(f"\nclean {name}: {len(found.slices)} slice(s) of {found.tested} tested; error rate {found.error_rate:.1%}")
    sheets.mkdir(parents=True, exist_ok=True)
    for k, s in enumerate(found.slices, 1):
        print(
            f"  {k}. {s.description}: {s.error_rate:.1%} wrong vs {s.rest_error_rate:.1%}, {s.evaluated} images, "
            f"p_adj {s.p_adjusted:.2g}; merged {list(s.merged)}"
        )
        _sheet(SHARED / name, [version.rel_paths[i] for i in s.members], sheets / f"{name}-slice{k}.png")


def _sheet(root: Path, paths: list[str], out: Path, side: int = 96, columns: int = 10) -> None:
    """A contact sheet of up to 40 of a slice's images, to look at."""
    shown = paths[:40]
    sheet = Image.new("RGB", (columns * side, -(-len(shown) // columns) * side), "white")
    for k, rel in enumerate(shown):
        with Image.open(root / rel) as img:
            thumb = ImageOps.fit(ImageOps.exif_transpose(img).convert("RGB"), (side, side))
        sheet.paste(thumb, ((k % columns) * side, (k // columns) * side))
    sheet.save(out)
    print(f"     contact sheet: {out}")


def _time_at(n: int, versions: list[Version]) -> None:
    """Seconds the finder adds to a run of ``n`` images: the decode step's new facts and the slice stage."""
    from reportgen.data.image_facts import sharpness

    rows = [(v, i) for v in versions for i in range(len(v.labels))]
    picks = [rows[k % len(rows)] for k in range(n)]
    infos = tuple(v.infos[i] for v, i in picks)
    embeddings = np.stack([v.embeddings[i] for v, i in picks])
    labels = np.array([v.labels[i] for v, i in picks])
    class_names = tuple(str(c) for c in range(labels.max() + 1))
    splits, probs = _audited_model(embeddings, labels, class_names)
    luminance = np.random.default_rng(0).random((224, 224), dtype=np.float32)
    start = time.process_time()
    for _ in range(n):
        sharpness(luminance)
    decode = time.process_time() - start
    start, cpu = time.perf_counter(), time.process_time()
    found = _find(infos, embeddings, labels, splits, probs, Metadata())
    stage, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"\n{n} images: sharpness in the decode step {decode:.2f} s of CPU (spread over the decode threads), "
        f"slice stage {stage:.2f} s wall, {cpu:.2f} s CPU over all threads ({sum(found.tried.values())} candidates)"
    )


if __name__ == "__main__":
    main()
