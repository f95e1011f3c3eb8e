"""``torchrun`` runs: two gloo processes audit like one, a failing rank publishes nothing, shards tile."""

from __future__ import annotations

import csv
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import badinputs as bad
import pytest
from conftest import EXAMPLE, make_dataset, subset

from reportgen.data.dataset import load_images
from reportgen.data.layouts import read_dataset
from reportgen.model.distributed import Ranks
from reportgen.render.output import MARKER

TESTS = Path(__file__).resolve().parent
FAST = ["--no-cam", "--no-pdf", "-q"]
TIMEOUT = 900  # seconds; a hung collective fails the test instead of the CI job


@pytest.mark.parametrize(("n", "world"), [(0, 2), (1, 2), (7, 3), (100, 4), (5, 8)])
def test_shards_tile_the_items_in_rank_order(n: int, world: int) -> None:
    shards = [Ranks(rank=r, world=world).shard(n) for r in range(world)]
    assert [i for s in shards for i in range(n)[s]] == list(range(n))
    assert max(s.stop - s.start for s in shards) - min(s.stop - s.start for s in shards) <= 1


def _torchrun() -> list[str]:
    launcher = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if launcher is None:
        pytest.skip("torchrun is not installed beside this Python")
    return [launcher, "--standalone", "--nproc-per-node", "2"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    return {**env, "OMP_NUM_THREADS": "1"}


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=_env(), check=False)


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "predictions.csv").open(newline="") as f:
        return {row["path"]: row for row in csv.DictReader(f)}


def _suspects(out: Path) -> list[str]:
    issues = json.loads((out / "results.json").read_text())["audit"]["label_issues"]
    return [s["image"]["rel_path"] for s in issues["suspects"]]


@pytest.mark.e2e
def test_two_gloo_processes_audit_like_one(tmp_path: Path) -> None:
    data = subset(EXAMPLE, tmp_path / "clothing", per_class=20)
    one, two = tmp_path / "one", tmp_path / "two"
    single = _run([sys.executable, "-m", "reportgen", "run", str(data), "--out", str(one), *FAST])
    assert single.returncode == 0, single.stderr[-3000:]
    ranked = _run([*_torchrun(), "-m", "reportgen", "run", str(data), "--out", str(two), *FAST])
    assert ranked.returncode == 0, ranked.stderr[-3000:]
    assert ranked.stdout.count("reportgen-summary") == 1  # rank 0 alone reports
    a, b = _rows(one), _rows(two)
    assert a.keys() == b.keys()
    assert all(a[p]["split"] == b[p]["split"] for p in a)  # the same split
    test = [p for p in a if a[p]["split"] == "test"]
    same = sum(a[p]["predicted_label"] == b[p]["predicted_label"] for p in test)
    assert same >= 0.98 * len(test), f"{same} of {len(test)} test predictions agree"
    assert _suspects(one) == _suspects(two)
    assert "2 processes (gloo)" in (two / "run.log").read_text()
    assert json.loads((two / "results.json").read_text())["run"]["device"].endswith(", 2 processes (gloo)")


@pytest.mark.e2e
def test_the_ranks_stop_early_at_the_same_epoch(tmp_path: Path) -> None:
    """A rank that stopped alone would leave the other waiting in a collective until the timeout."""
    data = subset(EXAMPLE, tmp_path / "clothing", per_class=10)
    out = tmp_path / "out"
    # a learning rate that wrecks the model: the validation loss rises and the stop rule ends training early
    wreck = ["--epochs", "6", "--patience", "1", "--lr", "3", "--warmup-epochs", "0", "--no-audit"]
    ranked = _run([*_torchrun(), "-m", "reportgen", "run", str(data), "--out", str(out), *FAST, *wreck])
    assert ranked.returncode == 0, ranked.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert len(results["training"]) < 6
    assert "Training stopped after epoch" in (out / "report.html").read_text()


@pytest.mark.e2e
def test_a_failing_rank_ends_the_run_and_publishes_nothing(tmp_path: Path) -> None:
    data = subset(EXAMPLE, tmp_path / "clothing", per_class=4)
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text("{}")  # an earlier report of reportgen's, which a run may replace
    (out / "earlier.txt").write_text("the previous report")
    script = str(TESTS / "torchrun_failing_rank.py")
    result = _run([*_torchrun(), script, "run", str(data), "--out", str(out), *FAST])
    assert result.returncode != 0
    assert "rank 1: planted failure: rank 1 cannot read its images" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "earlier.txt"])  # the earlier output is untouched
    assert "output folder" not in result.stderr  # rank 0 stopped because rank 1 failed, not for its own reasons
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no staging folder left


def test_the_processes_of_a_machine_share_the_decoding_and_get_one_process_result(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "data", per_class=5)
    bad.make_truncated_jpeg(root / "green")
    bad.make_zero_byte(root / "red")  # skipped rows in the middle are compacted away
    _with_metadata_csv(root)  # and the metadata and given split stay with their images
    result = _run([*_torchrun(), str(TESTS / "torchrun_decode.py"), str(root), "24", str(tmp_path / "rank")])
    assert result.returncode == 0, result.stderr[-3000:]
    alone = load_images(read_dataset(root), 24, progress=False)
    expected = (alone.pixels.tobytes(), alone.infos, alone.rel_paths, alone.skipped, alone.labels.tolist())
    expected += (alone.metadata, alone.given_splits, alone.source)
    for rank in (0, 1):
        assert pickle.loads((tmp_path / f"rank{rank}.pkl").read_bytes()) == expected
    assert len(alone.skipped) == 2 and len(alone.metadata.columns) == 2 and alone.source.split_source == "manifest"


def _with_metadata_csv(root: Path) -> None:
    """A metadata.csv listing every image of ``root`` with a split, a camera and a number (by row)."""
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    rows = [f"{p},{('train', 'train', 'val', 'test')[i % 4]},cam{i % 3},{i}" for i, p in enumerate(paths)]
    (root / "metadata.csv").write_text("\n".join(["file_name,split,camera,order", *rows]) + "\n", "utf-8")
