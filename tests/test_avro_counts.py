"""A record Avro cannot hold is counted as dead-lettered, not as upserted (issue 12)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest

from activities.encoding import Output
from activities.messages import plan_messages
from activities.plan import Plan, _counted
from infra.avro import AvroValues
from infra.change_store import Version
from models.records import Record
from models.sync import RunState, SyncAllInput
from tests.helpers import Engine, read
from tests.test_avro import engine, servers  # noqa: F401  (the Avro engine, its own instance)
from workflows.sync_all import SyncAllWorkflow

GOOD = {"id": 1, "start_time": "2026-01-01T08:00:00Z", "end_time": "2026-01-01T12:00:00Z"}
BAD = {**GOOD, "id": 2, "notes": 12345}


def _output() -> Output:
    schema = fastavro.parse_schema(json.loads(Path("schemas/avro/wiw.avsc").read_text()))
    return Output(formats={"wiw": "flat"}, avro=AvroValues({"wiw": (7, schema)}))


def _messages(plan: Plan, records: dict[str, Record]) -> list[object]:
    return list(
        plan_messages(
            plan,
            records,
            {k: f"f{k}" for k in records},
            topic="t",
            deadletter_topic="dl",
            source="wiw",
            partition="p",
            trace="tr",
            output=_output(),
        )
    )


def test_an_unencodable_upsert_counts_as_dead_lettered() -> None:
    plan = _counted(Plan(upserts={"1": Version(1, "f1", "m"), "2": Version(1, "f2", "m")}))
    records = {k: Record(key=k, data=d) for k, d in (("1", GOOD), ("2", BAD))}
    assert (plan.counts.upserted, plan.counts.dead_lettered) == (2, 0)
    msgs = _messages(plan, records)
    assert len(msgs) == 2
    assert (plan.counts.upserted, plan.counts.dead_lettered) == (1, 1)


def test_an_unencodable_republish_counts_as_dead_lettered() -> None:
    plan = _counted(Plan(republish={"2": Version(1, "f2", "m")}))
    _messages(plan, {"2": Record(key="2", data=BAD)})
    assert (plan.counts.republished, plan.counts.dead_lettered) == (0, 1)


@pytest.mark.asyncio(loop_scope="session")
async def test_the_run_totals_count_an_unencodable_shift_as_dead_lettered(
    servers,  # noqa: F811
    engine: Engine,  # noqa: F811
) -> None:
    """End to end (Avro through the registry simulator): 3 shifts, one with a number as its
    notes: 2 upserted, 1 dead-lettered, in the run's totals as on Kafka."""
    wiw = servers[0]
    today = datetime.now(UTC).date()
    ids = wiw.seed(3, days=[today], seed=11)
    wiw.change(ids[0], notes=12345)
    result = await engine.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw"),
        id=f"syncall/wiw/avro-{uuid.uuid4().hex[:8]}",
        task_queue=engine.settings.temporal.task_queue,
    )
    assert result.state == RunState.COMPLETED
    dead = [m for m in await read(engine.deadletter, idle=1.0) if m.key == str(ids[0])]
    assert len(dead) == 1 and "Avro" in json.loads(dead[0].value)["reason"]
    assert (result.records.upserted, result.records.dead_lettered) == (2, 1)
