"""The soak invariants: what the topic must say, and what "flat over the weeks" means.

``Ledger`` replays the topic as a consumer would (last message per key, event ids seen) and
reports duplicates that carry a new ``event_id``. ``lost`` compares the ledger with the
upstream's truth. ``Flatness`` decides whether a per-tick measurement grows with simulated
time: the last period's value may exceed the first period's by at most ``FLAT_FACTOR`` plus
a slack, where a period is a simulated week (or a third of a shorter run).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from infra.consumer import Consumed
from soak.plan import Truth

FLAT_FACTOR = 1.5
"""Last period <= FLAT_FACTOR x first period + slack: "flat" in numbers."""
SHOWN = 5
"""Offending keys quoted in one violation message."""


@dataclass(frozen=True)
class Violation:
    """One broken invariant, first seen at a tick."""

    kind: str
    """``lost``, ``undeleted``, ``duplicate``, ``terminal``, ``flat:<metric>``."""
    tick: int
    day: float
    """Simulated days since the start."""
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] tick {self.tick} (day {self.day:.2f}): {self.message}"


@dataclass
class Last:
    """The last message of a key, as a consumer that applies messages in order sees it."""

    op: str
    event_id: str
    fingerprint: str
    marker: tuple[Any, ...] | None


@dataclass
class Ledger:
    """Every message of a source's topic, folded per key."""

    marker: Callable[[dict[str, Any]], tuple[Any, ...]]
    """The plan's marker of a published record."""
    last: dict[str, Last] = field(default_factory=dict)
    events: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    """Key -> event_id -> (op, fingerprint) of every event seen for the key."""
    messages: int = 0
    duplicates: int = 0
    """Messages repeating an ``event_id`` already seen for their key (allowed)."""

    def add(self, batch: Iterable[Consumed]) -> list[str]:
        """Fold a batch in; return its duplicate problems.

        A problem is the same content under a new ``event_id`` (a consumer cannot drop it),
        or one ``event_id`` carrying two contents.
        """
        problems: list[str] = []
        for msg in batch:
            if not msg.value:  # the Kafka tombstone after a delete event: same headers
                continue
            self.messages += 1
            env = json.loads(msg.value)
            key, event, op, fp = msg.key, env["event_id"], env["op"], env["fingerprint"]
            seen = self.events.setdefault(key, {})
            before = self.last.get(key)
            if event in seen:
                self.duplicates += 1
                if seen[event] != (op, fp):
                    problems.append(
                        f"key {key}: event_id {event} carried {seen[event]} and now {(op, fp)}"
                    )
            elif before is not None and (before.op, before.fingerprint) == (op, fp):
                problems.append(
                    f"key {key}: the same {op} (fingerprint {fp}) published again under a new "
                    f"event_id {event} (was {before.event_id}): a consumer cannot drop it"
                )
            seen[event] = (op, fp)
            marker = self.marker(env["data"]) if op == "upsert" and env.get("data") else None
            self.last[key] = Last(op, event, fp, marker)
        return problems

    def lost(self, truth: Truth) -> list[str]:
        """Records whose latest upstream state is not the last message of their key."""
        problems: list[str] = []
        followed = ((k, m) for k, m in truth.followed.items() if k in self.last)
        for key, want in [*truth.expected.items(), *followed]:
            got = self.last.get(key)
            if got is None:
                problems.append(f"{key}: never published (upstream {want})")
            elif got.op != "upsert":
                problems.append(f"{key}: last message is a {got.op}, but it lives: {want}")
            elif got.marker != want:
                problems.append(f"{key}: last message has {got.marker}, upstream has {want}")
        return problems

    def undeleted(self, truth: Truth) -> list[str]:
        """Published records deleted upstream whose last message is not a delete."""
        return [
            f"{key}: deleted upstream, last message is a {self.last[key].op}"
            for key in sorted(truth.deleted)
            if key in self.last and self.last[key].op != "delete"
        ]


def summarize(problems: list[str], what: str) -> str:
    """``N <what>: first few ...`` for a violation message."""
    shown = "; ".join(problems[:SHOWN])
    more = f" (+{len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    return f"{len(problems)} {what}: {shown}{more}"


@dataclass(frozen=True)
class Flatness:
    """A per-tick measurement that must not grow with simulated time.

    Args:
        name: what is measured (``lookups/run``, ``redis keys``, ``redis bytes``).
        reduce: how a period is summarised (median for per-run counts, max for sizes).
        slack: absolute allowance on top of ``FLAT_FACTOR`` x the first period.
    """

    name: str
    reduce: Callable[[list[float]], float]
    slack: float

    def check(self, series: list[tuple[float, float]], period: float) -> str | None:
        """A message when the last period grew past the bound, else None.

        ``series`` is ``(simulated day, value)`` per tick; judged once two whole periods
        have passed, comparing the first period with the latest one.
        """
        if not series or series[-1][0] < 2 * period:
            return None
        now = series[-1][0]
        first = [v for d, v in series if d < period]
        last = [v for d, v in series if d > now - period]
        if not first or not last:
            return None
        a, b = self.reduce(first), self.reduce(last)
        bound = FLAT_FACTOR * a + self.slack
        if b <= bound:
            return None
        return (
            f"{self.name} grew from {a:,.0f} (first {period:g} days) to {b:,.0f} "
            f"(last {period:g} days), over the bound {FLAT_FACTOR} x {a:,.0f} + {self.slack:,.0f}"
        )


def median(values: list[float]) -> float:
    """Median (``statistics.median``), typed for ``Flatness``."""
    return float(statistics.median(values))


def peak(values: list[float]) -> float:
    """Maximum, typed for ``Flatness``."""
    return float(max(values))


LOOKUP_FACTOR = 2
LOOKUP_SLACK = 30


def lookups_beyond_changes(lookups: int, left: int, relocated: int) -> str | None:
    """A message when a tick's point lookups exceed what its changes can explain.

    Lookups are bounded by what changed, not by what ever existed: each record that left
    the window or its partition since the last tick (``left``: no longer live in the
    window; ``relocated``: moved, reassigned, deleted) may be looked up about once.
    """
    bound = LOOKUP_FACTOR * (left + relocated) + LOOKUP_SLACK
    if lookups <= bound:
        return None
    return (
        f"{lookups} point lookups in one tick, but only {left} records left the window and "
        f"{relocated} were moved or deleted: over the bound {LOOKUP_FACTOR} x "
        f"{left + relocated} + {LOOKUP_SLACK}"
    )


MIN_FLAT_PERIOD = 3.0
"""Simulated days a comparison period needs before flatness is judged (a short run's
periods are too few ticks for a median to mean anything)."""

LOOKUPS = Flatness("point lookups per tick", median, slack=50)
REDIS_KEYS = Flatness("Redis keys of the source", peak, slack=20)
REDIS_BYTES = Flatness("Redis bytes per live record", peak, slack=64)
"""Memory is judged per live record: the huge partition enters and leaves the window, and
state may follow the live data, not history."""
