from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from reportgen.cli import run
from reportgen.configfile import apply_config_file, load_config, merge_options, require_options
from reportgen.errors import ReportgenError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "audit.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def test_keys_may_use_dashes_flag_names_and_tables(tmp_path: Path) -> None:
    (tmp_path / "probe.jpg").write_bytes(b"x")
    path = write(
        tmp_path,
        """
        out-dir = "out"
        top_k = 3
        scale_range = [0.8, 1]
        probe = "probe.jpg"
        [train]
        epochs = 8
        lr = 0.001
        flip = false
        [report]
        device = "cpu"
        """,
    )
    values = load_config(path, run)
    assert values == {
        "out_dir": tmp_path / "out",
        "top_k": 3,
        "scale_range": (0.8, 1.0),
        "probes": (tmp_path / "probe.jpg",),
        "epochs": 8,
        "learning_rate": 0.001,
        "flip": False,
        "device": "cpu",
    }
    assert isinstance(values["learning_rate"], float) and isinstance(values["out_dir"], Path)


def test_paths_are_relative_to_the_file_folder_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "jobs"
    conf.mkdir()
    (conf / "head.pth").write_bytes(b"x")
    path = write(conf, 'data_dir = "../photos"\ncheckpoint = "/abs/model.pt"\nweights = "head.pth"\n')
    monkeypatch.chdir(REPO)
    values = load_config(path, run)
    assert values["data_dir"] == conf / "../photos"
    assert values["checkpoint"] == Path("/abs/model.pt")
    assert values["weights"] == str(conf / "head.pth")  # a file next to the config: resolved
    values = load_config(write(conf, 'weights = "IMAGENET1K_V1"\n'), run)
    assert values["weights"] == "IMAGENET1K_V1"  # a weights name: left alone


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("epochs = 2.5", "epochs must be an integer, not a number (2.5)"),
        ("epochs = true", "epochs must be an integer, not a boolean (True)"),
        ("epochs = -1", "epochs: Invalid value: -1 is not in the range x>=0."),
        ("lr = '0.1'", "lr must be a number, not a string ('0.1')"),
        ('device = "gpu"', "device: Invalid value for '--device': 'gpu' is not one of 'auto', 'cpu', 'cuda'."),
        ('flip = "yes"', "flip must be true or false, not a string ('yes')"),
        ("scale_range = [1]", "scale_range must be an array of 2 values, not an array ([1])"),
        ('scale_range = ["a", 1]', "scale_range must be an array of 2 values, each a number"),
        ("weights = 3", "weights must be a string, not an integer (3)"),
        ('probes = ["missing.jpg"]', "does not exist"),
        ("epoch = 3", "unknown key 'epoch' (did you mean 'epochs'?)"),
        ("zzz = 1", "unknown key 'zzz' (known keys: audit, baseline, batch_size,"),
        ("top_k = 1\ntop-k = 2", "'top-k' sets top_k a second time"),
        ('config = "other.toml"', "'config' cannot be set inside a config file"),
        ("[a]\n[a.b]\nx = 1", "table [a.b] is nested; use one level of tables"),
        ("epochs = ", "is not valid TOML: Invalid value"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body + "\n")
    with pytest.raises(ReportgenError) as exc:
        load_config(path, run)
    text = str(exc.value)
    assert "\n" not in text and str(path) in text and message in text, text


def test_missing_and_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportgenError, match="config file '.*nope.toml' does not exist"):
        load_config(tmp_path / "nope.toml", run)
    with pytest.raises(ReportgenError, match="cannot read config file"):
        load_config(tmp_path, run)  # a folder
    (tmp_path / "latin1.toml").write_bytes(b'model = "caf\xe9"\n')
    with pytest.raises(ReportgenError, match="is not valid TOML"):
        load_config(tmp_path / "latin1.toml", run)


def test_merge_puts_file_values_under_explicit_flags() -> None:
    cli = {"epochs": 4, "top_k": 4, "probes": ("cli.jpg",), "model": "m"}
    file = {"epochs": 8, "top_k": 2, "probes": ("a.jpg", "b.jpg")}
    merged = merge_options(cli, {"epochs", "probes"}, file)
    assert merged == {"epochs": 4, "top_k": 2, "probes": ("cli.jpg",), "model": "m"}
    assert cli["top_k"] == 4  # inputs are not modified


def test_require_options_names_the_missing_option_and_the_file() -> None:
    require_options({"data_dir": Path("d"), "out_dir": Path("o")}, ("data_dir", "out_dir"))
    with pytest.raises(ReportgenError, match=r"missing out_dir: give it on the command line or as out_dir in 'a.toml'"):
        require_options({"data_dir": Path("d"), "out_dir": None}, ("data_dir", "out_dir"), Path("a.toml"))


@click.command()
@click.argument("data_dir", required=False, type=click.Path(path_type=Path))
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--epochs", type=click.IntRange(min=0), default=4)
@click.option("--lr", "learning_rate", type=float, default=3e-4)
@click.option("--seed", type=int, default=0, envvar="TEST_REPORTGEN_SEED")
@click.option("--flip/--no-flip", default=True)
@click.option("--probe", "probes", multiple=True)
def _command(**options: Any) -> None:
    """A stand-in for ``reportgen run`` wired the way the CLI is told to wire it."""
    ctx = click.get_current_context()
    config_file = options.pop("config_file")
    merged = apply_config_file(ctx, options, config_file)
    require_options(merged, ("data_dir",), config_file)
    click.echo(json.dumps(merged, default=str, sort_keys=True))


def invoke(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    result = CliRunner().invoke(_command, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_flags_given_on_the_command_line_or_environment_win_even_at_their_default(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'data_dir = "photos"\nepochs = 8\nlr = 0.01\nseed = 5\nflip = false\nprobe = ["x.jpg", "y.jpg"]\n'
    )
    everything_from_file = invoke(["--config", str(path)])
    assert everything_from_file == {
        "data_dir": str(tmp_path / "photos"),
        "epochs": 8,
        "learning_rate": 0.01,
        "seed": 5,
        "flip": False,
        "probes": ["x.jpg", "y.jpg"],
    }
    merged = invoke(
        ["other", "--config", str(path), "--epochs", "4", "--flip", "--probe", "z.jpg"],
        env={"TEST_REPORTGEN_SEED": "7"},
    )
    assert merged == {
        "data_dir": "other",
        "epochs": 4,  # explicitly given, although equal to the default
        "learning_rate": 0.01,
        "seed": 7,  # from the environment
        "flip": True,
        "probes": ["z.jpg"],  # a repeatable flag replaces the file's list
    }
    assert invoke(["d"])["epochs"] == 4  # no --config: defaults


def test_example_audit_toml_loads_and_documents_every_run_option() -> None:
    example = REPO / "examples" / "audit.toml"
    values = load_config(example, run)
    assert values["data_dir"] == (REPO / "examples" / "clothing-mini").absolute()
    text = example.read_text("utf-8")
    documented = set(re.findall(r"^#?\s*([a-z_]+)\s*=", text, flags=re.MULTILINE))
    options = {p.name for p in run.params} - {"config", "config_file"}
    assert options <= documented, f"undocumented in examples/audit.toml: {sorted(options - documented)}"
