"""The Advoware soak plan: employees' calendars whose window slides, and one huge calendar.

The window is ``ADVOWARE_DAYS_BACK=7`` .. ``ADVOWARE_DAYS_AHEAD=28`` days around simulated
today in Europe/Berlin, in pages of 14 days. Appointments are seeded over every day the run
will see, so each simulated day some age out of the window and others enter it. One
employee (``BIG``) holds the huge partition. Each tick edits, adds, deletes, moves (within
and out of the window) and reassigns appointments, now and then moves hundreds at once, and
makes a few percent of requests fail.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from simulators.advoware import make_sim_app
from soak.plan import Profile, SourcePlan, Tick, Truth, WeightedMutation

DAYS_BACK = 7
DAYS_AHEAD = 28
PAGE_DAYS = 14
EMPLOYEES = 8
BIG = "BIG"
"""Kürzel of the employee with the huge calendar."""
BERLIN = ZoneInfo("Europe/Berlin")
LOOKUP_ROUTE = "GET /api/v1/advonet/Termine?frnr"


def _modified(value: datetime) -> str:
    """``zuletztGeaendertAm`` as the simulator renders (and synchub publishes) it."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"


class AdvowarePlan(SourcePlan):
    """Soak plan of the ``advoware`` source (see the module docstring)."""

    source = "advoware"
    topic_env = "KAFKA_ADVOWARE_TOPIC"
    lookup_route = LOOKUP_ROUTE
    relocations = ("move_within", "move_out", "mass_move", "reassign", "delete")
    out_before = (3, 20)
    out_after = (3, 60)

    def __init__(self, profile: Profile, start: datetime) -> None:
        super().__init__(profile, start)
        self.state, self._app = make_sim_app()
        self._serial = 0
        per_tick = profile.tick_hours / 24
        n = profile.records_per_day
        self.mutations = [
            WeightedMutation("edit", 0.12 * n * per_tick, self._edit),
            WeightedMutation("add", 0.05 * n * per_tick, self._add),
            WeightedMutation("delete", 0.03 * n * per_tick, self._delete),
            WeightedMutation("move_within", 0.04 * n * per_tick, self._move_within),
            WeightedMutation("move_out", 0.02 * n * per_tick, self._move_out),
            WeightedMutation("reassign", 0.03 * n * per_tick, self._reassign),
            WeightedMutation(
                "mass_move", per_tick / max(profile.mass_move_every_days, 0.01), self._mass_move
            ),
        ]
        self.faults = [self._faults]
        self._in_window: list[int] = []
        self._active: list[str] = []

    # -- simulator --------------------------------------------------------------------------

    def worker_env(self, url: str) -> dict[str, str]:
        """See ``SourcePlan.worker_env``."""
        user, password = next(iter(self.state.users.items()))
        return {
            "ADVOWARE_APP_ID": self.state.app_id,
            "ADVOWARE_API_KEY": self.state.api_key,
            "ADVOWARE_KANZLEI": self.state.kanzlei,
            "ADVOWARE_DATABASE": self.state.database,
            "ADVOWARE_USER": user,
            "ADVOWARE_PASSWORD": password,
            "ADVOWARE_API_URL": f"{url}/",
            "ADVOWARE_SECURITY_URL": f"{url}/",
            "ADVOWARE_DAYS_BACK": str(DAYS_BACK),
            "ADVOWARE_DAYS_AHEAD": str(DAYS_AHEAD),
            "ADVOWARE_PAGE_DAYS": str(PAGE_DAYS),
        }

    def requests(self) -> dict[str, int]:
        """See ``SourcePlan.requests``."""
        with self.state._lock:
            return dict(self.state.requests)

    def healthy(self) -> None:
        """See ``SourcePlan.healthy``."""
        self.state.set_knobs(error_rate=0.0, fail_next=0)

    def _faults(self, rng: random.Random) -> None:
        self.state.set_knobs(
            error_rate=self.profile.error_rate, fail_next=1 if rng.random() < 0.2 else 0
        )

    # -- data -------------------------------------------------------------------------------

    def _span(self) -> tuple[date, date]:
        first = self.start.astimezone(BERLIN).date() - timedelta(days=DAYS_BACK + 2)
        end = (self.start + timedelta(days=self.profile.days)).astimezone(BERLIN).date()
        return first, end + timedelta(days=DAYS_AHEAD + 2)

    def seed(self, rng: random.Random) -> None:
        """See ``SourcePlan.seed``."""
        first, last = self._span()
        span = (last - first).days + 1
        # records_per_day appointments start on each day, spread over the employees
        per_employee = max(1, self.profile.records_per_day * span // EMPLOYEES)
        self.state.seed(EMPLOYEES, per_employee, first, last, seed=rng.randrange(1 << 30))
        self.state.add_employee(BIG, name="Groß", vorname="Bea")
        base = 10_000_000
        for i in range(self.profile.big_partition):
            day = first + timedelta(days=rng.randrange(span))
            begin = datetime.combine(day, dtime(rng.randrange(7, 19), rng.choice((0, 15, 30))))
            self.state.add(
                BIG,
                begin,
                begin + timedelta(minutes=rng.choice((15, 30, 60))),
                frnr=base + i,
                text=f"Termin {i}",
                zuletztGeaendertAm=datetime.combine(first, dtime(8)) - timedelta(days=1),
            )

    def window(self, now: datetime) -> tuple[date, date]:
        """See ``SourcePlan.window``: every employee's window (Berlin days)."""
        today = now.astimezone(BERLIN).date()
        return today - timedelta(days=DAYS_BACK), today + timedelta(days=DAYS_AHEAD)

    def _index(self, now: datetime) -> None:
        first, last = self.window(now)
        with self.state._lock:  # the harness lives beside the simulator in one process
            active = {k for k, e in self.state._employees.items() if e["aktiv"]}
            self._active = sorted(active - {BIG})
            self._in_window = [
                f
                for f, t in self.state._termine.items()
                if f > 0 and t["anwalt"] in active and first <= t["start"].date() <= last
            ]

    def mutate(self, rng: random.Random, tick: Tick) -> None:
        """See ``SourcePlan.mutate``."""
        self._index(tick.now)
        super().mutate(rng, tick)

    def _pick(self, rng: random.Random) -> int | None:
        """A live appointment of the window; BIG's are picked as often as one employee's."""
        for _ in range(5):
            if not self._in_window:
                return None
            frnr = rng.choice(self._in_window)
            owner = self.state.owner_of(frnr)
            if owner is None or (owner == BIG and rng.random() > 1 / EMPLOYEES):
                continue
            return frnr
        return None

    def _edit(self, rng: random.Random, now: datetime) -> int:
        frnr = self._pick(rng)
        if frnr is None:
            return 0
        self._serial += 1
        self.state.change(frnr, notiz=f"soak edit {self._serial}")
        self.watched.add(str(frnr))
        return 1

    def _add(self, rng: random.Random, now: datetime) -> int:
        day = self._window_day(rng, now)
        begin = datetime.combine(day, dtime(rng.randrange(7, 19)))
        frnr = self.state.add(
            rng.choice(self._active), begin, begin + timedelta(hours=1), text="soak new"
        )
        self._in_window.append(frnr)
        return 1

    def _delete(self, rng: random.Random, now: datetime) -> int:
        frnr = self._pick(rng)
        if frnr is None:
            return 0
        self.state.delete(frnr)
        self.deleted.add(str(frnr))
        self.watched.discard(str(frnr))
        return 1

    def _move(self, frnr: int, day: date, rng: random.Random) -> None:
        self.state.move(frnr, datetime.combine(day, dtime(rng.randrange(7, 19))))
        self.watched.add(str(frnr))

    def _reassign(self, rng: random.Random, now: datetime) -> int:
        frnr = self._pick(rng)
        if frnr is None or not self._active:
            return 0
        self.state.reassign(frnr, rng.choice(self._active))
        self.watched.add(str(frnr))
        return 1

    def _mass_move(self, rng: random.Random, now: datetime) -> int:
        """Hundreds of one employee's appointments at once: half within, half out of the window."""
        if not self._active:
            return 0
        who = rng.choice(self._active)
        mine = [f for f in self._in_window if self.state.owner_of(f) == who]
        rng.shuffle(mine)
        for frnr in mine[: self.profile.mass_move_size]:
            if rng.random() < 0.5:
                day = self._window_day(rng, now)
            else:
                day = self._out_day(rng, now)
            self._move(frnr, day, rng)
        return min(len(mine), self.profile.mass_move_size)

    # -- truth ------------------------------------------------------------------------------

    def truth(self, now: datetime) -> Truth:
        """See ``SourcePlan.truth``.

        Appointments strictly inside the window (its edge days are left to the page-edge
        tests), of active employees, plus every appointment changed while in the window.
        """
        first, last = self.window(now)
        expected: dict[str, tuple[Any, ...]] = {}
        followed: dict[str, tuple[Any, ...]] = {}
        live = 0
        with self.state._lock:
            active = {k for k, e in self.state._employees.items() if e["aktiv"]}
            for frnr, t in self.state._termine.items():
                if frnr <= 0:
                    continue
                key = str(frnr)
                inside = t["anwalt"] in active and first < t["start"].date() < last
                live += inside
                if inside or key in self.watched:
                    (expected if inside else followed)[key] = (
                        _modified(t["zuletztGeaendertAm"]),
                        t["anwalt"],
                        t["start"].isoformat(timespec="seconds"),
                    )
        return Truth(expected, followed, deleted=set(self.deleted), live=live)

    def marker(self, data: dict[str, Any]) -> tuple[Any, ...]:
        """See ``SourcePlan.marker``."""
        return (data.get("last_modified"), data.get("kuerzel"), data.get("start"))


__all__ = ["AdvowarePlan"]
