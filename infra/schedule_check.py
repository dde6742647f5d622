"""Skipped and missed scheduled runs: each schedule's recent actions compared with its spec.

Temporal drops a run that is due while the previous one still runs (overlap SKIP) and counts
it (``num_actions_skipped_overlap``); a run can also never happen at all (a worker-less
namespace does not stop the schedule, but a paused-and-forgotten schedule, a server outage
longer than the catch-up window, or a spec edited by hand does). An operator learns of
neither from the runs that did happen, so this check lists the times the spec says a run was
due and no action started, and the worker exports both numbers as gauges
(``synchub_schedule_missed_runs``, ``synchub_schedule_skipped_overlap``) for the alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, Observation
from temporalio.client import Client, ScheduleDescription

from models import clock

log = logging.getLogger("synchub.schedules")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECENT_LIMIT = 10
"""Temporal keeps this many recent actions per schedule: the check looks no further back."""
GRACE = timedelta(seconds=30)
"""A due time younger than this is not missed yet (the action may be starting)."""


def due_times(
    every: timedelta, offset: timedelta, after: datetime, until: datetime
) -> list[datetime]:
    """Times in ``(after, until]`` an interval spec fires: epoch + offset + k * every."""
    if every <= timedelta(0) or until <= after:
        return []
    k = (after - EPOCH - offset) // every + 1
    out = []
    while (t := EPOCH + offset + k * every) <= until:
        out.append(t)
        k += 1
    return out


def missed_times(
    every: timedelta,
    offset: timedelta,
    started: Iterable[datetime],
    since: datetime,
    now: datetime,
    tolerance: timedelta = timedelta(seconds=1),
) -> list[datetime]:
    """Due times in ``(since, now - GRACE]`` with no action scheduled for them."""
    ran = sorted(started)
    missed = []
    for due in due_times(every, offset, since, now - GRACE):
        if not any(abs(t - due) <= tolerance for t in ran):
            missed.append(due)
    return missed


@dataclass
class ScheduleReport:
    """What the check found for one schedule."""

    schedule_id: str
    paused: bool
    skipped_overlap: int
    """Runs Temporal skipped because the previous one still ran (since the schedule exists)."""
    missed: list[datetime] = field(default_factory=list)
    """Due times in the checked window with no run (overlap skips included)."""
    checked: bool = True
    """False for schedules without an interval spec (cron only): not compared."""

    def line(self) -> str:
        """One line for ``starter.py schedules check`` and the WARNING log."""
        if self.paused:
            return f"{self.schedule_id}: paused"
        if not self.checked:
            return f"{self.schedule_id}: cron spec, not checked"
        shown = ", ".join(t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in self.missed[:5])
        more = " ..." if len(self.missed) > 5 else ""
        missed = f"{len(self.missed)} missed" + (f" ({shown}{more})" if self.missed else "")
        return f"{self.schedule_id}: {missed}, {self.skipped_overlap} skipped for overlap"


def report(schedule_id: str, desc: ScheduleDescription, now: datetime) -> ScheduleReport:
    """Compare one schedule's recent actions with its interval spec."""
    info = desc.info
    out = ScheduleReport(
        schedule_id,
        paused=desc.schedule.state.paused,
        skipped_overlap=info.num_actions_skipped_overlap,
    )
    intervals = desc.schedule.spec.intervals
    if not intervals:
        out.checked = False
        return out
    if out.paused:
        return out
    recent: Sequence[datetime] = [a.scheduled_at for a in info.recent_actions]
    since = max(info.created_at, info.last_updated_at or info.created_at)
    if len(recent) >= RECENT_LIMIT:  # older actions are no longer listed
        since = max(since, min(recent) - timedelta(seconds=1))
    for spec in intervals:
        out.missed += missed_times(spec.every, spec.offset or timedelta(0), recent, since, now)
    out.missed.sort()
    return out


async def check_schedules(client: Client, prefix: str = "synchub-") -> list[ScheduleReport]:
    """Every synchub schedule's report (ids starting with ``prefix``)."""
    now = clock.now()
    reports = []
    async for entry in await client.list_schedules():
        if not entry.id.startswith(prefix):
            continue
        desc = await client.get_schedule_handle(entry.id).describe()
        reports.append(report(entry.id, desc, now))
    return reports


class ScheduleGauges:
    """The latest reports as gauges; the same value from every worker (alert on ``max``)."""

    def __init__(self) -> None:
        self.reports: dict[str, ScheduleReport] = {}
        meter = otel_metrics.get_meter("synchub")
        meter.create_observable_gauge(
            "synchub_schedule_missed_runs",
            callbacks=[self._missed],
            description="runs due by the schedule's spec in its recent window that never ran",
        )
        meter.create_observable_gauge(
            "synchub_schedule_skipped_overlap",
            callbacks=[self._skipped],
            description="runs Temporal skipped because the previous one still ran (total)",
        )

    def _missed(self, _options: CallbackOptions) -> list[Observation]:
        return [
            Observation(len(r.missed), {"schedule": r.schedule_id})
            for r in self.reports.values()
            if r.checked and not r.paused
        ]

    def _skipped(self, _options: CallbackOptions) -> list[Observation]:
        return [
            Observation(r.skipped_overlap, {"schedule": r.schedule_id})
            for r in self.reports.values()
        ]

    def update(self, reports: list[ScheduleReport]) -> list[ScheduleReport]:
        """Store the reports; log a WARNING for each new skip or miss; return those."""
        worse = []
        for r in reports:
            before = self.reports.get(r.schedule_id)
            if before is not None and (
                r.skipped_overlap > before.skipped_overlap or set(r.missed) - set(before.missed)
            ):
                worse.append(r)
            elif before is None and r.missed:
                worse.append(r)
            self.reports[r.schedule_id] = r
        for r in worse:
            log.warning("skipped or missed scheduled runs: %s", r.line())
        return worse


CHECK_EVERY_SECONDS = 60.0
"""How often a worker compares the schedules with their specs."""


async def watch_schedules(
    client: Client, stop: asyncio.Event, every: float = CHECK_EVERY_SECONDS
) -> None:
    """Check the schedules every ``every`` seconds until ``stop``; failures only log."""
    gauges = ScheduleGauges()
    while not stop.is_set():
        try:
            gauges.update(await check_schedules(client))
        except Exception as exc:  # Temporal away for a moment: the next round retries
            log.info("schedule check failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
