"""Temporal Schedules instead of cron: one per source, overlap policy SKIP.

SKIP is what ``max_instances=1, coalesce=True`` meant under APScheduler: a run that is due
while the previous one still runs is dropped, not queued. Each source declares its schedules in
its registry entry (``ConnectorSpec.schedules``, collected by ``connectors.schedules``); this
module only turns them into Temporal's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

from models.schedules import ScheduleDef
from models.sync import RunState, SyncAllInput
from workflows.options import SOURCE_ATTR, STATE_ATTR
from workflows.sync_all import SyncAllWorkflow

if TYPE_CHECKING:
    from settings import Settings

__all__ = ["ScheduleDef", "apply_schedules"]


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
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy[d.overlap.upper()]),
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
