"""Missed runs of a cron schedule (TEMU inventory full: ``TEMU_INVENTORY_FULL_CRON``).

A real Temporal schedule with a cron spec; the check is given a "now" three days after the
schedule was created, so its due times (Temporal's own reading of the spec) lie in the
past and none ran.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleSpec,
    ScheduleState,
)

from infra.schedule_check import check_schedules
from models.sync import SyncAllInput

pytestmark = pytest.mark.asyncio(loop_scope="session")


def daily_at_two(after: datetime, until: datetime) -> list[datetime]:
    """02:00 UTC times in ``(after, until]``, by hand."""
    day = after.replace(hour=2, minute=0, second=0, microsecond=0)
    out = []
    while day <= until:
        if day > after:
            out.append(day)
        day += timedelta(days=1)
    return out


async def test_a_cron_schedule_is_checked_for_missed_runs(temporal_client: Client) -> None:
    prefix = f"synchub-test-cron-{uuid.uuid4().hex[:8]}"
    handle = await temporal_client.create_schedule(
        prefix,
        Schedule(
            action=ScheduleActionStartWorkflow(
                "SyncAllWorkflow",
                SyncAllInput(source="temu-inventory", params={"mode": "full"}),
                id=f"{prefix}-run",
                task_queue=f"nobody-{prefix}",
            ),
            spec=ScheduleSpec(cron_expressions=["0 2 * * *"]),
            state=ScheduleState(note="test"),
        ),
    )
    try:
        created = (await handle.describe()).info.created_at.astimezone(UTC)
        now = created + timedelta(days=3, minutes=1)
        (found,) = await check_schedules(temporal_client, prefix, now=now)
        expected = daily_at_two(created, now)
        assert len(expected) == 3
        assert found.checked and found.missed == expected
        assert found.line().startswith(f"{prefix}: 3 missed (")

        # before the first 02:00 nothing is due yet
        (early,) = await check_schedules(temporal_client, prefix, now=expected[0])
        assert early.checked and early.missed == []
    finally:
        await handle.delete()
