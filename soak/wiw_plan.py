"""The When I Work soak plan: day partitions that slide, shifts that change, move and vanish.

The window is ``SYNC_DAYS_PRIOR=1`` .. ``SYNC_DAYS_AHEAD=7`` days around simulated today
(UTC days), so it slides by a day every simulated day. Shifts are seeded for every day the
run will see; one day holds the huge partition (``Profile.big_partition`` shifts). Each tick
edits, adds, deletes and moves shifts of days in the window (within it and out of it), now
and then moves hundreds at once, and makes a few percent of requests fail.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from email.utils import parsedate_to_datetime
from typing import Any

from simulators.wiw import make_sim_app
from soak.plan import Profile, SourcePlan, Tick, Truth, WeightedMutation

TOKEN = "soak-static-token"
"""Pre-issued W-Token of the simulator and the worker (``WIW_KEY``)."""
DAYS_PRIOR = 1
DAYS_AHEAD = 7
LOOKUP_ROUTE = "GET /2/shifts/{id}"


def _epoch(value: str) -> int:
    """Seconds of an ISO (published) or RFC 1123 (wire) instant."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = parsedate_to_datetime(value)
    return int(parsed.timestamp())


def _marker_of(shift: dict[str, Any]) -> tuple[int, int]:
    """``(updated_at, start_time)`` in epoch seconds, as ``WiwPlan.marker`` reads them."""
    return int(shift["updated_at"].timestamp()), int(shift["start_time"].timestamp())


class WiwPlan(SourcePlan):
    """Soak plan of the ``wiw`` source (see the module docstring)."""

    source = "wiw"
    topic_env = "KAFKA_TOPIC_NAME"
    lookup_route = LOOKUP_ROUTE

    def __init__(self, profile: Profile, start: datetime) -> None:
        super().__init__(profile, start)
        # WIW's 600 requests/minute are counted on the wall clock: at soak pace the requests
        # of many simulated hours fall into one real minute, which no real account sees, so
        # the limit is raised; 429s still come from the throttle_next knob every few ticks
        self.state, self._app = make_sim_app(
            timezone="UTC", static_token=TOKEN, rate_limit_per_minute=6000
        )
        self._serial = 0
        days = profile.days
        # in the window from the start (short runs) or for a week early on (a month), so its
        # state has expired (60 s EXPIRE_CACHE) before the last week is judged
        self.big_day = (start + timedelta(days=1 if days < 4 else days * 0.3)).date()
        per_tick = profile.tick_hours / 24  # a day's worth of change spread over its ticks
        n = profile.records_per_day
        self.mutations = [
            WeightedMutation("edit", 0.12 * n * per_tick, self._edit),
            WeightedMutation("edit_big", per_tick, self._edit_big),
            WeightedMutation("add", 0.05 * n * per_tick, self._add),
            WeightedMutation("delete", 0.03 * n * per_tick, self._delete),
            WeightedMutation("move_within", 0.04 * n * per_tick, self._move_within),
            WeightedMutation("move_out", 0.02 * n * per_tick, self._move_out),
            WeightedMutation(
                "mass_move", per_tick / max(profile.mass_move_every_days, 0.01), self._mass_move
            ),
        ]
        self.faults = [self._faults]
        self._by_day: dict[date, list[int]] = {}

    # -- simulator --------------------------------------------------------------------------

    def worker_env(self, url: str) -> dict[str, str]:
        """See ``SourcePlan.worker_env``."""
        return {
            "WIW_API_URL": url,
            "WIW_KEY": TOKEN,
            "SYNC_DAYS_PRIOR": str(DAYS_PRIOR),
            "SYNC_DAYS_AHEAD": str(DAYS_AHEAD),
            "SYNC_TIMEZONE": "UTC",
        }

    def requests(self) -> dict[str, int]:
        """See ``SourcePlan.requests``."""
        with self.state._lock:
            return dict(self.state.requests)

    def healthy(self) -> None:
        """See ``SourcePlan.healthy``."""
        self.state.set_knobs(error_rate=0.0, fail_next=0, throttle_next=0)

    def _faults(self, rng: random.Random) -> None:
        self.state.set_knobs(
            error_rate=self.profile.error_rate,
            fail_next=1 if rng.random() < 0.2 else 0,
            throttle_next=2 if rng.random() < 0.2 else 0,
            throttle_retry_after=1,
        )

    # -- data -------------------------------------------------------------------------------

    def seed(self, rng: random.Random) -> None:
        """See ``SourcePlan.seed``."""
        first = self.start.date() - timedelta(days=DAYS_PRIOR + 1)
        last = (self.start + timedelta(days=self.profile.days)).date() + timedelta(DAYS_AHEAD + 1)
        days = [first + timedelta(days=d) for d in range((last - first).days + 1)]
        n = self.profile.records_per_day * len(days)
        self.state.seed(n, days=days, seed=rng.randrange(1 << 30), replace=True)
        if self.profile.big_partition:
            self.state.seed(
                self.profile.big_partition,
                days=[self.big_day],
                seed=rng.randrange(1 << 30),
                replace=False,
            )

    def window(self, now: datetime) -> tuple[date, date]:
        """See ``SourcePlan.window``."""
        today = now.astimezone(UTC).date()
        return today - timedelta(days=DAYS_PRIOR), today + timedelta(days=DAYS_AHEAD)

    def _in_window(self, now: datetime) -> list[tuple[int, dict[str, Any]]]:
        """``(id, shift)`` of every shift starting in the window, by id (lock held).

        Through the simulator's start index: the window's shifts, not the ~50,000 the
        simulator holds over the month.
        """
        first, last = self.window(now)
        low = datetime.combine(first, dtime(), UTC).timestamp()
        high = datetime.combine(last + timedelta(days=1), dtime(), UTC).timestamp()
        shifts = self.state._shifts
        return [(sid, shifts[sid]) for sid in sorted(self.state._starting(low, high))]

    def _index(self, now: datetime) -> dict[date, list[int]]:
        """Shift ids per day of the window (rebuilt once per tick, when the clock moved)."""
        by_day: dict[date, list[int]] = {}
        with self.state._lock:  # the harness lives beside the simulator in one process
            for sid, shift in self._in_window(now):
                by_day.setdefault(shift["start_time"].astimezone(UTC).date(), []).append(sid)
        return by_day

    def mutate(self, rng: random.Random, tick: Tick) -> None:
        """See ``SourcePlan.mutate``."""
        self._by_day = self._index(tick.now)
        super().mutate(rng, tick)

    def _pick(self, rng: random.Random, big: bool = False) -> int | None:
        """A random live shift of a random day of the window (days weigh equally).

        The huge day is left alone unless ``big``: it changes about once a simulated day
        (``edit_big``), so most runs read it through the unchanged-page digest, as they
        would a real 40,000-shift day.
        """
        days = [self.big_day] if big else [d for d in sorted(self._by_day) if d != self.big_day]
        days = [d for d in days if d in self._by_day]
        for _ in range(5):
            if not days:
                return None
            day = rng.choice(days)
            ids = self._by_day[day]
            if ids:
                sid = rng.choice(ids)
                if self.state.shift(sid) is not None:
                    return sid
        return None

    def _touch(self, sid: int) -> None:
        self.watched.add(str(sid))

    def _edit(self, rng: random.Random, now: datetime) -> int:
        sid = self._pick(rng)
        if sid is None:
            return 0
        self._serial += 1
        self.state.change(sid, notes=f"soak edit {self._serial}")
        self._touch(sid)
        return 1

    def _edit_big(self, rng: random.Random, now: datetime) -> int:
        sid = self._pick(rng, big=True)
        if sid is None:
            return 0
        self._serial += 1
        self.state.change(sid, notes=f"soak edit {self._serial}")
        self._touch(sid)
        return 1

    def _add(self, rng: random.Random, now: datetime) -> int:
        day = self._window_day(rng, now)
        begin = datetime(day.year, day.month, day.day, rng.randrange(5, 22), tzinfo=UTC)
        sid = self.state.add(begin, begin + timedelta(hours=rng.randint(2, 9)), notes="soak new")
        self._by_day.setdefault(day, []).append(sid)
        return 1

    def _delete(self, rng: random.Random, now: datetime) -> int:
        sid = self._pick(rng)
        if sid is None:
            return 0
        self.state.delete(sid)
        self.deleted.add(str(sid))
        self.watched.discard(str(sid))
        return 1

    def _move(self, sid: int, day: date, rng: random.Random) -> None:
        begin = datetime(day.year, day.month, day.day, rng.randrange(5, 23), tzinfo=UTC)
        self.state.move(sid, begin)
        self._touch(sid)

    def _mass_move(self, rng: random.Random, now: datetime) -> int:
        """Hundreds of one day's shifts at once: half to another day of the window, half out."""
        days = [d for d in sorted(self._by_day) if d != self.big_day]
        if not days:
            return 0
        day = rng.choice(days)
        ids = [s for s in self._by_day[day] if self.state.shift(s) is not None]
        rng.shuffle(ids)
        moved = 0
        for sid in ids[: self.profile.mass_move_size]:
            if rng.random() < 0.5:
                target = self._window_day(rng, now)
            else:
                target = self._out_day(rng, now)
            self._move(sid, target, rng)
            moved += 1
        return moved

    # -- truth ------------------------------------------------------------------------------

    def truth(self, now: datetime) -> Truth:
        """See ``SourcePlan.truth``."""
        expected: dict[str, tuple[Any, ...]] = {}
        followed: dict[str, tuple[Any, ...]] = {}
        with self.state._lock:
            for sid, shift in self._in_window(now):
                expected[str(sid)] = _marker_of(shift)
            for key in self.watched - expected.keys():
                moved = self.state._shifts.get(int(key))
                if moved is not None:
                    followed[key] = _marker_of(moved)
        return Truth(expected, followed, deleted=set(self.deleted), live=len(expected))

    def marker(self, data: dict[str, Any]) -> tuple[Any, ...]:
        """See ``SourcePlan.marker``."""
        return (_epoch(str(data.get("updated_at"))), _epoch(str(data.get("start_time"))))
