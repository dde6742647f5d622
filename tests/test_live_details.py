"""The Web UI's details of a sync-all run follow it while it runs, not only at its end.

Real Temporal dev server, tansu, valkey and the WIW simulator (slowed down so the run
lasts long enough to be watched); the details are read the way the Web UI reads them
(the built-in ``__temporal_workflow_metadata`` query).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from infra.temporal import connect
from models.sync import RunState, SyncAllInput
from simulators.server import ThreadedServer
from simulators.wiw import WiwState
from tests.helpers import Engine, days, running_engine, served_wiw
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
DAYS = 4


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[WiwState, ThreadedServer]]:
    with served_wiw() as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(sim, settings_for) -> AsyncIterator[Engine]:
    settings = settings_for(
        redis_db=5,
        wiw_url=sim[1].url,
        days_ahead=DAYS - 1,
        days_prior=0,
        max_concurrent=1,  # one partition after the other: the run has a middle
    )
    client = await connect(settings.temporal)  # with synchub's interceptors
    async with running_engine(client, settings) as eng:
        yield eng


async def test_details_show_partitions_done_while_the_run_goes_on(sim, engine: Engine) -> None:
    state, _ = sim
    state.seed(3 * DAYS, days=days(DAYS), seed=4)
    # a run of seconds (4 days one after the other): queries are slow on a busy machine
    state.set_knobs(latency_ms=1000)
    wid = f"syncall/wiw/test-{uuid.uuid4().hex[:8]}"
    handle = await engine.client.start_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw", max_concurrent=1),  # one day after the other
        id=wid,
        task_queue=engine.settings.temporal.task_queue,
    )
    seen: list[str] = []
    for _ in range(1200):  # at most 60 s
        text = (await handle.query("__temporal_workflow_metadata")).current_details
        if text and text not in seen:
            seen.append(text)
        if text and not text.endswith("(RUNNING)"):
            break  # the end's details
        await asyncio.sleep(0.05)
    result = await handle.result()
    state.set_knobs(latency_ms=0)
    assert result.state == RunState.COMPLETED and result.partitions.done == DAYS
    running = [d for d in seen if d.endswith("(RUNNING)")]
    assert running, seen
    for line in running:
        assert re.fullmatch(
            r"wiw: [1-3] partitions? done · \d+ fetched · \d+ upserted · 0 failed \(RUNNING\)",
            line,
        ), line
    assert seen[-1].endswith("(COMPLETED)"), seen
