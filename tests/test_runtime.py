"""Batch preparation and the device's batch sizes: pinned, non-blocking copies and prefetching on CUDA only."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch

from reportgen.config import DEVICE_BATCH_SIZES
from reportgen.model import runtime as rt
from reportgen.model.runtime import Runtime, pins_memory, resolve_runtime, to_unit_tensor, unit_batches

PIXELS = np.random.default_rng(0).integers(0, 256, (10, 6, 6, 3), dtype=np.uint8)


def test_cpu_keeps_its_batch_sizes_and_does_not_pin() -> None:
    runtime = resolve_runtime("cpu", "fp32")
    assert (runtime.eval_batch_size, runtime.cam_batch_size) == (32, 16)
    assert not pins_memory(runtime)
    assert resolve_runtime("cpu", "fp32", 8, 4).eval_batch_size == 8


@pytest.mark.parametrize(("bf16", "dtypes"), [(True, (torch.bfloat16, torch.bfloat16)), (False, (torch.float16, None))])
def test_cuda_gets_larger_batches_half_precision_and_pinned_copies(
    monkeypatch: pytest.MonkeyPatch, bf16: bool, dtypes: tuple[torch.dtype, torch.dtype | None]
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_a, **_k: bf16)
    runtime = resolve_runtime("cuda", "auto")
    assert (runtime.eval_dtype, runtime.train_dtype) == dtypes
    assert (
        (runtime.eval_batch_size, runtime.cam_batch_size)
        == (256, 64)
        == dataclasses.astuple(DEVICE_BATCH_SIZES["cuda"])
    )
    assert pins_memory(runtime)
    assert resolve_runtime("cuda", "auto", None, 7).cam_batch_size == 7  # a size the user set stands


def test_cpu_batches_are_made_in_turn_as_to_unit_tensor_makes_them() -> None:
    runtime = resolve_runtime("cpu", "fp32")
    batches = [slice(0, 4), slice(4, 8), np.array([9, 3]), slice(8, 10)]
    before = threading.active_count()
    stream = unit_batches(PIXELS, batches, runtime)
    first = next(stream)
    assert threading.active_count() == before  # no prefetching thread on the CPU
    got = [first, *stream]
    for x, b in zip(got, batches, strict=True):
        assert torch.equal(x, to_unit_tensor(PIXELS[b], runtime))
    assert got[0].shape == (4, 3, 6, 6) and got[0].dtype == torch.float32


def test_cuda_batches_are_pinned_in_a_background_thread_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA path with the device calls stubbed: the order, the thread and the GPU it makes current."""
    cuda = Runtime(torch.device("cuda", 1), torch.bfloat16, torch.bfloat16, channels_last=True)
    pinned_in, current = [], []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: pinned_in.append(threading.current_thread()) or self)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setattr(rt, "to_device_unit", lambda x, _r: x.permute(0, 3, 1, 2).float().div_(255.0))
    batches = [slice(0, 5), slice(5, 10)]
    got = list(unit_batches(PIXELS, batches, cuda))
    cpu = resolve_runtime("cpu", "fp32")
    assert all(torch.equal(x, to_unit_tensor(PIXELS[b], cpu)) for x, b in zip(got, batches, strict=True))
    assert len(pinned_in) == 2 and all(t is not threading.main_thread() for t in pinned_in)
    assert current == [1]
