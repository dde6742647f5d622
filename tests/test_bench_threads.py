"""The benchmark splits the worker's CPU by thread: where a run's fixed cost goes (issue 11)."""

from __future__ import annotations

import threading
import time

import pytest

from bench import measure


def _spin(
    seconds: float, done: threading.Event | None = None, hold: threading.Event | None = None
) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    if done is not None and hold is not None:
        done.set()
        hold.wait(5)  # alive, idle, until the test has read the threads


def test_a_threads_cpu_lands_in_its_group() -> None:
    if measure.thread_cpu() is None:
        pytest.skip("no /proc/self/task here")
    meter = measure.CpuMeter()
    meter.start()
    pool = threading.Thread(target=_spin, args=(0.15,), name="asyncio_9")
    pool.start()
    pool.join()  # ended: its CPU is no longer any live thread's
    done, hold = threading.Event(), threading.Event()
    worker = threading.Thread(target=_spin, args=(0.1, done, hold), name="temporal_workflow_3")
    worker.start()
    assert done.wait(5)
    _spin(0.05)  # this thread: the "event loop" when the benchmark measures
    total, ms = meter.stop()
    hold.set()
    worker.join()
    assert ms is not None
    # the live threads are named; the ended one's CPU is what the process used beyond them
    assert ms["workflow threads"] == pytest.approx(100, abs=25)
    assert ms["event loop"] == pytest.approx(50, abs=20)
    assert ms["other"] >= 120
    assert "to_thread pool" not in ms
    assert sum(ms.values()) == pytest.approx(1000 * total, abs=0.5)
    assert list(ms.values()) == sorted(ms.values(), reverse=True)


def test_the_meter_leaves_its_own_reading_out() -> None:
    if measure.thread_cpu() is None:
        pytest.skip("no /proc/self/task here")
    idle = [threading.Event() for _ in range(40)]  # the benchmark's process has about 40
    threads = [threading.Thread(target=e.wait, args=(5,), name=f"t{i}") for i, e in enumerate(idle)]
    for t in threads:
        t.start()
    try:
        reading = time.thread_time()
        measure.thread_cpu()
        reading = time.thread_time() - reading
        meter = measure.CpuMeter()
        meter.start()
        total, ms = meter.stop()  # nothing ran in between but the meter
    finally:
        for e in idle:
            e.set()
        for t in threads:
            t.join()
    assert reading > 0.0002  # reading 40 threads costs something worth leaving out
    assert total < reading / 2
    assert ms is not None and ms.get("event loop", 0.0) < 1000 * reading / 2


def test_names_map_to_the_parts_of_the_worker() -> None:
    groups = {
        name: measure._thread_group(name)
        for name in (
            "MainThread",
            "tokio-rt-worker",
            "workflow-proces",
            "temporal_workflow_0",
            "asyncio_1",
            "rdk:broker1",
            "Thread-3",
        )
    }
    assert groups == {
        "MainThread": "event loop",
        "tokio-rt-worker": "Temporal core",
        "workflow-proces": "Temporal core",
        "temporal_workflow_0": "workflow threads",
        "asyncio_1": "to_thread pool",
        "rdk:broker1": "Kafka client",
        "Thread-3": "other",
    }
