from __future__ import annotations

import os
from pathlib import Path

import pytest

from reportgen.errors import OutputError
from reportgen.output import staged_output


def test_success_replaces_the_previous_output_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_output(out) as stage:
        (stage / "results.json").write_text("1")
        (stage / "old-only.txt").write_text("x")
    with staged_output(out) as stage:
        (stage / "results.json").write_text("2")
    assert (out / "results.json").read_text() == "2" and not (out / "old-only.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging leftovers


def test_failure_leaves_the_previous_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_output(out) as stage:
        (stage / "results.json").write_text("good")
    with pytest.raises(RuntimeError), staged_output(out) as stage:
        (stage / "results.json").write_text("half")
        raise RuntimeError("crash mid-run")
    assert (out / "results.json").read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_refuses_to_replace_a_folder_reportgen_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_text("precious")
    with pytest.raises(OutputError, match="not written by reportgen"), staged_output(out):
        pass
    assert (out / "holiday.jpg").exists()


def test_output_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output folder"), staged_output(blocker / "out"):
        pass


def test_leftovers_of_a_killed_run_are_cleaned_and_lost_output_restored(tmp_path: Path) -> None:
    dead_pid = 2**22 + 12345  # above pid_max on Linux: never a live process
    (tmp_path / f".out.tmp-{dead_pid}-abc").mkdir()
    old = tmp_path / f".out.old-{dead_pid}-def" / "previous"
    old.mkdir(parents=True)
    (old / "results.json").write_text("previous")
    with staged_output(tmp_path / "out") as stage:
        assert (tmp_path / "out" / "results.json").read_text() == "previous"  # restored before the new run
        (stage / "results.json").write_text("new")
    assert sorted(os.listdir(tmp_path)) == ["out"]
