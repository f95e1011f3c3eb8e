"""Training stage: fine-tune the backbone and its new head with the example's SGDM recipe."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from reportgen.config import TrainConfig
from reportgen.model import ModelSpec, head_parameters
from reportgen.runtime import Runtime, augment, autocast, normalise, to_unit_tensor

logger = logging.getLogger(__name__)


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
    """Per-epoch statistics of a fine-tuning run."""

    epochs: tuple[EpochStats, ...]


def train_model(
    model: nn.Module,
    spec: ModelSpec,
    pixels: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    config: TrainConfig,
    runtime: Runtime,
    *,
    seed: int,
    progress: bool = True,
) -> TrainingHistory:
    """Fine-tune ``model`` in place on ``train_idx``; evaluate on ``val_idx`` after every epoch."""
    model.to(runtime.device, memory_format=torch.channels_last if runtime.channels_last else torch.preserve_format)
    optimizer = _optimizer(model, spec, config)
    criterion = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)  # drives shuffling and augmentation
    history = []
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = _train_one_epoch(
            model,
            spec,
            criterion,
            optimizer,
            pixels,
            labels,
            train_idx,
            config,
            runtime,
            generator,
            desc=f"Epoch {epoch}/{config.epochs}",
            progress=progress,
        )
        val_loss, val_acc = evaluate_loss(model, spec, criterion, pixels, labels, val_idx, runtime)
        stats = EpochStats(epoch, train_loss, train_acc, val_loss, val_acc, time.perf_counter() - start)
        logger.info(
            "epoch %d/%d: train loss %.3f acc %.3f | val loss %s acc %s | %.0f s",
            epoch,
            config.epochs,
            train_loss,
            train_acc,
            _fmt(val_loss),
            _fmt(val_acc),
            stats.seconds,
        )
        history.append(stats)
    model.eval()
    return TrainingHistory(tuple(history))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _optimizer(model: nn.Module, spec: ModelSpec, config: TrainConfig) -> torch.optim.Optimizer:
    head = head_parameters(model, spec)
    head_ids = {id(p) for p in head}
    body = [p for p in model.parameters() if id(p) not in head_ids]
    groups = [
        {"params": body, "lr": config.learning_rate},
        {"params": head, "lr": config.learning_rate * config.head_lr_factor},
    ]
    return torch.optim.SGD(groups, momentum=config.momentum, weight_decay=config.weight_decay)


def _train_one_epoch(
    model: nn.Module,
    spec: ModelSpec,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    pixels: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    config: TrainConfig,
    runtime: Runtime,
    generator: torch.Generator,
    *,
    desc: str,
    progress: bool,
) -> tuple[float, float]:
    model.train()
    order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
    batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    total_loss, correct = 0.0, 0
    bar = tqdm(batches, desc=desc, unit="batch", disable=not progress, leave=False)
    for batch in bar:
        x = augment(to_unit_tensor(pixels[np.sort(batch)], runtime), config.augment, generator)
        y = torch.from_numpy(labels[np.sort(batch)]).to(runtime.device)
        with autocast(runtime, runtime.train_dtype):
            logits = model(normalise(x, spec, runtime))
            loss = criterion(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(batch)
        correct += int((logits.argmax(1) == y).sum())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return total_loss / len(order), correct / len(order)


def evaluate_loss(
    model: nn.Module,
    spec: ModelSpec,
    criterion: nn.Module,
    pixels: np.ndarray,
    labels: np.ndarray,
    idx: np.ndarray,
    runtime: Runtime,
    batch_size: int = 32,
) -> tuple[float | None, float | None]:
    """Mean loss and accuracy of ``model`` on images ``idx``, or ``(None, None)`` for no images."""
    if len(idx) == 0:
        return None, None
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.inference_mode(), autocast(runtime, runtime.eval_dtype):
        for i in range(0, len(idx), batch_size):
            batch = idx[i : i + batch_size]
            logits = model(normalise(to_unit_tensor(pixels[batch], runtime), spec, runtime)).float()
            y = torch.from_numpy(labels[batch]).to(runtime.device)
            total_loss += criterion(logits, y).item() * len(batch)
            correct += int((logits.argmax(1) == y).sum())
    return total_loss / len(idx), correct / len(idx)
