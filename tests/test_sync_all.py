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
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from models.failures import failure_message
from models.sync import Progress, RunState, SyncAllInput, SyncAllResult
from simulators.advoware import AdvowareState
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from tests.helpers import Engine, make_settings, read, running_engine, served_advoware
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
    with served_advoware() as served:
        yield served


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


async def holding(handle: WorkflowHandle[SyncAllWorkflow, SyncAllResult]) -> None:
    """Return once the run has a partition running (its progress query says so)."""
    for _ in range(300):
        if (await handle.query(SyncAllWorkflow.progress)).partitions.running:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{handle.id} never started a partition")


@pytest.mark.parametrize("children_per_run", [500, 1], ids=["one-run", "continue-as-new"])
async def test_overlapping_runs_skip_held_partitions_and_finish(
    sim, engine: Engine, children_per_run: int
) -> None:
    """Issue 8 case 2: a run whose whole batch is held by another run used to wait forever.

    With ``children_per_run=1`` the second run continues as new after every start, and the
    skipped partitions must survive that too.
    """
    state, _ = sim
    active = seed(state, 4, 3)
    state.set_knobs(latency_ms=250)
    # the first run's longer window makes each of its partitions take ~1.5 s (6 pages)
    first = await start(engine, max_concurrent=1, params={"days_ahead": 150})
    # the second run starts while the first holds its first partition
    await holding(first)
    second = await start(engine, max_concurrent=1, children_per_run=children_per_run)

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


async def test_zero_partitions_after_some_is_a_warning(
    sim, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 8 case 6: a listing that suddenly finds nobody must not pass as plain success."""
    state, _ = sim
    active = seed(state, 4, 2)
    before = await finish(await start(engine))
    assert before.partitions.total == len(active) and before.warnings == []
    await read(engine.topic, idle=1.0)

    for kuerzel in active:
        state.set_active(kuerzel, False)  # e.g. the API user lost sight of the employees
    caplog.clear()
    handle = await start(engine)
    empty = await finish(handle)
    assert empty.state == RunState.COMPLETED and empty.partitions.total == 0
    assert len(empty.warnings) == 1
    warning = empty.warnings[0]
    assert "0 employees" in warning and f"{len(active)}" in warning
    progress: Progress = await handle.query(SyncAllWorkflow.progress)
    assert progress.warnings == empty.warnings
    logged = [r for r in caplog.records if r.levelname == "WARNING"]
    assert any("0 employees" in r.getMessage() for r in logged)

    # the next empty run still warns: the last count that had partitions is kept
    assert (await finish(await start(engine))).warnings == empty.warnings


@pytest.mark.parametrize("shape", ["object", "renamed"])
async def test_unparseable_employee_list_names_what_was_received(
    sim, engine: Engine, shape: str
) -> None:
    state, _ = sim
    seed(state, 3, 1)
    names = {e["name"] for e in state.employees()} | {e["vorname"] for e in state.employees()}
    state.set_knobs(employees_shape=shape)
    handle = await start(engine)
    with pytest.raises(WorkflowFailureError) as caught:
        await asyncio.wait_for(handle.result(), RUN_BOUND)
    message = failure_message(caught.value)
    assert "cannot list what to sync" in message
    expected = {"object": "object with keys [Mitarbeiter]", "renamed": "[code, name"}[shape]
    assert expected in message, message
    assert not any(n in message for n in names), "employee data in the error"
