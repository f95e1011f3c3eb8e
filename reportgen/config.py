"""Run configuration: frozen dataclasses, and the named training recipes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "efficientnet_lite0"


@dataclass(frozen=True)
class SplitConfig:
    """Per-class split fractions; the test split takes what is left (``splitEachLabel(imds, 0.6, 0.2)``)."""

    train: float = 0.6  # fraction of each class used for training
    val: float = 0.2  # fraction of each class used for validation; the rest is test


@dataclass(frozen=True)
class AugmentConfig:
    """Training-image augmentation (the example's ``imageDataAugmenter`` by default)."""

    flip: bool = True  # random horizontal reflection
    translate_px: float = 30.0  # random X and Y shift, +/- pixels of the model input
    scale_min: float = 0.9  # random X and Y scale range, drawn independently per axis
    scale_max: float = 1.1
    padding: str = "zeros"  # zeros (black, as MATLAB) | reflection: what fills pixels shifted into view


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning recipe; these defaults are the example's ``trainingOptions('sgdm', ...)``."""

    epochs: int = 4
    batch_size: int = 10
    learning_rate: float = 3e-4
    head_lr_factor: float = 10.0  # the new head learns this many times faster (WeightLearnRateFactor 10)
    momentum: float = 0.9
    weight_decay: float = 1e-4  # MATLAB's default L2Regularization
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    head_init: str = "random"  # random | probe: start the head from the linear probe (LP-FT)
    batchnorm: str = "train"  # train | frozen (running statistics kept) | recalibrate (after each epoch)
    schedule: str = "constant"  # constant | cosine: learning rate over the steps of all epochs
    keep: str = "last"  # last | best: the epoch (0 = the starting model) with the lowest validation loss
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
class RunConfig:
    """Everything one ``reportgen run`` needs; built by the CLI, read by the pipeline."""

    data_dir: Path
    out_dir: Path
    model: str = DEFAULT_MODEL
    weights: str = "DEFAULT"  # DEFAULT | a torchvision weights enum name | a local file | none
    checkpoint: Path | None = None  # load this fine-tuned model instead of training
    seed: int = 0
    split: SplitConfig = field(default_factory=SplitConfig)
    recipe: str = "default"  # the named training defaults that ``train`` started from (RECIPES)
    train: TrainConfig = field(default_factory=lambda: RECIPES["default"])
    top_k: int = 4  # max-activating images shown per class
    bottom_k: int = 9  # min-activating images shown per class
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | fp32 | bf16
    eval_batch_size: int = 32
    cam: bool = True
    cam_batch_size: int = 16
    pdf: bool = True
    probes: tuple[Path, ...] = ()
    audit: bool = True  # run the data-defect checks (label errors, duplicates, calibration, shortcuts, health)
    label_check: str = "embeddings"  # embeddings | finetune | off: where out-of-sample probabilities come from
    label_folds: int = 5  # cross-validation folds of the label check
    near_duplicate_threshold: float = 0.90  # cosine similarity of pretrained features for a near-duplicate
    fail_under: tuple[str, ...] = ()  # quality gates METRIC[:CLASS]=VALUE that fail when the value is lower
    fail_over: tuple[str, ...] = ()  # ... when the value is higher
    baseline: Path | None = None  # previous output folder or results.json to compare with
    config_file: Path | None = None  # the --config file the options came from, if any
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as JSON-able primitives."""
        return _jsonable(dataclasses.asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
