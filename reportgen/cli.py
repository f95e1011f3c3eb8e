"""Command line: click options -> frozen RunConfig -> pipeline.run(); errors -> one line and an exit code."""

from __future__ import annotations

import json
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from reportgen import __version__
from reportgen.config import DEFAULT_MODEL, RECIPES, RunConfig, SplitConfig, TrainConfig
from reportgen.configfile import apply_config_file, require_options
from reportgen.errors import ReportgenError
from reportgen.output import request_stop

logger = logging.getLogger("reportgen")

EXIT_OK, EXIT_GATES_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reportgen")
def main() -> None:
    """Audit an image-classification data set and write the audit as HTML, PDF and JSON."""


@main.command()
@click.argument("data_dir", type=click.Path(path_type=Path, file_okay=False), required=False)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Output folder (replaced whole). Required.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML file with any of these options (keys = option names); flags given here override it.",
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
@click.option(
    "--recipe",
    type=click.Choice(sorted(RECIPES)),
    default="default",
    show_default=True,
    help="Named training defaults: 'default' (linear probe, then fine-tuning; measured in benchmarks/recipes.py) "
    "or 'example' (the MathWorks example's SGDM recipe, exactly). The training options below override it.",
)
@click.option("--epochs", type=click.IntRange(min=0), help="[recipe] Fine-tuning epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), help="[recipe]")
@click.option("--lr", "learning_rate", type=float, help="[recipe] Learning rate of the backbone.")
@click.option("--head-lr-factor", type=float, help="[recipe] The head's learning rate is this many times larger.")
@click.option("--momentum", type=float, help="[recipe]")
@click.option("--weight-decay", type=float, help="[recipe]")
@click.option(
    "--head-init", type=click.Choice(["probe", "random"]), help="[recipe] Start the head from the linear probe."
)
@click.option(
    "--batchnorm",
    type=click.Choice(["frozen", "train", "recalibrate"]),
    help="[recipe] Batch-norm statistics: kept, updated by training batches, or recomputed after each epoch.",
)
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), help="[recipe] Learning-rate schedule.")
@click.option(
    "--keep",
    type=click.Choice(["best", "last"]),
    help="[recipe] Keep the epoch of lowest validation loss, or the last.",
)
@click.option("--flip/--no-flip", default=None, help="[recipe] Random horizontal flip in training.")
@click.option("--translate-px", type=float, help="[recipe] Random X/Y shift, +/- px.")
@click.option("--scale-range", type=(float, float), help="[recipe] Random X/Y scale range.")
@click.option(
    "--padding", type=click.Choice(["zeros", "reflection"]), help="[recipe] What fills pixels shifted into view."
)
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
@click.option(
    "--audit/--no-audit",
    default=True,
    show_default=True,
    help="Data-defect checks: label errors, duplicates and leakage, calibration, shortcuts, image health.",
)
@click.option(
    "--label-check",
    type=click.Choice(["embeddings", "finetune", "off"]),
    default="embeddings",
    show_default=True,
    help="Out-of-sample probabilities for the label check: cross-validation on pretrained features (cheap), "
    "K fine-tunings (K times the training time), or off.",
)
@click.option("--label-folds", type=click.IntRange(min=2), default=5, show_default=True, help="Folds (K).")
@click.option(
    "--near-duplicate-threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.90,
    show_default=True,
    help="Cosine similarity of pretrained features at or above which two images are near-duplicates.",
)
@click.option(
    "--fail-under",
    multiple=True,
    metavar="METRIC[:CLASS]=VALUE",
    help="Quality gate: exit 1 when the metric is below VALUE, e.g. accuracy=0.85, recall:sushi=0.7 (repeatable).",
)
@click.option(
    "--fail-over",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Quality gate: exit 1 when the metric is above VALUE, e.g. suspected_label_errors=20 (repeatable).",
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path),
    help="A previous output folder (or its results.json): adds 'Changes since the last audit'.",
)
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
        require_options(options, ("data_dir", "out_dir"), options["config_file"])
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


TRAIN_OPTIONS = ("epochs", "batch_size", "learning_rate", "head_lr_factor", "momentum", "weight_decay")
TRAIN_OPTIONS += ("head_init", "batchnorm", "schedule", "keep")
AUGMENT_OPTIONS = ("flip", "translate_px", "padding")


def recipe_config(options: dict[str, Any]) -> TrainConfig:
    """The named recipe's training configuration with every training option that was given put in."""
    recipe = RECIPES[options.get("recipe") or "default"]
    given = {k: options[k] for k in TRAIN_OPTIONS if options.get(k) is not None}
    augment = {k: options[k] for k in AUGMENT_OPTIONS if options.get(k) is not None}
    if options.get("scale_range") is not None:
        augment["scale_min"], augment["scale_max"] = options["scale_range"]
    return replace(recipe, augment=replace(recipe.augment, **augment), **given)


def config_from_options(options: dict[str, Any]) -> RunConfig:
    """Build the frozen run configuration from the CLI's option values."""
    return RunConfig(
        recipe=options["recipe"],
        train=recipe_config(options),
        data_dir=options["data_dir"],
        out_dir=options["out_dir"],
        model=options["model"],
        weights=options["weights"],
        checkpoint=options["checkpoint"],
        seed=options["seed"],
        split=SplitConfig(options["train_fraction"], options["val_fraction"]),
        top_k=options["top_k"],
        bottom_k=options["bottom_k"],
        device=options["device"],
        precision=options["precision"],
        cam=options["cam"],
        pdf=options["pdf"],
        probes=tuple(options["probes"]),
        audit=options["audit"],
        label_check=options["label_check"],
        label_folds=options["label_folds"],
        near_duplicate_threshold=options["near_duplicate_threshold"],
        fail_under=tuple(options["fail_under"]),
        fail_over=tuple(options["fail_over"]),
        baseline=options["baseline"],
        config_file=options["config_file"],
    )


class _Failure(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _fail(message: str, exit_code: int) -> click.ClickException:
    return _Failure(message, exit_code)


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
    from reportgen.example import EXAMPLE_FOOD_URL, download_dataset

    try:
        root = download_dataset(url or EXAMPLE_FOOD_URL, dest)
    except ReportgenError as exc:
        raise _fail(str(exc), exc.exit_code) from exc
    click.echo(f"data set ready: {root}\nnext: reportgen run {root} --out out/food")
