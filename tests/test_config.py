"""The run options come from RunConfig's fields: their click defaults, the config file's keys, the built config."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click
import pytest

from reportgen.cli import OPTIONS, config_from_options, recipe_config, run
from reportgen.config import RECIPES, RunConfig, TrainConfig, option_fields
from reportgen.configfile import load_config

PLAIN = {"config_file", "verbose", "quiet"}  # run's parameters that are not RunConfig fields
PARAMS = {p.name: p for p in run.params}
UNGIVEN = run.make_context("run", []).params  # each parameter's value when it is not given


def field_at(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        obj = getattr(obj, name)
    return obj


def effective_default(opt: Any) -> Any:
    """What the field is when the option is not given: the default recipe's value for a training option."""
    if not opt.recipe:
        return opt.default
    recipe = RECIPES[RunConfig.__dataclass_fields__["recipe"].default]
    value = field_at(recipe, opt.path[1:])
    return (value, field_at(recipe, (*opt.path[1:-1], opt.option.pair))) if opt.option.pair else value


def test_every_run_parameter_is_a_config_field_or_one_of_the_plain_options() -> None:
    assert set(PARAMS) == {opt.name for opt in OPTIONS} | PLAIN
    assert len(OPTIONS) == len({opt.name for opt in OPTIONS}) == len({opt.flag for opt in OPTIONS})


@pytest.mark.parametrize("opt", option_fields(), ids=lambda opt: opt.name)
def test_click_default_is_the_dataclass_default(opt: Any) -> None:
    value = UNGIVEN[opt.name]
    if opt.recipe:  # unset, the chosen recipe decides
        assert value is None and PARAMS[opt.name].help.startswith("[recipe]")
    elif opt.default is dataclasses.MISSING:  # required: on the command line or in the config file
        assert value is None and opt.name in {"data_dir", "out_dir"}
    else:
        assert value == opt.default, f"{opt.flag}: click gives {value!r}, RunConfig has {opt.default!r}"
        assert type(value) is type(opt.default)


def test_parsed_defaults_build_the_dataclass_defaults() -> None:
    ctx = run.make_context("run", ["photos", "--out", "out"])
    options = {k: v for k, v in ctx.params.items() if k not in {"verbose", "quiet"}}
    assert config_from_options(options) == RunConfig(data_dir=Path("photos"), out_dir=Path("out"))
    assert recipe_config({"recipe": "example"}) == RECIPES["example"] == TrainConfig()


def test_flags_and_names_that_differ_from_the_field() -> None:
    flags = {opt.path: (opt.flag, opt.name) for opt in OPTIONS}
    assert flags[("out_dir",)] == ("--out", "out_dir")
    assert flags[("probes",)] == ("--probe", "probes")
    assert flags[("train", "learning_rate")] == ("--lr", "learning_rate")
    assert flags[("split", "train")] == ("--train-fraction", "train_fraction")
    assert flags[("train", "augment", "scale_min")] == ("--scale-range", "scale_range")
    assert PARAMS["scale_range"].type.types == [click.FLOAT, click.FLOAT]
    assert PARAMS["cam"].secondary_opts == ["--no-cam"] and PARAMS["flip"].secondary_opts == ["--no-flip"]


def test_every_option_given_builds_the_config_field_it_names(tmp_path: Path) -> None:
    (tmp_path / "p.jpg").write_bytes(b"x")
    args = ["photos", "--out", "out", "--lr", "0.5", "--scale-range", "0.7", "1.3", "--train-fraction", "0.5"]
    args += ["--no-cam", "--probe", str(tmp_path / "p.jpg"), "--fail-under", "accuracy=0.9", "--recipe", "example"]
    options = {k: v for k, v in run.make_context("run", args).params.items() if k not in {"verbose", "quiet"}}
    config = config_from_options(options)
    augment = config.train.augment
    assert (config.train.learning_rate, augment.scale_min, augment.scale_max) == (0.5, 0.7, 1.3)
    assert config.train.head_init == RECIPES["example"].head_init and config.split.train == 0.5
    assert (config.cam, config.probes, config.fail_under) == (False, (tmp_path / "p.jpg",), ("accuracy=0.9",))


def toml_value(opt: Any, folder: Path) -> Any:
    """A valid value for ``opt`` in a config file: its default where it has one."""
    value = effective_default(opt)
    if opt.name == "probes":
        (folder / "p.jpg").write_bytes(b"x")
        return ["p.jpg"]
    if opt.name in {"fail_under", "fail_over"}:
        return ["accuracy=0.5"]
    if value is dataclasses.MISSING or value is None:
        return "somewhere"
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("spelling", ["name", "flag"])
def test_config_file_keys_cover_every_option(tmp_path: Path, spelling: str) -> None:
    lines = []
    for opt in OPTIONS:
        key = opt.name if spelling == "name" else opt.flag[2:]
        lines.append(f"{key} = {json.dumps(toml_value(opt, tmp_path))}")
    path = tmp_path / "all.toml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    values = load_config(path, run)
    assert set(values) == {opt.name for opt in OPTIONS}
    assert values["near_duplicate_threshold"] == 0.9 and values["scale_range"] == (0.9, 1.1)
