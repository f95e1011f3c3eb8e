"""Where and how tensors run: device, precision, memory layout, threads; and batch preparation."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from reportgen.config import AugmentConfig
from reportgen.errors import ReportgenError
from reportgen.model import ModelSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """Execution choices, resolved once per run."""

    device: torch.device
    eval_dtype: torch.dtype | None  # autocast dtype for inference, None for float32
    train_dtype: torch.dtype | None  # autocast dtype for training, None for float32
    channels_last: bool

    def describe(self) -> str:
        """One line for logs and the report, e.g. ``cpu (2 threads), eval bf16, channels_last``."""
        where = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        threads = f" ({torch.get_num_threads()} threads)" if self.device.type == "cpu" else ""
        names = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
        layout = ", channels_last" if self.channels_last else ""
        return f"{where}{threads}, train {names[self.train_dtype]}, eval {names[self.eval_dtype]}{layout}"


def resolve_runtime(
    device: str = "auto", precision: str = "auto", *, local_rank: int = 0, local_world: int = 1
) -> Runtime:
    """Pick the device and precision: CUDA when asked or present; bf16 where the hardware has it.

    On the CPU, bf16 autocast triples inference speed on chips with native bf16 but slows training,
    so ``auto`` uses it for inference only. On CUDA, ``auto`` uses bf16 (or fp16) for both. Under
    torchrun, ``local_rank`` picks this process's GPU, and the ``local_world`` processes of a machine
    share its cores (more threads than cores slows training tenfold).
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ReportgenError("--device cuda was asked for, but PyTorch sees no CUDA GPU")
    if device not in ("cpu", "cuda"):
        raise ReportgenError(f"--device must be auto, cpu or cuda, not '{device}'")
    dev = torch.device(device)
    if dev.type == "cuda" and local_world > 1:
        dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    if dev.type == "cpu":
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // local_world))
    eval_dtype, train_dtype = _dtypes(dev, precision)
    return Runtime(dev, eval_dtype, train_dtype, channels_last=True)


def _dtypes(device: torch.device, precision: str) -> tuple[torch.dtype | None, torch.dtype | None]:
    if precision == "fp32":
        return None, None
    if precision not in ("auto", "bf16"):
        raise ReportgenError(f"--precision must be auto, fp32 or bf16, not '{precision}'")
    if device.type == "cuda":
        half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return half, half
    if precision == "bf16" or _cpu_has_native_bf16():
        return torch.bfloat16, (torch.bfloat16 if precision == "bf16" else None)
    return None, None


@lru_cache(maxsize=1)
def _cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(runtime: Runtime, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast context for ``dtype`` on the run's device, or a no-op for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=runtime.device.type, dtype=dtype)


def to_unit_tensor(pixels: np.ndarray, runtime: Runtime) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 pixels -> ``(B, 3, H, W)`` float in [0, 1] on the run's device."""
    x = torch.from_numpy(np.ascontiguousarray(pixels)).to(runtime.device, non_blocking=True)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def normalise(x: torch.Tensor, spec: ModelSpec, runtime: Runtime) -> torch.Tensor:
    """Apply the backbone's mean/std and the run's memory layout to a [0, 1] batch."""
    mean = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if runtime.channels_last else x.contiguous()


def augment_draws(n: int, generator: torch.Generator) -> torch.Tensor:
    """The random numbers of :func:`augment` for ``n`` images, ``(n, 5)``, from ``generator`` on the CPU.

    Drawn for a whole batch, so a seed fixes the augmentation whatever the device, and ranks that each
    warp a slice of the batch (torchrun) warp it as one process would.
    """
    return torch.rand(n, 5, generator=generator)  # flip, sx, sy, tx, ty


def augment(x: torch.Tensor, aug: AugmentConfig, rand: torch.Tensor) -> torch.Tensor:
    """Random flip, X/Y shift and independent X/Y scale of a [0, 1] batch, one warp per image.

    Uncovered pixels are black, as with MATLAB's ``imageDataAugmenter``, or mirrored from the image
    (``aug.padding == "reflection"``). ``rand`` holds each image's numbers (:func:`augment_draws`).
    """
    b, _, h, w = x.shape
    flip = torch.where((rand[:, 0] < 0.5) & aug.flip, -1.0, 1.0)
    scale = aug.scale_min + (aug.scale_max - aug.scale_min) * rand[:, 1:3]  # (B, 2)
    shift = (rand[:, 3:5] * 2 - 1) * aug.translate_px * 2 / torch.tensor([w, h])  # normalised units
    theta = torch.zeros(b, 2, 3)
    # affine_grid maps output to input coordinates, so a zoom of s samples the input at 1/s.
    theta[:, 0, 0] = flip / scale[:, 0]
    theta[:, 1, 1] = 1.0 / scale[:, 1]
    theta[:, :, 2] = -shift
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=aug.padding, align_corners=False)
