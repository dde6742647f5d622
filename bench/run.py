"""Run the benchmark: start everything, run the phases, verify, report, stop everything."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench import measure, naive, repeats
from bench.report import render
from bench.sim import ROOT, SIM_TOKEN, UNTHROTTLED, Simulator
from devstack.services import DevStack
from infra.consumer import Consumed, TopicReader
from infra.publisher import ensure_topics
from infra.temporal import connect
from models import clock
from models.sync import RunState, SyncAllInput, SyncAllResult
from settings import (
    KafkaSettings,
    RedisSettings,
    Settings,
    SyncSettings,
    TemporalSettings,
    WiwSettings,
)
from worker import build_worker
from workflows.sync_all import SyncAllWorkflow

log = logging.getLogger("synchub.bench")

RESULTS = Path(__file__).parent / "results" / "latest.json"
"""Where the JSON results are written by default."""
NAIVE_MAX_SHIFTS = 10_000
"""Above this the naive workflow's history nears Temporal's 51,200-event limit and dies."""
PHASE_TIMEOUT = 900.0
"""Seconds one sync may take before the benchmark gives up."""
LOOP_TIMEOUT = 3_600.0
"""Seconds one pass of the per-record loop may take: it flushes after every message, so
100,000 shifts on a loaded 2-core machine took longer than ``PHASE_TIMEOUT``."""
CHANGED_FRACTION = 0.01
"""Share of the shifts changed before the third engine run."""
FIXED_COST_SHIFTS = 30
"""Shifts of the fixed-cost runs (``--fixed-cost-shifts``): a handful per partition."""
FIXED_COST_REPEATS = 5
"""No-change runs of the fixed-cost measurement; the report takes their median."""


class BenchFailure(RuntimeError):
    """A measured run did not do what it must (wrong counts, lost messages); fail loudly."""


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    sizes: tuple[int, ...] = (10_000, 100_000)
    """Shifts of the engine and loop runs, one set of runs per size, smallest first."""
    days: int = 3
    """Day partitions (today and the following days)."""
    loop: bool = True
    """Run the per-record loop baseline (``bench.loop``) at every size."""
    naive: bool = False
    """Also run the one-activity-per-record Temporal baseline (``bench.naive``)."""
    naive_shifts: int = 1_000
    """Shifts of the naive runs."""
    naive_concurrency: int = 40
    """Record activities of the naive workflow in flight at once."""
    repeats: int | None = None
    """Runs of every engine and loop phase per size; None = ``repeats.repeats_for``'s rule
    (3 up to 20,000 shifts, 1 above)."""
    latency_ms: int = 0
    """Simulator latency added to every API request."""
    fixed_cost_shifts: int = FIXED_COST_SHIFTS
    """Shifts of the no-change runs that measure a run's fixed cost; 0 skips them."""
    sim_in_process: bool = False
    """Serve the simulator from a thread of the benchmark process."""
    output: Path = RESULTS
    """JSON results file."""


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(part.replace("_", "")) for part in text.split(",") if part}))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--shifts takes comma-separated whole numbers, e.g. 10000,100000 (got {text!r})"
        ) from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("--shifts: every size must be at least 1")
    return sizes


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read and check the command line (exit code 2 on bad input)."""
    p = argparse.ArgumentParser(
        prog="python -m bench",
        usage="%(prog)s [options]\n       %(prog)s advoware [options]  (see: %(prog)s advoware -h)",
        description="synchub throughput, CPU, history size and memory against real services. "
        "Without a scenario: When I Work shifts over day partitions, side by side with the "
        "per-record loop users run today (slot_sync's: no Temporal, flush per message).",
        epilog="scenarios: 'advoware' = Advoware calendars, one partition per employee, "
        "paged by date range through the HMAC token gateway (python -m bench advoware -h).",
    )
    p.add_argument(
        "--shifts",
        type=_sizes,
        default=(10_000, 100_000),
        help="comma-separated sizes, each a full set of runs (default 10000,100000; "
        "--shifts 10000 is the quick run)",
    )
    p.add_argument("--days", type=int, default=3, help="day partitions (SYNC_DAYS_AHEAD + 1)")
    p.add_argument("--skip-loop", action="store_true", help="do not run the per-record loop")
    p.add_argument(
        "--naive",
        action="store_true",
        help="also run the one-activity-per-record Temporal syncer (--naive-shifts records)",
    )
    p.add_argument("--naive-shifts", type=int, default=1_000, help="shifts of the naive runs")
    p.add_argument(
        "--naive-concurrency", type=int, default=40, help="naive record activities in flight"
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        metavar="N",
        help=f"run every phase N times, engine and loop alike, and report the medians "
        f"(default: {repeats.SMALL_SIZE_REPEATS} for sizes up to {repeats.SMALL_SIZE_MAX:,} "
        f"shifts, 1 above; a given N applies to every size)",
    )
    p.add_argument("--latency-ms", type=int, default=0, help="simulator latency per request")
    p.add_argument(
        "--fixed-cost-shifts",
        type=int,
        default=FIXED_COST_SHIFTS,
        metavar="N",
        help=f"measure a run's fixed cost first: {FIXED_COST_REPEATS} no-change runs of N "
        f"shifts over the same partitions (default {FIXED_COST_SHIFTS}; 0 skips them)",
    )
    p.add_argument(
        "--sim-in-process",
        action="store_true",
        help="serve the simulator from this process (shares its GIL) instead of a child process",
    )
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    a = p.parse_args(argv)
    if not 1 <= a.days <= 367:
        p.error("--days must be between 1 and 367")
    if not 1 <= a.naive_shifts <= NAIVE_MAX_SHIFTS:
        p.error(f"--naive-shifts must be between 1 and {NAIVE_MAX_SHIFTS} (history limit)")
    if a.naive_concurrency < 1:
        p.error("--naive-concurrency must be at least 1")
    if a.latency_ms < 0:
        p.error("--latency-ms must be >= 0")
    if a.repeats is not None and a.repeats < 1:
        p.error("--repeats must be at least 1")
    if a.fixed_cost_shifts < 0:
        p.error("--fixed-cost-shifts must be >= 0 (0 skips the fixed-cost runs)")
    return Options(
        sizes=a.shifts,
        days=a.days,
        loop=not a.skip_loop,
        naive=a.naive,
        naive_shifts=a.naive_shifts,
        naive_concurrency=a.naive_concurrency,
        repeats=a.repeats,
        latency_ms=a.latency_ms,
        fixed_cost_shifts=a.fixed_cost_shifts,
        sim_in_process=a.sim_in_process,
        output=a.output,
    )


def bench_settings(stack: DevStack, sim_url: str, days: int, tag: str, db: int = 0) -> Settings:
    """Settings of the benchmark's worker: its own task queue, topics and Redis db."""
    return Settings(
        temporal=TemporalSettings(
            address=stack.temporal_address, namespace=stack.namespace, task_queue=f"bench-{tag}"
        ),
        kafka=KafkaSettings(
            brokers=stack.kafka_brokers,
            wiw_topic=f"bench.wiw.shifts.{tag}",
            deadletter_topic=f"bench.deadletter.{tag}",
            topic_partitions=4,
        ),
        # the engine's Redis calls are chunked: the client's default timeouts hold for any page
        redis=RedisSettings(url=f"{stack.redis_url.rsplit('/', 1)[0]}/{db}"),
        sync=SyncSettings(days_ahead=days - 1, days_prior=0, timezone="UTC", max_concurrent=20),
        wiw=WiwSettings(api_url=sim_url, token=SecretStr(SIM_TOKEN)),
    )


@dataclass
class Bench:
    """Everything the phases share."""

    opts: Options
    settings: Settings
    client: Client
    sim: Simulator
    window: list[date]
    tag: str
    per_phase_rss: bool
    results: dict[str, Any] = field(default_factory=dict)
    """Results of this size (``engine``, ``loop``, ``naive``)."""
    size: int = 0
    """Shifts of this size's runs."""
    setup: dict[str, Any] = field(default_factory=dict)
    """The run's ``setup`` section (seed times are added per size)."""
    read_idle: float = 2.0
    """Seconds a topic must stay quiet before a phase's messages are taken as complete."""

    async def read(self, reader: TopicReader) -> list[Consumed]:
        """Everything published since the last read (until the topic is quiet)."""
        return await asyncio.to_thread(reader.read, self.read_idle, 300.0)

    async def requests(self) -> dict[str, int]:
        """Simulator request counters (cumulative)."""
        return await asyncio.to_thread(self.sim.requests)


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def rate(records: int, seconds: float) -> float:
    return records / seconds if seconds > 0 else 0.0


async def timed(
    start: Callable[[], Awaitable[WorkflowHandle[Any, Any]]], per_phase_rss: bool
) -> tuple[WorkflowHandle[Any, Any], Any, float, float | None]:
    """Start a workflow and await its result, timing both.

    Args:
        start: Starts the workflow and returns its handle.
        per_phase_rss: Whether this process's peak RSS can be reset and measured per run.

    Returns:
        The handle, the result, wall seconds from start to result, and this process's peak
        RSS in MiB during the run (None where it cannot be measured per run).

    Raises:
        BenchFailure: the run took longer than ``PHASE_TIMEOUT``.

    """
    if per_phase_rss:
        measure.reset_peak_rss()
    began = time.perf_counter()
    handle = await start()
    try:
        result = await asyncio.wait_for(handle.result(), PHASE_TIMEOUT)
    except TimeoutError:
        raise BenchFailure(f"{handle.id} did not finish within {PHASE_TIMEOUT:.0f} s") from None
    wall = time.perf_counter() - began
    rss = measure.peak_rss_mib() if per_phase_rss else None
    return handle, result, wall, rss


async def engine_phase(
    bench: Bench, reader: TopicReader, name: str, expect_keys: set[str], fetched: int
) -> dict[str, Any]:
    """One SyncAllWorkflow run, timed from start to result, then verified against Kafka.

    Args:
        bench: Shared state.
        reader: Reader of the engine's topic, positioned after the previous phase.
        name: Phase name (part of the workflow id).
        expect_keys: Exactly the keys that must be published (empty = nothing).
        fetched: Records the run must fetch.

    Raises:
        BenchFailure: the run failed, or published other keys than ``expect_keys``.

    """
    wf_id = f"syncall/wiw/bench-{name}-{bench.tag}"
    before = await bench.requests()
    meter = measure.CpuMeter()
    meter.start()
    handle, result, wall, rss = await timed(
        lambda: bench.client.start_workflow(
            SyncAllWorkflow.run,
            SyncAllInput(source="wiw", max_concurrent=bench.settings.sync.max_concurrent),
            id=wf_id,
            task_queue=bench.settings.temporal.task_queue,
        ),
        bench.per_phase_rss,
    )
    cpu, threads = meter.stop()
    assert isinstance(result, SyncAllResult)
    upstream = delta(await bench.requests(), before)
    if result.state != RunState.COMPLETED:
        raise BenchFailure(f"{name}: run ended {result.state}: {result.failed}")
    if result.skipped or result.notices:
        # e.g. a cache voided by the topic-id check, or a partition still claimed by an
        # earlier run: the run did not do what this phase measures
        raise BenchFailure(f"{name}: skipped {result.skipped}, noticed {result.notices}")
    msgs = await bench.read(reader)
    keys = {m.key for m in msgs}
    problems = []
    if len(msgs) != len(keys):
        problems.append(f"{len(msgs) - len(keys)} messages published twice")
    if keys != expect_keys:
        lost, extra = len(expect_keys - keys), len(keys - expect_keys)
        problems.append(
            f"{len(keys)} distinct keys published, expected {len(expect_keys)} "
            f"({lost} missing, {extra} unexpected)"
        )
    if result.records.fetched != fetched:
        problems.append(f"fetched {result.records.fetched} records, expected {fetched}")
    if result.records.upserted != len(expect_keys) or result.records.deleted:
        problems.append(
            f"reported {result.records.upserted} upserts and {result.records.deleted} deletes, "
            f"expected {len(expect_keys)} upserts"
        )
    if problems:
        raise BenchFailure(f"{name}: " + "; ".join(problems))

    sync_all = await measure.history_stats(bench.client, wf_id, handle.first_execution_run_id)
    parts = [await measure.history_stats(bench.client, wid, rid) for wid, rid in sync_all.children]
    return {
        "records": result.records.fetched,
        "wall_seconds": round(wall, 3),
        "records_per_second": round(rate(result.records.fetched, wall), 1),
        "cpu_seconds": round(cpu, 3),
        "cpu_us_per_record": round(1e6 * cpu / max(1, result.records.fetched), 1),
        "cpu_ms_by_thread": threads,
        "published": len(msgs),
        "distinct_keys": len(keys),
        "upserted": result.records.upserted,
        "unchanged": result.records.unchanged,
        "deleted": result.records.deleted,
        "upstream_requests": upstream,
        "peak_rss_mib": None if rss is None else round(rss, 1),
        "history": {
            "events": sync_all.events + sum(p.events for p in parts),
            "bytes": sync_all.bytes + sum(p.bytes for p in parts),
            "sync_all": sync_all.as_json(),
            "partitions": [p.as_json() for p in parts],
        },
        "activities": measure.times_json(measure.sum_activities(parts)),
    }


async def naive_phase(
    bench: Bench, reader: TopicReader, name: str, expect_keys: set[str], fetched: int
) -> dict[str, Any]:
    """One naive run, timed and verified like an engine phase.

    Raises:
        BenchFailure: the run published other keys than ``expect_keys``.

    """
    wf_id = f"bench-naive/{name}-{bench.tag}"
    before = await bench.requests()
    handle, result, wall, rss = await timed(
        lambda: bench.client.start_workflow(
            naive.NaiveSyncWorkflow.run,
            naive.NaiveSyncInput(
                days=[d.isoformat() for d in bench.window],
                concurrency=bench.opts.naive_concurrency,
            ),
            id=wf_id,
            task_queue=f"bench-naive-{bench.tag}",
        ),
        bench.per_phase_rss,
    )
    assert isinstance(result, naive.NaiveSyncResult)
    upstream = delta(await bench.requests(), before)
    msgs = await bench.read(reader)
    keys = {m.key for m in msgs}
    if keys != expect_keys or result.fetched != fetched or result.upserted != len(expect_keys):
        raise BenchFailure(
            f"naive {name}: fetched {result.fetched}/{fetched}, upserted {result.upserted}, "
            f"published {len(keys)} distinct keys, expected {len(expect_keys)}"
        )
    stats = await measure.history_stats(bench.client, wf_id, handle.first_execution_run_id)
    return {
        "records": result.fetched,
        "wall_seconds": round(wall, 3),
        "records_per_second": round(rate(result.fetched, wall), 1),
        "published": len(msgs),
        "distinct_keys": len(keys),
        "upserted": result.upserted,
        "unchanged": result.unchanged,
        "upstream_requests": upstream,
        "peak_rss_mib": None if rss is None else round(rss, 1),
        "history": {"events": stats.events, "bytes": stats.bytes, "workflow": stats.as_json()},
    }


async def loop_phase(
    bench: Bench, reader: TopicReader, name: str, expect_keys: set[str], fetched: int
) -> dict[str, Any]:
    """One pass of the per-record loop (``bench.loop``) in a child process, verified.

    Its Redis keys and topic are its own (per size); the simulator is the engine's.

    Raises:
        BenchFailure: the loop failed, or did not publish exactly ``expect_keys`` once each.

    """
    first, last = bench.window[0], bench.window[-1]
    spec = {
        "api_url": bench.sim.url,
        "token": SIM_TOKEN,
        "start": datetime.combine(first, datetime.min.time(), tzinfo=UTC).isoformat(),
        "end": datetime.combine(
            last + timedelta(days=1), datetime.min.time(), tzinfo=UTC
        ).isoformat(),
        "redis_url": loop_redis_url(bench),
        "prefix": loop_prefix(bench),
        "brokers": bench.settings.kafka.brokers,
        "topic": loop_topic(bench),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loop",
        json.dumps(spec),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), LOOP_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BenchFailure(f"loop {name} did not finish within {LOOP_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        raise BenchFailure(f"loop {name} failed: {err.decode(errors='replace')[-500:]}")
    run = json.loads(out.decode().strip().splitlines()[-1])
    msgs = await bench.read(reader)
    keys = {m.key for m in msgs}
    if (
        keys != expect_keys
        or len(msgs) != len(keys)
        or run["fetched"] != fetched
        or run["upserted"] != len(expect_keys)
    ):
        raise BenchFailure(
            f"loop {name}: fetched {run['fetched']}/{fetched}, upserted {run['upserted']}, "
            f"published {len(msgs)} messages with {len(keys)} distinct keys, "
            f"expected {len(expect_keys)}"
        )
    wall = float(run["wall_seconds"])
    return {
        "records": run["fetched"],
        "wall_seconds": round(wall, 3),
        "records_per_second": round(rate(run["fetched"], wall), 1),
        "cpu_seconds": round(run["cpu_seconds"], 3),
        "cpu_us_per_record": round(1e6 * run["cpu_seconds"] / max(1, run["fetched"]), 1),
        "published": len(msgs),
        "distinct_keys": len(keys),
        "upserted": run["upserted"],
        "unchanged": run["unchanged"],
        "peak_rss_mib": round(run["peak_rss_mib"], 1),
    }


def loop_topic(bench: Bench) -> str:
    """Topic of the per-record loop at this size."""
    return f"bench.loop.shifts.{bench.tag}"


def loop_redis_url(bench: Bench) -> str:
    """Redis database of the per-record loop (shared with the naive baseline)."""
    return bench.settings.redis.url.rsplit("/", 1)[0] + "/1"


def loop_prefix(bench: Bench) -> str:
    """Prefix of the per-record loop's Redis keys at this size."""
    return f"loop:{bench.tag}:wiw:"


async def forget(bench: Bench) -> dict[str, int]:
    """Empty what the engine and the loop remember, so that the next run is a first sync.

    The engine's Redis database is this size's alone (``bench_settings``' ``db``): it is
    flushed whole, whatever keys the change store uses. The loop shares its database with
    the naive baseline, so only its own keys (``loop_prefix``) go. Services keep running and
    the worker keeps its connections; the engine's topic-id check then finds no recorded id
    and records the topic's, as on a new store (``engine_phase`` fails a run that voids or
    skips anything).

    Returns:
        The keys removed, per side.

    Raises:
        BenchFailure: keys are left after the reset.

    """
    engine = aioredis.Redis.from_url(bench.settings.redis.url)
    loop = aioredis.Redis.from_url(loop_redis_url(bench))
    try:
        engine_keys = int(await engine.dbsize())
        await engine.flushdb()
        loop_keys = 0
        batch: list[Any] = []
        async for key in loop.scan_iter(match=f"{loop_prefix(bench)}*", count=5_000):
            batch.append(key)
            if len(batch) >= 5_000:
                loop_keys += int(await loop.unlink(*batch))
                batch = []
        if batch:
            loop_keys += int(await loop.unlink(*batch))
        left = int(await engine.dbsize())
        left_loop = [k async for k in loop.scan_iter(match=f"{loop_prefix(bench)}*", count=5_000)]
    finally:
        await engine.aclose()
        await loop.aclose()
    if left or left_loop:
        raise BenchFailure(
            f"reset before a first sync left {left} engine and {len(left_loop)} loop keys"
        )
    return {"engine_keys": engine_keys, "loop_keys": loop_keys}


@contextlib.asynccontextmanager
async def naive_worker(bench: Bench) -> AsyncIterator[TopicReader]:
    """Run the baseline's worker on its own task queue, topic and Redis db."""
    topic = f"bench.naive.shifts.{bench.tag}"
    await asyncio.to_thread(ensure_topics, bench.settings.kafka.brokers, [topic], 4)
    redis_url = bench.settings.redis.url.rsplit("/", 1)[0] + "/1"
    bundle = naive.build_naive(bench.settings, topic, redis_url)
    reader = TopicReader(bench.settings.kafka.brokers, topic)
    worker = Worker(
        bench.client,
        task_queue=f"bench-naive-{bench.tag}",
        workflows=[naive.NaiveSyncWorkflow],
        activities=[bundle.activities.list_ids, bundle.activities.sync_one],
        max_concurrent_activities=bench.opts.naive_concurrency,
    )
    try:
        async with worker:
            yield reader
    finally:
        reader.close()
        await bundle.aclose()


async def run_phases(bench: Bench) -> None:
    """At one size: engine and loop side by side (first sync, no change, 1 % changed).

    Each phase runs ``repeats.repeats_for`` times, engine then loop in every repetition (so
    a busy moment of the machine hits both); the phase's result is ``repeats.median_run``
    of its repetitions. Before every first sync both sides forget what they remember
    (``forget``); before every 1 % run a fresh 1 % of the shifts changes.
    """
    opts, sim = bench.opts, bench.sim
    began = time.perf_counter()
    ids = await asyncio.to_thread(sim.seed, bench.size, bench.window, 7)
    await asyncio.to_thread(sim.warm, bench.window)
    bench.setup.setdefault("seed_seconds", {})[str(bench.size)] = round(
        time.perf_counter() - began, 3
    )
    all_keys = {str(i) for i in ids}
    n_changed = max(1, round(bench.size * CHANGED_FRACTION))
    n_runs = repeats.repeats_for(bench.size, opts.repeats)
    bench.results["repeats"] = n_runs

    bundle = await build_worker(bench.client, bench.settings)
    reader = TopicReader(bench.settings.kafka.brokers, bench.settings.kafka.wiw_topic)
    loop_reader: TopicReader | None = None
    if opts.loop:
        await asyncio.to_thread(ensure_topics, bench.settings.kafka.brokers, [loop_topic(bench)], 4)
        loop_reader = TopicReader(bench.settings.kafka.brokers, loop_topic(bench))
    engine: dict[str, Any] = {}
    loop: dict[str, Any] | None = {} if opts.loop else None
    bench.results["engine"] = engine
    bench.results["loop"] = loop
    size = f"{bench.size:,}"
    phases: tuple[tuple[str, str, str], ...] = (
        ("first_sync", "first", f"first sync of {size} shifts"),
        ("no_change", "nochange", "no-change re-sync"),
        ("one_percent", "changed", f"re-sync after changing {n_changed:,} shifts"),
    )
    try:
        async with bundle.worker:
            for key, name, what in phases:
                engine_runs: list[dict[str, Any]] = []
                loop_runs: list[dict[str, Any]] = []
                for rep in range(n_runs):
                    expect: set[str] = set()
                    reset: dict[str, int] | None = None
                    if key == "first_sync":
                        expect, reset = all_keys, await forget(bench)
                    elif key == "one_percent":
                        changed = repeats.changed_ids(ids, n_changed, rep)
                        await asyncio.to_thread(sim.change, changed, f"bench change {rep + 1}")
                        await asyncio.to_thread(sim.warm, bench.window)
                        expect = {str(i) for i in changed}
                    run_name = name if n_runs == 1 else f"{name}-r{rep + 1}"
                    of = "" if n_runs == 1 else f" (run {rep + 1}/{n_runs})"
                    print(f"[{size}] engine: {what}{of} ...", flush=True)
                    run = await engine_phase(bench, reader, run_name, expect, bench.size)
                    if key == "one_percent":
                        run["changed"] = len(expect)
                    if reset is not None:
                        run["reset_keys"] = reset["engine_keys"]
                    engine_runs.append(run)
                    if loop is not None and loop_reader is not None:
                        print(f"[{size}] per-record loop: {what}{of} ...", flush=True)
                        run = await loop_phase(bench, loop_reader, run_name, expect, bench.size)
                        if reset is not None:
                            run["reset_keys"] = reset["loop_keys"]
                        loop_runs.append(run)
                engine[key] = repeats.median_run(engine_runs)
                if loop is not None:
                    loop[key] = repeats.median_run(loop_runs)
    finally:
        reader.close()
        if loop_reader is not None:
            loop_reader.close()
        await bundle.aclose()

    if not opts.naive or bench.size != opts.sizes[0]:
        bench.results["naive"] = None
        return
    naive_ids = await asyncio.to_thread(sim.seed, opts.naive_shifts, bench.window, 99)
    naive_keys = {str(i) for i in naive_ids}
    results: dict[str, Any] = {"concurrency": opts.naive_concurrency}
    bench.results["naive"] = results
    async with naive_worker(bench) as naive_reader:
        print(f"naive: first sync of {opts.naive_shifts:,} shifts ...", flush=True)
        results["first_sync"] = await naive_phase(
            bench, naive_reader, "first", naive_keys, opts.naive_shifts
        )
        print("naive: no-change re-sync ...", flush=True)
        results["no_change"] = await naive_phase(
            bench, naive_reader, "nochange", set(), opts.naive_shifts
        )


async def run_fixed_cost(bench: Bench) -> None:
    """What a run costs whatever its size: no-change runs of a handful of shifts.

    A first sync stores them, then ``FIXED_COST_REPEATS`` no-change runs go over the same
    partitions as every size does (the sync-all and a child workflow per partition, their
    local activities, a request and the Redis calls of each partition), each verified like
    any engine phase. ``bench.results`` gets the median run under ``no_change``.
    """
    ids = await asyncio.to_thread(bench.sim.seed, bench.size, bench.window, 5)
    await asyncio.to_thread(bench.sim.warm, bench.window)
    keys = {str(i) for i in ids}
    bench.results["shifts"] = bench.size
    bundle = await build_worker(bench.client, bench.settings)
    reader = TopicReader(bench.settings.kafka.brokers, bench.settings.kafka.wiw_topic)
    try:
        async with bundle.worker:
            await forget(bench)
            print(f"fixed cost: first sync of {bench.size} shifts ...", flush=True)
            await engine_phase(bench, reader, "fixed-first", keys, bench.size)
            runs = []
            for rep in range(FIXED_COST_REPEATS):
                print(f"fixed cost: no-change run {rep + 1}/{FIXED_COST_REPEATS} ...", flush=True)
                runs.append(
                    await engine_phase(bench, reader, f"fixed-r{rep + 1}", set(), bench.size)
                )
            bench.results["no_change"] = repeats.median_run(runs)
    finally:
        reader.close()
        await bundle.aclose()


async def run_async(
    opts: Options,
    stack: DevStack,
    sim: Simulator,
    results: dict[str, Any],
    *,
    first_db: int = 2,
    read_idle: float = 2.0,
) -> bool:
    """Connect, prepare the simulator, run every phase; fill ``results`` as they finish.

    Args:
        opts: The options.
        stack: The running services.
        sim: The running simulator.
        results: Filled with ``sizes`` (and read for ``setup``).
        first_db: Redis database of the engine at the first size (the next size takes the
            next one); each is flushed before every first sync, so nothing else may use it.
        read_idle: Quiet seconds that end the reading of a phase's messages.

    Returns:
        Whether peak RSS was measured per run (else only for the whole process).

    """
    client: Client | None = None
    per_phase_rss = measure.reset_peak_rss()
    await asyncio.to_thread(
        sim.set_knobs, rate_limit_per_minute=UNTHROTTLED, latency_ms=opts.latency_ms
    )
    today = clock.today(UTC)  # the worker's window is computed from the same clock
    results["sizes"] = {}

    async def bench_of(size: int, db: int, section: dict[str, Any]) -> Bench:
        nonlocal client
        tag = uuid.uuid4().hex[:8]
        settings = bench_settings(stack, sim.url, opts.days, tag, db)
        client = client or await connect(settings.temporal)
        return Bench(
            opts=opts,
            settings=settings,
            client=client,
            sim=sim,
            window=[today + timedelta(days=i) for i in range(opts.days)],
            tag=tag,
            per_phase_rss=per_phase_rss,
            results=section,
            size=size,
            setup=results["setup"],
            read_idle=read_idle,
        )

    if opts.fixed_cost_shifts:  # on the first size's database, which forgets it after
        fixed: dict[str, Any] = results.setdefault("fixed_cost", {})
        await run_fixed_cost(await bench_of(opts.fixed_cost_shifts, first_db, fixed))
    # Smallest first: memory a size leaves behind can only inflate the next, larger size.
    for db, size in enumerate(opts.sizes, start=first_db):
        await run_phases(await bench_of(size, db, results["sizes"].setdefault(str(size), {})))
    return per_phase_rss


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def alive(pid: int) -> bool:
    """Whether a process still runs (a zombie awaiting its parent's wait does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[-1][:1] != "Z"


def run_scenario(
    *,
    results: dict[str, Any],
    label: str,
    simulator: Any,
    body: Callable[[DevStack, Any, dict[str, int]], Any],
    render: Callable[[dict[str, Any]], str],
    output: Path,
    began: float,
    keep_partial: bool = False,
) -> int:
    """Start the stack and simulator, run ``body``, account memory and processes, report.

    ``body(stack, sim, pids)`` runs the scenario (raising ``BenchFailure`` on a failed check)
    and may return per-phase memory peaks. ``keep_partial`` writes what was measured to
    ``<output>.failed.json`` when it fails. Exit code 1 on a failure or a leftover process.
    """
    pids: dict[str, int] = {}
    leftover: list[str] = []
    failure: str | None = None
    with tempfile.TemporaryDirectory(prefix="synchub-bench-") as state_dir:
        stack = DevStack(
            temporal_port=0,
            ui_port=0,
            kafka_port=0,
            redis_port=0,
            state_dir=state_dir,
            headless=True,
        )
        print(f"starting Temporal, tansu, valkey and the {label} simulator ...", flush=True)
        try:
            with simulator as sim, stack:
                results["setup"]["stack_start_seconds"] = round(stack.startup_seconds or 0, 2)
                pids = {n: p.pid for n, p in stack.processes.items() if p.pid is not None}
                if sim.pid is not None:
                    pids[f"{label.lower()}-simulator"] = sim.pid
                per_phase = None
                try:
                    per_phase = body(stack, sim, pids)
                except BenchFailure as exc:
                    failure = str(exc)
                # The worker's KafkaPublisher only flushes on close; its producer lives until
                # collected and would log reconnect errors once the broker is gone.
                gc.collect()
                memory: dict[str, Any] = {
                    "bench_process_peak_rss_mib": round(measure.lifetime_peak_rss_mib(), 1),
                }
                if per_phase is not None:
                    memory["per_phase_peaks"] = per_phase
                memory["services_peak_rss_mib"] = {
                    name: round(v, 1)
                    for name, pid in pids.items()
                    if (v := measure.peak_rss_mib(pid)) is not None
                }
                results["memory"] = memory
        finally:
            leftover = sorted(name for name, pid in pids.items() if alive(pid))
    results["host"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["leftover_processes"] = leftover
    results["total_seconds"] = round(time.perf_counter() - began, 1)
    if failure is not None:
        if keep_partial:
            results["failure"] = failure
            failed = output.with_suffix(".failed.json")
            failed.parent.mkdir(parents=True, exist_ok=True)
            failed.write_text(json.dumps(results, indent=2) + "\n")
            print(f"\nBENCHMARK FAILED: {failure} (partial results in {failed})", file=sys.stderr)
        else:
            print(f"\nBENCHMARK FAILED: {failure}", file=sys.stderr)
        return 1
    print()
    print(render(results))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {output}")
    if leftover:
        print(f"WARNING: still running after stop: {', '.join(leftover)}", file=sys.stderr)
        return 1
    return 0


def new_results(opts: Options) -> dict[str, Any]:
    """The results of a run before it starts: when, which commit, the host and the options."""
    return {
        "started_at": clock.now().isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "options": {
            "sizes": list(opts.sizes),
            "days": opts.days,
            "loop": opts.loop,
            "naive_shifts": opts.naive_shifts if opts.naive else None,
            "naive_concurrency": opts.naive_concurrency,
            "repeats": opts.repeats,
            "latency_ms": opts.latency_ms,
            "fixed_cost_shifts": opts.fixed_cost_shifts,
            "simulator": "in-process thread" if opts.sim_in_process else "child process",
        },
        "setup": {},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table and write the JSON. Exit 1 when a check failed."""
    opts = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    began = time.perf_counter()
    results = new_results(opts)
    return run_scenario(
        results=results,
        label="WIW",
        simulator=Simulator(in_process=opts.sim_in_process),
        body=lambda stack, sim, pids: asyncio.run(run_async(opts, stack, sim, results)),
        render=render,
        output=opts.output,
        began=began,
    )
