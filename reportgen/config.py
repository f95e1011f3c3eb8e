"""Run configuration: frozen dataclasses, the named training recipes, and the ``reportgen run`` options.

Each field that ``reportgen run`` exposes carries its option's description (help, flag, choices, range) in
its metadata, through :func:`option`; :func:`option_fields` lists them. The description is plain data: the
CLI turns it into click options whose defaults are the fields' defaults, and the config file's keys are
those options' names.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "efficientnet_lite0"
OPTION = "reportgen.option"  # field metadata key: the field's Option
RECIPE_OVERRIDES = "reportgen.recipe_overrides"  # field metadata key: its options override the chosen recipe

FieldPath = tuple[str, ...]  # field names from the configuration's root down, e.g. ("train", "augment", "flip")


@dataclass(frozen=True)
class Option:
    """How one configuration field is given on ``reportgen run``'s command line (and in a config file)."""

    help: str = ""
    name: str | None = None  # the parameter name and config-file key; None: the field's name
    flag: str | None = None  # the long flag; None: "--" and the name with dashes
    choices: tuple[str, ...] = ()
    low: float | None = None  # inclusive bounds of a number
    high: float | None = None
    negatable: bool = False  # an on/off flag given as --x or --no-x
    path: str = "any"  # a Path field's kind: file | dir | any
    exists: bool = False  # a Path that must exist
    metavar: str | None = None
    argument: bool = False  # positional, not a flag
    pair: str | None = None  # the field set by the second of two values (--scale-range MIN MAX)


def option(default: Any = MISSING, **description: Any) -> Any:
    """A dataclass field with this ``default`` that ``reportgen run`` exposes as described (see Option)."""
    return field(default=default, metadata={OPTION: Option(**description)})


@dataclass(frozen=True)
class OptionField:
    """One option of ``reportgen run``: where its value goes in a RunConfig, its type and its default."""

    path: FieldPath
    option: Option
    type: Any  # the field's annotation, evaluated (int, Path | None, tuple[str, ...], ...)
    default: Any  # the field's default (both values for a pair); MISSING for a required field
    recipe: bool  # a training option: unset, the chosen recipe's value stands

    @property
    def name(self) -> str:
        """The parameter name (the key in the option values and in a config file)."""
        return self.option.name or self.path[-1]

    @property
    def flag(self) -> str:
        """The long flag, e.g. ``--lr``."""
        return self.option.flag or "--" + self.name.replace("_", "-")

    @property
    def repeatable(self) -> bool:
        """Whether the option may be given many times (a ``tuple[X, ...]`` field)."""
        return typing.get_origin(self.type) is tuple and not self.option.pair

    def settings(self, value: Any) -> dict[FieldPath, Any]:
        """The field values (by path) that the option's ``value`` sets."""
        if self.option.pair:
            first, second = value
            return {self.path: first, (*self.path[:-1], self.option.pair): second}
        return {self.path: tuple(value) if self.repeatable else value}


@dataclass(frozen=True)
class SplitConfig:
    """Per-class split fractions; the test split takes what is left (``splitEachLabel(imds, 0.6, 0.2)``)."""

    train: float = option(0.6, name="train_fraction")  # fraction of each class used for training
    val: float = option(0.2, name="val_fraction", help="The test split takes the rest.")
    source: str = option(
        "auto",
        name="split",
        choices=("auto", "given", "random"),
        help="auto: the split given by train/ val/ test/ folders or a manifest's split column, else random; "
        "given: fail when none is given; random: re-split at random by the fractions.",
    )


@dataclass(frozen=True)
class AugmentConfig:
    """Training-image augmentation (the example's ``imageDataAugmenter`` by default)."""

    flip: bool = option(True, negatable=True, help="Random horizontal flip in training.")
    translate_px: float = option(30.0, help="Random X/Y shift, +/- px.")  # of the model input
    # random X and Y scale range, drawn independently per axis
    scale_min: float = option(0.9, name="scale_range", pair="scale_max", help="Random X/Y scale range.")
    scale_max: float = 1.1
    padding: str = option(  # zeros: black, as MATLAB
        "zeros", choices=("zeros", "reflection"), help="What fills pixels shifted into view."
    )


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning recipe; these defaults are the example's ``trainingOptions('sgdm', ...)``."""

    epochs: int = option(4, low=0, help="Fine-tuning epochs (with --patience: the most).")
    patience: int = option(  # 0: every epoch runs
        0,
        low=0,
        help="Stop when the validation loss has not improved for this many epochs, or when the linear probe still "
        "has the lowest and an epoch got worse (0: never).",
    )
    min_improvement: float = option(  # e.g. 0.01: a fall of the validation loss under 1 % does not reset patience
        0.0, low=0.0, high=1.0, help="Least relative fall of the validation loss that counts as improving (--patience)."
    )
    warmup_epochs: float = option(  # over the first steps, from 0 to the learning rate
        0.0, low=0, help="Linear learning-rate warm-up, in epochs."
    )
    batch_size: int = option(10, low=1)
    learning_rate: float = option(3e-4, flag="--lr", help="Learning rate of the backbone.")
    head_lr_factor: float = option(  # WeightLearnRateFactor 10
        10.0, help="The head's learning rate is this many times larger."
    )
    layer_decay: float = option(  # e.g. 0.1: the stem learns at a tenth of the last block's rate
        1.0,
        low=0.0,
        high=1.0,
        help="Layer-wise learning-rate decay: the backbone's first layers learn at this fraction of its last's (1: "
        "all alike).",
    )
    momentum: float = option(0.9)
    weight_decay: float = option(1e-4)  # MATLAB's default L2Regularization
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    head_init: str = option(  # probe: LP-FT
        "random", choices=("probe", "random"), help="Start the head from the linear probe."
    )
    batchnorm: str = option(
        "train",
        choices=("frozen", "train", "recalibrate"),
        help="Batch-norm statistics: kept, updated by training batches, or recomputed after each epoch.",
    )
    schedule: str = option(  # over the steps of all epochs
        "constant", choices=("constant", "cosine"), help="Learning-rate schedule."
    )
    keep: str = option(  # best: the epoch (0 = the starting model) with the lowest validation loss
        "last", choices=("best", "last"), help="Keep the epoch of lowest validation loss, or the last."
    )
    label_smoothing: float = 0.0  # share of each target spread over the other classes (training loss only)


EXAMPLE_RECIPE = TrainConfig()  # the MathWorks example, exactly: SGDM 3e-4, head x10, batch 10, 4 epochs
RECIPES: dict[str, TrainConfig] = {
    "default": TrainConfig(
        epochs=4,
        batch_size=10,
        learning_rate=1e-3,
        head_lr_factor=1.0,
        augment=AugmentConfig(translate_px=10.0, padding="reflection"),
        head_init="probe",
        batchnorm="frozen",
        schedule="cosine",
        keep="best",
        label_smoothing=0.1,
    ),
    "example": EXAMPLE_RECIPE,
}


@dataclass(frozen=True)
class BatchSizes:
    """Images per batch for inference and for Grad-CAM on one kind of device."""

    eval: int
    cam: int  # Grad-CAM keeps the target layer's activations and gradients: more memory per image


# The CPU's are reportgen's sizes from the start. CUDA's are not measured (no GPU where reportgen is developed):
# a GPU needs hundreds of 224-px images per call to be busy, and 256 in bf16 fit in a few GB; Grad-CAM also
# runs the backward pass from its target layer, so a quarter as many.
DEVICE_BATCH_SIZES = {"cpu": BatchSizes(eval=32, cam=16), "cuda": BatchSizes(eval=256, cam=64)}


@dataclass(frozen=True)
class RunConfig:
    """Everything one ``reportgen run`` needs; built by the CLI, read by the pipeline."""

    data_dir: Path = option(argument=True, path="dir")  # the DATA_DIR argument: one sub-folder per class
    out_dir: Path = option(flag="--out", help="Output folder (replaced whole). Required.")
    model: str = option(
        DEFAULT_MODEL, help=f"{DEFAULT_MODEL} (offline) or a torchvision classification model name, e.g. googlenet."
    )
    weights: str = option(
        "DEFAULT",
        help="DEFAULT, a torchvision weights name (e.g. IMAGENET1K_V1), a local state-dict file, or none.",
    )
    checkpoint: Path | None = option(None, path="file", help="Load this reportgen model.pt and skip training.")
    labels: Path | None = option(
        None,
        path="file",
        help="A CSV, TSV or JSON Lines manifest of image paths (relative to DATA_DIR), labels, an optional split "
        "and metadata columns; without it a metadata.csv or metadata.jsonl at DATA_DIR's root is read.",
    )
    label_column: str | None = option(None, help="The manifest's label column (default: label or class).")
    seed: int = option(0, help="Drives split, augmentation and training.")
    split: SplitConfig = field(default_factory=SplitConfig)
    recipe: str = option(  # the named training defaults that ``train`` started from
        "default",
        choices=tuple(sorted(RECIPES)),
        help="Named training defaults: 'default' (linear probe, then fine-tuning; measured in "
        "benchmarks/recipes.py) or 'example' (the MathWorks example's SGDM recipe, exactly). "
        "The training options below override it.",
    )
    train: TrainConfig = field(default_factory=lambda: RECIPES["default"], metadata={RECIPE_OVERRIDES: True})
    top_k: int = option(4, low=0, help="Max-activating images.")  # shown per class
    bottom_k: int = option(9, low=0, help="Min-activating images.")  # shown per class
    device: str = option("auto", choices=("auto", "cpu", "cuda"))
    precision: str = option("auto", choices=("auto", "fp32", "bf16"))
    eval_batch_size: int | None = None  # images per inference batch; None: the device's, DEVICE_BATCH_SIZES
    cam: bool = option(True, negatable=True, help="Compute Grad-CAM maps.")
    cam_batch_size: int | None = None  # images per Grad-CAM batch; None: the device's, DEVICE_BATCH_SIZES
    cam_method: str = option(  # measured in benchmarks/cam_faithfulness.py (README)
        "gradcam",
        choices=("gradcam", "hirescam", "gradcam++", "layercam", "scorecam", "shapleycam"),
        help="Heat-map method of the galleries and the shortcut check (scorecam: a forward pass per channel).",
    )
    explanation_check: bool = option(
        True,
        negatable=True,
        help="Score how faithful the heat maps are (ROAD) against a random map and a centred blob.",
    )
    explanation_images: int = option(  # per class; 4 keeps the check within 20 % of a food9-64px run (README)
        4, low=1, help="Gallery images per class the explanation check scores."
    )
    pdf: bool = option(True, negatable=True, help="Write report.pdf.")
    pdf_classes: str = option(  # the ranking: reportgen.analysis.attention; the HTML keeps every class
        "worst:20",
        metavar="all|worst:N",
        help="Classes with a chapter in report.pdf: all, or the N that need attention most (lowest recall, then "
        "most suspected label errors, then flagged checks); the others get a line each in a table.",
    )
    single_file: bool = option(  # on: +0.1-0.2 s, report.html 0.26 -> 5.6 MB on food9-64px (README)
        True,
        negatable=True,
        help="Embed the pictures in report.html, so that it works when sent alone; off, it shows them from "
        "assets/ and figures/ and stays small.",
    )
    probes: tuple[Path, ...] = option(
        (),
        flag="--probe",
        path="file",
        exists=True,
        help="Classify and explain this image from outside the data set (repeatable).",
    )
    audit: bool = option(
        True,
        negatable=True,
        help="Data-defect checks: label errors, duplicates and leakage, calibration, shortcuts, image health.",
    )
    label_check: str = option(
        "embeddings",
        choices=("embeddings", "finetune", "off"),
        help="Out-of-sample probabilities for the label check: cross-validation on pretrained features (cheap), "
        "K fine-tunings (K times the training time), or off.",
    )
    label_folds: int = option(5, low=2, help="Folds (K).")  # cross-validation folds of the label check
    near_duplicate_threshold: float = option(
        0.90,
        low=0.0,
        high=1.0,
        help="Cosine similarity of pretrained features at or above which two images are near-duplicates.",
    )
    slice_min_size: int = option(
        10,
        low=2,
        help="Where the model fails: fewest validation and test images in a reported slice (and in the rest).",
    )
    slice_min_effect: float = option(
        0.15,  # benchmarks/planted_slices.py: at 0.12 the clean food9-64px gets two feature clusters, at 0.15 none
        low=0.0,
        high=1.0,
        help="Where the model fails: least shortfall of a slice's mean score for the true class below the rest's "
        "and its classes' elsewhere.",
    )
    slice_alpha: float = option(
        0.05,
        low=0.0,
        high=1.0,
        help="Where the model fails: largest p-value reported (Benjamini-Hochberg over every slice tried).",
    )
    fail_under: tuple[str, ...] = option(
        (),
        metavar="METRIC[:CLASS]=VALUE",
        help="Quality gate: exit 1 when the metric is below VALUE, e.g. accuracy=0.85, recall:sushi=0.7 (repeatable).",
    )
    fail_over: tuple[str, ...] = option(
        (),
        metavar="METRIC=VALUE",
        help="Quality gate: exit 1 when the metric is above VALUE, e.g. suspected_label_errors=20 (repeatable).",
    )
    baseline: Path | None = option(
        None, help="A previous output folder (or its results.json): adds 'Changes since the last audit'."
    )
    config_file: Path | None = None  # the --config file the options came from, if any
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as JSON-able primitives."""
        return _jsonable(dataclasses.asdict(self))


def option_fields(cls: type = RunConfig, path: FieldPath = (), recipe: bool = False) -> list[OptionField]:
    """Every field of dataclass ``cls`` exposed as an option, nested dataclasses' included, in field order."""
    hints = typing.get_type_hints(cls)
    found: list[OptionField] = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            found += option_fields(kind, (*path, f.name), recipe or bool(f.metadata.get(RECIPE_OVERRIDES)))
        elif OPTION in f.metadata:
            spec: Option = f.metadata[OPTION]
            default, kind = f.default, hints[f.name]
            if spec.pair:
                default, kind = (default, _field(cls, spec.pair).default), tuple[kind, hints[spec.pair]]
            found.append(OptionField((*path, f.name), spec, kind, default, recipe))
    return found


def with_settings(cls: type, settings: Mapping[FieldPath, Any], base: Any = None) -> Any:
    """Dataclass ``cls`` built from ``base`` (None: the defaults) with ``settings`` (values by field path) put in."""
    hints = typing.get_type_hints(cls)
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if (f.name,) in settings:
            changes[f.name] = settings[(f.name,)]
            continue
        inner = {path[1:]: value for path, value in settings.items() if len(path) > 1 and path[0] == f.name}
        if inner:
            changes[f.name] = with_settings(hints[f.name], inner, None if base is None else getattr(base, f.name))
    return cls(**changes) if base is None else dataclasses.replace(base, **changes)


def _field(cls: type, name: str) -> dataclasses.Field[Any]:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
