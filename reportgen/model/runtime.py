"""Where and how tensors run: device, precision, memory layout, threads; and batch preparation."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from reportgen.config import DEVICE_BATCH_SIZES, AugmentConfig
from reportgen.data.workers import prefetch, usable_cores
from reportgen.errors import ReportgenError
from reportgen.model.backbones import ModelSpec

logger = logging.getLogger(__name__)

PREFETCH_DEPTH = 2  # host batches ready ahead of the GPU: one being copied, one waiting


@dataclass(frozen=True)
class Runtime:
    """Execution choices, resolved once per run."""

    device: torch.device
    eval_dtype: torch.dtype | None  # autocast dtype for inference, None for float32
    train_dtype: torch.dtype | None  # autocast dtype for training, None for float32
    channels_last: bool
    eval_batch_size: int = DEVICE_BATCH_SIZES["cpu"].eval  # images per inference batch
    cam_batch_size: int = DEVICE_BATCH_SIZES["cpu"].cam  # images per Grad-CAM batch

    def describe(self) -> str:
        """One line for logs and the report, e.g. ``cpu (2 threads), eval bf16, channels_last``."""
        where = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        threads = f" ({torch.get_num_threads()} threads)" if self.device.type == "cpu" else ""
        names = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
        layout = ", channels_last" if self.channels_last else ""
        return f"{where}{threads}, train {names[self.train_dtype]}, eval {names[self.eval_dtype]}{layout}"


def resolve_runtime(
    device: str = "auto",
    precision: str = "auto",
    eval_batch_size: int | None = None,
    cam_batch_size: int | None = None,
    *,
    local_rank: int = 0,
    local_world: int = 1,
) -> Runtime:
    """Pick the device, precision and batch sizes: CUDA when asked or present; bf16 where the hardware has it.

    On the CPU, bf16 autocast triples inference speed on chips with native bf16 but slows training,
    so ``auto`` uses it for inference only. On CUDA, ``auto`` uses bf16 for both (fp16 for inference
    only on a GPU without bf16: fp16 training would need loss scaling). A batch size left None is the
    device's (``DEVICE_BATCH_SIZES``: larger on CUDA). Under torchrun, ``local_rank`` picks this
    process's GPU, and the ``local_world`` processes of a machine share its cores (more threads than
    cores slows training tenfold).
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
        torch.set_num_threads(usable_cores())  # this process's share of the machine's cores (LOCAL_WORLD_SIZE)
    eval_dtype, train_dtype = _dtypes(dev, precision)
    sizes = DEVICE_BATCH_SIZES[dev.type]
    return Runtime(
        dev,
        eval_dtype,
        train_dtype,
        channels_last=True,
        eval_batch_size=sizes.eval if eval_batch_size is None else eval_batch_size,
        cam_batch_size=sizes.cam if cam_batch_size is None else cam_batch_size,
    )


def _dtypes(device: torch.device, precision: str) -> tuple[torch.dtype | None, torch.dtype | None]:
    if precision == "fp32":
        return None, None
    if precision not in ("auto", "bf16"):
        raise ReportgenError(f"--precision must be auto, fp32 or bf16, not '{precision}'")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, torch.bfloat16
        return torch.float16, None  # fp16 training underflows without a GradScaler: train in float32
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


def pins_memory(runtime: Runtime) -> bool:
    """Whether batches go to the device from pinned host memory, copied without blocking (CUDA only).

    Pinned (page-locked) memory lets the copy run asynchronously with the GPU's work; on the CPU
    there is no copy to overlap, and pinning would need a CUDA driver.
    """
    return runtime.device.type == "cuda"


def host_batch(pixels: np.ndarray, runtime: Runtime) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 pixels as a CPU tensor ready for the device: pinned when going to CUDA."""
    x = torch.from_numpy(np.ascontiguousarray(pixels))
    return x.pin_memory() if pins_memory(runtime) else x


def to_device_unit(x: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """A :func:`host_batch` -> ``(B, 3, H, W)`` float in [0, 1] on the run's device (uint8 crosses the bus)."""
    x = x.to(runtime.device, non_blocking=pins_memory(runtime))
    # Convert while the memory is still (B, H, W, 3): the permuted view is then channels_last for free, and the
    # conversion reads contiguous memory (ten 224 px images: 0.7 ms, against 10 ms for the permuted view, 2 CPUs).
    return x.float().div_(255.0).permute(0, 3, 1, 2)


def to_unit_tensor(pixels: np.ndarray, runtime: Runtime) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 pixels -> ``(B, 3, H, W)`` float in [0, 1] on the run's device."""
    return to_device_unit(host_batch(pixels, runtime), runtime)


def unit_batches(pixels: np.ndarray, batches: Iterable[slice | np.ndarray], runtime: Runtime) -> Iterator[torch.Tensor]:
    """``pixels[b]`` for each index or slice ``b`` of ``batches``, as :func:`to_unit_tensor` makes them.

    On CUDA a background thread gathers and pins the next batch while the GPU runs this one (the
    pixels may be a memory map on disk). On the CPU the batches are made in turn: a thread would
    only take cores from the compute threads.
    """
    hosts: Iterable[torch.Tensor] = (host_batch(pixels[b], runtime) for b in batches)
    if pins_memory(runtime):
        hosts = prefetch(_on_device(hosts, _cuda_index(runtime.device)), depth=PREFETCH_DEPTH)
    for x in hosts:
        yield to_device_unit(x, runtime)


def _cuda_index(device: torch.device) -> int:
    return torch.cuda.current_device() if device.index is None else device.index


def _on_device(hosts: Iterable[torch.Tensor], index: int) -> Iterator[torch.Tensor]:
    """``hosts``, made with the run's GPU current: a new thread's is GPU 0, whose context would cost memory."""
    torch.cuda.set_device(index)
    yield from hosts


def normalise(x: torch.Tensor, spec: ModelSpec, runtime: Runtime) -> torch.Tensor:
    """Apply the backbone's mean/std and the run's memory layout to a [0, 1] batch."""
    mean = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1)
    x = (x - mean).div_(std)  # one temporary, not two
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
    # The grid maps output to input coordinates, so a zoom of s samples the input at 1/s.
    zoom = torch.stack([flip / scale[:, 0], 1.0 / scale[:, 1]], dim=1)  # (B, 2): x, y
    grid = _axis_aligned_grid(zoom.to(x.device), -shift.to(x.device), h, w)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=aug.padding, align_corners=False)


def _axis_aligned_grid(zoom: torch.Tensor, offset: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid`` of ``theta = [[zoom_x, 0, offset_x], [0, zoom_y, offset_y]]``, ``align_corners=False``.

    A warp without rotation or shear is separable: each output column samples one input x, each row one
    input y, so the ``(B, H, W, 2)`` grid is two ``(B, W)`` and ``(B, H)`` lines broadcast, not the
    ``(B, H*W, 3) @ (3, 2)`` product ``affine_grid`` computes: the same values (to the bit on the x86 CPUs
    tried), 4 ms against 26 ms for ten 224 px images on 2 CPUs.
    """
    xs = _pixel_centres(w, zoom.device) * zoom[:, 0, None] + offset[:, 0, None]  # (B, W)
    ys = _pixel_centres(h, zoom.device) * zoom[:, 1, None] + offset[:, 1, None]  # (B, H)
    b = zoom.shape[0]
    return torch.stack([xs[:, None, :].expand(b, h, w), ys[:, :, None].expand(b, h, w)], dim=-1)


def _pixel_centres(n: int, device: torch.device) -> torch.Tensor:
    """The ``n`` pixel centres in [-1, 1] as ``affine_grid`` computes them with ``align_corners=False``."""
    return torch.linspace(-1.0, 1.0, n, device=device) * (n - 1) / n


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch; the split and training take their own generators from ``seed`` too."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
