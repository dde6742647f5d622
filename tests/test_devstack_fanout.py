"""The embedded Temporal dev server starts child workflows as fast as its CPU allows.

The dev server has one history shard, and Temporal polls each shard's task queues at most
``history.transferProcessorMaxPollRPS`` (default 20) times a second. Every child start,
workflow task and close notification is such a task, so a sync-all run fanning out
hundreds of employees started about 7 children a second with the server mostly idle
(issue 11: 173 unchanged employees took 21 s, 8.5 s once the poll rate was raised).
``DevStack`` raises the poll rates; this test fans out 60 trivial children and needs them
done at well above the throttled rate.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

pytestmark = pytest.mark.asyncio(loop_scope="session")
CHILDREN = 60


@workflow.defn(name="FanoutProbeChild", sandboxed=False)
class FanoutProbeChild:
    @workflow.run
    async def run(self) -> int:
        return 1


@workflow.defn(name="FanoutProbe", sandboxed=False)
class FanoutProbe:
    @workflow.run
    async def run(self, n: int) -> int:
        prefix = workflow.info().workflow_id
        results = await asyncio.gather(
            *(
                workflow.execute_child_workflow(FanoutProbeChild.run, id=f"{prefix}/{i}")
                for i in range(n)
            )
        )
        return sum(results)


async def test_sixty_children_start_and_finish_quickly(temporal_client: Client) -> None:
    queue = f"fanout-{uuid.uuid4().hex[:8]}"
    async with Worker(temporal_client, task_queue=queue, workflows=[FanoutProbe, FanoutProbeChild]):
        await temporal_client.execute_workflow(  # warm: the first run pays start-up costs
            FanoutProbe.run, 1, id=f"{queue}/warm", task_queue=queue
        )
        began = time.perf_counter()
        done = await temporal_client.execute_workflow(
            FanoutProbe.run, CHILDREN, id=f"{queue}/probe", task_queue=queue
        )
        seconds = time.perf_counter() - began
    assert done == CHILDREN
    # throttled: ~20 queue polls a second for every start, task and close -> 6 s and more
    assert seconds < 4.5, f"{CHILDREN} children took {seconds:.1f} s: task queues throttled"
