"""Command line: click options -> frozen RunConfig -> pipeline.run(); errors -> one line and an exit code."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, replace
from pathlib import Path
from typing import Any, TypeVar

import click

from reportgen import __version__
from reportgen.config import RECIPES, FieldPath, OptionField, RunConfig, TrainConfig, option_fields, with_settings
from reportgen.configfile import apply_config_file, require_options
from reportgen.errors import ReportgenError
from reportgen.render.output import request_stop

logger = logging.getLogger("reportgen")

EXIT_GATES_FAILED, EXIT_INTERNAL = 1, 3  # bad input exits with its ReportgenError's exit_code (2)
OPTIONS = option_fields()  # the RunConfig fields given as run's options, in order
REQUIRED = tuple(opt.name for opt in OPTIONS if opt.default is MISSING)  # data_dir, out_dir: flag or file

_Command = TypeVar("_Command", bound=Callable[..., Any])


def run_options(command: _Command) -> _Command:
    """Add a click parameter for each of ``OPTIONS`` to ``command``, in their order."""
    for opt in reversed(OPTIONS):  # click lists a command's parameters in the reverse order of application
        command = _click_parameter(opt)(command)
    return command


def _click_parameter(opt: OptionField) -> Callable[[_Command], _Command]:
    """The click argument or option for ``opt``; a training option defaults to None (the recipe decides)."""
    spec = opt.option
    kind = _click_type(opt)
    if spec.argument:
        return click.argument(opt.name, type=kind, required=False)
    default = None if opt.recipe or opt.default is MISSING else opt.default
    flags = f"{opt.flag}/--no-{opt.flag[2:]}" if spec.negatable else opt.flag
    help_text = " ".join(filter(None, ("[recipe]" if opt.recipe else "", spec.help)))
    return click.option(
        flags,
        opt.name,
        type=kind,
        default=default,
        show_default=True,
        multiple=opt.repeatable,
        metavar=spec.metavar,
        help=help_text or None,
    )


def _click_type(opt: OptionField) -> Any:
    """The click type of ``opt``'s values: from its field's type, choices, range and path kind."""
    spec = opt.option
    kind = _scalar_type(opt.type)
    if spec.pair:
        return (kind, kind)
    if spec.choices:
        return click.Choice(list(spec.choices))
    if kind is Path:
        return click.Path(
            path_type=Path, file_okay=spec.path != "dir", dir_okay=spec.path != "file", exists=spec.exists
        )
    if kind is bool:
        return None  # --x/--no-x
    if spec.low is not None or spec.high is not None:
        return (click.IntRange if kind is int else click.FloatRange)(min=spec.low, max=spec.high)
    return kind


def _scalar_type(hint: Any) -> Any:
    """``Path`` for ``Path | None`` and ``tuple[Path, ...]``; ``float`` for ``tuple[float, float]``."""
    if isinstance(hint, types.UnionType):
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0]
    return hint


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reportgen")
def main() -> None:
    """Audit an image-classification data set and write the audit as HTML, PDF and JSON."""


@main.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML file with any of these options (keys = option names); flags given here override it.",
)
@run_options
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and errors only; no progress bars.")
@click.pass_context
def run(ctx: click.Context, **options: Any) -> None:
    """Train (or load) a classifier on DATA_DIR's class folders and audit it.

    Exit codes: 0 done and every quality gate passed; 1 done but a gate failed (the report is written);
    2 bad input or usage; 3 internal error; 130 interrupted. The last line on stdout is a JSON summary.
    """
    try:
        options = apply_config_file(ctx, options, options["config_file"])
        require_options(options, REQUIRED, options["config_file"])
    except ReportgenError as exc:
        _summary({"status": "bad_input", "error": str(exc)})
        raise _fail(str(exc), exc.exit_code) from exc
    verbose, quiet = options.pop("verbose"), options.pop("quiet")
    _configure_logging(verbose, quiet)
    config = replace(config_from_options(options), progress=not quiet and sys.stderr.isatty())
    _install_sigterm_handler()
    from reportgen.pipeline import run as run_pipeline  # heavy imports only once the options are valid

    try:
        outcome = run_pipeline(config)
    except ReportgenError as exc:
        _summary({"status": "bad_input", "error": str(exc)})
        raise _fail(str(exc), exc.exit_code) from exc
    except KeyboardInterrupt as exc:
        _summary({"status": "interrupted"})
        raise _fail("interrupted; the previous output (if any) is untouched", 130) from exc
    except Exception as exc:
        logger.debug("internal error", exc_info=True)
        _summary({"status": "internal_error", "error": f"{type(exc).__name__}: {exc}"})
        raise _fail(
            f"internal error: {type(exc).__name__}: {exc} (run with -vv for the traceback)", EXIT_INTERNAL
        ) from exc
    if outcome is None:  # a torchrun worker: rank 0 reports
        return
    _summary(_outcome_summary(outcome))
    if not outcome.gates_passed:
        failed = [g.reason for g in outcome.report.gates if not g.passed]
        raise _fail(f"{len(failed)} quality gate(s) failed: " + "; ".join(failed), EXIT_GATES_FAILED)


def _outcome_summary(outcome: Any) -> dict[str, Any]:
    report = outcome.report
    audit = report.audit
    return {
        "status": "ok" if outcome.gates_passed else "gates_failed",
        "accuracy": round(report.metrics.accuracy, 4),
        "macro_f1": round(report.metrics.macro_f1, 4),
        "classes": len(report.dataset.class_names),
        "images": report.dataset.total_images,
        "skipped": len(report.dataset.skipped),
        "suspected_label_errors": audit.label_issues.total if audit and audit.label_issues else None,
        "duplicate_pairs": audit.duplicates.total if audit and audit.duplicates else None,
        "gates_passed": sum(g.passed for g in report.gates),
        "gates_failed": sum(not g.passed for g in report.gates),
        "out": str(outcome.out_dir),
    }


def _summary(payload: dict[str, Any]) -> None:
    """The machine-readable last line on stdout: one JSON object prefixed by ``reportgen-summary``."""
    click.echo("reportgen-summary " + json.dumps(payload, ensure_ascii=False, sort_keys=False))


def recipe_config(options: dict[str, Any]) -> TrainConfig:
    """The named recipe's training configuration with every training option that was given put in."""
    settings: dict[FieldPath, Any] = {}
    for opt in OPTIONS:
        if opt.recipe and options.get(opt.name) is not None:  # its path starts at RunConfig.train
            settings.update({path[1:]: value for path, value in opt.settings(options[opt.name]).items()})
    return with_settings(TrainConfig, settings, RECIPES[options.get("recipe") or "default"])


def config_from_options(options: dict[str, Any]) -> RunConfig:
    """Build the frozen run configuration from the CLI's option values (``config_file`` from ``--config``)."""
    settings: dict[FieldPath, Any] = {("train",): recipe_config(options)}
    for opt in OPTIONS:
        if not opt.recipe:
            settings.update(opt.settings(options[opt.name]))
    settings[("config_file",)] = options.get("config_file")
    return with_settings(RunConfig, settings)


class _Failure(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _fail(message: str, exit_code: int) -> click.ClickException:
    rank = os.environ.get("RANK") if os.environ.get("WORLD_SIZE", "1") not in ("", "0", "1") else None
    return _Failure(f"rank {rank}: {message}" if rank is not None else message, exit_code)


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    console = logging.StreamHandler()  # stderr; run.log in the output folder gets INFO whatever this level
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    logging.basicConfig(level=level, handlers=[console])
    if verbose < 2:
        for noisy in ("PIL", "matplotlib", "fontTools", "timm"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if verbose < 1:  # WeasyPrint warns about optional system libraries (HarfBuzz-Subset) on every PDF
        logging.getLogger("weasyprint").setLevel(logging.ERROR)


def _install_sigterm_handler() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so a killed job removes its staging folder."""

    def handler(_signum: int, _frame: object) -> None:
        request_stop()  # in case the KeyboardInterrupt is raised where Python drops it (a weakref callback)
        raise KeyboardInterrupt

    request_stop(False)
    signal.signal(signal.SIGTERM, handler)


@main.command("download-example")
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False))
@click.option("--url", default=None, help="Zip to fetch (default: the MathWorks Example Food Images, 77 MB).")
def download_example(dest: Path, url: str | None) -> None:
    """Download and unpack the MathWorks example's 978 food photos (9 classes) into DEST."""
    _configure_logging(0, False)
    from reportgen.data.example import EXAMPLE_FOOD_URL, download_dataset

    try:
        root = download_dataset(url or EXAMPLE_FOOD_URL, dest)
    except ReportgenError as exc:
        raise _fail(str(exc), exc.exit_code) from exc
    click.echo(f"data set ready: {root}\nnext: reportgen run {root} --out out/food")
