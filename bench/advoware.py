"""The Advoware scenario of the benchmark: ``python -m bench advoware``.

Starts its own dev stack (Temporal dev server, tansu, valkey) on free ports, the Advoware
simulator in a child process (real HTTP, HMAC token gateway, ``latency_ms`` per request) and
an in-process worker built by ``worker.build_worker``, seeds E employees x A appointments
inside the default sync window (30 days back, 365 ahead, 400-day pages: one page per
employee) through the simulator's admin API, and measures:

1. a first sync (``SyncAllWorkflow`` for source ``advoware``): every published key is
   distinct and the set equals the real (frNr > 0) appointments of the active employees,
2. a re-sync with no upstream change: nothing published, every page proven unchanged by its
   digest,
3. the history of the sync-all workflow and of the partition workflows, peak RSS, and the
   upstream requests per route, token requests included (the worker shares one token).

It prints a table and writes ``bench/results/advoware.json``. Nothing is mocked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.client import Client

from bench import measure
from bench.report import render_advoware
from bench.run import BenchFailure, delta, git_commit, rate, run_scenario, timed
from bench.sim import AdvowareSimulator
from connectors.advoware import AdvowareClient
from connectors.advoware.connector import DEFAULT_PAGE_DAYS, pages_in_window
from connectors.advoware.schemas import TIMEZONE
from devstack.services import DevStack
from infra.consumer import Consumed, TopicReader
from infra.temporal import connect
from models.sync import RunState, SyncAllInput, SyncAllResult
from settings import (
    KafkaSettings,
    RedisSettings,
    Settings,
    SyncSettings,
    TemporalSettings,
    WiwSettings,
)
from simulators.advoware import AdvowareState
from simulators.advoware.dev import local_advoware_settings
from worker import build_worker
from workflows.sync_all import SyncAllWorkflow

log = logging.getLogger("synchub.bench.advoware")

RESULTS = Path(__file__).parent / "results" / "advoware.json"
"""Where the JSON results are written by default."""
DAYS_BACK, DAYS_AHEAD, PAGE_DAYS = 30, 365, DEFAULT_PAGE_DAYS
"""The default Advoware window (``ADVOWARE_DAYS_BACK/DAYS_AHEAD/PAGE_DAYS``), pinned here so
environment variables of the shell cannot change what is measured (``--page-days`` can)."""
SEED = 7
"""Seed of the simulator's deterministic generator."""
TOKEN_ROUTE = "POST /api/v1/Token"
TERMINE_ROUTE = "GET /api/v1/advonet/Termine"
LOOKUP_ROUTE = "GET /api/v1/advonet/Termine?frnr"
HISTORY_FETCHES = 20
"""Partition histories fetched at once after a run."""


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    employees: int = 200
    """Employees the simulator is seeded with (about one in eight inactive)."""
    appointments: int = 100
    """Appointments per employee, all starting inside the sync window."""
    latency_ms: int = 20
    """Simulator latency added to every API request."""
    max_concurrent: int = 20
    """Employees (partition workflows) synced at once."""
    page_days: int = PAGE_DAYS
    """Days per page (``ADVOWARE_PAGE_DAYS``): one upstream request and one activity each."""
    sim_in_process: bool = False
    """Serve the simulator from a thread of the benchmark process."""
    output: Path = RESULTS
    """JSON results file."""


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read and check the command line (exit code 2 on bad input)."""
    p = argparse.ArgumentParser(
        prog="python -m bench advoware",
        description="synchub against the Advoware simulator: first sync and no-change re-sync "
        "of generated calendars (one partition per active employee, the default window of "
        f"{DAYS_BACK} days back and {DAYS_AHEAD} ahead, in {PAGE_DAYS}-day pages unless "
        "--page-days says otherwise), with "
        "throughput, history size, memory and upstream requests.",
    )
    p.add_argument("--employees", type=int, default=200, help="employees (default 200)")
    p.add_argument(
        "--appointments", type=int, default=100, help="appointments per employee (default 100)"
    )
    p.add_argument(
        "--latency-ms", type=int, default=20, help="simulator latency per request (default 20)"
    )
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=20,
        help="employees synced at once (SyncAllInput.max_concurrent; default 20)",
    )
    p.add_argument(
        "--page-days",
        type=int,
        default=PAGE_DAYS,
        help=f"days per page, i.e. per upstream request and activity (default {PAGE_DAYS}: "
        f"{pages_per_employee(PAGE_DAYS)} pages per employee)",
    )
    p.add_argument(
        "--sim-in-process",
        action="store_true",
        help="serve the simulator from this process (shares its GIL) instead of a child process",
    )
    p.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results file ({RESULTS})")
    a = p.parse_args(argv)
    if not 1 <= a.employees <= 5_000:
        p.error("--employees must be between 1 and 5000")
    if not 1 <= a.appointments <= 10_000:
        p.error("--appointments must be between 1 and 10000")
    if a.latency_ms < 0:
        p.error("--latency-ms must be >= 0")
    if not 1 <= a.max_concurrent <= 1000:
        p.error("--max-concurrent must be between 1 and 1000")
    if not 1 <= a.page_days <= 7321:
        p.error("--page-days must be between 1 and 7321")
    return Options(
        employees=a.employees,
        appointments=a.appointments,
        latency_ms=a.latency_ms,
        max_concurrent=a.max_concurrent,
        page_days=a.page_days,
        sim_in_process=a.sim_in_process,
        output=a.output,
    )


def bench_settings(
    stack: DevStack, sim_url: str, max_concurrent: int, page_days: int, tag: str
) -> Settings:
    """Settings of the benchmark's worker: its own task queue, topics and Redis db.

    The Advoware credentials are the simulator's defaults (an ``AdvowareState()`` has the
    same ones as the child process's).
    """
    return Settings(
        temporal=TemporalSettings(
            address=stack.temporal_address, namespace=stack.namespace, task_queue=f"bench-{tag}"
        ),
        kafka=KafkaSettings(
            brokers=stack.kafka_brokers,
            wiw_topic=f"bench.wiw.shifts.{tag}",
            advoware_topic=f"bench.advoware.appointments.{tag}",
            deadletter_topic=f"bench.deadletter.{tag}",
            topic_partitions=4,
        ),
        redis=RedisSettings(url=stack.redis_url),
        sync=SyncSettings(
            days_ahead=1, days_prior=0, timezone="UTC", max_concurrent=max_concurrent
        ),
        wiw=WiwSettings(),
        advoware=local_advoware_settings(
            AdvowareState(),
            sim_url,
            days_back=DAYS_BACK,
            days_ahead=DAYS_AHEAD,
            page_days=page_days,
        ),
    )


def sync_window(today: date) -> tuple[date, date]:
    """First and last day of every employee's window, as the connector computes it."""
    return today - timedelta(days=DAYS_BACK), today + timedelta(days=DAYS_AHEAD)


def pages_per_employee(page_days: int) -> int:
    """Pages of one employee's window today, as the connector cuts it (one when it fits)."""
    return pages_in_window(*sync_window(datetime.now(ZoneInfo(TIMEZONE)).date()), page_days)


@dataclass
class Expected:
    """What a complete sync must produce, from the simulator's own view."""

    active: list[str]
    """Kürzel of the active employees (the partitions)."""
    owners: dict[str, str]
    """Key (``str(frNr)``) -> owner Kürzel of every appointment that must be published."""
    employees: int = 0
    """Employees listed (active or not)."""
    appointments: int = 0
    """Real (frNr > 0) appointments seeded, of active and inactive employees."""
    system_entries: int = 0
    """Negative-frNr entries (never published)."""


@dataclass
class Bench:
    """Everything the phases share."""

    opts: Options
    settings: Settings
    client: Client
    sim: AdvowareSimulator
    tag: str
    per_phase_rss: bool
    pids: dict[str, int] = field(default_factory=dict)
    """Service processes by name, whose CPU time is measured per run."""
    results: dict[str, Any] = field(default_factory=dict)

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by this process (the worker) and each service."""
        out = {"bench (worker)": measure.cpu_seconds() or 0.0}
        for name, pid in self.pids.items():
            out[name] = measure.cpu_seconds(pid) or 0.0
        return out

    async def stats(self) -> dict[str, Any]:
        """The simulator's counters (cumulative)."""
        return await asyncio.to_thread(self.sim.stats)


async def expected_set(bench: Bench, seeded: list[int], first: date, last: date) -> Expected:
    """The appointments a full sync must publish: real ones of active employees in the window.

    Active employees come from the API's employee list (read with a client of the bench's
    own: one token request before the measured runs), the appointments from
    ``GET /_admin/termine``.

    Raises:
        BenchFailure: the simulator's appointments do not match what the seed returned.

    """
    client = AdvowareClient(bench.settings.advoware)
    try:
        employees = await client.employees()
    finally:
        await client.aclose()
    active = [str(e["kuerzel"]).upper() for e in employees if e.get("aktiv") is True]
    termine = await asyncio.to_thread(bench.sim.termine)
    real = [t for t in termine if int(t["frNr"]) > 0]
    if sorted(int(t["frNr"]) for t in real) != sorted(seeded):
        raise BenchFailure(
            f"the simulator holds {len(real)} real appointments, the seed created {len(seeded)}"
        )
    wanted = set(active)
    owners = {
        str(t["frNr"]): str(t["anwalt"])
        for t in real
        if t["anwalt"] in wanted and first <= date.fromisoformat(t["datum"][:10]) <= last
    }
    return Expected(
        active=active,
        owners=owners,
        employees=len(employees),
        appointments=len(real),
        system_entries=len(termine) - len(real),
    )


async def read_all(reader: TopicReader) -> list[Consumed]:
    """Everything published since the last read (until the topic is quiet for 2 s)."""
    return await asyncio.to_thread(reader.read, 2.0, 300.0)


def check(
    name: str,
    result: SyncAllResult,
    msgs: list[Consumed],
    expected: Expected,
    first_sync: bool,
    page_days: int,
) -> None:
    """Fail loudly unless the run synced exactly what it must.

    Raises:
        BenchFailure: naming every mismatch.

    """
    n_active, n_keys = len(expected.active), len(expected.owners)
    per_employee = pages_per_employee(page_days)
    pages = n_active * per_employee
    problems: list[str] = []
    if result.partitions.done != n_active or result.partitions.failed or result.partitions.skipped:
        problems.append(
            f"partitions {result.partitions.model_dump()}, expected {n_active} done: "
            f"{result.failed[:3]}"
        )
    if result.pages != pages:
        problems.append(f"{result.pages} pages, expected {n_active} x {per_employee}")
    if result.records.fetched != n_keys:
        problems.append(f"fetched {result.records.fetched} appointments, expected {n_keys}")
    if result.records.deleted or result.records.dead_lettered:
        problems.append(
            f"{result.records.deleted} deletes, {result.records.dead_lettered} dead-lettered"
        )
    keys = [m.key for m in msgs]
    if first_sync:
        if result.records.upserted != n_keys:
            problems.append(f"reported {result.records.upserted} upserts, expected {n_keys}")
        if len(set(keys)) != len(keys):
            dups = sum(1 for c in Counter(keys).values() if c > 1)
            problems.append(f"{len(keys)} messages but {dups} keys published more than once")
        got, want = set(keys), set(expected.owners)
        if got != want:
            problems.append(
                f"{len(got)} distinct keys published, expected {len(want)} "
                f"({len(want - got)} missing, {len(got - want)} unexpected)"
            )
        wrong = [
            m.key
            for m in msgs
            if m.headers.get("op") != "upsert"
            or json.loads(m.value).get("partition") != expected.owners.get(m.key)
        ]
        if wrong:
            problems.append(f"{len(wrong)} messages not an upsert in the owner's partition")
    else:
        if msgs or result.records.upserted:
            problems.append(
                f"published {len(msgs)} messages ({result.records.upserted} upserts) "
                "although nothing changed"
            )
        if result.unchanged_pages != result.pages:
            problems.append(
                f"only {result.unchanged_pages} of {result.pages} pages proven unchanged"
            )
        if result.records.unchanged != n_keys:
            problems.append(f"{result.records.unchanged} unchanged appointments, expected {n_keys}")
    if problems:
        raise BenchFailure(f"{name}: " + "; ".join(problems))


async def histories(
    client: Client, wf_id: str, run_id: str | None
) -> tuple[measure.HistoryStats, list[measure.HistoryStats]]:
    """Stats of the sync-all chain and of every partition workflow it started."""
    sync_all = await measure.history_stats(client, wf_id, run_id)
    gate = asyncio.Semaphore(HISTORY_FETCHES)

    async def one(wid: str, rid: str) -> measure.HistoryStats:
        async with gate:
            return await measure.history_stats(client, wid, rid)

    parts = await asyncio.gather(*(one(wid, rid) for wid, rid in sync_all.children))
    return sync_all, list(parts)


async def sync_phase(
    bench: Bench, reader: TopicReader, name: str, expected: Expected, first_sync: bool
) -> dict[str, Any]:
    """One SyncAllWorkflow run for ``advoware``, timed from start to result, then verified.

    Raises:
        BenchFailure: the run failed or did not sync exactly what it must.

    """
    wf_id = f"syncall/advoware/bench-{name}-{bench.tag}"
    before = await bench.stats()
    cpu_before = bench.cpu()
    handle, result, wall, rss = await timed(
        lambda: bench.client.start_workflow(
            SyncAllWorkflow.run,
            SyncAllInput(source="advoware", max_concurrent=bench.opts.max_concurrent),
            id=wf_id,
            task_queue=bench.settings.temporal.task_queue,
        ),
        bench.per_phase_rss,
    )
    assert isinstance(result, SyncAllResult)
    cpu = {k: round(v - cpu_before.get(k, 0.0), 2) for k, v in bench.cpu().items()}
    after = await bench.stats()
    upstream = delta(after["requests"], before["requests"])
    if result.state != RunState.COMPLETED:
        raise BenchFailure(f"{name}: run ended {result.state}: {result.failed[:3]}")
    msgs = await read_all(reader)
    check(name, result, msgs, expected, first_sync, bench.opts.page_days)

    fetch_began = time.perf_counter()
    sync_all, parts = await histories(bench.client, wf_id, handle.first_execution_run_id)
    fetch_seconds = time.perf_counter() - fetch_began
    latency = bench.opts.latency_ms / 1000
    part_events = [p.events for p in parts]
    slots = max(1, min(bench.opts.max_concurrent, result.partitions.done))
    part_tasks = measure.ActivityTimes()
    for p in parts:
        t = p.workflow_tasks
        part_tasks.count += t.count
        part_tasks.run_seconds += t.run_seconds
        part_tasks.queue_seconds += t.queue_seconds
        part_tasks.max_run_seconds = max(part_tasks.max_run_seconds, t.max_run_seconds)
    per = max(1, result.partitions.done)
    activity_tasks = sum(t.count for t in measure.sum_activities([sync_all, *parts]).values())
    per_employee = {
        "history_events": round((sync_all.events + sum(part_events)) / per, 1),
        "workflow_tasks": round((sync_all.workflow_tasks.count + part_tasks.count) / per, 2),
        "activity_tasks": round(activity_tasks / per, 2),
        "cpu_ms": {k: round(1000 * v / per, 1) for k, v in cpu.items()},
    }
    return {
        "per_employee": per_employee,
        "appointments": result.records.fetched,
        "employees": result.partitions.done,
        "pages": result.pages,
        "unchanged_pages": result.unchanged_pages,
        "wall_seconds": round(wall, 3),
        "appointments_per_second": round(rate(result.records.fetched, wall), 1),
        "employees_per_second": round(rate(result.partitions.done, wall), 1),
        "pages_per_second": round(rate(result.pages, wall), 1),
        "published": len(msgs),
        "distinct_keys": len({m.key for m in msgs}),
        "upserted": result.records.upserted,
        "unchanged": result.records.unchanged,
        "deleted": result.records.deleted,
        "upstream_requests": upstream,
        "token_requests": upstream.get(TOKEN_ROUTE, 0),
        "peak_rss_mib": None if rss is None else round(rss, 1),
        "cpu_seconds": cpu,
        "concurrency": slots,
        "latency_floor_seconds": round(
            max(result.pages * latency / slots, pages_per_employee(bench.opts.page_days) * latency),
            3,
        ),
        "seconds_per_page_slot": round(wall * slots / max(1, result.pages), 4),
        "history": {
            "events": sync_all.events + sum(part_events),
            "bytes": sync_all.bytes + sum(p.bytes for p in parts),
            "fetch_seconds": round(fetch_seconds, 2),
            "sync_all": sync_all.as_json(),
            "partition_example": parts[0].as_json() if parts else None,
            "partitions": {
                "count": len(parts),
                "runs": sum(p.runs for p in parts),
                "events_min": min(part_events, default=0),
                "events_max": max(part_events, default=0),
                "bytes": sum(p.bytes for p in parts),
                "seconds_max": round(max((p.seconds for p in parts), default=0.0), 3),
                "seconds_mean": round(sum(p.seconds for p in parts) / max(1, len(parts)), 3),
            },
        },
        "activities": measure.times_json(measure.sum_activities([sync_all, *parts])),
        "workflow_tasks": measure.times_json(
            {"sync_all": sync_all.workflow_tasks, "partitions": part_tasks}
        ),
    }


async def run_phases(bench: Bench) -> None:
    """Seed, compute the expected set, then first sync and no-change re-sync."""
    opts, sim = bench.opts, bench.sim
    today = datetime.now(ZoneInfo(TIMEZONE)).date()
    first, last = sync_window(today)
    began = time.perf_counter()
    # One day of margin at both ends: the window moves if Berlin's midnight passes mid-run.
    seeded = await asyncio.to_thread(
        sim.seed,
        opts.employees,
        opts.appointments,
        first + timedelta(days=1),
        last - timedelta(days=1),
        SEED,
    )
    bench.results["setup"]["seed_seconds"] = round(time.perf_counter() - began, 3)
    expected = await expected_set(bench, seeded, first, last)
    bench.results["data"] = {
        "employees": expected.employees,
        "active_employees": len(expected.active),
        "appointments": expected.appointments,
        "system_entries": expected.system_entries,
        "expected_published": len(expected.owners),
        "window": [first.isoformat(), last.isoformat()],
        "window_days": (last - first).days + 1,
        "pages_per_employee": pages_per_employee(opts.page_days),
    }
    print(
        f"seeded {expected.employees} employees ({len(expected.active)} active), "
        f"{expected.appointments:,} appointments; {len(expected.owners):,} must be published",
        flush=True,
    )

    bundle = await build_worker(bench.client, bench.settings)
    reader = TopicReader(bench.settings.kafka.brokers, bench.settings.kafka.advoware_topic)
    engine: dict[str, Any] = {}
    bench.results["engine"] = engine
    try:
        async with bundle.worker:
            print("engine: first sync ...", flush=True)
            engine["first_sync"] = await sync_phase(bench, reader, "first", expected, True)
            print("engine: no-change re-sync ...", flush=True)
            engine["no_change"] = await sync_phase(bench, reader, "nochange", expected, False)
    finally:
        reader.close()
        await bundle.aclose()
    stats = await bench.stats()
    bench.results["simulator"] = {
        "requests": stats["requests"],
        "statuses": stats["statuses"],
        "peak_in_flight": stats["peak_in_flight"],
        "worker_token_requests": sum(r["token_requests"] for r in engine.values()),
    }


async def run_async(
    opts: Options,
    stack: DevStack,
    sim: AdvowareSimulator,
    pids: dict[str, int],
    results: dict[str, Any],
) -> bool:
    """Connect, set the latency, run every phase; fill ``results`` as they finish.

    Returns:
        Whether peak RSS was measured per run (else only for the whole process).

    """
    tag = uuid.uuid4().hex[:8]
    settings = bench_settings(stack, sim.url, opts.max_concurrent, opts.page_days, tag)
    client = await connect(settings.temporal)
    await asyncio.to_thread(sim.set_knobs, latency_ms=opts.latency_ms)
    bench = Bench(
        opts=opts,
        settings=settings,
        client=client,
        sim=sim,
        tag=tag,
        per_phase_rss=measure.reset_peak_rss(),
        pids=pids,
        results=results,
    )
    await run_phases(bench)
    return bench.per_phase_rss


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenario; print the table and write the JSON. Exit 1 when a check failed."""
    opts = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    began = time.perf_counter()
    results: dict[str, Any] = {
        "scenario": "advoware",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "options": {
            "employees": opts.employees,
            "appointments_per_employee": opts.appointments,
            "latency_ms": opts.latency_ms,
            "max_concurrent": opts.max_concurrent,
            "days_back": DAYS_BACK,
            "days_ahead": DAYS_AHEAD,
            "page_days": opts.page_days,
            "simulator": "in-process thread" if opts.sim_in_process else "child process",
        },
        "setup": {},
    }
    return run_scenario(
        results=results,
        label="Advoware",
        simulator=AdvowareSimulator(in_process=opts.sim_in_process),
        body=lambda stack, sim, pids: asyncio.run(run_async(opts, stack, sim, pids, results)),
        render=render_advoware,
        output=opts.output,
        began=began,
    )
