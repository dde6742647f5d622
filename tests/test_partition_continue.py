"""A partition that continues as new carries its cursor, checkpoint and counts to the next run.

``SyncPartitionWorkflow`` continues as new between page activities when its history grows
long (``options.PARTITION_HISTORY_LIMIT``). With the limit at 0 every page activity that
leaves a cursor ends the run, so a long Advoware calendar (one-day pages, more than the
local pass's and one ``sync_page``'s 50 pages) spans several runs; the final result must
still count every page and record once, and every appointment is published once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import Client

from models.sync import PartitionPassInput, RunState, SyncAllInput
from simulators.advoware import AdvowareState
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from tests.helpers import make_settings, read, running_engine, served_advoware
from workflows import options
from workflows.options import partition_workflow_id
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
BERLIN = ZoneInfo("Europe/Berlin")
DAYS_BACK, DAYS_AHEAD = 10, 150
REDIS_DB = 5


def today() -> date:
    return datetime.now(BERLIN).date()


@pytest.fixture
def sim() -> Iterator[tuple[AdvowareState, ThreadedServer]]:
    with served_advoware() as served:
        yield served


async def test_partition_continued_as_new_counts_every_page_once(
    sim, monkeypatch, temporal_client: Client, temporal_address, kafka_brokers, redis_url
) -> None:
    state, server = sim
    state.seed(
        1,
        30,
        today() - timedelta(days=DAYS_BACK - 1),
        today() + timedelta(days=DAYS_AHEAD - 1),
        seed=7,
    )
    (kuerzel,) = [e["kuerzel"] for e in state.employees() if e["aktiv"]]
    expected = {str(t["frNr"]) for t in state.appointments(kuerzel) if int(t["frNr"]) > 0}
    pages = DAYS_BACK + DAYS_AHEAD + 1
    assert pages > 2 * PartitionPassInput.model_fields["max_pages"].default  # >= 2 page loops
    monkeypatch.setattr(options, "PARTITION_HISTORY_LIMIT", 0)
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=REDIS_DB,
        advoware=local_advoware_settings(
            state, server.url, days_back=DAYS_BACK, days_ahead=DAYS_AHEAD, page_days=1
        ),
    )
    async with running_engine(temporal_client, settings, settings.kafka.advoware_topic) as eng:
        result = await eng.client.execute_workflow(
            SyncAllWorkflow.run,
            SyncAllInput(source="advoware", partitions=[kuerzel]),
            id=f"syncall/advoware/can-{uuid.uuid4().hex[:8]}",
            task_queue=eng.settings.temporal.task_queue,
        )
        assert result.state == RunState.COMPLETED, result
        assert result.pages == pages, result
        assert result.records.fetched == result.records.upserted == len(expected), result
        published = await read(eng.topic, expect=len(expected))
        published += await read(eng.topic, idle=1.0)
        assert sorted(m.key for m in published) == sorted(expected)
        wf_id = partition_workflow_id("advoware", kuerzel)
        runs = [w async for w in eng.client.list_workflows(f"WorkflowId = '{wf_id}'")]
        assert len(runs) >= 3, runs  # the pass's run, one per page activity leaving a cursor
