"""Command line: click options -> frozen RunConfig -> pipeline.run(); errors -> one line and an exit code."""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from reportgen import __version__
from reportgen.config import DEFAULT_MODEL, AugmentConfig, RunConfig, SplitConfig, TrainConfig
from reportgen.errors import ReportgenError

logger = logging.getLogger("reportgen")

EXIT_OK, EXIT_GATES_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reportgen")
def main() -> None:
    """Audit an image-classification data set and write the audit as HTML, PDF and JSON."""


@main.command()
@click.argument("data_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Output folder (replaced whole)."
)
@click.option(
    "--model",
    default=DEFAULT_MODEL,
    show_default=True,
    help=f"{DEFAULT_MODEL} (offline) or a torchvision classification model name, e.g. googlenet.",
)
@click.option(
    "--weights",
    default="DEFAULT",
    show_default=True,
    help="DEFAULT, a torchvision weights name (e.g. IMAGENET1K_V1), a local state-dict file, or none.",
)
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Load this reportgen model.pt and skip training.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Drives split, augmentation and training.")
@click.option("--train-fraction", type=float, default=0.6, show_default=True)
@click.option("--val-fraction", type=float, default=0.2, show_default=True, help="The test split takes the rest.")
@click.option("--epochs", type=click.IntRange(min=0), default=4, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--lr", "learning_rate", type=float, default=3e-4, show_default=True)
@click.option("--head-lr-factor", type=float, default=10.0, show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--weight-decay", type=float, default=1e-4, show_default=True)
@click.option("--flip/--no-flip", default=True, show_default=True, help="Random horizontal flip in training.")
@click.option("--translate-px", type=float, default=30.0, show_default=True, help="Random X/Y shift, +/- px.")
@click.option("--scale-range", type=(float, float), default=(0.9, 1.1), show_default=True)
@click.option("--top-k", type=click.IntRange(min=0), default=4, show_default=True, help="Max-activating images.")
@click.option("--bottom-k", type=click.IntRange(min=0), default=9, show_default=True, help="Min-activating images.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True)
@click.option("--cam/--no-cam", default=True, show_default=True, help="Compute Grad-CAM maps.")
@click.option("--pdf/--no-pdf", default=True, show_default=True, help="Write report.pdf.")
@click.option(
    "--probe",
    "probes",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Classify and explain this image from outside the data set (repeatable).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and errors only; no progress bars.")
def run(**options: Any) -> None:
    """Train (or load) a classifier on DATA_DIR's class folders and audit it."""
    verbose, quiet = options.pop("verbose"), options.pop("quiet")
    _configure_logging(verbose, quiet)
    config = replace(config_from_options(options), progress=not quiet and sys.stderr.isatty())
    _install_sigterm_handler()
    from reportgen.pipeline import run as run_pipeline  # heavy imports only once the options are valid

    try:
        outcome = run_pipeline(config)
    except ReportgenError as exc:
        raise _fail(str(exc), exc.exit_code) from exc
    except KeyboardInterrupt as exc:
        raise _fail("interrupted; the previous output (if any) is untouched", 130) from exc
    except Exception as exc:
        logger.debug("internal error", exc_info=True)
        raise _fail(
            f"internal error: {type(exc).__name__}: {exc} (run with -vv for the traceback)", EXIT_INTERNAL
        ) from exc
    click.echo(f"reportgen: test accuracy {outcome.report.metrics.accuracy:.3f}; results in {outcome.out_dir}")


def config_from_options(options: dict[str, Any]) -> RunConfig:
    """Build the frozen run configuration from the CLI's option values."""
    augment = AugmentConfig(
        flip=options["flip"],
        translate_px=options["translate_px"],
        scale_min=options["scale_range"][0],
        scale_max=options["scale_range"][1],
    )
    train = TrainConfig(
        epochs=options["epochs"],
        batch_size=options["batch_size"],
        learning_rate=options["learning_rate"],
        head_lr_factor=options["head_lr_factor"],
        momentum=options["momentum"],
        weight_decay=options["weight_decay"],
        augment=augment,
    )
    return RunConfig(
        data_dir=options["data_dir"],
        out_dir=options["out_dir"],
        model=options["model"],
        weights=options["weights"],
        checkpoint=options["checkpoint"],
        seed=options["seed"],
        split=SplitConfig(options["train_fraction"], options["val_fraction"]),
        train=train,
        top_k=options["top_k"],
        bottom_k=options["bottom_k"],
        device=options["device"],
        precision=options["precision"],
        cam=options["cam"],
        pdf=options["pdf"],
        probes=tuple(options["probes"]),
    )


class _Failure(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _fail(message: str, exit_code: int) -> click.ClickException:
    return _Failure(message, exit_code)


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if verbose < 2:
        for noisy in ("PIL", "matplotlib", "fontTools", "weasyprint", "timm"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _install_sigterm_handler() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so a killed job removes its staging folder."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@main.command("download-example")
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False))
@click.option("--url", default=None, help="Zip to fetch (default: the MathWorks Example Food Images, 77 MB).")
def download_example(dest: Path, url: str | None) -> None:
    """Download and unpack the MathWorks example's 978 food photos (9 classes) into DEST."""
    _configure_logging(0, False)
    from reportgen.example import EXAMPLE_FOOD_URL, download_dataset

    try:
        root = download_dataset(url or EXAMPLE_FOOD_URL, dest)
    except ReportgenError as exc:
        raise _fail(str(exc), exc.exit_code) from exc
    click.echo(f"data set ready: {root}\nnext: reportgen run {root} --out out/food")
