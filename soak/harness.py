"""The soak harness: the real worker, Temporal, tansu and valkey through simulated weeks.

One ``Soak`` drives one source (its ``SourcePlan``): it writes simulated "now" to a clock
file that the worker subprocess (``SYNCHUB_CLOCK_FILE``) and the in-process simulator both
follow, and per tick: moves the clock, lets the plan mutate the upstream and switch on
faults, starts runs as a schedule would (sometimes two overlapping), sometimes SIGKILLs the
worker and starts another, waits for every run to end, then checks the invariants
(``soak.invariants``) and measures lookups and Redis. The first violation of each kind is
kept with a clear message; ``fail_fast`` stops at the first one.

Redis TTLs run on the wall clock, and a simulated week passes in about a real minute at an
uneven pace (a SIGKILL or a retry storm stops the simulated clock for tens of seconds). So
the worker's ``EXPIRE_CACHE`` is set far beyond the soak's length and the harness expires
keys in simulated time instead: after each tick, a key with a TTL that nothing accessed
(``OBJECT IDLETIME``) for a simulated week (the default ``EXPIRE_CACHE``) is deleted, as
Redis would have expired it. Keys without a TTL are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from devstack.services import DevStack
from infra.consumer import TopicReader
from infra.publisher import ensure_topics
from models import clock
from models.sync import RunState, SyncAllResult
from settings import Settings, SyncSettings, TemporalSettings
from soak.invariants import (
    LOOKUPS,
    MIN_FLAT_PERIOD,
    REDIS_BYTES,
    REDIS_KEYS,
    Ledger,
    Violation,
    lookups_beyond_changes,
    summarize,
)
from soak.plan import Profile, SourcePlan, Tick
from starter import start_sync
from workflows.sync_all import SyncAllWorkflow

log = logging.getLogger("synchub.soak")

ROOT = Path(__file__).resolve().parent.parent
"""Repository root: the worker subprocess runs ``worker.py`` from here."""
START = datetime(2031, 3, 1, 0, 0, tzinfo=UTC)
"""Simulated start: far from the wall clock, so nothing can pass by reading the real date."""
EXPIRE_CACHE_SECONDS = 86_400
"""The worker's ``EXPIRE_CACHE`` in real seconds: never reached during a soak."""
SIMULATED_TTL = timedelta(seconds=604_800)
"""``EXPIRE_CACHE``'s default, applied by the harness in simulated time."""
TOPIC_PARTITIONS = 2


class SoakFailed(AssertionError):
    """The first violated invariant (``fail_fast``)."""


@dataclass(frozen=True)
class Services:
    """Where a soak finds Temporal, tansu and valkey (picklable, for a soak in a subprocess)."""

    host: str
    redis_port: int
    temporal_address: str
    namespace: str
    kafka_brokers: str

    @classmethod
    def of(cls, stack: DevStack | Services) -> Services:
        """The addresses of a running stack."""
        if isinstance(stack, Services):
            return stack
        return cls(
            stack.host,
            stack.redis_port,
            stack.temporal_address,
            stack.namespace,
            stack.kafka_brokers,
        )


@dataclass
class TickRow:
    """Measurements after one tick."""

    tick: int
    day: float
    runs: int
    failed_runs: int
    lookups: int
    redis_keys: int
    redis_bytes: int
    live: int
    seconds: float
    mutations: dict[str, int] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    """Real seconds per step of the tick (mutate, runs, read, truth, check, redis)."""


@dataclass
class SoakResult:
    """What a soak run of one source found."""

    source: str
    profile: Profile
    rows: list[TickRow] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    """First violation of each kind."""
    counts: dict[str, int] = field(default_factory=dict)
    """Ticks with a violation, per kind."""
    messages: int = 0
    duplicates: int = 0
    kills: int = 0
    overlaps: int = 0
    stopped_early: str | None = None
    """Why the run ended before its last tick (budget, fail-fast), if it did."""
    seconds: float = 0.0

    @property
    def period(self) -> float:
        """Simulated days of one comparison period: a week, or a third of a shorter run."""
        return min(7.0, self.profile.days / 3)

    def violated(self, kind: str) -> Violation | None:
        """The first violation whose kind starts with ``kind``, if any."""
        return next((v for v in self.violations if v.kind.startswith(kind)), None)


class Soak:
    """One source through simulated weeks (see the module docstring).

    Args:
        plan: The source's plan (simulator, mutations, truth); the harness starts and
            stops its simulator.
        stack: Running Temporal, tansu and valkey (or their addresses).
        workdir: Where the clock file and the worker's log go.
        redis_db: Redis database of this soak (flushed at start).
        fail_fast: Stop at the first violation (raise ``SoakFailed``).
        budget_seconds: Stop (and say so) after this many real seconds.
        echo: Where progress lines go.
    """

    def __init__(
        self,
        plan: SourcePlan,
        stack: DevStack | Services,
        workdir: Path,
        *,
        redis_db: int = 1,
        fail_fast: bool = False,
        budget_seconds: float | None = None,
        echo: Any = print,
    ) -> None:
        self.plan = plan
        self.profile = plan.profile
        self.stack = stack = Services.of(stack)
        self.workdir = workdir
        self.redis_db = redis_db
        self.fail_fast = fail_fast
        self.budget = budget_seconds
        self.echo = echo
        self.rng = random.Random(self.profile.seed)
        self.tag = uuid.uuid4().hex[:8]
        self.topic = f"soak.{plan.source}.{self.tag}"
        self.deadletter = f"soak.deadletter.{self.tag}"
        self.task_queue = f"soak-{self.tag}"
        self.clock_file = workdir / f"clock-{self.tag}"
        self.worker_log = workdir / f"worker-{plan.source}-{self.tag}.log"
        self.redis_url = f"redis://{stack.host}:{stack.redis_port}/{redis_db}"
        self.result = SoakResult(plan.source, self.profile)
        self._worker: subprocess.Popen[bytes] | None = None
        self._runs = 0
        self._settings = Settings(
            temporal=TemporalSettings(
                address=stack.temporal_address,
                namespace=stack.namespace,
                task_queue=self.task_queue,
            ),
            sync=SyncSettings(max_concurrent=20),
        )
        """What ``starter.start_sync`` reads: where to start runs, default concurrency."""
        self._touched: dict[bytes, datetime] = {}
        """Key -> simulated time it was last accessed (for the simulated TTL)."""

    # -- processes --------------------------------------------------------------------------

    def _env(self, sim_url: str) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            {
                "TEMPORAL_ADDRESS": self.stack.temporal_address,
                "TEMPORAL_NAMESPACE": self.stack.namespace,
                "TEMPORAL_TASK_QUEUE": self.task_queue,
                "KAFKA_BROKERS": self.stack.kafka_brokers,
                "KAFKA_DEADLETTER_TOPIC": self.deadletter,
                "KAFKA_TOPIC_PARTITIONS": str(TOPIC_PARTITIONS),
                self.plan.topic_env: self.topic,
                "REDIS_URL": self.redis_url,
                "EXPIRE_CACHE": str(EXPIRE_CACHE_SECONDS),
                clock.CLOCK_FILE_ENV: str(self.clock_file),
                **self.plan.worker_env(sim_url),
            }
        )
        return env

    def _start_worker(self, env: dict[str, str]) -> None:
        with self.worker_log.open("ab") as out:
            self._worker = subprocess.Popen(
                [sys.executable, "worker.py"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _kill_worker(self) -> None:
        if self._worker is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._worker.pid, signal.SIGKILL)
        self._worker.wait(10)
        self._worker = None

    def _stop_worker(self) -> None:
        if self._worker is None:
            return
        worker, self._worker = self._worker, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGINT)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)

    # -- the run ----------------------------------------------------------------------------

    async def run(self) -> SoakResult:
        """Seed, then tick through ``profile.days``; returns what was found."""
        began = time.monotonic()
        clock.FileClock.write(self.clock_file, START)
        before = clock.default_clock()
        clock.set_default_clock(clock.FileClock(self.clock_file))
        r = redis.Redis.from_url(self.redis_url)
        sim_url = self.plan.serve()
        reader: TopicReader | None = None
        try:
            r.flushdb()
            self.plan.seed(self.rng)
            ensure_topics(self.stack.kafka_brokers, [self.topic, self.deadletter], TOPIC_PARTITIONS)
            reader = TopicReader(self.stack.kafka_brokers, self.topic)
            client = await Client.connect(
                self.stack.temporal_address,
                namespace=self.stack.namespace,
                data_converter=pydantic_data_converter,
            )
            env = self._env(sim_url)
            self._start_worker(env)
            await self._ticks(client, env, reader, r, began)
        except SoakFailed as exc:
            self.result.stopped_early = f"fail-fast: {exc}"
        finally:
            self._stop_worker()
            if reader is not None:
                reader.close()
            r.close()
            self.plan.stop()
            clock.set_default_clock(before)
            self.result.seconds = time.monotonic() - began
        return self.result

    async def _ticks(
        self,
        client: Client,
        env: dict[str, str],
        reader: TopicReader,
        r: redis.Redis,
        began: float,
    ) -> None:
        profile = self.profile
        step = timedelta(hours=profile.tick_hours)
        n_ticks = max(1, int(profile.days * 24 / profile.tick_hours))
        middle = list(range(1, max(2, n_ticks - 1)))
        kills = set(self.rng.sample(middle, min(profile.kills, len(middle))))
        ledger = Ledger(self.plan.marker)
        looked_up = self.plan.requests().get(self.plan.lookup_route, 0)
        live_before: set[str] = set()
        for index in range(n_ticks):
            if self.budget is not None and time.monotonic() - began > self.budget:
                self.result.stopped_early = (
                    f"real-time budget of {self.budget:.0f} s spent at tick {index}/{n_ticks}; "
                    "flatness not judged"
                )
                return
            t0 = time.monotonic()
            steps = Steps()
            now = START + step * index
            day = (now - START).total_seconds() / 86_400
            clock.FileClock.write(self.clock_file, now)
            tick = Tick(index, now)
            with steps("mutate"):
                self.plan.mutate(self.rng, tick)
                self.plan.misbehave(self.rng)
            with steps("runs"):
                handles, tainted = await self._runs_of_tick(client, env, index, index in kills, day)
                self.plan.healthy()
                failed = await self._results(handles)
            with steps("read"):
                dups = ledger.add(await asyncio.to_thread(reader.read, 0.3, 60.0, None))
            with steps("truth"):
                truth = self.plan.truth(now)
            with steps("check"):
                if dups:
                    self._violation("duplicate", index, day, summarize(dups, "duplicates"))
                if not tainted:
                    lost = ledger.lost(truth)
                    if lost:
                        self._violation(
                            "lost", index, day, summarize(lost, "records not as upstream has them")
                        )
                    kept = ledger.undeleted(truth)
                    if kept:
                        self._violation("undeleted", index, day, summarize(kept, "deletes missing"))
                total = self.plan.requests().get(self.plan.lookup_route, 0)
                left = len(live_before - truth.expected.keys())
                relocated = sum(tick.mutations.get(name, 0) for name in self.plan.relocations)
                too_many = lookups_beyond_changes(total - looked_up, left, relocated)
                if too_many is not None:
                    self._violation("lookups", index, day, too_many)
                live_before = set(truth.expected)
            with steps("redis"):
                self._expire(r, now, time.monotonic() - t0)
                keys, size = self._redis_size(r)
            row = TickRow(
                tick=index,
                day=day,
                runs=len(handles),
                failed_runs=failed,
                lookups=total - looked_up,
                redis_keys=keys,
                redis_bytes=size,
                live=truth.live,
                seconds=time.monotonic() - t0,
                mutations=tick.mutations,
                steps=steps.seconds,
            )
            looked_up = total
            self.result.rows.append(row)
            self.result.messages, self.result.duplicates = ledger.messages, ledger.duplicates
            self.echo(
                f"  {self.plan.source} tick {index:3d} day {day:5.2f}: runs {row.runs} "
                f"(failed {failed}), lookups {row.lookups}, redis {keys} keys "
                f"{size / 1024:,.0f} KiB, live {truth.live}, {row.seconds:.1f} s "
                f"({steps}), {sum(tick.mutations.values())} changes"
            )
        if self.result.rows:
            last = self.result.rows[-1]
            self._flatness(last.tick, last.day)

    async def _runs_of_tick(
        self, client: Client, env: dict[str, str], index: int, kill: bool, day: float
    ) -> tuple[list[WorkflowHandle[Any, SyncAllResult]], bool]:
        """Start the tick's runs (maybe two overlapping, maybe a SIGKILL in between); wait.

        Returns the handles and whether a run had to be terminated (then the records of
        that tick are not judged: a terminated run's children are terminated with it).
        """
        settings = self._settings
        overlap = self.rng.random() < self.profile.overlap_probability
        handles = []
        first_concurrency = self.rng.choice((1, 2)) if overlap else None
        for n in range(2 if overlap else 1):
            self._runs += 1
            handles.append(
                await start_sync(
                    client,
                    settings,
                    self.plan.source,
                    {},
                    None,
                    first_concurrency if n == 0 else None,
                    f"syncall/{self.plan.source}/soak-{self.tag}-{self._runs}",
                )
            )
        if overlap:
            self.result.overlaps += 1
        if kill:
            await self._until_started(handles[0])
            await asyncio.sleep(self.rng.uniform(0.0, 1.0))
            self._kill_worker()
            self._start_worker(env)
            self.result.kills += 1
            self.echo(f"  {self.plan.source} tick {index}: worker SIGKILLed, a new one started")
        tainted = await self._await_terminal(handles, index, day)
        return handles, tainted

    @staticmethod
    async def _until_started(handle: WorkflowHandle[Any, SyncAllResult]) -> None:
        """Wait (at most 10 s) until the run has partitions going, so a kill lands mid-run."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                p = await handle.query(SyncAllWorkflow.progress, rpc_timeout=timedelta(seconds=2))
                if p.partitions.running or p.partitions.done:
                    return
            await asyncio.sleep(0.05)

    async def _await_terminal(
        self, handles: list[WorkflowHandle[Any, SyncAllResult]], index: int, day: float
    ) -> bool:
        """Wait until every run is closed; return whether one had to be terminated.

        A run past the bound, or stalled (partitions pending, none running), is a violation
        and is terminated, so the soak can go on.
        """
        deadline = time.monotonic() + self.profile.run_bound_seconds
        stalled_since: dict[str, float] = {}
        pending = list(handles)
        tainted = False
        while pending:
            for h in list(pending):
                desc = await h.describe()
                if desc.status != WorkflowExecutionStatus.RUNNING:
                    pending.remove(h)
                    continue
                why = None
                try:
                    p = await h.query(SyncAllWorkflow.progress, rpc_timeout=timedelta(seconds=2))
                except Exception:  # no worker yet (just killed): cannot tell, keep waiting
                    p = None
                if p is not None and p.state == RunState.RUNNING:
                    parts = p.partitions
                    if parts.running == 0 and parts.pending > 0:
                        since = stalled_since.setdefault(h.id, time.monotonic())
                        if time.monotonic() - since > self.profile.stall_seconds:
                            why = (
                                f"run {h.id} hangs in RUNNING: {parts.done}/{parts.total} done, "
                                f"0 running, {parts.pending} pending, {parts.skipped} skipped, "
                                f"for {self.profile.stall_seconds:g} s"
                            )
                    else:
                        stalled_since.pop(h.id, None)
                if why is None and time.monotonic() > deadline:
                    shown = p.partitions.model_dump() if p is not None else "no progress answer"
                    why = (
                        f"run {h.id} not terminal after {self.profile.run_bound_seconds:g} s: "
                        f"{shown}"
                    )
                if why is not None:
                    self._violation("terminal", index, day, why)
                    with contextlib.suppress(Exception):
                        await h.terminate("soak: not terminal within the bound")
                    pending.remove(h)
                    tainted = True
            if pending:
                await asyncio.sleep(0.2)
        return tainted

    async def _results(self, handles: list[WorkflowHandle[Any, SyncAllResult]]) -> int:
        """How many runs ended FAILED (or terminated); their reasons go to the log."""
        failed = 0
        for h in handles:
            try:
                res = await h.result()
            except Exception as exc:
                failed += 1
                log.warning("soak run %s did not complete: %s", h.id, exc)
                continue
            if res.state != RunState.COMPLETED:
                failed += 1
                reasons = "; ".join(f"{e.partition}: {e.error}" for e in res.failed[:3])
                self.echo(f"    run {h.id} {res.state.value}: {reasons}")
        return failed

    def _expire(self, r: redis.Redis, now: datetime, tick_seconds: float) -> None:
        """Expire, in simulated time, keys with a TTL that were not accessed for a week.

        ``OBJECT IDLETIME`` (seconds since the last access, not changed by the harness's
        own SCAN, TTL and MEMORY USAGE calls) below the tick's real duration means the
        tick's runs used the key, and every access of the change store refreshes its TTL.
        """
        keys = list(r.scan_iter(count=1000))
        if not keys:
            return
        pipe = r.pipeline(transaction=False)
        for key in keys:
            pipe.object("idletime", key)
            pipe.pttl(key)
        replies = pipe.execute()
        gone = []
        for i, key in enumerate(keys):
            idle, ttl = replies[2 * i], replies[2 * i + 1]
            if ttl is None or int(ttl) < 0:
                continue  # no TTL: state that must stay (or already gone)
            if idle is not None and int(idle) <= tick_seconds + 1:
                self._touched[key] = now
            last = self._touched.setdefault(key, now)
            if now - last >= SIMULATED_TTL:
                gone.append(key)
        for key in gone:
            self._touched.pop(key, None)
        if gone:
            r.delete(*gone)

    def _redis_size(self, r: redis.Redis) -> tuple[int, int]:
        """Keys and bytes (``MEMORY USAGE``) of the source's state (measuring may SCAN)."""
        keys = list(r.scan_iter(match=f"synchub:{self.plan.source}:*", count=1000))
        pipe = r.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key)
        sizes = pipe.execute() if keys else []
        return len(keys), sum(int(s or 0) for s in sizes)

    def _flatness(self, index: int, day: float) -> None:
        """Judge flatness once, at the end of a complete run: last period against first.

        Mid-run, state that is legitimately kept for its retention (the huge partition's, for
        a week after it left the window) would look like growth.
        """
        rows = self.result.rows
        period = self.result.period
        if period < MIN_FLAT_PERIOD:
            return
        for flat, values in (
            (LOOKUPS, [(x.day, float(x.lookups)) for x in rows]),
            (REDIS_KEYS, [(x.day, float(x.redis_keys)) for x in rows]),
            (REDIS_BYTES, [(x.day, x.redis_bytes / max(x.live, 1)) for x in rows]),
        ):
            problem = flat.check(values, period)
            if problem is not None:
                self._violation(f"flat:{flat.name}", index, day, problem)

    def _violation(self, kind: str, index: int, day: float, message: str) -> None:
        self.result.counts[kind] = self.result.counts.get(kind, 0) + 1
        if self.result.counts[kind] > 1:
            return
        found = Violation(kind, index, day, message)
        self.result.violations.append(found)
        self.echo(f"  VIOLATION {found}")
        if self.fail_fast:
            raise SoakFailed(str(found))


def soak_source(
    source: str,
    profile: Profile,
    services: Services,
    workdir: Path,
    redis_db: int,
    fail_fast: bool,
    budget_seconds: float | None,
) -> SoakResult:
    """One source's soak in a process of its own (``python -m soak`` runs sources side by side).

    Each process has its own simulated clock (the process-wide default clock the simulator
    reads), worker, simulator, topic and Redis database; only the services are shared.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from soak.plans import PLANS  # the plans import this module

    plan = PLANS[source](profile, START)
    soak = Soak(
        plan,
        services,
        workdir,
        redis_db=redis_db,
        fail_fast=fail_fast,
        budget_seconds=budget_seconds,
        echo=lambda line: print(line, flush=True),
    )
    return asyncio.run(soak.run())


class Steps:
    """Real seconds spent per named step of a tick: ``with steps("read"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._name = ""
        self._began = 0.0

    def __call__(self, name: str) -> Steps:
        """Time the ``with`` block under ``name`` (added to what it took before)."""
        self._name = name
        return self

    def __enter__(self) -> None:
        self._began = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        took = time.monotonic() - self._began
        self.seconds[self._name] = self.seconds.get(self._name, 0.0) + took

    def __str__(self) -> str:
        return " ".join(f"{k} {v:.1f}" for k, v in self.seconds.items())


def weekly(rows: list[TickRow], period: float) -> tuple[float, float, float]:
    """Median lookups per tick of the first period, of all ticks, of the last period."""
    if not rows:
        return (0.0, 0.0, 0.0)
    end = rows[-1].day
    first = [r.lookups for r in rows if r.day < period] or [rows[0].lookups]
    last = [r.lookups for r in rows if r.day > end - period] or [rows[-1].lookups]
    return (
        float(statistics.median(first)),
        float(statistics.median(r.lookups for r in rows)),
        float(statistics.median(last)),
    )
