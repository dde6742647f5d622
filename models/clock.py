"""The one source of "now" for connectors, simulators and the change store.

Workflows use ``workflow.now()``; everything else that needs the calendar or the time of
day (a sliding window, a checkpoint, a tombstone's retention, an upstream's ``updated_at``)
asks a ``Clock``. Production uses the system clock; tests and the soak harness swap in a
clock they control, so weeks of schedule ticks run in minutes. Durations that only measure
elapsed work (timeouts, budgets, rate-limit buckets) stay on ``time.monotonic``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol


class Clock(Protocol):
    """Where "now" comes from."""

    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """``datetime.now(UTC)``."""
        return datetime.now(UTC)


class ManualClock:
    """A clock a test sets and advances by hand (in one process)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The instant last set."""
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (timezone-aware)."""
        if when.tzinfo is None:
            raise ValueError("ManualClock.set needs a timezone-aware instant")
        self._now = when.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        """Move forward by ``delta``."""
        self._now += delta


_default: Clock = SystemClock()


def default_clock() -> Clock:
    """The process-wide clock used where none was injected."""
    return _default


def set_default_clock(clock: Clock) -> None:
    """Replace the process-wide clock (entry points and test harnesses only)."""
    global _default
    _default = clock


def now() -> datetime:
    """Now, from the process-wide clock."""
    return _default.now()


def today(zone: tzinfo) -> date:
    """Today's date in ``zone``, from the process-wide clock."""
    return _default.now().astimezone(zone).date()
