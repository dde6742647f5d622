"""End to end: Kaufland order units per storefront through Temporal, Kafka and Redis.

``kaufland-orders`` is in the registry like every source; this module only points its
settings section at the simulator (``Settings.with_sections``), nothing else is special.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from pydantic import SecretStr
from temporalio.client import Client

from connectors.kaufland.connector import SPEC
from connectors.kaufland.settings import KauflandSettings
from models.sync import RunState, SyncAllInput, SyncAllResult
from simulators.kaufland import SIM_CLIENT_KEY, SIM_SECRET_KEY, KauflandState, make_sim_app
from simulators.server import ThreadedServer
from tests.helpers import Engine, envelope, make_settings, read, running_engine
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[KauflandState, ThreadedServer]]:
    state, app = make_sim_app()
    server = ThreadedServer(app).start()
    yield state, server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    sim, temporal_client: Client, temporal_address, kafka_brokers, redis_url
) -> AsyncIterator[Engine]:
    base = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=4,
    )
    cfg = base.section(KauflandSettings).model_copy(
        update={
            "client_key": SecretStr(SIM_CLIENT_KEY),
            "secret_key": SecretStr(SIM_SECRET_KEY),
            "storefronts": ["de", "cz"],
            "api_url": f"{sim[1].url}/v2",
        }
    )
    settings = base.with_sections(cfg)
    async with running_engine(temporal_client, settings, cfg.orders_topic) as eng:
        yield eng


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean(engine: Engine, sim) -> None:
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    await r.flushdb()
    await r.aclose()
    sim[0].reset()


async def sync(engine: Engine) -> SyncAllResult:
    return await engine.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source=SPEC.source),
        id=f"syncall/{SPEC.source}/test-{uuid.uuid4().hex[:8]}",
        task_queue=engine.settings.temporal.task_queue,
    )


async def test_units_of_every_storefront_published_once_then_only_changes(
    sim, engine: Engine
) -> None:
    state, _ = sim
    now = state.now()
    de = state.add_units(130, storefront="de", at=now - 3600, seed=1)
    cz = state.add_units(7, storefront="cz", at=now - 600, seed=2)

    first = await sync(engine)
    assert first.state == RunState.COMPLETED, first
    assert first.partitions.total == 2 and first.partitions.done == 2
    msgs = await read(engine.topic, expect=len(de) + len(cz))
    msgs += await read(engine.topic, idle=1.0)
    assert sorted(m.key for m in msgs) == sorted(str(i) for i in de + cz)
    by_key = {m.key: envelope(m) for m in msgs}
    assert by_key[str(cz[0])]["partition"] == "cz"
    assert by_key[str(de[0])]["data"]["status"] == "open"

    again = await sync(engine)
    assert again.state == RunState.COMPLETED and again.records.upserted == 0
    assert await read(engine.topic, idle=1.0) == []

    state.change(de[:5], status="sent")
    third = await sync(engine)
    changed = await read(engine.topic, expect=5)
    changed += await read(engine.topic, idle=1.0)
    assert third.records.upserted == 5
    assert sorted(m.key for m in changed) == sorted(str(i) for i in de[:5])
    assert {envelope(m)["data"]["status"] for m in changed} == {"sent"}


async def test_refused_keys_fail_the_storefronts_naming_the_setting(sim, engine: Engine) -> None:
    state, _ = sim
    state.add_units(3, storefront="de")
    state.rotate_keys(SIM_CLIENT_KEY, "rotated" + "1" * 57)
    result = await sync(engine)
    assert result.partitions.failed == 2, result
    for failure in result.failed:
        assert "KAUFLAND_CLIENT_KEY/KAUFLAND_SECRET_KEY" in failure.error
        assert SIM_SECRET_KEY not in failure.error and SIM_CLIENT_KEY not in failure.error
    assert state.stats()["auth_refused"] == 2  # once per storefront: not retried
