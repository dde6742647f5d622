"""A partition whose local pass fails says which partition and what failed (issue 11).

A local activity's failure reaches the workflow as its bare ``ApplicationError`` (only a
timeout comes wrapped in an ``ActivityError``, as an activity's failures always do). The
partition workflow must still fail as ``PartitionFailed`` naming the source, the
partition and the cause, like a failed ``sync_page`` activity.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from models.sync import RunState, SyncAllInput, SyncAllResult
from settings import Settings
from simulators.advoware import AdvowareState
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from tests.helpers import running_engine, served_advoware, today_berlin
from workflows.options import partition_workflow_id
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
REDIS_DB = 10


@pytest.fixture
def sim() -> Iterator[tuple[AdvowareState, ThreadedServer]]:
    with served_advoware() as served:
        yield served


async def test_a_refused_partition_fails_naming_itself_and_the_cause(
    sim, temporal_client: Client, settings_for: Callable[..., Settings]
) -> None:
    state, server = sim
    state.seed(2, 1, today_berlin(), today_berlin() + timedelta(days=2), seed=3)
    refused, fine = [e["kuerzel"] for e in state.employees() if e["aktiv"]][:2]
    state.set_knobs(fail_kuerzel={refused}, fail_kuerzel_status=403)
    settings = settings_for(
        redis_db=REDIS_DB,
        advoware=local_advoware_settings(state, server.url, days_back=1, days_ahead=3),
    )
    async with running_engine(temporal_client, settings, settings.kafka.advoware_topic) as eng:
        result: SyncAllResult = await eng.client.execute_workflow(
            SyncAllWorkflow.run,
            SyncAllInput(source="advoware", partitions=[refused, fine]),
            id=f"syncall/advoware/refused-{uuid.uuid4().hex[:8]}",
            task_queue=settings.temporal.task_queue,
        )
        child = eng.client.get_workflow_handle(partition_workflow_id("advoware", refused))
        with pytest.raises(WorkflowFailureError) as caught:
            await child.result()
    assert result.state == RunState.FAILED and result.partitions.done == 1
    assert [f.partition for f in result.failed] == [refused]
    expected = f"PartitionFailed: advoware/{refused}: a page failed: PermanentError: "
    assert result.failed[0].error.startswith(expected), result.failed
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "PartitionFailed"
    assert cause.non_retryable
