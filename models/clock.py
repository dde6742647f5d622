"""The one source of "now" for connectors, simulators and the change store.

Workflows use ``workflow.now()``; everything else that needs the calendar or the time of
day (a sliding window, a checkpoint, a tombstone's retention, an upstream's ``updated_at``)
asks a ``Clock``. Production uses the system clock; tests and the soak harness swap in a
clock they control, so weeks of schedule ticks run in minutes. Durations that only measure
elapsed work (timeouts, budgets, rate-limit buckets) stay on ``time.monotonic``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
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


CLOCK_FILE_ENV = "SYNCHUB_CLOCK_FILE"
"""Test/dev only: path of a file holding the simulated "now" (ISO 8601, with offset).

When set, the entry points (``worker.py``, ``python -m bench.sim``) install a ``FileClock``
on it, so a harness in another process (the soak test) moves their "now" by rewriting the
file. Never set it in production: then "now" is the wall clock."""


class FileClock:
    """A clock another process sets: "now" is the instant written in a file.

    The soak harness runs simulated weeks in minutes and the worker is a separate process,
    so the harness writes each tick's instant to the file (``FileClock.write``, atomically)
    and every ``now()`` in the worker reads it back. The file is re-read only when its
    modification time or size changes, so a hot loop pays one ``stat``.

    Args:
        path: The file; it must exist and hold a timezone-aware ISO 8601 instant.

    Raises:
        ValueError: the file is missing or does not hold such an instant (names the file
            and ``SYNCHUB_CLOCK_FILE``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._now = datetime.min.replace(tzinfo=UTC)
        self.now()  # fail at start, not in the middle of a run

    def now(self) -> datetime:
        """The instant last written to the file."""
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._now = _parse_instant(self.path.read_text().strip(), self.path)
                self._stamp = stamp
        except OSError as exc:
            raise ValueError(
                f"{CLOCK_FILE_ENV}={self.path}: cannot read the clock file ({exc.strerror})"
            ) from None
        return self._now

    @staticmethod
    def write(path: str | Path, when: datetime) -> None:
        """Set the instant every ``FileClock`` on ``path`` reads (atomic rename)."""
        if when.tzinfo is None:
            raise ValueError("FileClock.write needs a timezone-aware instant")
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(when.astimezone(UTC).isoformat())
        os.replace(tmp, target)


def _parse_instant(text: str, path: Path) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(
            f"{CLOCK_FILE_ENV}={path}: expected an ISO 8601 instant with offset, got {text[:40]!r}"
        )
    return parsed.astimezone(UTC)


def install_from_env(environ: Mapping[str, str] | None = None) -> Clock:
    """Install the process-wide clock an entry point's environment asks for; return it.

    ``SYNCHUB_CLOCK_FILE`` set -> a ``FileClock`` on that file (test/dev only); else the
    system clock stays.

    Raises:
        ValueError: the clock file cannot be read (names the variable).
    """
    env = os.environ if environ is None else environ
    path = env.get(CLOCK_FILE_ENV, "").strip()
    if path:
        set_default_clock(FileClock(path))
    return default_clock()


def unix() -> float:
    """Now as unix seconds, from the process-wide clock (TEMU timestamps, ``updateTime``)."""
    return _default.now().timestamp()
