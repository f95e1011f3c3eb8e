"""Class activation maps in batches (Grad-CAM and its kin); the only module that imports pytorch_grad_cam.

``CAM_METHODS`` names the methods ``--cam-method`` chooses from; ``random`` is the explanation check's
baseline (``RandomCAM``, seeded). :func:`randomised_copy` is the sanity check's model: the head and the
last blocks re-initialised (Adebayo et al., NeurIPS 2018).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, ShapleyCAM
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn
from tqdm import tqdm

from reportgen.model.backbones import ModelSpec
from reportgen.model.predictions import CamMaps
from reportgen.model.runtime import Runtime, normalise, unit_batches

logger = logging.getLogger(__name__)

CAM_METHODS: dict[str, type[BaseCAM]] = {  # --cam-method -> the library's class; measured in benchmarks/
    "gradcam": GradCAM,
    "hirescam": HiResCAM,
    "gradcam++": GradCAMPlusPlus,
    "layercam": LayerCAM,
    "scorecam": ScoreCAM,  # a forward pass per channel of the target layer: slow on a CPU
    "shapleycam": ShapleyCAM,  # gradient and Hessian-vector product
}
# Methods whose graph must start at the input, with trainable parameters (ShapleyCAM's Hessian-vector product
# differentiates the gradients again): no frozen-parameter shortcut for them.
INPUT_GRADIENT = frozenset({"shapleycam"})
RANDOMISED_BLOCKS = 2  # the sanity check re-initialises the head, the layers after the last block and this many


class SeededRandomCAM(BaseCAM):
    """``RandomCAM`` with its own generator: random channel weights in [-1, 1], the same for a seed."""

    def __init__(self, model: nn.Module, target_layers: list[nn.Module], *, seed: int) -> None:
        super().__init__(model, target_layers)
        self.rng = np.random.default_rng(seed)

    def get_cam_weights(self, input_tensor, target_layer, target_category, activations, grads):  # noqa: D102
        return self.rng.uniform(-1, 1, size=(grads.shape[0], grads.shape[1]))


def compute_cams(
    model: nn.Module,
    spec: ModelSpec,
    pixels: np.ndarray,
    requests: Sequence[tuple[int, int]],
    runtime: Runtime,
    *,
    batch_size: int,
    method: str = "gradcam",
    layer: str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> CamMaps:
    """The ``method``'s map for each ``(image index, class index)`` request, many images and targets per call.

    Parameters are frozen while the maps are computed, so backward stops at the target layer
    instead of computing weight gradients for the whole network (about 6x faster on a CPU).
    ``layer`` is the target layer's name (None: ``spec.cam_layer``); ``seed`` drives ``random``.
    """
    keys = tuple(dict.fromkeys((int(i), int(c)) for i, c in requests))  # unique, first-seen order
    size = pixels.shape[1]
    maps = np.zeros((len(keys), size, size), dtype=np.float32)
    if not keys:
        return CamMaps(keys, maps)
    model.to(runtime.device, memory_format=torch.channels_last if runtime.channels_last else torch.preserve_format)
    target = model.get_submodule(layer or spec.cam_layer)
    starts = range(0, len(keys), batch_size)
    images = (np.array([i for i, _ in keys[start : start + batch_size]]) for start in starts)
    bar = tqdm(starts, desc=f"CAM ({method})", unit="batch", disable=not progress, leave=False)
    make = _maker(method, seed)
    plain = method in INPUT_GRADIENT
    with (
        contextlib.nullcontext() if plain else _frozen(model),
        contextlib.nullcontext() if plain else _grad_entry(target),
    ):
        for start, x in zip(bar, unit_batches(pixels, images, runtime), strict=True):
            classes = [c for _, c in keys[start : start + batch_size]]
            maps[start : start + len(classes)] = _cam_batch(make(model, target), normalise(x, spec, runtime), classes)
    return CamMaps(keys, maps)


def _maker(method: str, seed: int) -> Callable[[nn.Module, nn.Module], BaseCAM]:
    """A function building the ``method``'s CAM object for a model and its target layer."""
    if method == "random":
        rng = np.random.default_rng(seed)  # one generator for the whole run: each batch draws new weights
        return lambda model, layer: SeededRandomCAM(model, [layer], seed=int(rng.integers(2**31)))
    if method not in CAM_METHODS:
        raise ValueError(f"`method` must be one of {sorted(CAM_METHODS)} or 'random', not {method!r}")
    cls = CAM_METHODS[method]
    return lambda model, layer: cls(model=model, target_layers=[layer])


def _cam_batch(cam: BaseCAM, x: torch.Tensor, classes: list[int]) -> np.ndarray:
    targets = [ClassifierOutputTarget(c) for c in classes]
    try:
        result = cam(input_tensor=x, targets=targets)  # (B, H, W), each map normalised on its own
    finally:
        cam.activations_and_grads.release()
    return np.asarray(result, dtype=np.float32)


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    saved = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


@contextlib.contextmanager
def _grad_entry(layer: nn.Module) -> Iterator[None]:
    """Make the target layer's output the start of the autograd graph (parameters are frozen)."""

    def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        return output.detach().requires_grad_(True) * 1.0  # non-leaf, so later in-place ops are allowed

    handle = layer.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def randomised_copy(model: nn.Module, spec: ModelSpec, *, seed: int) -> tuple[nn.Module, tuple[str, ...]]:
    """A copy of ``model`` whose head, last :data:`RANDOMISED_BLOCKS` blocks and the layers between are re-initialised.

    The blocks are the children of the last top-level ``nn.Sequential`` at or before the target layer
    (EfficientNet's ``blocks``); then every top-level module with parameters after it. Returns the copy and
    the names of the re-initialised modules.
    """
    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    names = _randomised_names(clone, spec)
    for name in names:
        for module in clone.get_submodule(name).modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return clone, names


def _randomised_names(model: nn.Module, spec: ModelSpec) -> tuple[str, ...]:
    order = [name for name, _ in model.named_modules() if name]
    after = order.index(spec.cam_layer) if spec.cam_layer in order else len(order)
    top = [n for n in order[: after + 1] if "." not in n]  # top-level modules up to the target layer's
    sequentials = [n for n in top if isinstance(model.get_submodule(n), nn.Sequential)]
    blocks = []
    if sequentials:
        parent = sequentials[-1]
        blocks = [f"{parent}.{child}" for child, _ in model.get_submodule(parent).named_children()][-RANDOMISED_BLOCKS:]
        start = order.index(parent) + len(list(model.get_submodule(parent).modules()))
    else:
        start = after
    tail = [n for n in order[start:] if "." not in n and any(True for _ in model.get_submodule(n).parameters())]
    return tuple(dict.fromkeys([*blocks, *tail, spec.head]))


def overlay_cam(rgb: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a ``(S, S)`` map in [0, 1] over ``(S, S, 3)`` uint8 ``rgb`` with the jet colormap.

    ``alpha`` is the heat map's weight, as in the example's ``plotGradCAM`` (AlphaData 0.5).
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    return show_cam_on_image(rgb.astype(np.float32) / 255.0, cam, use_rgb=True, image_weight=1.0 - alpha)
