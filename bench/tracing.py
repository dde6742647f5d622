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

import redis.asyncio as aioredis

from bench import measure
from bench.run import UNTHROTTLED, bench_settings
from bench.sim import Simulator
from infra.devstack import DevStack
from infra.telemetry import instrument_clients, setup_tracing
from infra.temporal import connect
from models.sync import RunState, SyncAllInput
from worker import build_worker
from workflows.sync_all import SyncAllWorkflow

BARE = "bare (no instrumentation)"


async def first_sync(
    stack: DevStack, sim: Simulator, days: int, db: int, shifts: int
) -> tuple[float, float]:
    """One first sync with its own worker, task queue and topic: records/s, CPU µs/record."""
    tag = uuid.uuid4().hex[:8]
    settings = bench_settings(stack, sim.url, days, tag, db)
    r = aioredis.Redis.from_url(settings.redis.url)
    await r.flushdb()
    await r.aclose()
    client = await connect(settings.temporal)
    bundle = await build_worker(client, settings)
    try:
        async with bundle.worker:
            began, cpu = time.perf_counter(), measure.cpu_seconds() or 0.0
            result = await client.execute_workflow(
                SyncAllWorkflow.run,
                SyncAllInput(source="wiw"),
                id=f"syncall/wiw/bench-tracing-{tag}",
                task_queue=settings.temporal.task_queue,
            )
            wall = time.perf_counter() - began
            cpu = (measure.cpu_seconds() or 0.0) - cpu
    finally:
        await bundle.aclose()
    if result.state != RunState.COMPLETED or result.records.upserted != shifts:
        raise SystemExit(f"run failed: {result.state} {result.records}")
    return shifts / wall, cpu * 1e6 / shifts


async def compare(stack: DevStack, sim: Simulator, shifts: int, rounds: int, days: int) -> None:
    today = datetime.now(UTC).date()
    await asyncio.to_thread(sim.set_knobs, rate_limit_per_minute=UNTHROTTLED, latency_ms=0)
    await asyncio.to_thread(sim.seed, shifts, [today + timedelta(days=i) for i in range(days)], 7)
    await first_sync(stack, sim, days, 2, shifts)  # warm-up, not counted
    rates: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}

    async def runs(mode: str) -> None:
        for i in range(rounds):
            rate, cpu = await first_sync(stack, sim, days, 3 + i % 12, shifts)
            rates.setdefault(mode, []).append(rate)
            cpus.setdefault(mode, []).append(cpu)
            print(f"{mode:<28} {rate:>8,.0f} records/s  {cpu:6.1f} µs CPU/record", flush=True)

    await runs(BARE)
    instrument_clients()  # HTTP/Redis hooks feed the metrics; a no-op tracer
    await runs("metrics, tracing off")
    with tempfile.TemporaryDirectory() as tmp:
        provider = setup_tracing("synchub-bench", spans_file=Path(tmp) / "traces.jsonl")
        await runs("metrics, tracing on")
        provider.shutdown()  # the last spans are written before the folder goes
    base, base_cpu = statistics.median(rates[BARE]), statistics.median(cpus[BARE])
    print(f"first sync of {shifts:,} shifts over {days} days, median of {rounds} runs:")
    for mode in rates:
        rate, cpu = statistics.median(rates[mode]), statistics.median(cpus[mode])
        print(
            f"  {mode:<28} {rate:>8,.0f} records/s ({100 * (rate - base) / base:+5.1f} %)  "
            f"{cpu:6.1f} µs CPU/record ({100 * (cpu - base_cpu) / base_cpu:+5.1f} %)"
        )


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
            asyncio.run(compare(stack, sim, a.shifts, a.rounds, a.days))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
