"""Training stage: fine-tune the backbone and its new head (SGD with momentum; the recipe is a ``TrainConfig``)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from reportgen.config import TrainConfig
from reportgen.model.backbones import ModelSpec, head_parameters
from reportgen.model.distributed import ONE_PROCESS, Ranks, all_sum
from reportgen.model.fold import folded_copy
from reportgen.model.history import EpochStats, TrainingHistory
from reportgen.model.probe import LinearProbe
from reportgen.model.runtime import Runtime, augment, augment_draws, autocast, normalise, unit_batches

logger = logging.getLogger(__name__)

DEPTH_GROUPS = 8  # layer-wise learning-rate decay: the backbone's parameters in this many groups by depth


def train_model(
    model: nn.Module,
    spec: ModelSpec,
    pixels: np.ndarray,
    labels: np.ndarray,
    *,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    config: TrainConfig,
    runtime: Runtime,
    seed: int,
    eval_batch_size: int,
    probe: LinearProbe | None = None,
    progress: bool = True,
    ranks: Ranks = ONE_PROCESS,
    start: tuple[float, float] | None = None,
) -> TrainingHistory:
    """Fine-tune ``model`` in place on ``train_idx``; evaluate on ``val_idx`` after every epoch.

    With ``config.head_init == "probe"`` the new head starts from ``probe``; with ``config.keep ==
    "best"`` the model ends with the weights of the epoch of lowest validation loss, the starting model
    (epoch 0) included. Evaluation (and batch-norm recalibration) runs ``eval_batch_size`` images at a time.
    ``start``, the starting model's validation loss and accuracy when already known (the linear probe's,
    for a head started from it: :func:`reportgen.model.features.probe_validation`), saves a validation pass.
    Under torchrun (``ranks``) the model is wrapped in DistributedDataParallel and each rank takes a slice
    of every global batch (:func:`_train_one_epoch`) and of the validation images. With ``config.patience``
    training stops early (:class:`_BestEpoch`).
    """
    model.to(runtime.device, memory_format=torch.channels_last if runtime.channels_last else torch.preserve_format)
    if config.head_init == "probe":
        if probe is None or not spec.normalised_head:
            raise ValueError("head_init='probe' needs a fitted linear probe and a model built with normalised_head")
        load_head(model, spec, probe)
    sgd = _sgd(model, spec, config, len(train_idx), seed)
    criterion = nn.CrossEntropyLoss()  # validation loss: plain cross-entropy, whatever the training loss
    net = _parallel(model, runtime, ranks)

    def validate() -> tuple[float | None, float | None]:
        return evaluate_loss(
            model, spec, criterion, pixels, labels, val_idx, runtime, batch_size=eval_batch_size, ranks=ranks
        )

    start_loss, start_acc = validate() if start is None or config.head_init != "probe" else start
    best = _BestEpoch(model, start_loss, config)
    history: list[EpochStats] = []
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = _train_one_epoch(
            net, spec, sgd, pixels, labels, train_idx, config, runtime, epoch=epoch, progress=progress, ranks=ranks
        )
        if config.batchnorm == "recalibrate":
            recalibrate_batchnorm(model, spec, pixels, train_idx, runtime, batch_size=eval_batch_size)
        stats = EpochStats(epoch, train_loss, train_acc, *validate(), time.perf_counter() - start)
        _log_epoch(stats, config.epochs)
        history.append(stats)
        if best.offer(epoch, stats.val_loss) and epoch < config.epochs:
            break
    model.eval()
    stopped = len(history) < config.epochs
    return TrainingHistory(tuple(history), best.restore(), start_loss, start_acc, config.epochs, stopped)


@dataclass(frozen=True)
class _Sgd:
    """What a training step needs besides the model and the images."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler  # stepped once per batch
    criterion: nn.Module  # the training loss (label smoothing included), summed over the images
    generator: torch.Generator  # drives shuffling and augmentation


def _sgd(model: nn.Module, spec: ModelSpec, config: TrainConfig, n_train: int, seed: int) -> _Sgd:
    optimizer = _optimizer(model, spec, config)
    per_epoch = -(-n_train // config.batch_size)
    steps = max(1, config.epochs * per_epoch)
    return _Sgd(
        optimizer,
        _scheduler(optimizer, config.schedule, steps, warmup=round(config.warmup_epochs * per_epoch)),
        nn.CrossEntropyLoss(label_smoothing=config.label_smoothing, reduction="sum"),
        torch.Generator().manual_seed(seed),
    )


class _BestEpoch:
    """The epoch of lowest validation loss so far (0: the starting model), a copy of its weights, and when to stop.

    When to stop (``patience`` > 0) is :func:`stop_training`'s rule. Every rank sees the same summed validation
    loss (:func:`evaluate_loss`), so under torchrun all ranks stop after the same epoch.
    """

    def __init__(self, model: nn.Module, start_loss: float | None, config: TrainConfig) -> None:
        self.model, self.loss, self.epoch, self.config = model, start_loss, 0, config
        self.losses: list[float | None] = [start_loss]
        self.keep = config.keep == "best" and start_loss is not None  # no starting loss: the last epoch
        self.state = _state_copy(model) if self.keep else None

    def offer(self, epoch: int, val_loss: float | None) -> bool:
        """Record ``epoch``'s validation loss (copying the weights when it is the best); True: stop after it."""
        self.losses.append(val_loss)
        if val_loss is not None and (self.loss is None or val_loss < self.loss):
            self.loss, self.epoch = val_loss, epoch
            if self.keep:
                self.state = _state_copy(self.model)
        c = self.config
        stop = stop_training(self.losses, c.patience, min_improvement=c.min_improvement, warmup=c.warmup_epochs)
        if stop:
            logger.info("stopping after epoch %d: validation loss not improving (patience %d)", epoch, c.patience)
        return stop

    def restore(self) -> int:
        """Load the best epoch's weights into the model and return that epoch; -1 (the last) when not kept."""
        if not self.keep:
            return -1
        self.model.load_state_dict(self.state)
        logger.info("kept epoch %d (lowest validation loss %.3f)", self.epoch, self.loss)
        return self.epoch


def stop_training(
    losses: list[float | None], patience: int, *, min_improvement: float = 0.0, warmup: float = 0.0
) -> bool:
    """Whether to stop after the last of ``losses`` (validation losses; ``losses[0]``: the starting model's, or None).

    Two rules, none with ``patience`` 0:

    * *plateau*: no fine-tuned epoch has improved on the best fine-tuned loss by ``min_improvement`` (a share
      of it) for ``patience`` epochs, counted from the end of the ``warmup`` epochs at the earliest;
    * *the probe wins*: the starting model (the linear probe) still has the lowest loss and the last epoch
      did not improve on the fine-tuned epochs before it. Fine-tuning that is catching up goes on; fine-tuning
      that is behind and going backwards stops at once and keeps the probe, at a fraction of the cost.
    """
    tuned = [loss for loss in losses[1:] if loss is not None]
    if patience <= 0 or not tuned:
        return False
    best = 0  # the epoch (0-based) of the last improvement by at least min_improvement
    for k, loss in enumerate(tuned[1:], 1):
        if loss < tuned[best] * (1 - min_improvement):
            best = k
    if len(tuned) - max(best + 1, math.ceil(warmup)) >= patience:
        return True
    start = losses[0]
    probe_leads = start is not None and min(tuned) >= start
    return probe_leads and len(tuned) >= 2 and tuned[-1] >= min(tuned[:-1])


def load_head(model: nn.Module, spec: ModelSpec, probe: LinearProbe) -> None:
    """Copy the linear probe's weights into the classifier layer."""
    head = model.get_submodule(spec.head)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(probe.weight))
        head.bias.copy_(torch.from_numpy(probe.bias))


def recalibrate_batchnorm(
    model: nn.Module, spec: ModelSpec, pixels: np.ndarray, idx: np.ndarray, runtime: Runtime, *, batch_size: int
) -> None:
    """Recompute every batch-norm layer's running statistics on the un-augmented images ``idx``."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.train()
    with torch.no_grad():
        for x in unit_batches(pixels, _chunks(idx, batch_size), runtime):
            model(normalise(x, spec, runtime))
    for m, momentum in zip(layers, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _log_epoch(stats: EpochStats, epochs: int) -> None:
    logger.info(
        "epoch %d/%d: train loss %.3f acc %.3f | val loss %s acc %s | %.0f s",
        stats.epoch,
        epochs,
        stats.train_loss,
        stats.train_accuracy,
        _fmt(stats.val_loss),
        _fmt(stats.val_accuracy),
        stats.seconds,
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _optimizer(model: nn.Module, spec: ModelSpec, config: TrainConfig) -> torch.optim.Optimizer:
    head = head_parameters(model, spec)
    head_ids = {id(p) for p in head}
    body = [p for p in model.parameters() if id(p) not in head_ids]
    groups = _depth_groups(body, config.learning_rate, config.layer_decay)
    groups.append({"params": head, "lr": config.learning_rate * config.head_lr_factor})
    return torch.optim.SGD(groups, momentum=config.momentum, weight_decay=config.weight_decay)


def _depth_groups(body: list[nn.Parameter], lr: float, decay: float) -> list[dict]:
    """The backbone's parameters in :data:`DEPTH_GROUPS` groups by depth (their order in the model).

    The deepest group learns at ``lr``, each shallower one lower, down to ``lr * decay`` for the first; one
    group when ``decay`` is 1.
    """
    if decay == 1.0 or len(body) < DEPTH_GROUPS:
        return [{"params": body, "lr": lr}]
    bins = np.array_split(np.arange(len(body)), DEPTH_GROUPS)
    return [
        {"params": [body[i] for i in members], "lr": lr * decay ** (1 - k / (DEPTH_GROUPS - 1))}
        for k, members in enumerate(bins)
    ]


def _scheduler(
    optimizer: torch.optim.Optimizer, schedule: str, steps: int, *, warmup: int = 0
) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning rate's factor per step: a linear warm-up over ``warmup`` steps, then constant or cosine decay.

    The cosine runs over all ``steps`` of the most epochs, so an early stop ends at a learning rate still above 0.
    """
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, schedule, steps, warmup))


def lr_factor(step: int, schedule: str, steps: int, warmup: int) -> float:
    """The learning rate's factor at ``step`` (0-based): warm-up ramp times the schedule's decay."""
    ramp = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    decay = 0.5 * (1 + math.cos(math.pi * step / steps)) if schedule == "cosine" else 1.0
    return ramp * decay


def _set_batchnorm_mode(model: nn.Module, batchnorm: str) -> None:
    """Training mode for the model; batch-norm layers keep their running statistics when frozen."""
    model.train()
    if batchnorm == "frozen":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def _parallel(model: nn.Module, runtime: Runtime, ranks: Ranks) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel under torchrun; itself in one process."""
    if not ranks.distributed:
        return model
    device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _train_one_epoch(
    model: nn.Module,
    spec: ModelSpec,
    sgd: _Sgd,
    pixels: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    config: TrainConfig,
    runtime: Runtime,
    *,
    epoch: int,
    progress: bool,
    ranks: Ranks,
) -> tuple[float, float]:
    """Mean training loss and accuracy of one pass over ``train_idx`` in shuffled, augmented batches.

    Every rank draws the same order and augmentation numbers and takes its slice of each batch; its loss
    is scaled so that DistributedDataParallel's mean of the ranks' gradients is the whole batch's mean.
    """
    _set_batchnorm_mode(model, config.batchnorm)
    order = train_idx[torch.randperm(len(train_idx), generator=sgd.generator).numpy()]
    batches = [np.sort(batch) for batch in _chunks(order, config.batch_size)]
    parts = [ranks.shard(len(batch)) for batch in batches]  # this rank's slice of each batch
    mine = [batch[part] for batch, part in zip(batches, parts, strict=True)]
    sums = [0.0, 0.0]  # this rank's summed loss and correct predictions
    bar = tqdm(batches, desc=f"Epoch {epoch}/{config.epochs}", unit="batch", disable=not progress, leave=False)
    for batch, part, x_part in zip(bar, parts, unit_batches(pixels, mine, runtime), strict=True):
        rand = augment_draws(len(batch), sgd.generator)  # drawn for the whole batch on every rank
        x = augment(x_part, config.augment, rand[part])
        y = torch.from_numpy(labels[batch[part]]).to(runtime.device)
        with autocast(runtime, runtime.train_dtype):
            logits = model(normalise(x, spec, runtime))
            loss_sum = sgd.criterion(logits.float(), y)
        sgd.optimizer.zero_grad(set_to_none=True)
        (loss_sum * (ranks.world / len(batch))).backward()
        sgd.optimizer.step()
        sgd.scheduler.step()
        sums[0] += loss_sum.item()
        sums[1] += int((logits.argmax(1) == y).sum())
        bar.set_postfix(loss=f"{loss_sum.item() / max(1, len(y)):.3f}")
    total_loss, correct = all_sum(sums, ranks)
    return total_loss / len(order), correct / len(order)


def evaluate_loss(
    model: nn.Module,
    spec: ModelSpec,
    criterion: nn.Module,
    pixels: np.ndarray,
    labels: np.ndarray,
    idx: np.ndarray,
    runtime: Runtime,
    *,
    batch_size: int,
    ranks: Ranks = ONE_PROCESS,
) -> tuple[float | None, float | None]:
    """Mean loss and accuracy of ``model`` on images ``idx``, or ``(None, None)`` for no images.

    Under torchrun each rank evaluates its shard of ``idx`` and the sums are added up. The pass runs on a
    copy with batch-norm folded (:func:`~reportgen.model.fold.folded_copy`).
    """
    if len(idx) == 0:
        return None, None
    model.eval()
    model = folded_copy(model, spec.image_size)
    mine = idx[ranks.shard(len(idx))]
    sums = [0.0, 0.0]  # summed loss, correct predictions
    with torch.inference_mode(), autocast(runtime, runtime.eval_dtype):
        batches = _chunks(mine, batch_size)
        for batch, x in zip(batches, unit_batches(pixels, batches, runtime), strict=True):
            logits = model(normalise(x, spec, runtime)).float()
            y = torch.from_numpy(labels[batch]).to(runtime.device)
            sums[0] += criterion(logits, y).item() * len(batch)
            sums[1] += int((logits.argmax(1) == y).sum())
    total_loss, correct = all_sum(sums, ranks)
    return total_loss / len(idx), correct / len(idx)


def _chunks(idx: np.ndarray, size: int) -> list[np.ndarray]:
    """``idx`` in consecutive pieces of ``size`` (the last one shorter)."""
    return [idx[i : i + size] for i in range(0, len(idx), size)]
