"""The scale benchmark's pieces (issue 12): the growth-exponent fit and the synthetic set maker."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_dataset
from PIL import Image

from reportgen.data.dataset import scan_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the benchmarks import as scripts do

from scale import exponent_verdict, format_training, growth_exponent  # noqa: E402
from synthetic import link_set, make_pool, source_photos, variant  # noqa: E402


def test_growth_exponent_recovers_a_power_law() -> None:
    sizes = [1000, 2000, 5000, 10000]
    assert math.isclose(growth_exponent(sizes, [0.002 * n for n in sizes]), 1.0, abs_tol=1e-9)
    assert math.isclose(growth_exponent(sizes, [3e-7 * n**2 for n in sizes]), 2.0, abs_tol=1e-9)
    assert math.isclose(growth_exponent(sizes, [4.0] * 4), 0.0, abs_tol=1e-9)
    noisy = [0.01 * n * f for n, f in zip(sizes, [1.05, 0.95, 1.02, 0.98], strict=True)]
    assert abs(growth_exponent(sizes, noisy) - 1.0) < 0.05


def test_growth_exponent_floors_zero_times_and_needs_two_sizes() -> None:
    assert math.isclose(growth_exponent([100, 200], [0.0, 0.0]), 0.0, abs_tol=1e-9)  # both at the 1 ms floor
    assert math.isnan(growth_exponent([100], [1.0]))
    assert math.isnan(growth_exponent([100, 100], [1.0, 2.0]))


def test_exponent_verdict_exempts_copy_search_and_names_noise() -> None:
    assert exponent_verdict("train", 1.0, [1.0, 2.0]) == "ok"
    assert exponent_verdict("train", 1.3, [1.0, 2.5]) == "> 1.1"
    assert exponent_verdict("scan", 1.3, [0.01, 0.03]).endswith("noise)")
    assert exponent_verdict("duplicates", 2.0, [1.0, 4.0]).startswith("exempt")


def _run(epoch: float, bare: float) -> dict:
    rates = {"loop": bare, "epoch": epoch, "bare": bare}
    return {"train_images": 600, "epochs": 1, "timings": {"train": 60.0}, "rates": rates}


def test_training_table_judges_the_epoch_against_the_bare_loop() -> None:
    table = format_training([1000, 2000], [_run(9.0, 10.0), _run(8.6, 10.0)])
    assert "epoch/bare %         90       86" in table and table.endswith("at every size: ok")
    assert "stage img/s        10.0     10.0" in table  # 600 images x 1 epoch / 60 s
    assert format_training([1000, 2000], [_run(9.0, 10.0), _run(8.4, 10.0)]).endswith("at every size: not met")


def test_variant_is_a_jittered_crop_and_seeded() -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    a, b = variant(img, np.random.default_rng(1)), variant(img, np.random.default_rng(1))
    assert a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))
    assert a.width <= 80 and a.height <= 60 and a.width * a.height >= 0.3 * 80 * 60
    assert not np.array_equal(np.asarray(variant(img, np.random.default_rng(2))), np.asarray(a))


def test_pool_and_linked_sets_keep_sizes_classes_and_sources(tmp_path: Path) -> None:
    sources = source_photos(make_dataset(tmp_path / "src", per_class=3))  # red, green, blue
    pool = make_pool(sources, tmp_path / "pool", per_class=4, seed=0)
    assert sorted(pool) == ["blue", "green", "red"] and all(len(v) == 4 for v in pool.values())
    assert len({p.read_bytes() for v in pool.values() for p in v}) == 12  # no two photos alike
    scan = scan_dataset(link_set(pool, tmp_path / "n10", images=10, classes=3))
    assert scan.class_names == ("blue-0", "green-0", "red-0") and len(scan.records) == 10
    six = scan_dataset(link_set(pool, tmp_path / "c6", images=12, classes=6))
    counts = np.bincount([r.class_idx for r in six.records])
    assert len(six.class_names) == 6 and counts.tolist() == [2] * 6
    for record in six.records:  # a sub-class holds photos of its source class only, linked from the pool
        source = six.class_names[record.class_idx].split("-")[0]
        assert any(record.path.samefile(p) for p in pool[source])


def test_link_set_refuses_more_images_than_the_pool_has(tmp_path: Path) -> None:
    sources = source_photos(make_dataset(tmp_path / "src", per_class=2))
    pool = make_pool(sources, tmp_path / "pool", per_class=2, seed=0)
    with pytest.raises(ValueError, match="fewer than 3"):
        link_set(pool, tmp_path / "big", images=9, classes=3)
