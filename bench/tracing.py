"""Tracing overhead: first syncs of the same shifts without, with, and without tracing.

``python -m bench.tracing [--shifts 10000] [--rounds 3]`` (``make bench-tracing``). Each run
is a first sync (a fresh Redis db and topic) of the same seeded shifts, with its own worker in
this process. First ``rounds`` runs with no instrumentation at all; then the HTTP and Redis
hooks that feed the metrics are installed with synchub's tracer provider (spans to a
JSON-lines file, as the worker writes them), whose sampler is switched off and on between
runs, so both variants share the machine's drifting load. Prints the median records per
second and CPU µs per record of each, and, as a check that does not depend on the load, the
spans per run times the measured CPU cost of one span.
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
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from bench import measure
from bench.run import UNTHROTTLED, bench_settings
from bench.sim import Simulator
from devstack.services import DevStack
from infra.telemetry import (
    JsonLinesSpanExporter,
    SwitchSampler,
    instrument_clients,
    setup_tracing,
)
from infra.temporal import connect
from models.sync import RunState, SyncAllInput
from worker import build_worker
from workflows.sync_all import SyncAllWorkflow

BARE = "bare (no instrumentation)"
OFF = "metrics, tracing off"
ON = "metrics, tracing on"


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
    runs = 0

    async def run(mode: str) -> None:
        nonlocal runs
        rate, cpu = await first_sync(stack, sim, days, 3 + runs % 12, shifts)
        runs += 1
        rates.setdefault(mode, []).append(rate)
        cpus.setdefault(mode, []).append(cpu)
        print(f"{mode:<28} {rate:>8,.0f} records/s  {cpu:6.1f} µs CPU/record", flush=True)

    for _ in range(rounds):
        await run(BARE)
    instrument_clients()  # HTTP/Redis hooks feed the metrics; spans only when sampled
    toggle = SwitchSampler(on=False)
    with tempfile.TemporaryDirectory() as tmp:
        spans_file = Path(tmp) / "traces.jsonl"
        provider = setup_tracing("synchub-bench", spans_file=spans_file, sampler=toggle)
        for _ in range(rounds):  # interleaved: the machine's load drifts alike for both
            toggle.on = False
            await run(OFF)
            toggle.on = True
            await run(ON)
        provider.force_flush()
        spans = sum(1 for _ in spans_file.open()) / rounds
        provider.shutdown()  # the last spans are written before the folder goes
    base, base_cpu = statistics.median(rates[BARE]), statistics.median(cpus[BARE])
    print(f"first sync of {shifts:,} shifts over {days} days, median of {rounds} runs:")
    for mode in rates:
        rate, cpu = statistics.median(rates[mode]), statistics.median(cpus[mode])
        print(
            f"  {mode:<28} {rate:>8,.0f} records/s ({100 * (rate - base) / base:+5.1f} %)  "
            f"{cpu:6.1f} µs CPU/record ({100 * (cpu - base_cpu) / base_cpu:+5.1f} %)"
        )
    per_span = span_cost_us()
    share = 100 * spans * per_span / (base_cpu * shifts)
    print(
        f"  {spans:,.0f} spans per run x {per_span:.1f} µs CPU per span (recorded and "
        f"written) = {share:.2f} % of the run's CPU"
    )


def span_cost_us(n: int = 20_000) -> float:
    """CPU µs to create, end and write one span, as the worker's provider does."""
    with tempfile.TemporaryDirectory() as tmp:
        provider = TracerProvider()
        provider.add_span_processor(
            BatchSpanProcessor(JsonLinesSpanExporter(Path(tmp) / "t.jsonl"))
        )
        tracer = provider.get_tracer("bench")
        began = time.process_time()
        for i in range(n):
            with tracer.start_as_current_span("sync.page", attributes={"synchub.page": i}):
                pass
        provider.shutdown()
        return (time.process_time() - began) * 1e6 / n


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
