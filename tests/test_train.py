from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reportgen.config import AugmentConfig, TrainConfig
from reportgen.model.backbones import ModelSpec
from reportgen.model.history import TrainingHistory
from reportgen.model.predict import run_model
from reportgen.model.runtime import _axis_aligned_grid, augment, augment_draws, resolve_runtime, to_unit_tensor
from reportgen.model.train import train_model

EVAL_BATCH = 4  # evaluation batches smaller than the 9 validation images


def _colour_pixels(n_per_class: int = 12, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    colours = np.array([[200, 30, 30], [30, 180, 40], [30, 40, 200]])
    labels = np.repeat(np.arange(3), n_per_class)
    pixels = np.clip(colours[labels][:, None, None, :] + rng.normal(0, 25, (len(labels), size, size, 3)), 0, 255)
    return pixels.astype(np.uint8), labels


PIXELS, LABELS = _colour_pixels()
_IDX = np.arange(len(LABELS))
TRAIN_IDX, VAL_IDX = _IDX[_IDX % 4 != 0], _IDX[_IDX % 4 == 0]  # 27 and 9 images


def _train(model: torch.nn.Module, spec: ModelSpec, config: TrainConfig, **kwargs) -> TrainingHistory:
    """``train_model`` on the colour squares: every fourth image validates, the others train."""
    return train_model(
        model,
        spec,
        PIXELS,
        LABELS,
        train_idx=TRAIN_IDX,
        val_idx=VAL_IDX,
        config=config,
        runtime=resolve_runtime("cpu", "fp32"),
        eval_batch_size=EVAL_BATCH,
        progress=False,
        **kwargs,
    )


def test_augment_is_seeded_and_identity_when_disabled() -> None:
    x = torch.rand(4, 3, 32, 32)
    off = AugmentConfig(flip=False, translate_px=0, scale_min=1, scale_max=1)
    assert torch.allclose(augment(x, off, augment_draws(len(x), torch.Generator().manual_seed(0))), x, atol=1e-5)
    on = AugmentConfig()
    a = augment(x, on, augment_draws(len(x), torch.Generator().manual_seed(3)))
    b = augment(x, on, augment_draws(len(x), torch.Generator().manual_seed(3)))
    assert torch.equal(a, b) and not torch.allclose(a, x)


def test_augment_grid_is_affine_grid() -> None:
    zoom, offset = torch.rand(6, 2) + 0.5, torch.rand(6, 2) - 0.5
    zoom[:3, 0] *= -1  # flipped
    theta = torch.zeros(6, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = zoom[:, 0], zoom[:, 1], offset
    for h, w in ((224, 224), (7, 12)):
        expected = F.affine_grid(theta, [6, 3, h, w], align_corners=False)
        assert torch.allclose(_axis_aligned_grid(zoom, offset, h, w), expected, rtol=0, atol=1e-6)


def test_to_unit_tensor_is_channels_last_in_unit_range() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 4, 3), dtype=np.uint8)
    x = to_unit_tensor(pixels, resolve_runtime("cpu", "fp32"))
    assert x.shape == (2, 3, 5, 4) and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x * 255, torch.from_numpy(pixels).permute(0, 3, 1, 2).float())


def test_augment_flip_mirrors_the_image() -> None:
    x = torch.zeros(1, 3, 8, 8)
    x[..., :4] = 1.0  # left half white
    flip_only = AugmentConfig(flip=True, translate_px=0, scale_min=1, scale_max=1)
    outs = [augment(x, flip_only, augment_draws(len(x), torch.Generator().manual_seed(s))) for s in range(8)]
    flipped = [o for o in outs if o[0, 0, 0, -1] > 0.5]
    assert flipped and all(torch.allclose(o, x.flip(-1), atol=1e-5) for o in flipped)


def test_training_learns_and_is_reproducible(tiny_model) -> None:
    config = TrainConfig(epochs=6, batch_size=6, learning_rate=0.05, head_lr_factor=2)
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model, spec = tiny_model[0].__class__(3), tiny_model[1]
        history = _train(model, spec, config, seed=5)
        results.append(
            (
                history,
                run_model(model, spec, PIXELS, resolve_runtime("cpu", "fp32"), batch_size=32, progress=False).probs,
            )
        )
    (h1, p1), (h2, p2) = results
    assert len(h1.epochs) == 6
    assert h1.epochs[-1].train_loss < h1.epochs[0].train_loss
    assert h1.epochs[-1].val_accuracy == 1.0
    strip = (
        [dataclasses.replace(e, seconds=0.0) for e in h1.epochs],
        [dataclasses.replace(e, seconds=0.0) for e in h2.epochs],
    )
    assert strip[0] == strip[1] and np.array_equal(p1, p2)


def test_evaluation_and_recalibration_run_in_eval_batches(tiny_model) -> None:
    model, spec = tiny_model
    seen = []  # (training mode, autograd on, batch size) of every forward pass
    model.register_forward_pre_hook(lambda m, args: seen.append((m.training, torch.is_grad_enabled(), len(args[0]))))
    _train(model, spec, TrainConfig(epochs=1, batch_size=6, batchnorm="recalibrate"), seed=0)
    assert [n for training, _, n in seen if not training] == [4, 4, 1, 4, 4, 1]  # before and after the epoch
    assert [n for training, grad, n in seen if training and not grad] == [4] * 6 + [3]  # recalibration
    assert [n for training, grad, n in seen if training and grad] == [6] * 4 + [3]  # the training batches


def test_head_learns_faster_than_body(tiny_model) -> None:
    from reportgen.model.train import _optimizer

    model, spec = tiny_model
    optimizer = _optimizer(model, spec, TrainConfig(learning_rate=1e-3, head_lr_factor=10))
    body, head = optimizer.param_groups
    assert head["lr"] == 1e-2 and body["lr"] == 1e-3
    assert {id(p) for p in head["params"]} == {id(model.fc.weight), id(model.fc.bias)}


def test_layer_decay_lowers_the_first_layers_rate_down_to_the_fraction() -> None:
    from reportgen.model.train import DEPTH_GROUPS, _depth_groups

    body = [torch.nn.Parameter(torch.zeros(1)) for _ in range(20)]
    groups = _depth_groups(body, 1e-3, 0.1)
    assert len(groups) == DEPTH_GROUPS
    rates = [g["lr"] for g in groups]
    assert rates[0] == pytest.approx(1e-4) and rates[-1] == pytest.approx(1e-3) and rates == sorted(rates)
    assert [id(p) for g in groups for p in g["params"]] == [id(p) for p in body]  # each once, in depth order
    assert _depth_groups(body, 1e-3, 1.0) == [{"params": body, "lr": 1e-3}]


def test_run_model_returns_probabilities_and_embeddings(tiny_model) -> None:
    model, spec = tiny_model
    pixels, _ = _colour_pixels(4)
    out = run_model(model, spec, pixels, resolve_runtime("cpu", "auto"), batch_size=5, embeddings=True, progress=False)
    assert out.probs.shape == (12, 3) and np.allclose(out.probs.sum(1), 1, atol=1e-3)
    assert out.embeddings.shape == (12, 8)


def test_best_epoch_is_kept_and_is_what_the_checkpoint_holds(tiny_model, tmp_path) -> None:
    from reportgen.model.backbones import save_checkpoint
    from reportgen.model.train import evaluate_loss

    # a good first epoch, then a learning rate that wrecks the model: the last epoch is worse than the best
    config = TrainConfig(epochs=4, batch_size=6, learning_rate=0.05, head_lr_factor=2, keep="best")
    model, spec = tiny_model
    history = _train(model, spec, config, seed=1)
    losses = [history.start_val_loss] + [e.val_loss for e in history.epochs]
    assert history.kept == int(np.argmin(losses))
    criterion = torch.nn.CrossEntropyLoss()
    runtime = resolve_runtime("cpu", "fp32")
    kept_loss, _ = evaluate_loss(model, spec, criterion, PIXELS, LABELS, VAL_IDX, runtime, batch_size=EVAL_BATCH)
    assert kept_loss == pytest.approx(min(losses), rel=1e-5)
    last = _train(tiny_model[0].__class__(3), spec, dataclasses.replace(config, keep="last", learning_rate=5.0), seed=1)
    assert last.kept == 4
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, spec, ("red", "green", "blue"), {})
    payload = torch.load(path, weights_only=True)
    assert all(torch.equal(payload["state_dict"][k], v) for k, v in model.state_dict().items())


def test_probe_head_init_starts_from_the_probe(tiny_model) -> None:
    from reportgen.model.backbones import NormalisedLinear
    from reportgen.model.probe import fit_linear_probe

    model, spec = tiny_model
    model.fc, spec = NormalisedLinear(8, 3), dataclasses.replace(spec, normalised_head=True)
    runtime = resolve_runtime("cpu", "fp32")
    features = run_model(model, spec, PIXELS, runtime, batch_size=32, embeddings=True, progress=False).embeddings
    probe = fit_linear_probe(features[TRAIN_IDX], LABELS[TRAIN_IDX], num_classes=3, seed=0)
    history = _train(model, spec, TrainConfig(epochs=0, head_init="probe", keep="best"), seed=0, probe=probe)
    after = run_model(model, spec, PIXELS, runtime, batch_size=32, progress=False).probs
    assert history.kept == 0 and history.epochs == ()
    assert np.allclose(after, probe.probs(features), atol=1e-4)


def test_the_probes_validation_scores_are_the_starting_models(tiny_model) -> None:
    from reportgen.model.backbones import NormalisedLinear
    from reportgen.model.features import probe_validation
    from reportgen.model.predictions import Features
    from reportgen.model.probe import fit_linear_probe

    model, spec = tiny_model
    model.fc, spec = NormalisedLinear(8, 3), dataclasses.replace(spec, normalised_head=True)
    runtime = resolve_runtime("cpu", "fp32")
    features = run_model(model, spec, PIXELS, runtime, batch_size=32, embeddings=True, progress=False).embeddings
    probe = fit_linear_probe(features[TRAIN_IDX], LABELS[TRAIN_IDX], num_classes=3, seed=0)
    start = probe_validation(probe, Features(features), LABELS, VAL_IDX)
    measured = _train(model, spec, TrainConfig(epochs=0, head_init="probe"), seed=0, probe=probe)
    assert start is not None
    assert start[0] == pytest.approx(measured.start_val_loss, rel=1e-4)
    assert start[1] == measured.start_val_accuracy
    seen = []  # a known start saves the validation pass
    model.register_forward_pre_hook(lambda _m, _args: seen.append(1))
    given = _train(model, spec, TrainConfig(epochs=0, head_init="probe"), seed=0, probe=probe, start=start)
    assert (given.start_val_loss, given.start_val_accuracy) == start and not seen
    assert probe_validation(None, Features(features), LABELS, VAL_IDX) is None


def test_patience_stops_when_validation_loss_stops_improving(tiny_model) -> None:
    # a learning rate that wrecks the model after its first epochs: the loss stops improving, training stops
    config = TrainConfig(epochs=12, batch_size=6, learning_rate=5.0, head_lr_factor=1, keep="best", patience=2)
    model, spec = tiny_model
    history = _train(model, spec, config, seed=1)
    losses = [history.start_val_loss] + [e.val_loss for e in history.epochs]
    best = int(np.argmin(losses))
    assert history.stopped_early and history.max_epochs == 12
    # the probe best and the second epoch worse than the first: stop at 2; else two epochs past the best one
    assert len(history.epochs) == (2 if best == 0 else best + 2) < 12
    assert history.kept == best
    assert all(loss >= losses[best] for loss in losses[best + 1 :])


@pytest.mark.parametrize(
    ("losses", "stop"),
    [
        ([0.5, 0.9, 0.8], False),  # behind the probe but catching up: go on
        ([0.5, 0.9, 0.95], True),  # behind the probe and going backwards: stop, keep the probe
        ([0.5, 0.9], False),  # one epoch says nothing about the trend
        ([0.5, 0.4, 0.45], False),  # ahead of the probe: one epoch without improving is within patience 2
        ([0.5, 0.4, 0.45, 0.41], True),  # two epochs since the best fine-tuned one: a plateau
        ([0.5, 0.6, 0.55, 0.45, 0.44], False),  # caught up with the probe and still improving
        ([None, 0.9, 0.95], False),  # no starting loss: only the plateau rule
        ([None, 0.9, 0.95, 0.96], True),
    ],
)
def test_the_stop_rule_keeps_training_that_catches_up_and_stops_training_that_falls_behind(losses, stop) -> None:
    from reportgen.model.train import stop_training

    assert stop_training(losses, 2) is stop
    assert stop_training(losses, 0) is False  # patience 0: every epoch runs


def test_a_fall_under_the_least_improvement_does_not_reset_patience_and_the_warm_up_is_never_a_plateau() -> None:
    from reportgen.model.train import stop_training

    creeping = [0.5, 0.40, 0.398, 0.397]  # falls of 0.5 % and 0.25 %
    assert stop_training(creeping, 2) is False
    assert stop_training(creeping, 2, min_improvement=0.01) is True
    ramp = [0.5, 0.40, 0.45, 0.46]  # the best epoch in the warm-up, then two worse ones while it still ramps
    assert stop_training(ramp, 2) is True
    assert stop_training(ramp, 2, warmup=3) is False  # patience counts from the end of the warm-up
    assert stop_training([*ramp, 0.47, 0.48], 2, warmup=3) is True


def test_patience_zero_runs_every_epoch(tiny_model) -> None:
    config = TrainConfig(epochs=3, batch_size=6, learning_rate=5.0, keep="best", patience=0)
    history = _train(tiny_model[0], tiny_model[1], config, seed=1)
    assert len(history.epochs) == 3 and not history.stopped_early


def test_warm_up_ramps_the_learning_rate_then_follows_the_schedule() -> None:
    from reportgen.model.train import lr_factor

    ramp = [lr_factor(step, "constant", 100, 4) for step in range(6)]
    assert ramp == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lr_factor(50, "cosine", 100, 4) == pytest.approx(0.5)
    assert lr_factor(0, "cosine", 100, 0) == 1.0 and lr_factor(99, "cosine", 100, 0) < 0.01
    assert lr_factor(1, "cosine", 100, 4) == pytest.approx(0.5 * 0.5 * (1 + np.cos(np.pi * 0.01)))
