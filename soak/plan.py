"""What a soak run needs to know about one source: its simulator, mutations, faults, truth.

The harness (``soak.harness``) is source-agnostic: it moves the clock, asks the source's
``SourcePlan`` to mutate and misbehave, starts runs, and then compares what the topic says
with what the plan says is true upstream. A source plugs in by subclassing ``SourcePlan``
and adding one line to ``soak.plans.PLANS``; its mutations and fault knobs are lists of
named, weighted callables, so new upstream behaviour (the TEMU knobs, for example) is one
more entry, not a change to the harness.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from models import clock
from simulators.server import ThreadedServer


@dataclass(frozen=True)
class Profile:
    """How long, how big and how hostile a soak run is (one per CLI preset)."""

    days: float
    """Simulated days to run."""
    tick_hours: float
    """Simulated hours between two schedule ticks."""
    records_per_day: int
    """Ordinary records per day of data (WIW shifts per day, Advoware appointments per
    employee per week are derived from it)."""
    big_partition: int
    """Records of the one huge partition (40,000 in ``make soak``)."""
    error_rate: float = 0.03
    """Share of upstream requests answered 500 while runs are going."""
    mass_move_every_days: float = 5.0
    """A mass move (hundreds of records at once) about this often."""
    mass_move_size: int = 300
    """Records moved in one mass move."""
    overlap_probability: float = 0.15
    """Chance that a tick starts a second, overlapping run right after the first."""
    kills: int = 2
    """Worker SIGKILLs spread over the run (each costs ~20 s: the heartbeat timeout)."""
    run_bound_seconds: float = 120.0
    """Real seconds a run may take before it is a violation (a SIGKILL costs ~20-40 s)."""
    stall_seconds: float = 15.0
    """A run with partitions pending but none running for this long is hung."""
    seed: int = 8
    """Seed of every random choice (data, mutations, faults, overlaps, kills)."""


@dataclass
class Tick:
    """What one tick did to the upstream (for the table and for diagnosis)."""

    index: int
    now: datetime
    mutations: dict[str, int] = field(default_factory=dict)


Mutation = Callable[[random.Random, datetime], int]
"""Changes the upstream at simulated ``now``; returns how many records it touched."""


@dataclass(frozen=True)
class WeightedMutation:
    """One kind of upstream change and how often it happens per tick."""

    name: str
    per_tick: float
    """Expected applications per tick (a Poisson-ish draw: whole part + chance of one more)."""
    apply: Mutation


@dataclass
class Truth:
    """What the upstream holds now, as far as the invariants care."""

    expected: dict[str, tuple[Any, ...]]
    """Record key -> marker of its latest state, for every record live in the window: its
    latest state must be the last message of its key."""
    followed: dict[str, tuple[Any, ...]]
    """The same for records changed while in the window that are outside it now (moved
    out): once published, their latest state must be the last message of their key (one
    that left before any run saw it was never published, and need not be)."""
    deleted: set[str]
    """Keys deleted upstream while in the window: if published, the last message is a delete."""
    live: int
    """Live records in the window (the size state should be bounded by)."""


class SourcePlan:
    """Base of a source's soak plan: simulator, worker environment, mutations, truth.

    Subclasses set the class attributes and implement the abstract methods. ``watched``
    collects keys changed while they were in the window: their latest state must reach the
    topic even if the change moved them out of it.
    """

    source: str = ""
    """Registry name of the source (``wiw``)."""
    topic_env: str = ""
    """Environment variable naming the source's topic for the worker."""
    lookup_route: str = ""
    """Simulator request counter of one point lookup."""
    relocations: tuple[str, ...] = ("move_within", "move_out", "mass_move")
    """Mutations that take records out of their partition (each may cost one lookup)."""
    out_before: tuple[int, int] = (2, 10)
    """A record moved out of the window lands this many days (``randint`` bounds) before
    its first day, or (as often) ``out_after`` days after its last."""
    out_after: tuple[int, int] = (10, 40)

    def __init__(self, profile: Profile, start: datetime) -> None:
        self.profile = profile
        self.start = start
        self.watched: set[str] = set()
        self.deleted: set[str] = set()
        self.mutations: list[WeightedMutation] = []
        self.faults: list[Callable[[random.Random], None]] = []
        self._app: Any = None
        """The simulator's ASGI app (set by the subclass)."""
        self._server: ThreadedServer | None = None

    # -- to implement -----------------------------------------------------------------------

    def serve(self) -> str:
        """Start the simulator (``_app``, in this process); return its base URL."""
        self._server = ThreadedServer(self._app).start()
        return self._server.url

    def stop(self) -> None:
        """Stop the simulator."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def worker_env(self, url: str) -> dict[str, str]:
        """Settings of the worker for this source (credentials, window), as env variables."""
        raise NotImplementedError

    def seed(self, rng: random.Random) -> None:
        """Fill the upstream before the first tick."""
        raise NotImplementedError

    def truth(self, now: datetime) -> Truth:
        """What must be on the topic after the runs of the tick at ``now``."""
        raise NotImplementedError

    def marker(self, data: dict[str, Any]) -> tuple[Any, ...]:
        """The marker of a published record (``data`` of an upsert envelope)."""
        raise NotImplementedError

    def requests(self) -> dict[str, int]:
        """Cumulative simulator requests per route."""
        raise NotImplementedError

    def healthy(self) -> None:
        """Switch every fault off (before the invariants are checked)."""
        raise NotImplementedError

    # -- for windowed sources (moves within and out of the window) --------------------------

    def window(self, now: datetime) -> tuple[date, date]:
        """First and last day of the synced window at ``now``."""
        raise NotImplementedError

    def _pick(self, rng: random.Random) -> int | None:
        """A random live record of the window (``None`` when there is none)."""
        raise NotImplementedError

    def _move(self, key: int, day: date, rng: random.Random) -> None:
        """Start the record on ``day`` (a random hour) and watch it."""
        raise NotImplementedError

    def _window_day(self, rng: random.Random, now: datetime) -> date:
        """A random day of the window at ``now``."""
        first, last = self.window(now)
        return first + timedelta(days=rng.randrange((last - first).days + 1))

    def _out_day(self, rng: random.Random, now: datetime) -> date:
        """A random day outside the window at ``now``, before or after it."""
        first, last = self.window(now)
        if rng.random() < 0.5:
            return first - timedelta(days=rng.randint(*self.out_before))
        return last + timedelta(days=rng.randint(*self.out_after))

    def _move_within(self, rng: random.Random, now: datetime) -> int:
        """Mutation: a record moves to another day of the window."""
        key = self._pick(rng)
        if key is None:
            return 0
        self._move(key, self._window_day(rng, now), rng)
        return 1

    def _move_out(self, rng: random.Random, now: datetime) -> int:
        """Mutation: a record moves out of the window."""
        key = self._pick(rng)
        if key is None:
            return 0
        self._move(key, self._out_day(rng, now), rng)
        return 1

    # -- shared -----------------------------------------------------------------------------

    def mutate(self, rng: random.Random, tick: Tick) -> None:
        """Apply each registered mutation its drawn number of times at the tick's ``now``."""
        for m in self.mutations:
            times = int(m.per_tick) + (1 if rng.random() < m.per_tick % 1 else 0)
            touched = 0
            for _ in range(times):
                touched += m.apply(rng, tick.now)
            if touched:
                tick.mutations[m.name] = tick.mutations.get(m.name, 0) + touched

    def misbehave(self, rng: random.Random) -> None:
        """Switch on this tick's faults (every registered fault knob setter)."""
        for fault in self.faults:
            fault(rng)

    def now(self) -> datetime:
        """Simulated now (the process-wide clock the harness drives)."""
        return clock.now()
