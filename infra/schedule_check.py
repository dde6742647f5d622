"""Skipped and missed scheduled runs: each schedule's recent actions compared with its spec.

Temporal drops a run that is due while the previous one still runs (overlap SKIP) and counts
it (``num_actions_skipped_overlap``); a run can also never happen at all (a worker-less
namespace does not stop the schedule, but a paused-and-forgotten schedule, a server outage
longer than the catch-up window, or a spec edited by hand does). An operator learns of
neither from the runs that did happen, so this check lists the times the spec says a run was
due and no action started, and the worker exports both numbers as gauges
(``synchub_schedule_missed_runs``, ``synchub_schedule_skipped_overlap``) for the alerts.

Interval specs are computed here (``due_times``); cron and calendar specs (TEMU inventory's
full run, ``TEMU_INVENTORY_FULL_CRON``) are read by Temporal itself
(``ListScheduleMatchingTimes``), so time zones, ranges and skips mean what they mean to the
scheduler, with no cron parser of our own.
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
from temporalio.api.workflowservice.v1 import ListScheduleMatchingTimesRequest
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
    """False when the spec's due times were not known (not compared)."""

    def line(self) -> str:
        """One line for ``starter.py schedules check`` and the WARNING log."""
        if self.paused:
            return f"{self.schedule_id}: paused"
        if not self.checked:
            return f"{self.schedule_id}: due times unknown, not checked"
        shown = ", ".join(t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in self.missed[:5])
        more = " ..." if len(self.missed) > 5 else ""
        missed = f"{len(self.missed)} missed" + (f" ({shown}{more})" if self.missed else "")
        return f"{self.schedule_id}: {missed}, {self.skipped_overlap} skipped for overlap"


def has_calendar(desc: ScheduleDescription) -> bool:
    """True when the spec has cron or calendar parts (due times asked of Temporal)."""
    spec = desc.schedule.spec
    return bool(spec.calendars or spec.cron_expressions)


def checked_since(desc: ScheduleDescription) -> datetime:
    """Start of the window the recent actions cover.

    Since creation or the last edit, and no further back than the oldest action Temporal
    still lists.
    """
    info = desc.info
    since = max(info.created_at, info.last_updated_at or info.created_at)
    recent = [a.scheduled_at for a in info.recent_actions]
    if len(recent) >= RECENT_LIMIT:  # older actions are no longer listed
        since = max(since, min(recent) - timedelta(seconds=1))
    return since


def report(
    schedule_id: str,
    desc: ScheduleDescription,
    now: datetime,
    calendar_due: Sequence[datetime] | None = None,
) -> ScheduleReport:
    """Compare one schedule's recent actions with its spec.

    Args:
        schedule_id: the schedule.
        desc: its description (spec, state, recent actions).
        now: the check's instant.
        calendar_due: for a spec with cron or calendar parts, every time it matches in
            ``(checked_since, now - GRACE]`` (``matching_times``); None = not known, and
            such a schedule is reported unchecked.
    """
    info = desc.info
    out = ScheduleReport(
        schedule_id,
        paused=desc.schedule.state.paused,
        skipped_overlap=info.num_actions_skipped_overlap,
    )
    intervals = desc.schedule.spec.intervals
    calendar = has_calendar(desc)
    if (calendar and calendar_due is None) or not (intervals or calendar):
        out.checked = False
        return out
    if out.paused:
        return out
    recent: Sequence[datetime] = [a.scheduled_at for a in info.recent_actions]
    since = checked_since(desc)
    if calendar:  # Temporal's matching times cover the whole spec, intervals included
        out.missed = unmatched(calendar_due or [], recent, since, now)
        return out
    for spec in intervals:
        out.missed += missed_times(spec.every, spec.offset or timedelta(0), recent, since, now)
    out.missed.sort()
    return out


def unmatched(
    due: Iterable[datetime],
    started: Iterable[datetime],
    since: datetime,
    now: datetime,
    tolerance: timedelta = timedelta(seconds=1),
) -> list[datetime]:
    """Due times in ``(since, now - GRACE]`` with no action scheduled for them."""
    ran = list(started)
    return sorted(
        t
        for t in set(due)
        if since < t <= now - GRACE and not any(abs(r - t) <= tolerance for r in ran)
    )


async def matching_times(
    client: Client, schedule_id: str, since: datetime, until: datetime
) -> list[datetime]:
    """The times in ``[since, until]`` a schedule's spec fires, as Temporal computes them."""
    req = ListScheduleMatchingTimesRequest(namespace=client.namespace, schedule_id=schedule_id)
    req.start_time.FromDatetime(since)
    req.end_time.FromDatetime(until)
    resp = await client.workflow_service.list_schedule_matching_times(req)
    return [t.ToDatetime(tzinfo=UTC) for t in resp.start_time]


async def check_schedules(
    client: Client, prefix: str = "synchub-", now: datetime | None = None
) -> list[ScheduleReport]:
    """Every synchub schedule's report (ids starting with ``prefix``), as of ``now``."""
    now = now or clock.now()
    reports = []
    async for entry in await client.list_schedules():
        if not entry.id.startswith(prefix):
            continue
        desc = await client.get_schedule_handle(entry.id).describe()
        due = None
        if has_calendar(desc) and not desc.schedule.state.paused:
            due = await matching_times(client, entry.id, checked_since(desc), now - GRACE)
        reports.append(report(entry.id, desc, now, due))
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
