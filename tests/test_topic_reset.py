"""A topic that lost its messages is noticed, and the cache is voided so nothing stays lost.

tansu keeps topics in memory. Killed and restarted, it has lost every message while Redis still
says "published": before this was handled, every later run reported the records unchanged and
they were never published again, silently. Here a broker of the test's own is killed and
restarted on the same port between two runs; the second run must notice the recreated topic
(new topic id), say so in its result, and republish every record with the event id it had.
``resync`` does the same on demand, for a source or single partitions.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC
from email.utils import parsedate_to_datetime

import pytest
import pytest_asyncio
from temporalio.client import Client

from devstack.services import KAFKA, DevStack
from infra.consumer import TopicReader
from models.sync import RunState, SyncAllInput, SyncAllResult
from simulators.server import ThreadedServer
from simulators.wiw import WiwState, make_sim_app
from tests.helpers import SIM_TOKEN, Engine, days, make_settings, running_engine
from tests.starter_env import settings_env, starter
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
REDIS_DB = 15
DAYS = 3


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[WiwState, ThreadedServer]]:
    state, app = make_sim_app(timezone="UTC", static_token=SIM_TOKEN)
    server = ThreadedServer(app).start()
    yield state, server
    server.stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    with DevStack(
        kafka_port=0, services=[KAFKA], state_dir=tmp_path_factory.mktemp("broker")
    ) as dev:
        yield dev


@pytest_asyncio.fixture(loop_scope="session")
async def engine(
    sim: tuple[WiwState, ThreadedServer],
    broker: DevStack,
    temporal_client: Client,
    temporal_address: str,
    redis_url: str,
) -> AsyncIterator[Engine]:
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=broker.kafka_brokers,
        redis_url=redis_url,
        redis_db=REDIS_DB,
        wiw_url=sim[1].url,
        days_ahead=DAYS - 1,
    )
    settings.kafka.delivery_timeout_seconds = 5.0
    async with running_engine(temporal_client, settings) as eng:
        yield eng


async def sync(eng: Engine, **kw) -> SyncAllResult:  # type: ignore[no-untyped-def]
    return await eng.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw", **kw),
        id=f"syncall/wiw/reset-{uuid.uuid4().hex[:8]}",
        task_queue=eng.settings.temporal.task_queue,
    )


async def topic_events(eng: Engine) -> dict[str, list[str]]:
    """Key -> event ids in the order they are in the topic (read with a fresh reader)."""
    reader = TopicReader(eng.settings.kafka.brokers, eng.settings.kafka.wiw_topic)
    try:
        msgs = await asyncio.to_thread(reader.read, 1.5, 60.0, None)
    finally:
        reader.close()
    out: dict[str, list[str]] = {}
    for m in msgs:
        out.setdefault(m.key, []).append(m.headers["event_id"])
    return out


def day_of(shift: dict) -> str:  # type: ignore[type-arg]
    return parsedate_to_datetime(shift["start_time"]).astimezone(UTC).date().isoformat()


async def test_recreated_topic_voids_the_cache_and_republishes_same_ids(
    sim: tuple[WiwState, ThreadedServer], broker: DevStack, engine: Engine
) -> None:
    state, _ = sim
    state.seed(90, days=days(DAYS), seed=5)
    first = await sync(engine)
    assert first.state == RunState.COMPLETED and first.records.upserted == 90
    before = await topic_events(engine)
    assert len(before) == 90

    broker.kill(KAFKA)  # in memory: every topic and message is gone
    broker.restart(KAFKA)

    second = await sync(engine)
    assert second.state == RunState.COMPLETED, second
    after = await topic_events(engine)
    assert len(after) == 90, f"{90 - len(after)} records lost: {second}"
    assert after == {k: v[:1] for k, v in before.items()}  # everything, with the same ids
    assert any("recreated" in n for n in second.notices), second.notices
    assert second.records.republished == 90 and second.records.upserted == 0

    third = await sync(engine)  # the cache is valid again: nothing more to publish
    assert third.notices == [] and third.records.republished == 0
    assert third.records.unchanged == 90


async def test_resync_republishes_current_state_with_same_ids(
    sim: tuple[WiwState, ThreadedServer], engine: Engine
) -> None:
    state, _ = sim
    state.seed(60, days=days(DAYS), seed=6)
    await sync(engine)
    before = await topic_events(engine)
    one_day = days(DAYS)[1].isoformat()
    only = await sync(engine, resync=True, partitions=[one_day])
    assert any("resync" in n for n in only.notices), only.notices
    in_day = {str(s["id"]) for s in state.all_shifts() if day_of(s) == one_day}
    assert only.records.republished == len(in_day) > 0
    everything = await sync(engine, resync=True)
    assert everything.records.republished == 60 and everything.records.upserted == 0
    after = await topic_events(engine)
    for key, ids in after.items():
        assert set(ids) == set(before[key]), key  # republished under the same event id
    assert (await sync(engine)).records.republished == 0


async def test_starter_resync_command(sim: tuple[WiwState, ThreadedServer], engine: Engine) -> None:
    state, _ = sim
    state.seed(30, days=days(DAYS), seed=7)
    await sync(engine)
    one_day = days(DAYS)[0].isoformat()
    in_day = sum(1 for s in state.all_shifts() if day_of(s) == one_day)
    ran = await starter(
        settings_env(engine.settings), "resync", "wiw", "--partition", one_day, "--wait"
    )
    assert ran.code == 0, ran
    assert f"republished (cache void, same event ids): {in_day}" in ran.out, ran
    assert "notice: resync" in ran.out, ran
    bad = await starter(
        settings_env(engine.settings), "resync", "wiw", "--partition", "1999-01-01", "--wait"
    )
    assert bad.code == 1 and "1999-01-01" in bad.out + bad.err, bad
