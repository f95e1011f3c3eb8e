"""Training records: plain data that the report model and the model check read without importing torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EpochStats:
    """Loss and accuracy of one epoch (training figures are running means over the epoch)."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float


@dataclass(frozen=True)
class TrainingHistory:
    """Per-epoch statistics of a fine-tuning run, and which epoch's weights were kept."""

    epochs: tuple[EpochStats, ...]
    kept_epoch: int = -1  # epoch whose weights the model ends with; 0 = the starting model; -1 = the last
    start_val_loss: float | None = None  # validation loss and accuracy of the starting model, when measured
    start_val_accuracy: float | None = None
    max_epochs: int = 0  # the most epochs the recipe allowed (0: not recorded)
    stopped_early: bool = False  # the validation loss stopped improving before the most epochs ran (--patience)

    @property
    def kept(self) -> int:
        """The kept epoch as a number (``0`` for the starting model)."""
        return len(self.epochs) if self.kept_epoch < 0 else self.kept_epoch
