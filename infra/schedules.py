"""Temporal Schedules instead of cron: one per source, overlap policy SKIP.

SKIP is what ``max_instances=1, coalesce=True`` meant under APScheduler: a run that is due
while the previous one still runs is dropped, not queued.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from models.sync import RunState, SyncAllInput
from settings import Settings
from workflows.options import SOURCE_ATTR, STATE_ATTR
from workflows.sync_all import SyncAllWorkflow


@dataclass(frozen=True)
class ScheduleDef:
    """One schedule synchub manages."""

    schedule_id: str
    source: str
    every: timedelta | None
    """Interval; ``None`` when ``cron`` says when."""
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    cron: str | None = None
    """Cron expression (UTC), for runs at a time of day (the nightly full inventory)."""
    offset: timedelta = timedelta(0)
    """Shift of the interval's firing times (intervals fire at multiples of ``every`` since
    the epoch): keeps a frequent schedule off the times a cron schedule of the same source
    fires, whose children it would otherwise hold (they would be skipped)."""
    id_suffix: str = "scheduled"
    """Workflow id of its runs: ``syncall/<source>/<id_suffix>-<time>``; sources with two
    schedules need two suffixes."""


def schedule_definitions(settings: Settings, sources: list[str]) -> list[ScheduleDef]:
    """The schedules of the configured sources."""
    defs: list[ScheduleDef] = []
    if "wiw" in sources:
        defs.append(
            ScheduleDef(
                "synchub-wiw",
                "wiw",
                timedelta(seconds=settings.sync.interval_seconds),
                note="When I Work shifts (SYNC_SLEEP_PERIOD_SECONDS)",
            )
        )
    if "advoware" in sources:
        defs.append(
            ScheduleDef(
                "synchub-advoware",
                "advoware",
                timedelta(minutes=settings.advoware.interval_minutes),
                note="Advoware calendars, one child per employee (ADVOWARE_SYNC_INTERVAL_MINUTES)",
            )
        )
    if "temu-orders" in sources:
        defs.append(
            ScheduleDef(
                "synchub-temu-orders",
                "temu-orders",
                timedelta(minutes=settings.temu.orders_interval_minutes),
                note="TEMU orders per shop + shipment confirmations (TEMU_ORDERS_INTERVAL_MINUTES)",
            )
        )
    if "temu-inventory" in sources:
        every = timedelta(minutes=settings.temu.inventory_interval_minutes)
        defs.append(
            ScheduleDef(
                "synchub-temu-inventory-quick",
                "temu-inventory",
                every,
                params={"mode": "quick"},
                note="TEMU stock, SKUs changed in the ERP + last failures "
                "(TEMU_INVENTORY_INTERVAL_MINUTES)",
                offset=every / 2,
                id_suffix="scheduled-quick",
            )
        )
        defs.append(
            ScheduleDef(
                "synchub-temu-inventory-full",
                "temu-inventory",
                None,
                params={"mode": "full"},
                note="TEMU stock, every SKU re-checked (TEMU_INVENTORY_FULL_CRON)",
                cron=settings.temu.inventory_full_cron,
                id_suffix="scheduled-full",
            )
        )
    return defs


def _spec(d: ScheduleDef) -> ScheduleSpec:
    if d.cron is not None:
        return ScheduleSpec(cron_expressions=[d.cron])
    if d.every is None:
        raise ValueError(f"schedule {d.schedule_id} needs an interval or a cron expression")
    return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=d.every, offset=d.offset)])


def _schedule(d: ScheduleDef, settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SyncAllWorkflow.run,
            SyncAllInput(
                source=d.source, params=d.params, max_concurrent=settings.sync.max_concurrent
            ),
            id=f"syncall/{d.source}/{d.id_suffix}",
            task_queue=settings.temporal.task_queue,
            typed_search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(SOURCE_ATTR, d.source),
                    SearchAttributePair(STATE_ATTR, RunState.RUNNING.value),
                ]
            ),
        ),
        spec=_spec(d),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def apply_schedules(client: Client, settings: Settings, defs: list[ScheduleDef]) -> list[str]:
    """Create the schedules, or update them in place (paused state is kept)."""
    applied = []
    for d in defs:
        sched = _schedule(d, settings)
        try:
            await client.create_schedule(d.schedule_id, sched)
        except ScheduleAlreadyRunningError:

            def update(current: ScheduleUpdateInput, new: Schedule = sched) -> ScheduleUpdate:
                new.state = current.description.schedule.state
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(d.schedule_id).update(update)
        applied.append(d.schedule_id)
    return applied
