"""The embedded Temporal dev server starts child workflows as fast as its CPU allows.

The dev server has one history shard, and Temporal polls each shard's task queues at most
``history.transferProcessorMaxPollRPS`` (default 20) times a second. Every child start,
workflow task and close notification is such a task, so a sync-all run fanning out
hundreds of employees started about 7 children a second with the server mostly idle
(issue 11: 173 unchanged employees took 21 s, 8.5 s once the poll rate was raised).
``DevStack`` raises the poll rates. The first test checks the running dev server was given
them (wall-clock bounds are for ``make bench``: a loaded machine took 11 s with them too);
the second fans out 60 trivial children through it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from devstack.services import TEMPORAL, TEMPORAL_DYNAMIC_CONFIG, DevStack

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


def test_the_dev_server_runs_with_raised_poll_rates(stack: DevStack) -> None:
    pid = stack.processes[TEMPORAL].pid
    assert pid is not None
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    given = {argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--dynamic-config-value"}
    assert given >= {f"{k}={v}" for k, v in TEMPORAL_DYNAMIC_CONFIG.items()}
    assert all(int(v) >= 1000 for v in TEMPORAL_DYNAMIC_CONFIG.values())


@pytest.mark.asyncio(loop_scope="session")
async def test_sixty_children_start_and_finish(temporal_client: Client) -> None:
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
    print(f"{CHILDREN} children in {seconds:.1f} s")
