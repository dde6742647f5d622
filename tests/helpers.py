"""Shared test helpers: settings for a test's own topics/queue/Redis db, and a running worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr
from temporalio.client import Client

from infra.change_store import ChangeStore
from infra.consumer import Consumed, TopicReader
from infra.publisher import ensure_topics
from infra.telemetry import SwitchSampler, setup_tracing
from models.settings_section import Section
from settings import (
    AdvowareSettings,
    KafkaSettings,
    RedisSettings,
    Settings,
    SyncSettings,
    TemporalSettings,
    TemuSettings,
    TemuShop,
    WiwSettings,
)
from simulators.advoware import AdvowareState
from simulators.advoware import make_sim_app as make_advoware_app
from simulators.server import ThreadedServer
from simulators.wiw import WiwState, make_sim_app
from worker import build_worker

SIM_TOKEN = "sim-static-token"
BERLIN = ZoneInfo("Europe/Berlin")


@contextlib.contextmanager
def served_wiw() -> Iterator[tuple[WiwState, ThreadedServer]]:
    """The WIW simulator (UTC, the tests' static token) on a free port until the block ends."""
    state, app = make_sim_app(timezone="UTC", static_token=SIM_TOKEN)
    server = ThreadedServer(app).start()
    try:
        yield state, server
    finally:
        server.stop()


@contextlib.contextmanager
def served_advoware() -> Iterator[tuple[AdvowareState, ThreadedServer]]:
    """The Advoware simulator (its defaults) on a free port until the block ends."""
    state, app = make_advoware_app()
    server = ThreadedServer(app).start()
    try:
        yield state, server
    finally:
        server.stop()


def today_utc() -> date:
    return datetime.now(UTC).date()


def today_berlin() -> date:
    """Today in Advoware's zone (the simulator's and the connector's calendar)."""
    return datetime.now(BERLIN).date()


def days(n: int, start: int = 0) -> list[date]:
    first = today_utc() + timedelta(days=start)
    return [first + timedelta(days=i) for i in range(n)]


def make_settings(
    *,
    temporal_address: str,
    kafka_brokers: str,
    redis_url: str,
    redis_db: int,
    wiw_url: str = "http://127.0.0.1:9",
    days_ahead: int = 1,
    days_prior: int = 0,
    max_concurrent: int = 20,
    advoware: AdvowareSettings | None = None,
    temu_shops: list[TemuShop] | None = None,
) -> Settings:
    """Settings with a unique task queue and topics, and a Redis db of the test's own.

    Sections that sources declare in their registry entry get the same treatment: each of
    their ``*_topic`` settings is suffixed with the test's tag.
    """
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        temporal=TemporalSettings(address=temporal_address, task_queue=f"test-{tag}"),
        kafka=KafkaSettings(
            brokers=kafka_brokers,
            wiw_topic=f"wiw.shifts.{tag}",
            advoware_topic=f"advoware.appointments.{tag}",
            deadletter_topic=f"dlq.{tag}",
            topic_partitions=2,
        ),
        redis=RedisSettings(url=f"{redis_url.rstrip('/').rsplit('/', 1)[0]}/{redis_db}"),
        sync=SyncSettings(
            days_ahead=days_ahead, days_prior=days_prior, max_concurrent=max_concurrent
        ),
        wiw=WiwSettings(api_url=wiw_url, token=SecretStr(SIM_TOKEN)),
        advoware=advoware or AdvowareSettings(),
        temu=TemuSettings(
            shops=temu_shops or [],
            orders_topic=f"temu.orders.{tag}",
            inventory_topic=f"temu.inventory.{tag}",
            shipments_topic=f"erp.shipments.{tag}",
            stock_topic=f"erp.stock.{tag}",
        ),
    )
    return settings.with_sections(
        *(
            section.model_copy(update={name: f"{value}.{tag}" for name, value in topics})
            for section in settings.sections.values()
            if (topics := _topic_settings(section))
        )
    )


def _topic_settings(section: Section) -> list[tuple[str, str]]:
    """``(field, topic)`` of every ``*_topic`` setting of a section."""
    return [
        (name, value)
        for name in type(section).model_fields
        if name.endswith("_topic") and isinstance(value := getattr(section, name), str)
    ]


def settings_topics(settings: Settings) -> list[str]:
    """Every topic the settings tree names, its fields' sections and the collected ones."""
    sections = [v for v in settings.__dict__.values() if isinstance(v, Section)]
    found: list[str] = []
    for section in [*sections, *settings.sections.values()]:
        found += [t for _, t in _topic_settings(section) if t and t not in found]
    return found


@dataclass
class Engine:
    """A running in-process worker plus readers of its topics."""

    settings: Settings
    client: Client
    store: ChangeStore
    topic: TopicReader
    deadletter: TopicReader


@contextlib.asynccontextmanager
async def running_engine(
    client: Client, settings: Settings, topic: str | None = None
) -> AsyncIterator[Engine]:
    """Flush the test's Redis db, create topics, run a worker until the block ends.

    ``topic`` is the topic ``Engine.topic`` reads (default: the WIW topic).
    """
    r = aioredis.Redis.from_url(settings.redis.url)
    await r.flushdb()
    await r.aclose()
    await asyncio.to_thread(
        ensure_topics,
        settings.kafka.brokers,
        [*settings_topics(settings), *([topic] if topic else [])],
        settings.kafka.topic_partitions,
    )
    bundle = await build_worker(client, settings)
    store = ChangeStore.from_url(settings.redis.url, settings.redis.expire_cache)
    reader = TopicReader(settings.kafka.brokers, topic or settings.kafka.wiw_topic)
    dlq = TopicReader(settings.kafka.brokers, settings.kafka.deadletter_topic)
    try:
        async with bundle.worker:
            yield Engine(settings, client, store, reader, dlq)
    finally:
        reader.close()
        dlq.close()
        await store.aclose()
        await bundle.aclose()


def envelope(msg: Consumed) -> dict[str, Any]:
    return json.loads(msg.value)


async def read(reader: TopicReader, idle: float = 1.5, expect: int | None = None) -> list[Consumed]:
    return await asyncio.to_thread(reader.read, idle, 60.0, expect)


_TRACING: list[Any] = []  # [provider, switch, spans file]: installed once per process


@contextlib.contextmanager
def recorded_spans(tmp_dir: Path) -> Iterator[tuple[InMemorySpanExporter, Path]]:
    """Record the spans of this block into a fresh in-memory exporter (and the spans file).

    OpenTelemetry refuses a second global tracer provider, so every test module of a
    process (xdist worker) shares the first one; its sampler records only while a block
    runs, and the exporter is shut down after it, so modules never see each other's spans.
    """
    if not _TRACING:
        switch = SwitchSampler(on=False)
        spans_file = tmp_dir / "traces.jsonl"
        _TRACING.extend(
            (
                setup_tracing("synchub-test", spans_file=spans_file, sampler=switch),
                switch,
                spans_file,
            )
        )
    provider, switch, spans_file = _TRACING
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    switch.on = True
    try:
        yield exporter, spans_file
    finally:
        switch.on = False
        exporter.shutdown()
