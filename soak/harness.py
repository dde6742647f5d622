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
import logging
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from devstack.services import DevStack
from infra.consumer import TopicReader
from infra.publisher import ensure_topics
from models import clock
from models.sync import SyncAllResult
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
from soak.plan import Profile, SourcePlan, Tick, Truth
from soak.redis_time import SimulatedRedis
from soak.results import SoakResult, Steps, TickRow, weekly
from soak.runs import await_terminal, count_failed, until_started
from soak.worker_process import EXPIRE_CACHE_SECONDS, TOPIC_PARTITIONS, Services, WorkerProcess
from starter import start_sync

log = logging.getLogger("synchub.soak")

START = datetime(2031, 3, 1, 0, 0, tzinfo=UTC)
"""Simulated start: far from the wall clock, so nothing can pass by reading the real date."""


class SoakFailed(AssertionError):
    """The first violated invariant (``fail_fast``)."""


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
        self.worker = WorkerProcess(
            plan,
            stack,
            task_queue=self.task_queue,
            topic=self.topic,
            deadletter=self.deadletter,
            redis_url=self.redis_url,
            clock_file=self.clock_file,
            log=self.worker_log,
        )
        self.redis = SimulatedRedis(plan.source)
        self._ledger = Ledger(plan.marker)
        """Every message read so far (duplicates, losses)."""
        self._looked_up = 0
        """Upstream lookups counted up to the previous tick."""
        self._live_before: set[str] = set()
        """Keys upstream had at the previous tick."""
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

    # -- processes --------------------------------------------------------------------------

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
            env = self.worker.env(sim_url)
            self.worker.start(env)
            await self._ticks(client, env, reader, r, began)
        except SoakFailed as exc:
            self.result.stopped_early = f"fail-fast: {exc}"
        finally:
            self.worker.stop()
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
        n_ticks = max(1, int(profile.days * 24 / profile.tick_hours))
        middle = list(range(1, max(2, n_ticks - 1)))
        kills = set(self.rng.sample(middle, min(profile.kills, len(middle))))
        self._ledger = Ledger(self.plan.marker)
        self._looked_up = self.plan.requests().get(self.plan.lookup_route, 0)
        self._live_before = set()
        for index in range(n_ticks):
            if self.budget is not None and time.monotonic() - began > self.budget:
                self.result.stopped_early = (
                    f"real-time budget of {self.budget:.0f} s spent at tick {index}/{n_ticks}; "
                    "flatness not judged"
                )
                return
            row = await self._tick(client, env, reader, r, index, index in kills)
            self.result.rows.append(row)
        if self.result.rows:
            last = self.result.rows[-1]
            self._flatness(last.tick, last.day)

    async def _tick(
        self,
        client: Client,
        env: dict[str, str],
        reader: TopicReader,
        r: redis.Redis,
        index: int,
        kill: bool,
    ) -> TickRow:
        """One tick: move the clock, mutate, run, read, judge, expire; its measurements."""
        t0 = time.monotonic()
        steps = Steps()
        now = START + timedelta(hours=self.profile.tick_hours) * index
        day = (now - START).total_seconds() / 86_400
        clock.FileClock.write(self.clock_file, now)
        tick = Tick(index, now)
        with steps("mutate"):
            self.plan.mutate(self.rng, tick)
            self.plan.misbehave(self.rng)
        with steps("runs"):
            handles, tainted = await self._runs_of_tick(client, env, index, kill, day)
            self.plan.healthy()
            failed = await count_failed(handles, self.echo)
        with steps("read"):
            dups = self._ledger.add(await asyncio.to_thread(reader.read, 0.3, 60.0, None))
        with steps("truth"):
            truth = self.plan.truth(now)
        with steps("check"):
            total = self._judge(tick, day, truth, dups, tainted)
        with steps("redis"):
            self.redis.expire(r, now, time.monotonic() - t0)
            keys, size = self.redis.size(r)
        row = TickRow(
            tick=index,
            day=day,
            runs=len(handles),
            failed_runs=failed,
            lookups=total - self._looked_up,
            redis_keys=keys,
            redis_bytes=size,
            live=truth.live,
            seconds=time.monotonic() - t0,
            mutations=tick.mutations,
            steps=steps.seconds,
        )
        self._looked_up = total
        self.result.messages = self._ledger.messages
        self.result.duplicates = self._ledger.duplicates
        self.echo(
            f"  {self.plan.source} tick {index:3d} day {day:5.2f}: runs {row.runs} "
            f"(failed {failed}), lookups {row.lookups}, redis {keys} keys "
            f"{size / 1024:,.0f} KiB, live {truth.live}, {row.seconds:.1f} s "
            f"({steps}), {sum(tick.mutations.values())} changes"
        )
        return row

    def _judge(self, tick: Tick, day: float, truth: Truth, dups: list[str], tainted: bool) -> int:
        """Check the tick's invariants; returns the upstream lookups made so far.

        Losses and missing deletes are not judged after a terminated run (its children were
        terminated with it).
        """
        index = tick.index
        if dups:
            self._violation("duplicate", index, day, summarize(dups, "duplicates"))
        if not tainted:
            lost = self._ledger.lost(truth)
            if lost:
                self._violation(
                    "lost", index, day, summarize(lost, "records not as upstream has them")
                )
            kept = self._ledger.undeleted(truth)
            if kept:
                self._violation("undeleted", index, day, summarize(kept, "deletes missing"))
        total = self.plan.requests().get(self.plan.lookup_route, 0)
        left = len(self._live_before - truth.expected.keys())
        relocated = sum(tick.mutations.get(name, 0) for name in self.plan.relocations)
        too_many = lookups_beyond_changes(total - self._looked_up, left, relocated)
        if too_many is not None:
            self._violation("lookups", index, day, too_many)
        self._live_before = set(truth.expected)
        return total

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
            await until_started(handles[0])
            await asyncio.sleep(self.rng.uniform(0.0, 1.0))
            self.worker.kill()
            self.worker.start(env)
            self.result.kills += 1
            self.echo(f"  {self.plan.source} tick {index}: worker SIGKILLed, a new one started")
        tainted = await await_terminal(
            handles, self.profile, lambda why: self._violation("terminal", index, day, why)
        )
        return handles, tainted

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


__all__ = [  # importers read these here (report, __main__, tests)
    "EXPIRE_CACHE_SECONDS",
    "START",
    "Services",
    "Soak",
    "SoakFailed",
    "SoakResult",
    "TickRow",
    "soak_source",
    "weekly",
]
