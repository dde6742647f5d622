"""The Kafka contract, read back from the topics: tombstones, formats, JSON Schemas.

Every source (WIW, Advoware, TEMU orders) runs end to end against the session's Temporal,
tansu and valkey with its simulator over real HTTP; every message on every topic is then
validated against its JSON Schema in ``schemas/`` and the deletes are checked to end in a
Kafka tombstone.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from pydantic import SecretStr
from temporalio.client import Client

from activities.encoding import SLOT_SYNC_SHIFT_FIELDS
from activities.worker_deps import created_topic_config
from infra.consumer import Consumed, TopicReader
from infra.publisher import ensure_topics
from models.sync import RunState, SyncAllInput
from settings import OutputSettings, Settings, TemuShop
from simulators import advoware as advoware_sim
from simulators import temu as temu_sim
from simulators import wiw as wiw_sim
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from tests.helpers import SIM_TOKEN, Engine, make_settings, read, running_engine
from tests.json_schemas import problems
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

REDIS_DB = 4


@dataclass
class Sims:
    wiw: wiw_sim.WiwState
    advoware: advoware_sim.AdvowareState
    temu: temu_sim.TemuState
    urls: dict[str, str]


@pytest.fixture(scope="module")
def sims() -> Iterator[Sims]:
    wiw_state, wiw_app = wiw_sim.make_sim_app(timezone="UTC", static_token=SIM_TOKEN)
    adv_state, adv_app = advoware_sim.make_sim_app()
    temu_state, temu_app = temu_sim.make_sim_app()
    servers = {
        name: ThreadedServer(app).start()
        for name, app in (("wiw", wiw_app), ("advoware", adv_app), ("temu", temu_app))
    }
    yield Sims(wiw_state, adv_state, temu_state, {k: s.url for k, s in servers.items()})
    for server in servers.values():
        server.stop()


def all_sources(sims: Sims, services: dict[str, str], **output: Any) -> Settings:
    settings = make_settings(
        temporal_address=services["temporal_address"],
        kafka_brokers=services["kafka_brokers"],
        redis_url=services["redis_url"],
        redis_db=REDIS_DB,
        wiw_url=sims.urls["wiw"],
        advoware=local_advoware_settings(
            sims.advoware, sims.urls["advoware"], days_back=2, days_ahead=10, page_days=31
        ),
        temu_shops=[
            TemuShop(
                id="us-1",
                region="us",
                app_key=temu_sim.SIM_APP_KEY,
                app_secret=SecretStr(temu_sim.SIM_APP_SECRET),
                access_token=SecretStr(temu_sim.SIM_ACCESS_TOKEN),
                api_url=f"{sims.urls['temu']}/openapi/router",
            )
        ],
    )
    return settings.model_copy(update={"output": OutputSettings(**output)})


@pytest.fixture
def services(temporal_address: str, kafka_brokers: str, redis_url: str) -> dict[str, str]:
    return {
        "temporal_address": temporal_address,
        "kafka_brokers": kafka_brokers,
        "redis_url": redis_url,
    }


def seed(sims: Sims) -> None:
    today = datetime.now(UTC).date()
    sims.wiw.seed(12, days=[today, today + timedelta(days=1)], seed=21)
    sims.advoware.seed(2, 6, today, today + timedelta(days=8), seed=21)
    now = int(time.time())
    sims.temu.seed_orders(8, start_ts=now - 86_400, end_ts=now - 60, seed=21)


async def sync_all(eng: Engine, *sources: str) -> None:
    """Run one sync of each source, all at once (they share nothing)."""

    async def one(source: str) -> None:
        params = {"mode": "quick"} if source == "temu-inventory" else {}
        result = await eng.client.execute_workflow(
            SyncAllWorkflow.run,
            SyncAllInput(source=source, params=params),
            id=f"syncall/{source}/contract-{uuid.uuid4().hex[:8]}",
            task_queue=eng.settings.temporal.task_queue,
        )
        assert result.state == RunState.COMPLETED, (source, result)

    await asyncio.gather(*(one(s) for s in sources))


def delete_some(sims: Sims) -> None:
    """Delete two shifts and two appointments upstream."""
    for shift in sims.wiw.all_shifts()[:2]:
        sims.wiw.delete(int(shift["id"]))
    real = [t for t in sims.advoware.appointments() if int(t["frNr"]) > 0]
    for termin in real[:2]:
        sims.advoware.delete(int(termin["frNr"]))


async def read_topic(brokers: str, topic: str) -> list[Consumed]:
    reader = await asyncio.to_thread(TopicReader, brokers, topic)
    try:
        return await read(reader, idle=1.0)
    finally:
        reader.close()


SOURCES = ("wiw", "advoware", "temu-orders")


def desired_stock(sims: Sims, settings: Settings) -> None:
    """The ERP asks for other stock levels than TEMU has: the inventory sync edits them."""
    sims.temu.seed_stock(2, 2, seed=21)
    producer = Producer({"bootstrap.servers": settings.kafka.brokers, "acks": "all"})
    for sku in sims.temu.skus():
        body = json.dumps({"stock": sku["stock"] + 3}).encode()
        producer.produce(settings.temu.stock_topic, key=sku["outSkuSn"].encode(), value=body)
    assert producer.flush(10) == 0


def topics(settings: Settings) -> dict[str, str]:
    """Change topic -> its schema's name stem."""
    return {
        settings.kafka.wiw_topic: "wiw.shifts",
        settings.kafka.advoware_topic: "advoware.appointments",
        settings.temu.orders_topic: "temu.orders",
    }


async def test_every_message_of_every_source_matches_its_schema_and_deletes_end_in_tombstones(
    sims: Sims, temporal_client: Client, services: dict[str, str]
) -> None:
    seed(sims)
    bad = int(sims.wiw.all_shifts()[5]["id"])
    sims.wiw.set_knobs(malformed_ids={bad})
    settings = all_sources(sims, services)
    try:
        async with running_engine(temporal_client, settings) as eng:
            desired_stock(sims, settings)
            await sync_all(eng, *SOURCES, "temu-inventory")
            delete_some(sims)
            await sync_all(eng, "wiw", "advoware")
    finally:
        sims.wiw.reset_knobs()
    brokers = settings.kafka.brokers
    deletes_seen = 0
    names = [*topics(settings), settings.kafka.deadletter_topic, settings.temu.inventory_topic]
    read_back = dict(
        zip(names, await asyncio.gather(*(read_topic(brokers, t) for t in names)), strict=True)
    )
    for topic, schema in topics(settings).items():
        msgs = read_back[topic]
        assert msgs, topic
        last: dict[str, Consumed] = {}
        for m in msgs:
            last[m.key] = m
            assert m.key and set(m.headers) >= {"event_id", "source", "op", "traceparent"}
            if m.tombstone:
                continue
            value = json.loads(m.value)
            assert problems(schema, value) == [], (topic, value)
            assert value["event_id"] == m.headers["event_id"]
        deleted = {m.key: m for m in msgs if m.headers["op"] == "delete" and not m.tombstone}
        if schema != "temu.orders":
            assert len(deleted) == 2, (topic, deleted)
        for key, event in deleted.items():
            deletes_seen += 1
            tomb = last[key]  # the last message of every deleted key has a null value
            assert tomb.tombstone and tomb.value == b""
            assert tomb.headers == event.headers  # same event_id, op=delete, source
            assert tomb.offset > event.offset and tomb.partition == event.partition
    assert deletes_seen == 4
    audit = read_back[settings.temu.inventory_topic]
    assert len(audit) == 4
    for m in audit:
        assert problems("temu.inventory.changes", json.loads(m.value)) == [], m.value
    dead = read_back[settings.kafka.deadletter_topic]
    assert [m.key for m in dead] == [str(bad)]
    for m in dead:
        assert problems("synchub.deadletter", json.loads(m.value)) == []


async def test_flat_format_is_the_record_with_the_event_in_headers(
    sims: Sims, temporal_client: Client, services: dict[str, str]
) -> None:
    seed(sims)
    linked = int(sims.wiw.all_shifts()[0]["id"])
    sims.wiw.change(linked, linked_users=[11, 12])  # slot_sync always sent null
    settings = all_sources(
        sims, services, formats={"wiw": "flat", "advoware": "flat", "temu-orders": "flat"}
    )
    async with running_engine(temporal_client, settings) as eng:
        await sync_all(eng, *SOURCES)
        delete_some(sims)
        await sync_all(eng, "wiw", "advoware")
    brokers = settings.kafka.brokers
    names = list(topics(settings))
    read_back = dict(
        zip(names, await asyncio.gather(*(read_topic(brokers, t) for t in names)), strict=True)
    )
    for topic, schema in topics(settings).items():
        msgs = read_back[topic]
        assert msgs, topic
        for m in msgs:
            assert m.headers["source"] in SOURCES and len(m.headers["event_id"]) == 32
            if m.headers["op"] == "delete":  # a flat delete is the tombstone alone
                assert m.tombstone
                continue
            value = json.loads(m.value)
            assert problems(f"{schema}.flat", value) == [], (topic, value)
            assert "event_id" not in value and "op" not in value
        if schema != "temu.orders":
            deletes = [m for m in msgs if m.headers["op"] == "delete"]
            assert len(deletes) == 2 and len({m.key for m in deletes}) == 2
    shifts = read_back[settings.kafka.wiw_topic]
    first = next(json.loads(m.value) for m in shifts if m.key == str(linked))
    assert list(first) == list(SLOT_SYNC_SHIFT_FIELDS)  # slot_sync's fields, in its order
    assert first["linked_users"] is None and first["id"] == linked
    assert first["start_time"].endswith("Z") and first["updated_at"].endswith("Z")


async def test_topics_synchub_creates_can_be_compacted(kafka_brokers: str) -> None:
    topic = f"compacted.{uuid.uuid4().hex[:8]}"
    compact = created_topic_config(Settings(output=OutputSettings(compact_topics=True)))
    assert created_topic_config(Settings()) is None  # not by default
    created = await asyncio.to_thread(ensure_topics, kafka_brokers, [topic], 1, config=compact)
    assert created == [topic]
    admin = AdminClient({"bootstrap.servers": kafka_brokers})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(10)
    assert configs["cleanup.policy"].value == "compact"
