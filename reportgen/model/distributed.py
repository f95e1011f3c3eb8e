"""Runs under ``torchrun``: the process group, each rank's shard, and gathering per-image results.

``torchrun --nproc-per-node N [--nnodes M ...] -m reportgen run DATA --out OUT`` starts N x M copies of
the command; each reads its place from the environment torchrun sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``). The processes of a machine decode a share of the images each
into one memory-mapped file they all read (:func:`load_images_on_node`); every rank scores its
contiguous shard (pretrained features, predictions) and the shards are gathered in rank order, so
every rank holds the same arrays a single process would. Training is DistributedDataParallel over slices of the same
global batches. Rank 0 alone runs the whole-set analyses, Grad-CAM and rendering, and publishes the
output after the final barrier: a failure on any rank ends every rank (torchrun stops the others) and
publishes nothing. Without torchrun every function here is the one-process identity.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from reportgen.data.dataset import (
    DatasetScan,
    ImageInfo,
    LoadedImages,
    compact_rows,
    decode_files,
    load_images,
    loaded_from_rows,
)
from reportgen.data.workers import usable_cores
from reportgen.errors import ReportgenError

logger = logging.getLogger(__name__)

# Rank 0 alone renders while the other ranks wait at the final barrier; on a large set that can take
# longer than the 30 min default of a collective. A rank that dies is noticed by torchrun at once.
COLLECTIVE_TIMEOUT = timedelta(hours=12)


@dataclass(frozen=True)
class Ranks:
    """The place of this process among the processes of one run (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that analyses, renders and publishes."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there is more than one process."""
        return self.world > 1

    def shard(self, n: int) -> slice:
        """The contiguous share of ``n`` items that this rank takes; the ranks' shards tile ``range(n)``."""
        bounds = np.linspace(0, n, self.world + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))


ONE_PROCESS = Ranks()


def ranks_from_env() -> Ranks:
    """The ranks torchrun describes in the environment, or rank 0 of 1 without it."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return ONE_PROCESS
        return Ranks(
            rank=int(os.environ["RANK"]),
            world=world,
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            local_world=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
        )
    except (KeyError, ValueError) as exc:
        raise ReportgenError(
            f"torchrun's environment is incomplete or not numbers ({exc}); start it with torchrun"
        ) from exc


@contextlib.contextmanager
def process_group(ranks: Ranks, device: torch.device) -> Iterator[None]:
    """Join the run's process group (NCCL on CUDA, gloo on the CPU) for the length of the block."""
    if not ranks.distributed:
        yield
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    if not ranks.is_main:  # one log: rank 0's; the others speak up only for warnings and errors
        logging.getLogger("reportgen").setLevel(logging.WARNING)
    try:
        yield
    finally:
        dist.destroy_process_group()


def load_images_on_node(scan: DatasetScan, size: int, ranks: Ranks, *, progress: bool) -> LoadedImages:
    """Decode ``scan`` as :func:`reportgen.data.dataset.load_images` does, split among the processes of each machine.

    Local rank k decodes its share of the files into their rows of one file-backed array of the machine
    (one copy of the pixels per machine, not per process); the images' facts are gathered, and every
    process then reads the same rows. In one process this is ``load_images``.
    """
    if not ranks.distributed:
        return load_images(scan, size, progress=progress)
    n = len(scan.records)
    pixels = _node_array((n, size, size, 3), ranks)
    part = Ranks(rank=ranks.local_rank, world=ranks.local_world).shard(n)
    mine: dict[int, ImageInfo | str] = {}
    decoded = decode_files(scan.records[part], size, workers=usable_cores())
    for i, outcome in zip(range(part.start, part.stop), decoded, strict=True):
        if isinstance(outcome, str):
            mine[i] = outcome
        else:
            pixels[i], mine[i] = outcome
    pixels.flush()
    shares: list[tuple[int, dict[int, ImageInfo | str]] | None] = [None] * ranks.world
    dist.all_gather_object(shares, (_node(ranks), mine))  # also: every process of the machine is done writing
    outcomes: dict[int, ImageInfo | str] = {}
    for node, share in (s for s in shares if s is not None):
        if node == _node(ranks):
            outcomes.update(share)
    ordered = [outcomes[i] for i in range(n)]
    if ranks.local_rank == 0:
        compact_rows(pixels, ordered)
        pixels.flush()
    barrier(ranks)
    return loaded_from_rows(scan, pixels, ordered, warn=ranks.is_main)


def _node(ranks: Ranks) -> int:
    """The machine of this rank, as its first rank (torchrun numbers the ranks of a machine together)."""
    return ranks.rank - ranks.local_rank


def _node_array(shape: tuple[int, ...], ranks: Ranks) -> np.memmap:
    """A uint8 array in a temporary file that every process of this machine maps; removed once all have it."""
    path = None
    if ranks.local_rank == 0:
        handle, path = tempfile.mkstemp(prefix="reportgen-pixels-", suffix=".u8")
        os.ftruncate(handle, int(np.prod(shape)))
        os.close(handle)
    paths: list[tuple[int, str | None] | None] = [None] * ranks.world
    dist.all_gather_object(paths, (_node(ranks), path))
    path = next(p for node, p in (x for x in paths if x is not None) if node == _node(ranks) and p is not None)
    pixels = np.memmap(path, dtype=np.uint8, mode="r+", shape=shape)
    barrier(ranks)  # every process has it mapped: the name can go
    if ranks.local_rank == 0:
        os.unlink(path)
    return pixels


def describe() -> str:
    """``", 2 processes (gloo)"`` under torchrun, for the device line of logs and report; empty in one process."""
    if not (dist.is_available() and dist.is_initialized()):
        return ""
    return f", {dist.get_world_size()} processes ({dist.get_backend()})"


def gather_rows(local: np.ndarray, ranks: Ranks) -> np.ndarray:
    """Every rank's ``local`` rows concatenated in rank order, on every rank (the shards of :meth:`Ranks.shard`)."""
    if not ranks.distributed:
        return local
    parts: list[np.ndarray | None] = [None] * ranks.world
    dist.all_gather_object(parts, local)
    return np.concatenate([p for p in parts if p is not None])


def all_sum(values: list[float], ranks: Ranks) -> list[float]:
    """Element-wise sum of ``values`` over the ranks (float64 on the CPU, gloo; copied for NCCL)."""
    if not ranks.distributed:
        return values
    sums = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        sums = sums.cuda()
    dist.all_reduce(sums)
    return sums.cpu().tolist()


def barrier(ranks: Ranks) -> None:
    """Wait for every rank; raises when a rank has gone (then nothing is published)."""
    if ranks.distributed:
        dist.barrier()
