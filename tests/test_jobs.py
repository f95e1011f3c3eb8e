"""What scheduled audit jobs rely on: kill safety, same seed same results, gates, config files, baselines, run.log.

The kill tests start ``python -m reportgen run`` as a real process, wait until its staging folder's run.log
says which stage it is in, and signal it there.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, REPO, subset

from reportgen import cli
from reportgen.cli import main
from reportgen.render.output import request_stop, staged_output

FAST = ["--no-cam", "--no-pdf", "-q"]
TIMEOUT_S = 180  # generous: the CPUs are shared


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, ["run", *args], catch_exceptions=False)


def _results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


def _summary(stdout: str) -> dict[str, Any]:
    """The JSON of the ``reportgen-summary`` line, which must be the last line on stdout."""
    last = stdout.strip().splitlines()[-1]
    prefix, _, payload = last.partition(" ")
    assert prefix == "reportgen-summary", stdout
    return json.loads(payload)


def _hashes(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir())


def _stages(out: Path) -> list[Path]:
    """Staging folders of any run writing ``out``."""
    return sorted(out.parent.glob(f".{out.name}.tmp-*"))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return subset(EXAMPLE, tmp_path_factory.mktemp("data") / "clothing", per_class=5)


@pytest.fixture(scope="module")
def good_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A finished scheduled run with passing gates: the "previous report" the kill tests must keep."""
    out = tmp_path_factory.mktemp("good") / "out"
    result = _run(
        str(data), "--out", str(out), "--epochs", "1", "--fail-under", "accuracy=0", "--fail-over", "skipped_files=0"
    )
    return out, result


@pytest.fixture
def previous(good_run: tuple[Path, Any], tmp_path: Path) -> Path:
    """A copy of the good run's output in a folder of its own, as a job's OUT before the next run."""
    out, result = good_run
    assert result.exit_code == 0, result.output
    shutil.copytree(out, tmp_path / "out")
    return tmp_path / "out"


# --- killed runs --------------------------------------------------------------------------------------


class _Job:
    """``python -m reportgen run`` as a separate process, with its stdout and stderr in files."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.stdout_path, self.stderr_path = tmp / "job.stdout", tmp / "job.stderr"
        with self.stdout_path.open("wb") as stdout, self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reportgen", "run", *args], cwd=REPO, stdout=stdout, stderr=stderr
            )

    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def wait_for_log(self, out: Path, text: str) -> Path:
        """Poll (every 10 ms) this process's staging run.log until it holds ``text``; return the staging folder."""
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            for folder in out.parent.glob(f".{out.name}.tmp-{self.proc.pid}-*"):
                log = folder / "run.log"
                if log.is_file() and text in log.read_text(errors="replace"):
                    return folder
            if self.proc.poll() is not None:
                pytest.fail(f"the run ended (exit {self.proc.returncode}) before logging {text!r}:\n{self.output()}")
            time.sleep(0.01)
        pytest.fail(f"no {text!r} in the staging run.log within {TIMEOUT_S} s:\n{self.output()}")

    def signal(self, signum: int) -> int:
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run did not stop within {TIMEOUT_S} s of signal {signum}:\n{self.output()}")


@pytest.fixture
def start_job(tmp_path: Path) -> Iterator[Callable[..., _Job]]:
    """Start a job; any still running when the test ends (a failed test) is killed."""
    started: list[_Job] = []

    def start(*args: str) -> _Job:
        started.append(_Job(tmp_path, *args))
        return started[-1]

    yield start
    for job in started:
        if job.proc.poll() is None:
            job.proc.kill()
            job.proc.wait()


# Where to signal the run, and how to start it so that it gets there. Training: 500 epochs, signalled once
# the first is done, so it is mid-training. Rendering: the PDF is on (the slow part of rendering), signalled
# as soon as the run.log says the render stage began (it takes a second or two).
KILL_POINTS = {
    "train": (["--epochs", "500", "--no-cam", "--no-pdf"], "epoch 1/500:"),
    "render": (["--epochs", "1", "--no-cam"], "stage render ..."),
}


@pytest.mark.parametrize("stage", list(KILL_POINTS))
def test_sigterm_leaves_the_previous_report_and_no_staging_folder(
    stage: str, data: Path, previous: Path, start_job: Callable[..., _Job]
) -> None:
    before = _hashes(previous)
    args, marker = KILL_POINTS[stage]
    job = start_job(str(data), "--out", str(previous), *args)
    job.wait_for_log(previous, marker)
    assert job.signal(signal.SIGTERM) == 130, job.output()
    assert _summary(job.stdout_path.read_text()) == {"status": "interrupted"}
    # The last word is one line. (Python may print "Exception ignored ... KeyboardInterrupt" above it
    # when the signal landed in a weakref callback; see the test after the next.)
    assert job.stderr_path.read_text().strip().splitlines()[-1] == (
        "Error: interrupted; the previous output (if any) is untouched"
    )
    assert _hashes(previous) == before  # byte for byte, and no file added or removed
    assert _siblings(previous) == sorted(["out", "job.stdout", "job.stderr"])  # staging folder removed


@pytest.mark.parametrize("stage", list(KILL_POINTS))
def test_sigkill_leaves_the_previous_report_and_the_next_run_cleans_up(
    stage: str, data: Path, previous: Path, start_job: Callable[..., _Job]
) -> None:
    before = _hashes(previous)
    args, marker = KILL_POINTS[stage]
    job = start_job(str(data), "--out", str(previous), *args)
    stage_dir = job.wait_for_log(previous, marker)
    assert job.signal(signal.SIGKILL) == -signal.SIGKILL
    assert _hashes(previous) == before
    assert _stages(previous) == [stage_dir]  # a dead process cannot clean up after itself...
    assert not (stage_dir / "results.json").exists()  # ...and it died before finishing
    result = _run(str(data), "--out", str(previous), "--epochs", "0", "--seed", "7", "--no-audit", *FAST)
    assert result.exit_code == 0, result.output
    assert _stages(previous) == []  # ...the next run removed the leftover
    assert _siblings(previous) == sorted(["out", "job.stdout", "job.stderr"])
    assert _results(previous)["run"]["seed"] == 7  # and replaced the report


class _SignalledInDel:
    """An object whose finaliser receives SIGTERM: Python drops an exception raised in ``__del__``."""

    def __del__(self) -> None:
        signal.raise_signal(signal.SIGTERM)


def test_a_sigterm_whose_interrupt_python_swallows_still_keeps_the_previous_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in the render test: the SIGTERM landed in a weakref callback inside WeasyPrint, Python printed
    "Exception ignored ... KeyboardInterrupt", and the run went on to replace OUT and exit 0."""
    out = tmp_path / "out"
    with staged_output(out) as stage:
        (stage / "results.json").write_text("previous")
    dropped: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", dropped.append)
    previous_handler = signal.getsignal(signal.SIGTERM)
    try:
        cli._install_sigterm_handler()
        with pytest.raises(KeyboardInterrupt), staged_output(out) as stage:
            (stage / "results.json").write_text("new")
            _SignalledInDel()  # collected at once; its KeyboardInterrupt never reaches this block
            assert [d.exc_type for d in dropped] == [KeyboardInterrupt]
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        request_stop(False)
    assert (out / "results.json").read_text() == "previous"
    assert _siblings(out) == ["out"]


# --- determinism --------------------------------------------------------------------------------------


def _comparable(results: dict[str, Any]) -> dict[str, Any]:
    """results.json without what legitimately differs between two runs: timings and the start time."""
    results = json.loads(json.dumps(results))
    del results["run"]["timings"], results["run"]["started_at"]
    for epoch in results["training"]:
        del epoch["seconds"]
    return results


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Dotted paths where two JSON values differ (for a readable failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(a.keys() | b.keys()) for d in _differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"[:300]]


def test_same_seed_and_data_give_identical_results(data: Path, tmp_path: Path) -> None:
    """Two separate processes, audit and Grad-CAM on, written to the same OUT path (the first moved away)."""
    out, first = tmp_path / "out", tmp_path / "first"
    args = [sys.executable, "-m", "reportgen", "run", str(data), "--out", str(out), "--epochs", "2", "--no-pdf", "-q"]
    for _ in range(2):
        if out.exists():
            out.rename(first)
        done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S)
        assert done.returncode == 0, done.stdout + done.stderr
    a, b = _results(first), _results(out)
    assert a["audit"]["label_issues"] is not None and a["audit"]["shortcuts"] is not None  # audit and CAM ran
    assert a["run"]["timings"].keys() == b["run"]["timings"].keys()
    assert _differences(_comparable(a), _comparable(b)) == []
    assert all(epoch["seconds"] > 0 for epoch in b["training"])  # the only per-epoch field left out
    for name in ("predictions.csv", "suspects.csv", "duplicates.csv"):
        assert (first / name).read_bytes() == (out / name).read_bytes(), name
    cams = {k: v for k, v in _hashes(first / "assets").items() if k.startswith("cam-")}
    assert len(cams) >= 5
    assert cams == {k: v for k, v in _hashes(out / "assets").items() if k.startswith("cam-")}
    assert _hashes(first / "assets") == _hashes(out / "assets")


# --- quality gates ------------------------------------------------------------------------------------


def test_a_passing_gate_exits_0(good_run: tuple[Path, Any]) -> None:
    out, result = good_run
    assert result.exit_code == 0, result.output
    assert [(g["spec"], g["passed"]) for g in _results(out)["gates"]] == [
        ("accuracy=0", True),
        ("skipped_files=0", True),
    ]
    summary = _summary(result.stdout)
    assert summary["status"] == "ok" and summary["gates_passed"] == 2 and summary["gates_failed"] == 0


def test_a_failing_gate_exits_1_with_the_report_written(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run(
        str(data), "--out", str(out), "--epochs", "1", "--fail-under", "accuracy=0.99", "--fail-over", "skipped_files=0"
    )
    assert result.exit_code == 1, result.output
    assert (out / "report.html").is_file() and (out / "results.json").is_file()
    results = _results(out)
    assert results["metrics"]["accuracy"] < 0.99
    gates = {g["spec"]: g for g in results["gates"]}
    assert gates["accuracy=0.99"]["passed"] is False and gates["accuracy=0.99"]["op"] == "under"
    assert gates["accuracy=0.99"]["actual"] == results["metrics"]["accuracy"]
    assert gates["skipped_files=0"]["passed"] is True
    summary = _summary(result.stdout)
    assert summary["status"] == "gates_failed" and summary["gates_failed"] == 1 and summary["gates_passed"] == 1
    assert "1 quality gate(s) failed" in result.stderr and "accuracy" in result.stderr


@pytest.mark.parametrize(
    ("option", "spec", "message"),
    [
        ("--fail-under", "accuracy=1.01", "accuracy is a fraction"),
        ("--fail-under", "acuracy=0.5", "unknown metric 'acuracy'"),
        ("--fail-over", "accuracy=0.5", "gated with --fail-under"),
    ],
)
def test_an_invalid_gate_is_exit_2_in_one_line(
    option: str, spec: str, message: str, data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = _run(str(data), "--out", str(out), option, spec, *FAST)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {option} '{spec}': ") and message in lines[0]
    assert "Traceback" not in result.output
    assert _summary(result.stdout)["status"] == "bad_input"
    assert _siblings(out) == []  # nothing written, not even a staging folder


def test_a_gate_on_an_unknown_class_is_exit_2_before_any_training(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="reportgen")
    out = tmp_path / "out"
    result = _run(str(data), "--out", str(out), "--fail-under", "recall:nosuchclass=0.5", "--epochs", "1")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "'nosuchclass'" in result.stderr
    assert "the data set has no class" in result.stderr
    stages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stage ")]
    assert stages == ["stage scan ..."]  # refused right after the scan: no model built, nothing trained
    assert _siblings(out) == []


# --- config file --------------------------------------------------------------------------------------

JOB_TOML = """\
data_dir = "clothing"
out_dir = "reports/latest"

[train]
epochs = 1
seed = 3

[report]
top_k = 1
cam = false
pdf = false
"""


def test_a_config_file_runs_without_arguments_and_flags_override_it(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = tmp_path / "job"
    shutil.copytree(data, job / "clothing")
    (job / "audit.toml").write_text(JOB_TOML)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths are the file's folder's, not the working directory's
    result = _run("--config", str(job / "audit.toml"), "--top-k", "2", "-q")
    assert result.exit_code == 0, result.output
    assert list(elsewhere.iterdir()) == []
    config = _results(job / "reports" / "latest")["run"]["config"]
    assert Path(config["data_dir"]) == job / "clothing" and Path(config["out_dir"]) == job / "reports" / "latest"
    assert config["train"]["epochs"] == 1 and config["seed"] == 3 and config["cam"] is False  # from the file
    assert config["top_k"] == 2  # the flag wins over the file's 1
    assert Path(config["config_file"]) == job / "audit.toml"


def test_missing_data_dir_everywhere_is_exit_2_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "audit.toml").write_text('out_dir = "out"\nepochs = 1\n')
    result = _run("--config", str(tmp_path / "audit.toml"))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "missing data_dir" in result.stderr
    assert str(tmp_path / "audit.toml") in result.stderr
    assert _summary(result.stdout)["status"] == "bad_input"
    assert not (tmp_path / "out").exists()


# --- baseline -----------------------------------------------------------------------------------------


def _rows(changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["class_name"]: row for row in changes["dataset"]["per_class"]}


def test_baseline_reports_images_added_and_removed_by_content(
    good_run: tuple[Path, Any], data: Path, tmp_path: Path
) -> None:
    baseline_out = good_run[0]
    changed = shutil.copytree(data, tmp_path / "clothing")
    hats = sorted((changed / "hat").iterdir())
    for gone in hats[:2]:
        gone.unlink()
    new_dress = sorted((EXAMPLE / "dress").iterdir())[-1]  # a photo the baseline never saw
    assert new_dress.name not in {p.name for p in (data / "dress").iterdir()}
    shutil.copy(new_dress, changed / "dress" / new_dress.name)
    pants = sorted((changed / "pants").iterdir())[0]
    pants.rename(pants.with_name("renamed.jpg"))  # same content, new name: not a change
    out = tmp_path / "out"
    result = _run(str(changed), "--out", str(out), "--epochs", "1", "--baseline", str(baseline_out), *FAST)
    assert result.exit_code == 0, result.output
    results, before = _results(out), _results(baseline_out)
    changes = results["changes"]
    assert changes["dataset"]["by_content"] is True
    rows = _rows(changes)
    counts = {name: (r["before"], r["after"], r["added"], r["removed"]) for name, r in rows.items()}
    assert counts["hat"] == (5, 3, 0, 2) and counts["dress"] == (5, 6, 1, 0)
    assert counts["pants"] == (5, 5, 0, 0)  # the renamed photo is the same content
    assert changes["dataset"]["images_added"] == 1 and changes["dataset"]["images_removed"] == 2
    assert [r["rel_path"] for r in changes["dataset"]["added"]] == [f"dress/{new_dress.name}"]
    assert {r["rel_path"] for r in changes["dataset"]["removed"]} == {f"hat/{p.name}" for p in hats[:2]}
    hashes = {img["rel_path"]: img["sha256"] for img in before["images"]}
    assert {r["sha256"] for r in changes["dataset"]["removed"]} == {hashes[f"hat/{p.name}"] for p in hats[:2]}
    accuracy = changes["accuracy"]
    assert accuracy["before"] == before["metrics"]["accuracy"] and accuracy["after"] == results["metrics"]["accuracy"]
    assert accuracy["delta"] == pytest.approx(accuracy["after"] - accuracy["before"])


def test_a_baseline_that_does_not_exist_is_exit_2(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run(str(data), "--out", str(out), "--baseline", str(tmp_path / "no-such-run"), *FAST)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "no-such-run" in result.stderr
    assert _summary(result.stdout)["status"] == "bad_input"
    assert not out.exists()


# --- run.log ------------------------------------------------------------------------------------------


def test_run_log_is_in_out_with_the_stage_lines_in_order(good_run: tuple[Path, Any]) -> None:
    out, result = good_run
    assert result.exit_code == 0, result.output
    lines = (out / "run.log").read_text().splitlines()
    stages = [line.split(" stage ")[1].removesuffix(" ...") for line in lines if " stage " in line]
    expected = ["scan", "model", "decode", "features", "train", "predict", "analyse", "gradcam", "figures", "render"]
    assert [s for s in stages if s in expected] == expected
    assert any("gate passed" in line for line in lines)


def test_run_log_gets_info_lines_even_under_quiet(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run(str(data), "--out", str(out), "--epochs", "0", "--no-audit", *FAST)  # FAST has -q
    assert result.exit_code == 0, result.output
    log = (out / "run.log").read_text()
    assert "INFO" in log and "stage scan" in log and "stage render" in log
