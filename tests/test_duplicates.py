from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest

from reportgen.analysis.duplicates import find_duplicates
from reportgen.config import RunConfig

THRESHOLD = RunConfig.near_duplicate_threshold  # as a default run


def _unit(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _hashes(n: int) -> list[str]:
    return [f"h{i}" for i in range(n)]


def test_exact_duplicates_by_hash_within_and_across_classes():
    hashes = ["a", "b", "a", "c", "a", "b"]
    labels = np.array([0, 0, 0, 1, 1, 1])
    dups = find_duplicates(hashes, labels, threshold=THRESHOLD)
    pairs = {(p.idx_a, p.idx_b): p for p in dups.pairs}
    assert set(pairs) == {(0, 2), (0, 4), (2, 4), (1, 5)}
    assert dups.n_exact_pairs == 4 and dups.n_near_pairs == 0
    assert not pairs[(0, 2)].across_classes
    assert pairs[(0, 4)].across_classes and pairs[(1, 5)].across_classes
    assert dups.n_across_classes == 3
    assert dups.groups == ((0, 2, 4), (1, 5))
    assert dups.n_images_involved == 5
    assert dups.threshold is None  # no embeddings: exact only
    assert all(p.similarity is None and p.kind == "exact" for p in dups.pairs)
    assert dups.pairs[0].across_classes  # the most harmful pairs come first


def test_leakage_across_splits():
    hashes = ["a", "a", "b", "b", "c", "c"]
    labels = np.zeros(6, int)
    splits = np.array(["train", "test", "val", "val", "test", "val"])
    dups = find_duplicates(hashes, labels, splits=splits, threshold=THRESHOLD)
    assert dups.n_leaking == 2
    assert dups.leaks_by_splits == {"train-test": 1, "val-test": 1}
    leaking = {(p.idx_a, p.idx_b) for p in dups.pairs if p.leaks}
    assert leaking == {(0, 1), (4, 5)}
    assert [p for p in dups.pairs if not p.leaks][0].split_a == "val"


def test_near_duplicates_by_cosine():
    rng = np.random.default_rng(0)
    emb = _unit(rng, 50)
    emb[40] = emb[3] + 0.05 * _unit(rng, 1)[0]  # cosine ~0.999
    emb[41] = emb[7] * 0.8 + 0.6 * _unit(rng, 1)[0]  # cosine ~0.8: not a duplicate
    dups = find_duplicates(_hashes(50), np.zeros(50, int), emb, threshold=THRESHOLD)
    assert [(p.idx_a, p.idx_b, p.kind) for p in dups.pairs] == [(3, 40, "near")]
    assert dups.pairs[0].similarity > THRESHOLD
    assert dups.threshold == THRESHOLD


def test_exact_pair_is_not_counted_twice():
    rng = np.random.default_rng(1)
    emb = _unit(rng, 10)
    emb[9] = emb[2]
    hashes = _hashes(10)
    hashes[9] = hashes[2]
    dups = find_duplicates(hashes, np.zeros(10, int), emb, threshold=THRESHOLD)
    assert dups.n_exact_pairs == 1 and dups.n_near_pairs == 0
    assert dups.pairs[0].similarity == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("block_size", [1, 7, 64, 4096])
def test_blocked_search_matches_brute_force(block_size):
    rng = np.random.default_rng(2)
    emb = _unit(rng, 120, dim=4)  # low dimension: many pairs above a moderate threshold
    sims = emb @ emb.T
    expected = {(a, b) for a in range(120) for b in range(a + 1, 120) if sims[a, b] >= 0.97}
    dups = find_duplicates(
        _hashes(120), np.zeros(120, int), emb, threshold=0.97, block_size=block_size, max_pairs=10_000
    )
    assert {(p.idx_a, p.idx_b) for p in dups.pairs} == expected
    assert dups.n_near_pairs == len(expected) and not dups.truncated


def test_max_pairs_truncates_but_counts_everything():
    hashes = ["a"] * 6  # 15 pairs
    dups = find_duplicates(hashes, np.zeros(6, int), max_pairs=4, threshold=THRESHOLD)
    assert len(dups.pairs) == 4 and dups.truncated
    assert dups.n_exact_pairs == 15
    assert dups.groups == ((0, 1, 2, 3, 4, 5),)


def test_result_is_json_able_and_validates_lengths():
    rng = np.random.default_rng(3)
    emb = _unit(rng, 4)
    emb[3] = emb[0]
    dups = find_duplicates(
        ["a", "b", "c", "d"], np.array([0, 1, 0, 1]), emb, np.array(["train"] * 3 + ["test"]), threshold=THRESHOLD
    )
    json.dumps(dataclasses.asdict(dups), allow_nan=False)
    with pytest.raises(ValueError, match="same N"):
        find_duplicates(["a"], np.array([0, 1]), threshold=THRESHOLD)


def test_scales_to_ten_thousand_images():
    rng = np.random.default_rng(4)
    emb = rng.random((10_000, 64), dtype=np.float32)
    emb[9_990:] = emb[:10] * 1.01  # ten planted copies
    dups = find_duplicates(_hashes(10_000), np.zeros(10_000, int), emb, threshold=0.99999)
    assert {(p.idx_a, p.idx_b) for p in dups.pairs} == {(i, 9_990 + i) for i in range(10)}


def _altered_copies(images, picks):
    from PIL import Image, ImageOps

    from reportgen.data.dataset import decode_image

    out = []
    for k, i in enumerate(picks):
        photo = Image.open(images.root / images.rel_paths[i]).convert("RGB")
        if k % 3 == 0:
            photo = photo.resize((photo.width // 2, photo.height // 2), Image.Resampling.LANCZOS)
        elif k % 3 == 1:
            photo = ImageOps.crop(photo, border=int(0.04 * min(photo.size)))
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", quality=60 if k % 3 == 2 else 85)
        out.append(decode_image(buffer.getvalue(), 224))
    return out


@pytest.mark.e2e
def test_real_photos_altered_copies_are_found_and_nothing_else():
    from _finder_data import embed, embeddings, loaded

    images = loaded("clothing-mini")
    picks = [3, 40, 77, 101, 130, 149]
    copies = _altered_copies(images, picks)
    emb = np.concatenate([embeddings("clothing-mini"), embed(np.stack([c[0] for c in copies]), 5)])
    hashes = [i.sha256 for i in images.infos] + [c[1].sha256 for c in copies]
    labels = np.concatenate([images.labels, images.labels[picks]])
    pixels = np.concatenate([images.pixels, np.stack([c[0] for c in copies])])
    dups = find_duplicates(hashes, labels, emb, threshold=THRESHOLD, pixels=pixels)
    n = len(images.labels)
    assert {(p.idx_a, p.idx_b) for p in dups.pairs} == {(i, n + k) for k, i in enumerate(picks)}
    assert dups.n_unconfirmed == 0
    assert all(p.kind == "near" and not p.across_classes for p in dups.pairs)


def test_faiss_index_path_finds_the_same_duplicates():
    rng = np.random.default_rng(5)
    emb = _unit(rng, 600, dim=24)
    emb[100:103] = emb[7] + 0.02 * rng.normal(size=(3, 24))  # a group of four near copies
    emb[400] = emb[250] + 0.02 * rng.normal(size=24)
    labels = rng.integers(0, 3, 600)
    splits = np.array(["train", "val", "test"])[rng.integers(0, 3, 600)]
    exact = find_duplicates(_hashes(600), labels, emb, splits, threshold=THRESHOLD)
    indexed = find_duplicates(_hashes(600), labels, emb, splits, threshold=THRESHOLD, index_from=0)
    assert exact.n_near_pairs == 7 and exact.groups == ((7, 100, 101, 102), (250, 400))
    assert [(p.idx_a, p.idx_b, p.leaks) for p in indexed.pairs] == [(p.idx_a, p.idx_b, p.leaks) for p in exact.pairs]
    assert indexed.groups == exact.groups and indexed.leaks_by_splits == exact.leaks_by_splits


def _scene(rng: np.random.Generator, side: int = 224) -> np.ndarray:
    """A smooth random colour scene (low-frequency noise, upsampled), like a photo's coarse layout."""
    from PIL import Image

    coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC))


def _altered(pixels: np.ndarray, how: str) -> np.ndarray:
    from PIL import Image, ImageEnhance, ImageFilter, ImageOps

    img = Image.fromarray(pixels)
    side = img.width
    if how == "crop":
        img = img.crop((side // 20, side // 20, side - side // 20, side - side // 20)).resize((side, side))
    elif how == "mirror":
        img = ImageOps.mirror(img)
    elif how == "brighter":
        img = ImageEnhance.Brightness(img).enhance(1.15)
    elif how == "degraded":
        img = ImageEnhance.Brightness(img.filter(ImageFilter.GaussianBlur(6))).enhance(0.4)
    return np.asarray(img)


def test_near_pairs_in_the_features_must_be_one_picture_in_the_pixels():
    rng = np.random.default_rng(0)
    scenes = [_scene(rng) for _ in range(8)]
    copies = [_altered(scenes[k], how) for k, how in enumerate(("crop", "mirror", "brighter"))]
    degraded = [_altered(scenes[k], "degraded") for k in range(3, 8)]  # five different photos, all blurred and dark
    pixels = np.stack([*scenes[:3], *copies, *degraded])
    emb = np.ones((len(pixels), 4), np.float32)  # the features cannot tell any of them apart
    dups = find_duplicates(_hashes(len(pixels)), np.zeros(len(pixels), int), emb, threshold=THRESHOLD, pixels=pixels)
    assert {(p.idx_a, p.idx_b) for p in dups.pairs} == {(0, 3), (1, 4), (2, 5)}
    assert dups.n_unconfirmed == len(pixels) * (len(pixels) - 1) // 2 - 3
    without = find_duplicates(_hashes(len(pixels)), np.zeros(len(pixels), int), emb, threshold=THRESHOLD)
    assert without.n_near_pairs == len(pixels) * (len(pixels) - 1) // 2 and without.n_unconfirmed == 0
