"""Dead letters without noise: one per bad record per state, never with an empty key.

End to end against the session's Temporal, tansu and valkey, with the WIW simulator over
real HTTP serving malformed shifts; the dead-letter topic is read back.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from temporalio.client import Client

from activities.messages import deadletter_message
from infra.change_store import DEAD_LETTER_LEASE
from models.clock import ManualClock
from models.sync import RunState, SyncAllInput, SyncAllResult
from settings import Settings
from simulators.wiw import WiwState
from tests.clocks import default_clock_at
from tests.helpers import (
    Engine,
    days,
    envelope,
    read,
    running_engine,
    served_wiw,
)
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

REDIS_DB = 2


@pytest.fixture(scope="module")
def sim() -> Iterator[WiwState]:
    with served_wiw() as (state, server):
        state.url = server.url  # type: ignore[attr-defined]
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    sim: WiwState,
    temporal_client: Client,
    settings_for: Callable[..., Settings],
) -> AsyncIterator[Engine]:
    settings = settings_for(
        redis_db=REDIS_DB,
        wiw_url=sim.url,  # type: ignore[attr-defined]
        days_ahead=1,
    )
    async with running_engine(temporal_client, settings) as eng:
        yield eng


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean(engine: Engine, sim: WiwState) -> AsyncIterator[None]:
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    await r.flushdb()
    await r.aclose()
    await read(engine.deadletter, idle=0.3)
    await read(engine.topic, idle=0.3)
    yield
    sim.reset_knobs()


async def sync(eng: Engine) -> SyncAllResult:
    result: SyncAllResult = await eng.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw"),
        id=f"syncall/wiw/dl-{uuid.uuid4().hex[:8]}",
        task_queue=eng.settings.temporal.task_queue,
    )
    assert result.state == RunState.COMPLETED
    return result


def at(day, hour: int) -> datetime:
    return datetime.combine(day, time(), UTC) + timedelta(hours=hour)


async def test_not_resent_when_its_days_page_changes(sim: WiwState, engine: Engine) -> None:
    today = days(1)[0]
    bad = sim.add(at(today, 8), at(today, 12))
    other = sim.add(at(today, 9), at(today, 13))
    sim.set_knobs(malformed_ids={bad})
    first = await sync(engine)
    assert first.records.dead_lettered == 1
    sim.change(other, notes="the day's page changes, the bad record does not")
    second = await sync(engine)
    assert second.records.upserted == 1
    dead = await read(engine.deadletter, idle=1.5)
    assert [m.key for m in dead] == [str(bad)]  # once, not once per changed page
    assert second.records.dead_lettered == 0
    # a new state of the bad record is a new dead letter
    sim.change(bad, notes="still unreadable, but another state")
    await sync(engine)
    again = await read(engine.deadletter, idle=1.5)
    assert [m.key for m in again] == [str(bad)]
    assert again[0].headers["event_id"] != dead[0].headers["event_id"]


async def test_one_dead_letter_for_a_shift_overlapping_two_days(
    sim: WiwState, engine: Engine
) -> None:
    today = days(1)[0]
    bad = sim.add(at(today, 22), at(today, 26))  # crosses midnight: both days list it
    sim.set_knobs(malformed_ids={bad})  # its start is unreadable: no day can tell it owns it
    await sync(engine)
    dead = await read(engine.deadletter, idle=1.5)
    assert [m.key for m in dead] == [str(bad)]


async def test_string_id_is_the_key_and_the_message_says_what_is_wrong(
    sim: WiwState, engine: Engine
) -> None:
    today = days(1)[0]
    bad = sim.add(at(today, 8), at(today, 12))
    sim.set_knobs(malformed_ids={bad}, malformed_style="string_id")
    await sync(engine)
    (dead,) = await read(engine.deadletter, idle=1.5)
    assert dead.key == str(bad)
    body = envelope(dead)
    assert body["source"] == "wiw" and body["partition"] == today.isoformat()
    assert body["field"] == "id"  # the first field the reason names; it names all of them
    assert "start_time" in body["reason"] and body["raw"]["id"] == str(bad)
    assert dead.headers["event_id"] and dead.headers["source"] == "wiw"


async def test_a_record_without_any_id_gets_a_key_all_the_same() -> None:
    """No readable id: the key is the source, partition and a digest of the raw record."""
    msg = deadletter_message(
        topic="t", source="wiw", partition="2026-01-01", key=None, reason="x", raw=[1], trace="t"
    )
    assert msg.key and msg.key.startswith(b"wiw/2026-01-01/")


@pytest.fixture
def manual_clock() -> Iterator[ManualClock]:
    with default_clock_at(datetime(2026, 3, 2, 11, 0, tzinfo=UTC)) as manual:
        yield manual


async def test_a_dead_letter_claimed_by_a_pass_that_never_published_is_sent_later(
    engine: Engine, manual_clock: ManualClock
) -> None:
    """Claimed, then the pass failed before its publish: a later pass sends it after all."""
    store = engine.store
    assert await store.claim_dead_letters("wiw", "d1", "pass-1", ["e1"]) == [True]
    # the same moment, another day returns the same bad record: pass-1 is on it
    assert await store.claim_dead_letters("wiw", "d2", "pass-2", ["e1"]) == [False]
    assert await store.claim_dead_letters("wiw", "d1", "pass-1", ["e1"]) == [True]  # its retry
    manual_clock.advance(DEAD_LETTER_LEASE + timedelta(seconds=1))
    assert await store.claim_dead_letters("wiw", "d1", "pass-3", ["e1"]) == [True]  # taken over
    await store.confirm_dead_letters("wiw", ["e1"])
    manual_clock.advance(DEAD_LETTER_LEASE * 3)
    assert await store.claim_dead_letters("wiw", "d1", "pass-4", ["e1"]) == [False]  # sent once
