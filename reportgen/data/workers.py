"""Work spread over the usable CPU cores: an ordered map with bounded in-flight work, and a prefetching iterator.

Both run on threads: the work they carry (Pillow's decoders and resampling, numpy, pinning a torch tensor)
releases the GIL, and threads share the caller's memory and process-wide settings without copying
or pickling. ``benchmarks/decode.py`` measures threads against processes: on a 2-core machine busy with other
jobs, processes were not consistently faster (food101-pss at 224 px: faster in 2 of 3 runs; food9-64px: slower
in 3 of 4), and forking a process that runs torch is unsafe (README, Performance notes).
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

IN_FLIGHT_PER_WORKER = 4  # queued tasks per worker: keeps every worker busy while the caller consumes in order


def usable_cores() -> int:
    """The CPU cores this process may use: its affinity mask, shared among ``torchrun``'s local processes.

    ``LOCAL_WORLD_SIZE`` (set by ``torchrun``) is the number of processes on this machine; each gets
    an equal share, at least one core.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local_processes = 1
    return max(1, cores // local_processes)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int, processes: bool = False) -> Iterator[R]:
    """``fn(item)`` for each item, in the items' order, computed by ``workers`` threads (or processes).

    At most ``IN_FLIGHT_PER_WORKER * workers`` results are computed ahead of the one the caller
    is at, so memory stays bounded however many items there are. With one worker, ``fn`` runs in the
    caller's thread. An exception from ``fn`` is raised when its result is reached; leaving the loop
    early cancels the work not yet started. With ``processes``, ``fn`` and the items must pickle.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    pool: Executor = ProcessPoolExecutor(workers) if processes else ThreadPoolExecutor(workers, "reportgen-worker")
    pending: collections.deque[Future[R]] = collections.deque()
    source = iter(items)
    try:
        for item in source:
            pending.append(pool.submit(fn, item))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                break
        while pending:
            result = pending.popleft().result()
            for item in source:  # refill one
                pending.append(pool.submit(fn, item))
                break
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_END = object()


def prefetch(items: Iterable[T], *, depth: int = 1) -> Iterator[T]:
    """The items of ``items`` in order, produced ``depth`` ahead by a background thread.

    While the caller works on one item (e.g. a GPU runs a batch), the thread prepares the next. An
    exception in ``items`` is raised at the item where it happened; leaving the loop early stops the thread.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _offer(ready, item, stop):
                    return
            _offer(ready, _END, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            _offer(ready, _Failure(exc), stop)

    thread = threading.Thread(target=produce, name="reportgen-prefetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


class _Failure:
    """An exception raised in the producer thread, carried to the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _offer(ready: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Put ``item`` on the queue unless the consumer has gone; False when it has."""
    while not stop.is_set():
        try:
            ready.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False
