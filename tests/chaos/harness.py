"""The chaos harness: a WIW sync through real services, with one of them killed mid-run.

A rig of its own (Temporal dev server with its own SQLite file, tansu, valkey with and without
append-only persistence, a When I Work simulator with latency) runs ``python worker.py``
subprocesses exactly as an operator does. Each case seeds the simulator, starts a sync,
injects its fault once the run is under way (some days committed, others in flight), and then
lets the system recover the way production would: the run finishes (or is retried) and, if
the topic is not yet whole, the next scheduled runs follow. After that a few shifts change and
one more run must publish them.

After every case the topic is checked against the simulator's truth:

* missing: live shifts with no message at all;
* stale: live shifts whose latest message is not their current state (``updated_at``);
* bad duplicates: one state of a shift published under different event ids (consumers could
  not drop the copy); repeats with an equal event id are fine and counted as re-published.

Each case reports the seconds from the fault until the topic was whole again, the messages
re-published, and what was lost. ``python -m tests.chaos`` prints the table (``make chaos``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from devstack.services import KAFKA, REDIS, TEMPORAL, DevStack
from infra.consumer import Consumed, TopicReader
from infra.publisher import ensure_topics
from models.sync import RunState, SyncAllInput, SyncAllResult
from simulators.server import ThreadedServer
from simulators.wiw import WiwState, make_sim_app
from workflows.sync_all import SyncAllWorkflow

ROOT = Path(__file__).resolve().parents[2]
SIM_TOKEN = "chaos-static-token"


@dataclass(frozen=True)
class Size:
    """How big a case is: shifts over days, simulator latency, partitions at once."""

    shifts: int
    days: int
    latency_ms: int
    max_concurrent: int = 3
    big_day_shifts: int = 0
    """Extra shifts all on the first day (one big page), for the "big page under load" case."""
    gap_seconds: float = 2.0
    """How long a killed service stays down before it is restarted."""


SHORT = Size(shifts=400, days=5, latency_ms=400, big_day_shifts=1500)
"""The CI version: seconds per case."""
LONG = Size(
    shifts=4000, days=10, latency_ms=300, max_concurrent=4, gap_seconds=10.0, big_day_shifts=15000
)
"""``make chaos``: a few thousand shifts, the restarts of issue 9."""


@dataclass
class Verdict:
    """The topic compared with the simulator's truth."""

    messages: int = 0
    live: int = 0
    missing: int = 0
    stale: int = 0
    bad_duplicates: int = 0
    """States of one shift published under more than one event id."""
    republished: int = 0
    """Messages beyond the first of each (key, event id)."""
    examples: list[str] = field(default_factory=list)

    @property
    def whole(self) -> bool:
        """Nothing missing, nothing stale, duplicates only with equal event ids."""
        return self.missing == 0 and self.stale == 0 and self.bad_duplicates == 0


@dataclass
class CaseResult:
    """One row of the chaos table."""

    case: str
    recovery_seconds: float | None
    """From the fault until the topic was whole again; None if it never was."""
    republished: int
    lost: int
    """Missing plus stale after recovery (should be 0)."""
    bad_duplicates: int
    runs_after_fault: int
    """Sync runs it took (the faulted one included) until the topic was whole."""
    final: Verdict
    notes: list[str] = field(default_factory=list)
    loop_stall_ms: int | None = None
    """Longest event-loop stall any worker of the case reported when it stopped."""

    @property
    def ok(self) -> bool:
        """Whole after the fault and after the follow-up change."""
        return self.recovery_seconds is not None and self.final.whole


def check_topic(messages: list[Consumed], live: list[dict[str, Any]]) -> Verdict:
    """Compare what the topic holds with the simulator's live shifts."""
    truth = {str(s["id"]): parsedate_to_datetime(s["updated_at"]) for s in live}
    last: dict[str, Consumed] = {}
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    distinct: set[tuple[str, str]] = set()
    for m in messages:
        if m.headers.get("op") != "upsert" or not m.value:
            continue
        prev = last.get(m.key)
        if prev is None or (m.partition, m.offset) > (prev.partition, prev.offset):
            last[m.key] = m
        data = json.loads(m.value)["data"]
        ids[(m.key, str(data.get("updated_at")))].add(m.headers["event_id"])
        distinct.add((m.key, m.headers["event_id"]))
    v = Verdict(messages=len(messages), live=len(truth))
    for key, updated in truth.items():
        got = last.get(key)
        if got is None:
            v.missing += 1
            if len(v.examples) < 5:
                v.examples.append(f"missing {key}")
            continue
        published = json.loads(got.value)["data"].get("updated_at")
        if published is None or datetime.fromisoformat(published) != updated:
            v.stale += 1
            if len(v.examples) < 5:
                v.examples.append(f"stale {key}: {published} != {updated.isoformat()}")
    v.bad_duplicates = sum(1 for e in ids.values() if len(e) > 1)
    v.republished = len(messages) - len(distinct)
    return v


class Rig:
    """Services, simulator and worker processes of the chaos suite; one case at a time."""

    def __init__(self, state_dir: Path, size: Size) -> None:
        self.size = size
        self.state_dir = state_dir
        self.stack = DevStack(
            temporal_port=0,
            kafka_port=0,
            redis_port=0,
            state_dir=state_dir / "stack",
            headless=True,
        )
        self.volatile = DevStack(
            redis_port=0,
            services=[REDIS],
            state_dir=state_dir / "volatile",
            redis_appendonly=False,
        )
        self.sim_state, app = make_sim_app(timezone="UTC", static_token=SIM_TOKEN)
        self.sim = ThreadedServer(app)
        self.client: Client | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.log = state_dir / "workers.log"

    async def __aenter__(self) -> Rig:
        await asyncio.to_thread(self.stack.start)
        await asyncio.to_thread(self.volatile.start)
        self.sim.start()
        self.client = await Client.connect(
            self.stack.temporal_address, data_converter=pydantic_data_converter
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop_workers()
        self.sim.stop()
        await asyncio.to_thread(self.volatile.stop)
        await asyncio.to_thread(self.stack.stop)

    # ---- workers ------------------------------------------------------------------------

    def start_worker(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """``python worker.py`` as an operator starts it, in its own process group."""
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "worker.py"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.workers.append(proc)
        return proc

    def stop_workers(self) -> None:
        """SIGINT every worker still running (SIGKILL after 30 s)."""
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        for proc in self.workers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.workers.clear()


@dataclass
class Case:
    """A fault and where it hits."""

    name: str
    inject: Callable[[Rig, CaseRun], Awaitable[None]]
    redis: str = "persistent"
    """``persistent`` (append-only) or ``volatile`` (in memory)."""
    warm_up: bool = False
    """Sync and change some shifts before the faulted run, so versions above 1 exist."""
    big_page: bool = False


@dataclass
class CaseRun:
    """What one case run knows: its names, its environment, its worker."""

    tag: str
    env: dict[str, str]
    topic: str
    task_queue: str
    redis_url: str
    worker: subprocess.Popen[bytes] | None = None
    notes: list[str] = field(default_factory=list)


def window(size: Size) -> list[date]:
    today = datetime.now(UTC).date()
    return [today + timedelta(days=i) for i in range(size.days)]


async def _sync(rig: Rig, run: CaseRun) -> Any:
    assert rig.client is not None
    return await rig.client.start_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw", max_concurrent=rig.size.max_concurrent),
        id=f"syncall/wiw/chaos-{run.tag}-{uuid.uuid4().hex[:6]}",
        task_queue=run.task_queue,
    )


async def _result(handle: Any, limit: float) -> SyncAllResult | str:
    """The run's result, retrying while Temporal itself is down or restarting."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return await asyncio.wait_for(handle.result(), max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            return "timed out"
        except Exception as exc:
            if time.monotonic() > deadline:
                return f"failed: {exc}"
            if "transport" in str(exc).lower() or "unavailable" in str(exc).lower():
                await asyncio.sleep(0.5)
                continue
            return f"failed: {exc}"


async def _read_topic(rig: Rig, topic: str) -> list[Consumed]:
    reader = TopicReader(rig.stack.kafka_brokers, topic)
    try:
        return await asyncio.to_thread(reader.read, 2.0, 120.0, None)
    finally:
        reader.close()


async def _under_way(rig: Rig, handle: Any, days: int) -> None:
    """Wait until at least one day is committed and another is in flight."""
    for _ in range(1200):
        try:
            p = await handle.query(SyncAllWorkflow.progress)
        except Exception:
            await asyncio.sleep(0.1)
            continue
        if p.partitions.done >= 1 and p.partitions.running >= 1:
            return
        if p.state != RunState.RUNNING or p.partitions.done >= days:
            return
        await asyncio.sleep(0.05)


def _mutate(state: WiwState, fraction: float, seed: int) -> int:
    live = state.all_shifts()
    rnd = random.Random(seed)
    chosen = rnd.sample(live, max(1, int(len(live) * fraction)))
    for s in chosen:
        state.change(int(s["id"]), notes=f"changed {seed}")
    return len(chosen)


async def run_case(rig: Rig, case: Case, index: int) -> CaseResult:
    """Seed, sync with the fault injected, recover, change, sync, check."""
    size = rig.size
    tag = f"{index}{uuid.uuid4().hex[:6]}"
    redis_url = rig.stack.redis_url if case.redis == "persistent" else rig.volatile.redis_url
    topic = f"wiw.shifts.chaos.{tag}"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": rig.stack.temporal_address,
        "TEMPORAL_TASK_QUEUE": f"chaos-{tag}",
        "KAFKA_BROKERS": rig.stack.kafka_brokers,
        "KAFKA_TOPIC_NAME": topic,
        "KAFKA_DEADLETTER_TOPIC": f"dlq.chaos.{tag}",
        "KAFKA_TOPIC_PARTITIONS": "2",
        "KAFKA_DELIVERY_TIMEOUT_SECONDS": "8",
        "REDIS_HOST": redis_url,
        "WIW_API_URL": rig.sim.url,
        "WIW_KEY": SIM_TOKEN,
        "SYNC_DAYS_AHEAD": str(size.days - 1),
        "SYNC_DAYS_PRIOR": "0",
        "WORKER_GRACEFUL_SHUTDOWN_SECONDS": "45",
    }
    run = CaseRun(tag, env, topic, f"chaos-{tag}", redis_url)
    log_from = rig.log.stat().st_size if rig.log.exists() else 0
    r = aioredis.Redis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    await asyncio.to_thread(ensure_topics, rig.stack.kafka_brokers, [topic, f"dlq.chaos.{tag}"], 2)
    state = rig.sim_state
    state.set_knobs(latency_ms=0)
    state.seed(size.shifts, days=window(size), seed=100 + index)
    if case.big_page and size.big_day_shifts:
        state.seed(size.big_day_shifts, days=window(size)[:1], seed=200 + index, replace=False)
    run.worker = rig.start_worker(env)
    if case.warm_up:
        first = await _result(await _sync(rig, run), 300)
        _mutate(state, 0.05, seed=index)
        second = await _result(await _sync(rig, run), 300)
        run.notes.append(f"warm-up runs: {_state(first)}, {_state(second)}")
        _mutate(state, 0.05, seed=1000 + index)
    state.set_knobs(latency_ms=size.latency_ms)

    handle = await _sync(rig, run)
    await _under_way(rig, handle, size.days)
    fault_at = time.monotonic()
    await case.inject(rig, run)
    result = await _result(handle, 600)
    run.notes.append(f"faulted run: {_state(result)}")
    state.set_knobs(latency_ms=0)

    recovered: float | None = None
    runs = 1
    verdict = check_topic(await _read_topic(rig, topic), state.all_shifts())
    while True:
        if verdict.whole:
            recovered = time.monotonic() - fault_at
            break
        if runs >= 3:
            run.notes.append(f"not whole after {runs} runs: {verdict.examples}")
            break
        runs += 1  # what the next schedule tick does
        follow = await _result(await _sync(rig, run), 300)
        run.notes.append(f"follow-up run {runs}: {_state(follow)}")
        verdict = check_topic(await _read_topic(rig, topic), state.all_shifts())
    republished = verdict.republished

    changed = _mutate(state, 0.02, seed=2000 + index)
    after = await _result(await _sync(rig, run), 300)
    run.notes.append(f"changed {changed} shifts, run: {_state(after)}")
    final = check_topic(await _read_topic(rig, topic), state.all_shifts())
    rig.stop_workers()
    with rig.log.open("rb") as fh:
        fh.seek(log_from)
        stalls = [int(x) for x in re.findall(rb"longest event-loop stall: (\d+) ms", fh.read())]
    return CaseResult(
        loop_stall_ms=max(stalls) if stalls else None,
        case=case.name,
        recovery_seconds=None if recovered is None else round(recovered, 1),
        republished=republished,
        lost=final.missing + final.stale,
        bad_duplicates=final.bad_duplicates,
        runs_after_fault=runs,
        final=final,
        notes=run.notes,
    )


def _state(result: SyncAllResult | str) -> str:
    if isinstance(result, str):
        return result
    r = result.records
    extra = f", notices {result.notices}" if result.notices else ""
    failed = f", failed {[f.error[:120] for f in result.failed]}" if result.failed else ""
    return (
        f"{result.state.value} (upserted {r.upserted}, republished {r.republished}, "
        f"unchanged {r.unchanged}{extra}{failed})"
    )


# ---- the faults -------------------------------------------------------------------------


def _kill_restart(
    service: str, *, volatile: bool = False
) -> Callable[[Rig, CaseRun], Awaitable[None]]:
    async def inject(rig: Rig, run: CaseRun) -> None:
        stack = rig.volatile if volatile else rig.stack
        await asyncio.to_thread(stack.kill, service)
        await asyncio.sleep(rig.size.gap_seconds)
        took = await asyncio.to_thread(stack.restart, service)
        run.notes.append(f"{service} back after {rig.size.gap_seconds + took:.1f} s")

    return inject


async def _worker_signal(rig: Rig, run: CaseRun, sig: signal.Signals) -> None:
    assert run.worker is not None
    began = time.monotonic()
    os.killpg(run.worker.pid, sig)
    await asyncio.to_thread(run.worker.wait, 90)
    run.notes.append(f"worker exited {time.monotonic() - began:.1f} s after {sig.name}")
    run.worker = rig.start_worker(run.env)


async def _sigterm(rig: Rig, run: CaseRun) -> None:
    await _worker_signal(rig, run, signal.SIGTERM)


async def _sigkill(rig: Rig, run: CaseRun) -> None:
    await _worker_signal(rig, run, signal.SIGKILL)


async def _sigterm_broker_down(rig: Rig, run: CaseRun) -> None:
    """SIGTERM while publishes hang on a dead broker: the worker must still exit in time."""
    assert run.worker is not None
    await asyncio.to_thread(rig.stack.kill, KAFKA)
    await asyncio.sleep(1.0)
    began = time.monotonic()
    os.killpg(run.worker.pid, signal.SIGTERM)
    await asyncio.to_thread(run.worker.wait, 90)
    took = time.monotonic() - began
    run.notes.append(f"worker exited {took:.1f} s after SIGTERM with the broker down")
    if took > float(run.env["WORKER_GRACEFUL_SHUTDOWN_SECONDS"]):
        run.notes.append("worker outlived its graceful shutdown timeout")
    await asyncio.to_thread(rig.stack.restart, KAFKA)
    run.worker = rig.start_worker(run.env)


async def _nothing(rig: Rig, run: CaseRun) -> None:
    return None


CASES: dict[str, Case] = {
    c.name: c
    for c in [
        Case("broker kill+restart", _kill_restart(KAFKA)),
        Case("redis kill+restart (append-only)", _kill_restart(REDIS), warm_up=True),
        Case(
            "redis kill+restart (no persistence)",
            _kill_restart(REDIS, volatile=True),
            redis="volatile",
            warm_up=True,
        ),
        Case("temporal kill+restart", _kill_restart(TEMPORAL)),
        Case("worker SIGTERM", _sigterm),
        Case("worker SIGKILL", _sigkill),
        Case("worker SIGTERM, broker down", _sigterm_broker_down),
        Case("big page under load", _nothing, big_page=True),
    ]
}


def table(results: list[CaseResult]) -> str:
    """The chaos table, as in issue 9: case, recovery seconds, re-published, lost."""
    head = (
        f"{'case':<38} {'recovery s':>10} {'re-published':>12} {'lost':>5} {'bad dups':>8} "
        f"{'runs':>4} {'loop stall ms':>13}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        rec = "never" if r.recovery_seconds is None else f"{r.recovery_seconds:.1f}"
        stall = "-" if r.loop_stall_ms is None else str(r.loop_stall_ms)
        lines.append(
            f"{r.case:<38} {rec:>10} {r.republished:>12} {r.lost:>5} "
            f"{r.bad_duplicates:>8} {r.runs_after_fault:>4} {stall:>13}"
        )
    return "\n".join(lines)


def as_json(results: list[CaseResult]) -> list[dict[str, Any]]:
    """Rows for ``bench/results``-style JSON."""
    return [{**asdict(r), "ok": r.ok} for r in results]
