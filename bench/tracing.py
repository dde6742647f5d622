"""Tracing overhead: first syncs of the same shifts with tracing off, then on, in one process.

``python -m bench.tracing [--shifts 10000] [--rounds 3]`` (``make bench-tracing``). Each run
is a first sync (a fresh Redis db and topic) of the same seeded shifts; runs without a tracer
provider come first (OpenTelemetry's provider is set once per process), then with synchub's
tracing exactly as the worker installs it (spans to a JSON-lines file). Prints the median
records per second of each and the overhead in percent.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.run import UNTHROTTLED, bench_settings
from bench.sim import Simulator
from infra.devstack import DevStack
from infra.telemetry import instrument_clients, setup_tracing
from infra.temporal import connect
from models.sync import RunState, SyncAllInput
from worker import build_worker
from workflows.sync_all import SyncAllWorkflow


async def first_sync(stack: DevStack, sim: Simulator, days: int, db: int, shifts: int) -> float:
    """One first sync with its own worker, task queue, topic and Redis db; records/s."""
    tag = uuid.uuid4().hex[:8]
    settings = bench_settings(stack, sim.url, days, tag, db)
    client = await connect(settings.temporal)
    bundle = await build_worker(client, settings)
    try:
        async with bundle.worker:
            began = time.perf_counter()
            result = await client.execute_workflow(
                SyncAllWorkflow.run,
                SyncAllInput(source="wiw"),
                id=f"syncall/wiw/bench-tracing-{tag}",
                task_queue=settings.temporal.task_queue,
            )
            wall = time.perf_counter() - began
    finally:
        await bundle.aclose()
    if result.state != RunState.COMPLETED or result.records.upserted != shifts:
        raise SystemExit(f"run failed: {result.state} {result.records}")
    return shifts / wall


async def measure(stack: DevStack, sim: Simulator, shifts: int, rounds: int, days: int) -> None:
    today = datetime.now(UTC).date()
    await asyncio.to_thread(sim.set_knobs, rate_limit_per_minute=UNTHROTTLED, latency_ms=0)
    await asyncio.to_thread(sim.seed, shifts, [today + timedelta(days=i) for i in range(days)], 7)
    db = 2
    await first_sync(stack, sim, days, db, shifts)  # warm-up, not counted
    rates: dict[str, list[float]] = {}

    async def runs(mode: str) -> None:
        nonlocal db
        for _ in range(rounds):
            db += 1
            rate = await first_sync(stack, sim, days, db, shifts)
            rates.setdefault(mode, []).append(rate)
            print(f"{mode:<28} {rate:,.0f} records/s", flush=True)

    await runs("bare (no instrumentation)")
    instrument_clients()  # HTTP/Redis hooks feed the metrics; a no-op tracer
    await runs("metrics, tracing off")
    with tempfile.TemporaryDirectory() as tmp:
        provider = setup_tracing("synchub-bench", spans_file=Path(tmp) / "traces.jsonl")
        await runs("metrics, tracing on")
        provider.shutdown()
    medians = {mode: statistics.median(r) for mode, r in rates.items()}
    base = medians["bare (no instrumentation)"]
    print(f"first sync of {shifts:,} shifts over {days} days, median of {rounds} runs:")
    for mode, rate in medians.items():
        print(f"  {mode:<28} {rate:>8,.0f} records/s  {100 * (base - rate) / base:+5.1f} % slower")


def main() -> int:
    """Parse, start Temporal/tansu/valkey and the simulator, measure."""
    p = argparse.ArgumentParser(prog="python -m bench.tracing")
    p.add_argument("--shifts", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--days", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="synchub-bench-") as state_dir:
        stack = DevStack(
            temporal_port=0,
            ui_port=0,
            kafka_port=0,
            redis_port=0,
            state_dir=state_dir,
            headless=True,
        )
        with Simulator() as sim, stack:
            asyncio.run(measure(stack, sim, a.shifts, a.rounds, a.days))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
