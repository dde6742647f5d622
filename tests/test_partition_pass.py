"""The round-trip shape of a partition: a small one is one workflow task and no activity task.

An Advoware employee's calendar is a handful of short pages. ``SyncPartitionWorkflow`` does
them, and the finish, in the ``sync_partition_pass`` local activity, so its history holds
one workflow task and one marker; what does not fit (more than ``max_pages`` pages, or
missing keys to look up) goes on in ``sync_page`` / ``finish_partition`` activities. The
crash case (a re-run resumes at the first uncommitted page) is ``tests/test_crash_resume.py``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from models.sync import PartitionPassInput, RunState, SyncAllInput, SyncAllResult
from simulators.advoware import AdvowareState
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from tests.helpers import Engine, envelope, make_settings, read, running_engine, served_advoware
from workflows.options import partition_workflow_id
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
BERLIN = ZoneInfo("Europe/Berlin")
DAYS_BACK, DAYS_AHEAD = 10, 60
REDIS_DB = 4


def today() -> date:
    return datetime.now(BERLIN).date()


@pytest.fixture
def sim() -> Iterator[tuple[AdvowareState, ThreadedServer]]:
    with served_advoware() as served:
        yield served


def engine_for(sim, client: Client, temporal_address, kafka_brokers, redis_url, page_days: int):
    state, server = sim
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=REDIS_DB,
        advoware=local_advoware_settings(
            state, server.url, days_back=DAYS_BACK, days_ahead=DAYS_AHEAD, page_days=page_days
        ),
    )
    return running_engine(client, settings, settings.kafka.advoware_topic)


def seed(state: AdvowareState, employees: int, per_employee: int) -> list[str]:
    state.seed(
        employees,
        per_employee,
        today() - timedelta(days=DAYS_BACK - 1),
        today() + timedelta(days=DAYS_AHEAD - 1),
        seed=11,
    )
    return [e["kuerzel"] for e in state.employees() if e["aktiv"]]


async def sync(eng: Engine) -> SyncAllResult:
    return await eng.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="advoware"),
        id=f"syncall/advoware/pass-{uuid.uuid4().hex[:8]}",
        task_queue=eng.settings.temporal.task_queue,
    )


async def shape(client: Client, kuerzel: str) -> Counter[str]:
    """Event types of the employee's latest partition run, plus the activity types run."""
    handle = client.get_workflow_handle(partition_workflow_id("advoware", kuerzel))
    history = await handle.fetch_history()
    out: Counter[str] = Counter(EventType.Name(e.event_type) for e in history.events)
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            out["activity:" + e.activity_task_scheduled_event_attributes.activity_type.name] += 1
    return out


async def test_small_partition_is_one_workflow_task_unless_a_key_is_missing(
    sim, temporal_client: Client, temporal_address, kafka_brokers, redis_url
) -> None:
    state, _ = sim
    active = seed(state, 3, 8)
    expected = {
        str(t["frNr"]) for t in state.appointments() if int(t["frNr"]) > 0 and t["anwalt"] in active
    }
    async with engine_for(
        sim, temporal_client, temporal_address, kafka_brokers, redis_url, page_days=31
    ) as eng:
        first = await sync(eng)
        assert first.state == RunState.COMPLETED
        assert first.records.upserted == len(expected) and first.pages == 3 * len(active)
        assert {m.key for m in await read(eng.topic, expect=len(expected))} == expected
        for kuerzel in active:
            events = await shape(eng.client, kuerzel)
            assert events["EVENT_TYPE_WORKFLOW_TASK_COMPLETED"] == 1, events
            assert events["EVENT_TYPE_MARKER_RECORDED"] == 1, events
            assert events["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"] == 0, events
            assert sum(events.values()) <= 7, events
        # one progress key per partition and run: kept for the pass's retries, not a day
        r = aioredis.Redis.from_url(eng.settings.redis.url)
        progress = [k async for k in r.scan_iter(match="synchub:advoware:*:pass:*")]
        ttls = [await r.ttl(k) for k in progress]
        await r.aclose()
        assert len(progress) == len(active) and all(0 < t <= 3_600 for t in ttls), ttls

        again = await sync(eng)
        assert again.records.unchanged == len(expected) and again.records.upserted == 0
        assert again.unchanged_pages == again.pages == first.pages
        assert await read(eng.topic, idle=1.0) == []
        events = await shape(eng.client, active[0])
        assert events["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"] == 0, events

        gone = next(t for t in state.appointments(active[0]) if int(t["frNr"]) > 0)
        state.delete(int(gone["frNr"]))
        third = await sync(eng)
        assert third.records.deleted == 1 and third.records.upserted == 0, third
        events = await shape(eng.client, active[0])
        assert events["activity:sync_page"] == 0, events
        assert events["activity:finish_partition"] == 1, events  # the lookup, heartbeating
        tombstones = [m for m in await read(eng.topic) if m.key == str(gone["frNr"])]
        assert tombstones and envelope(tombstones[0])["op"] == "delete"


async def test_what_does_not_fit_goes_on_in_activities(
    sim, temporal_client: Client, temporal_address, kafka_brokers, redis_url
) -> None:
    """One-day pages outrun the pass's page limit: the rest, and the finish, are activities."""
    state, _ = sim
    active = seed(state, 2, 6)
    pages = DAYS_BACK + DAYS_AHEAD + 1
    assert pages > PartitionPassInput.model_fields["max_pages"].default
    async with engine_for(
        sim, temporal_client, temporal_address, kafka_brokers, redis_url, page_days=1
    ) as eng:
        first = await sync(eng)
        assert first.state == RunState.COMPLETED
        assert first.pages == pages * len(active), first
        published = await read(eng.topic, expect=first.records.upserted)
        assert len({m.key for m in published}) == len(published) == first.records.upserted
        events = await shape(eng.client, active[0])
        assert events["EVENT_TYPE_MARKER_RECORDED"] == 1, events
        assert events["activity:sync_page"] == 1, events  # the pages after the pass's 50
        assert events["activity:finish_partition"] == 1, events
