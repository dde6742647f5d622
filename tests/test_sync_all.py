"""The sync-all orchestration against the real dev server: runs that overlap, empty listings.

The Advoware simulator (real HTTP, with latency so partitions take a while) provides the
partitions; two sync-all runs of the same source compete for the per-partition workflow ids.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from temporalio.client import Client, WorkflowHandle

from infra.devrun import local_advoware_settings
from models.sync import Progress, RunState, SyncAllInput, SyncAllResult
from simulators.advoware import AdvowareState, make_sim_app
from simulators.server import ThreadedServer
from tests.helpers import Engine, make_settings, read, running_engine
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
BERLIN = ZoneInfo("Europe/Berlin")
DAYS_BACK, DAYS_AHEAD = 5, 20
RUN_BOUND = 30.0
"""Seconds a run of a few slow partitions may take before it counts as hung."""


def today() -> date:
    return datetime.now(BERLIN).date()


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[AdvowareState, ThreadedServer]]:
    state, app = make_sim_app()
    server = ThreadedServer(app).start()
    yield state, server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    sim, temporal_client: Client, temporal_address, kafka_brokers, redis_url
) -> AsyncIterator[Engine]:
    state, server = sim
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=14,
        advoware=local_advoware_settings(
            state, server.url, days_back=DAYS_BACK, days_ahead=DAYS_AHEAD, page_days=31
        ),
    )
    async with running_engine(temporal_client, settings, settings.kafka.advoware_topic) as eng:
        yield eng


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean(sim, engine: Engine) -> AsyncIterator[None]:
    state, _ = sim
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    await r.flushdb()
    await r.aclose()
    yield
    state.reset_knobs()


def seed(state: AdvowareState, employees: int, per_employee: int) -> list[str]:
    state.seed(
        employees,
        per_employee,
        today() - timedelta(days=DAYS_BACK - 1),
        today() + timedelta(days=DAYS_AHEAD - 1),
        seed=21,
    )
    return [e["kuerzel"] for e in state.employees() if e["aktiv"]]


async def start(eng: Engine, **kw) -> WorkflowHandle[SyncAllWorkflow, SyncAllResult]:
    return await eng.client.start_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="advoware", **kw),
        id=f"syncall/advoware/test-{uuid.uuid4().hex[:8]}",
        task_queue=eng.settings.temporal.task_queue,
    )


async def finish(handle: WorkflowHandle[SyncAllWorkflow, SyncAllResult]) -> SyncAllResult:
    """The run's result, or a failure showing its progress when it does not end in time."""
    try:
        return await asyncio.wait_for(handle.result(), RUN_BOUND)
    except TimeoutError:
        progress: Progress = await handle.query(SyncAllWorkflow.progress)
        await handle.terminate("hung in a test")
        pytest.fail(f"{handle.id} still {progress.state} after {RUN_BOUND:.0f} s: {progress}")


async def test_overlapping_runs_skip_held_partitions_and_finish(sim, engine: Engine) -> None:
    """Issue 8 case 2: a run whose whole batch is held by another run used to wait forever."""
    state, _ = sim
    active = seed(state, 4, 3)
    state.set_knobs(latency_ms=250)  # a partition takes about a second
    first = await start(engine, max_concurrent=1)
    # the second run starts while the first holds its first partition
    await asyncio.sleep(0.5)
    second = await start(engine, max_concurrent=1)

    one, two = await finish(first), await finish(second)

    for result in (one, two):
        assert result.state == RunState.COMPLETED
        p = result.partitions
        assert p.total == len(active)
        assert p.pending == 0 and p.running == 0
        assert p.done + p.skipped == len(active)
        assert sorted(result.skipped) == sorted(set(result.skipped))
        assert len(result.skipped) == p.skipped
    assert two.partitions.skipped >= 1  # the partition the first run held
    synced = set(active) - set(one.skipped) | set(active) - set(two.skipped)
    assert synced == set(active)  # every partition was synced by one of the two runs
    await read(engine.topic, idle=1.0)
