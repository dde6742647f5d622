"""Avro in the Confluent wire format through a Schema Registry, read back from the topic.

No real Schema Registry installs from PyPI (Confluent's is a Java service; Karapace is not
published there), so ``simulators.schema_registry``, a small endpoint speaking the
registry's REST API, stands in for it over real HTTP. Temporal, tansu and valkey are the
session's real services; WIW is its simulator.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import fastavro
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from activities.encoding import SLOT_SYNC_SHIFT_FIELDS
from infra.avro import AvroValues
from models.sync import RunState, SyncAllInput
from settings import OutputSettings
from simulators.schema_registry import RegistryState, make_registry_app
from simulators.server import ThreadedServer, free_port
from simulators.wiw import WiwState, make_sim_app
from tests.helpers import SIM_TOKEN, Engine, make_settings, read, running_engine
from tests.json_schemas import problems
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

REDIS_DB = 4


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[WiwState, RegistryState, str, str]]:
    wiw, wiw_app = make_sim_app(timezone="UTC", static_token=SIM_TOKEN)
    registry, registry_app = make_registry_app()
    wiw_server = ThreadedServer(wiw_app).start()
    registry_server = ThreadedServer(registry_app).start()
    yield wiw, registry, wiw_server.url, registry_server.url
    wiw_server.stop()
    registry_server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    servers, temporal_client: Client, temporal_address: str, kafka_brokers: str, redis_url: str
) -> AsyncIterator[Engine]:
    _, _, wiw_url, registry_url = servers
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=REDIS_DB,
        wiw_url=wiw_url,
    )
    settings = settings.model_copy(
        update={"output": OutputSettings(formats={"wiw": "flat"}, schema_registry_url=registry_url)}
    )
    async with running_engine(temporal_client, settings) as eng:
        yield eng


async def test_flat_shifts_are_avro_with_the_registered_schema_id(servers, engine: Engine) -> None:
    wiw, registry, _, registry_url = servers
    today = datetime.now(UTC).date()
    ids = wiw.seed(6, days=[today, today + timedelta(days=1)], seed=5)
    result = await engine.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw"),
        id=f"syncall/wiw/avro-{uuid.uuid4().hex[:8]}",
        task_queue=engine.settings.temporal.task_queue,
    )
    assert result.state == RunState.COMPLETED
    wiw.delete(ids[0])
    await engine.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw"),
        id=f"syncall/wiw/avro-{uuid.uuid4().hex[:8]}",
        task_queue=engine.settings.temporal.task_queue,
    )
    subject = f"{engine.settings.kafka.wiw_topic}-value"
    assert subject in registry.subjects  # registered at start, under TopicNameStrategy
    msgs = await read(engine.topic, idle=1.5)
    upserts = [m for m in msgs if not m.tombstone]
    assert sorted(m.key for m in upserts) == sorted(str(i) for i in ids)
    async with httpx.AsyncClient() as http:  # what a consumer does: fetch the schema by id
        for m in upserts:
            assert m.value[:1] == b"\x00"
            (schema_id,) = struct.unpack(">I", m.value[1:5])
            reply = await http.get(f"{registry_url}/schemas/ids/{schema_id}")
            schema = fastavro.parse_schema(json.loads(reply.json()["schema"]))
            shift = fastavro.schemaless_reader(io.BytesIO(m.value[5:]), schema, None)
            assert isinstance(shift, dict)
            assert list(shift) == list(SLOT_SYNC_SHIFT_FIELDS)
            assert problems("wiw.shifts.flat", shift) == []
            assert shift["id"] == int(m.key) and shift["linked_users"] is None
            assert m.headers["op"] == "upsert" and m.headers["event_id"]
    (gone,) = [m for m in msgs if m.tombstone]
    assert gone.key == str(ids[0]) and gone.headers["op"] == "delete"


async def test_an_unreachable_registry_stops_the_worker_naming_the_setting() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RuntimeError, match="SCHEMA_REGISTRY_URL"):
        await asyncio.wait_for(AvroValues.start(url, {"wiw": "wiw.shifts"}), 15)
