"""The ordered, bounded map that decodes images and the prefetching iterator that feeds a GPU."""

from __future__ import annotations

import os
import threading
import time

import pytest

from reportgen.data import workers
from reportgen.data.workers import IN_FLIGHT_PER_WORKER, ordered_map, prefetch, usable_cores


def test_ordered_map_keeps_the_items_order_whatever_finishes_first() -> None:
    def slow_first(i: int) -> int:
        time.sleep(0.002 * (10 - i % 10))  # early items take longest
        return i * i

    assert list(ordered_map(slow_first, range(40), workers=3)) == [i * i for i in range(40)]


def test_one_worker_runs_in_the_callers_thread() -> None:
    names = list(ordered_map(lambda _: threading.current_thread().name, range(3), workers=1))
    assert names == [threading.current_thread().name] * 3


def test_ordered_map_computes_a_bounded_number_ahead_of_the_caller() -> None:
    started = []
    ahead = []

    def record(i: int) -> int:
        started.append(i)
        return i

    for consumed, _ in enumerate(ordered_map(record, range(200), workers=2)):
        time.sleep(0.0005)
        ahead.append(len(started) - consumed)
    assert max(ahead) <= IN_FLIGHT_PER_WORKER * 2 + 1
    assert len(started) == 200


def test_ordered_map_raises_at_the_failing_item_and_stops_early() -> None:
    calls = []

    def fail_at_5(i: int) -> int:
        calls.append(i)
        if i == 5:
            raise ValueError("item 5")
        return i

    seen = []
    with pytest.raises(ValueError, match="item 5"):
        for value in ordered_map(fail_at_5, range(1000), workers=2):
            seen.append(value)
    assert seen == [0, 1, 2, 3, 4]
    assert len(calls) < 100  # the rest was never started


def test_usable_cores_are_shared_among_torchrun_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(16)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert usable_cores() == 16
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert usable_cores() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert usable_cores() == 1


def test_prefetch_yields_the_same_items_in_order() -> None:
    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))
    assert list(prefetch([], depth=1)) == []


def test_prefetch_raises_the_producers_exception_at_its_place() -> None:
    def items():
        yield 1
        yield 2
        raise OSError("disk gone")

    seen = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetch(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_leaving_a_prefetch_early_stops_its_thread() -> None:
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    before = threading.active_count()
    stream = prefetch(endless(), depth=1)
    assert [next(stream), next(stream)] == [0, 1]
    stream.close()
    assert threading.active_count() == before
    assert len(produced) <= 5


def test_the_module_has_no_torch() -> None:
    assert "torch" not in vars(workers)
