"""What a soak measured and found: a row per tick, the result per source, weekly medians."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from soak.invariants import Violation
from soak.plan import Profile


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
