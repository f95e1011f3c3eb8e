"""The configuration chapter's words: the command that reproduces a run, and the files beside the report."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape
from report_factory import make_bare_report, make_report

from reportgen.cli import config_from_options, run
from reportgen.config import OptionField, RunConfig, option_fields
from reportgen.narrative.appendix import output_files, reproducing_command
from reportgen.render.html import print_page, render_html


def parse(args: list[str]) -> RunConfig:
    """The RunConfig that ``reportgen run ARGS`` builds (without running anything)."""
    params = run.make_context("run", list(args)).params
    return config_from_options({k: v for k, v in params.items() if k not in {"verbose", "quiet"}})


def round_trip(config: RunConfig) -> tuple[list[str], RunConfig]:
    words = shlex.split(reproducing_command(config.to_dict()))
    assert words[:2] == ["reportgen", "run"]
    return words, parse(words[2:])


def other_value(opt: OptionField, probe: Path) -> list[str]:
    """Words giving ``opt`` a value other than its default, awkward for a shell where the option allows."""
    spec, default = opt.option, opt.default
    if spec.negatable:
        return ["--no-" + opt.flag[2:] if default else opt.flag]
    if spec.choices:
        return [opt.flag, next(c for c in spec.choices if c != default)]
    if spec.pair:
        return [opt.flag, "0.7", "1.3"]
    if spec.argument:
        return ["photos & co/it's"]
    if opt.repeatable:
        value = str(probe) if spec.exists else "recall:a b=0.7"
        return [opt.flag, value, opt.flag, value if spec.exists else "accuracy=85%"]
    if default is dataclasses.MISSING or default is None or isinstance(default, str):
        return [opt.flag, f"x y/$HOME {opt.name}"]
    if isinstance(default, int):
        return [opt.flag, str(default + 1)]
    return [opt.flag, repr(default / 2 if default else 0.5)]


def test_defaults_give_the_folders_seed_and_recipe() -> None:
    config = RunConfig(data_dir=Path("photos"), out_dir=Path("out/today"))
    assert reproducing_command(config.to_dict()) == "reportgen run photos --out out/today --seed 0 --recipe default"
    assert round_trip(config)[1] == config


def test_every_option_at_another_value_comes_back(tmp_path: Path) -> None:
    probe = tmp_path / "my probe (1).jpg"
    probe.write_bytes(b"x")
    args = [word for opt in option_fields() for word in other_value(opt, probe)]
    config = parse(args)
    words, back = round_trip(config)
    assert back == config
    flags = {word for word in words if word.startswith("--")}
    given = [opt for opt in option_fields() if not opt.option.argument]
    missing = [opt.flag for opt in given if not flags & {opt.flag, "--no-" + opt.flag[2:]}]
    assert not missing, f"not in the command: {missing}"


def test_a_training_option_is_given_when_it_differs_from_the_chosen_recipe() -> None:
    example = parse(["photos", "--out", "o", "--recipe", "example", "--epochs", "4", "--lr", "0.001"])
    words = shlex.split(reproducing_command(example.to_dict()))
    assert "--epochs" not in words  # the example recipe's own value
    assert words[words.index("--lr") + 1] == "0.001"  # the default recipe's value, not the example's
    assert round_trip(example)[1] == example


def test_words_are_quoted_for_a_posix_shell() -> None:
    config = parse(["it's $HOME; rm -rf", "--out", "out dir", "--fail-under", "recall:a b=0.7"])
    command = reproducing_command(config.to_dict())
    assert "'it'\"'\"'s $HOME; rm -rf'" in command and "'out dir'" in command
    assert round_trip(config)[1] == config


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, ""),
        ({"out_dir": "out"}, ""),
        ({"data_dir": "/d", "train": {"augment": {"scale": [0.9, 1.1]}}, "top_k": 2}, "reportgen run /d --top-k 2"),
    ],
)
def test_a_configuration_from_elsewhere_gives_what_it_records(config: dict[str, Any], expected: str) -> None:
    assert reproducing_command(config) == expected


def test_files_list_names_what_the_run_wrote() -> None:
    report = make_bare_report()
    names = [name for name, _ in output_files(report)]
    assert names[:3] == ["report.pdf", "results.json", "predictions.csv"]
    assert {"model.pt", "run.log"} <= set(names) and "suspects.csv" not in names  # no audit
    no_pdf = dataclasses.replace(report, run=dataclasses.replace(report.run, config={"pdf": False}))
    assert "report.pdf" not in [name for name, _ in output_files(no_pdf)]
    assert all(text and not text.endswith(".") for _, text in output_files(report))


def test_configuration_chapter_prints_the_command_and_the_files(tmp_path: Path) -> None:
    report = make_report(tmp_path, audit=True)
    config = {**report.run.config, "out_dir": "out/it's", "single_file": True}
    report = dataclasses.replace(report, run=dataclasses.replace(report.run, config=config))

    def chapter(page: str) -> str:
        return page[page.index('<section id="config"') : page.index('<section id="caveats"')]

    page = chapter(render_html(report, tmp_path).read_text("utf-8"))
    assert f"<code>{escape(reproducing_command(config))}</code>" in page
    assert "--out &#39;out/it&#39;&#34;&#39;&#34;&#39;s&#39;" in page
    assert all(f"<code>{escape(name)}</code>" in page for name, _ in output_files(report))
    assert "suspects.csv" in page and "send the whole folder" in page  # this page shows its pictures by path
    assert "it can be sent alone" in chapter(render_html(report, tmp_path, single_file=True).read_text("utf-8"))
    assert "it can be sent alone" in chapter(print_page(report, tmp_path))  # the PDF says what the run wrote
