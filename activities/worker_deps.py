"""The worker's dependencies: opened once at start, checked to answer, handed to activities.

``worker.build_worker`` calls these steps in order (change store, freshness, Kafka, Avro) and
hands ``WorkerDeps`` to each source's own activity factory (``ConnectorSpec.activities``): a
source whose partitions do more than pages of records (TEMU confirms shipments, reconciles
stock) declares a factory ``(connector, WorkerDeps) -> [activity methods]`` by dotted name,
resolved with ``importlib`` so ``connectors/`` never imports ``activities/``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from activities.encoding import Output
from connectors import REGISTRY
from infra.avro import AvroValues
from infra.change_store import ChangeStore
from infra.connections import kafka_security, redis_client
from infra.kafka_reach import topic_names
from infra.last_success import LastSuccess
from infra.publisher import KafkaPublisher, ensure_topics
from infra.telemetry import FRESHNESS_RETENTION_SECONDS, METRICS
from settings import redact_url

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from connectors.base import Connector
    from settings import Settings

log = logging.getLogger("synchub.worker")

ActivityFactory = Callable[["Connector", "WorkerDeps"], list[Callable[..., Any]]]


@dataclass(frozen=True)
class WorkerDeps:
    """The worker's shared dependencies, built once in ``worker.py``.

    Attributes:
        settings: the worker's settings (topics, brokers, Redis).
        publisher: the one Kafka producer of the worker.
        kafka_security: librdkafka SASL/TLS options for consumers a factory opens.
        resources: closed when the worker stops; a factory registers what it opens.

    """

    settings: Settings
    publisher: KafkaPublisher
    kafka_security: dict[str, Any]
    resources: AsyncExitStack

    def redis(self) -> aioredis.Redis:
        """A Redis client of its own, closed with the worker."""
        client = redis_client(self.settings.redis)
        self.resources.push_async_callback(client.aclose)
        return client


def resolve_factory(dotted: str) -> ActivityFactory:
    """The factory named ``"package.module:function"`` (a spec's ``activities``).

    Raises:
        ValueError: the name is not ``module:function`` or does not name a callable.

    """
    module_name, _, attr = dotted.partition(":")
    if not module_name or not attr:
        raise ValueError(f"activity factory must be 'module:function', got {dotted!r}")
    factory = getattr(importlib.import_module(module_name), attr, None)
    if not callable(factory):
        raise ValueError(f"activity factory {dotted!r} is not a callable in {module_name}")
    return factory  # type: ignore[no-any-return]


def created_topic_config(settings: Settings) -> dict[str, str] | None:
    """Configuration of the topics synchub creates: compacted with ``KAFKA_COMPACT_TOPICS``."""
    return {"cleanup.policy": "compact"} if settings.output.compact_topics else None


async def build_avro(
    settings: Settings, output: Output, connectors: Mapping[str, Connector]
) -> Output:
    """With ``SCHEMA_REGISTRY_URL``: register the Avro schemas of the flat sources at start.

    Flat values of sources with a schema in ``schemas/avro/`` are then Avro in the
    Confluent wire format; the others stay JSON.
    """
    url = settings.output.schema_registry_url
    if not url:
        return output
    topics = {s: c.topic for s, c in connectors.items() if output.format(s) == "flat"}
    avro = await AvroValues.start(url, topics)
    log.info(
        "Avro values (Schema Registry %s) for: %s",
        redact_url(url),
        ", ".join(s for s in topics if avro.encodes(s))
        or "no source (none is flat with an Avro schema)",
    )
    return dataclasses.replace(output, avro=avro)


async def open_store(settings: Settings, resources: AsyncExitStack) -> ChangeStore:
    """The change store, checked to answer (an unreachable Redis names ``REDIS_HOST``)."""
    store = ChangeStore(redis_client(settings.redis), settings.redis.expire_cache)
    resources.push_async_callback(store.aclose)
    try:
        await store.ping(connections=settings.sync.max_concurrent)
    except Exception as exc:
        raise RuntimeError(
            f"cannot reach Redis at REDIS_HOST={redact_url(settings.redis.url)}: {exc}"
        ) from None
    return store


async def restore_freshness(
    settings: Settings, connectors: Mapping[str, Connector], resources: AsyncExitStack
) -> None:
    """Reload the last successful syncs, so freshness has no blind spot after a restart."""
    last_success = LastSuccess(redis_client(settings.redis), FRESHNESS_RETENTION_SECONDS)
    resources.push_async_callback(last_success.aclose)
    await METRICS.freshness.restore(last_success, connectors)
    resources.callback(METRICS.freshness.detach, last_success)


def worker_topics(settings: Settings, connectors: Mapping[str, Connector]) -> list[str]:
    """Every topic the worker writes or reads: records, dead letters, and each spec's own."""
    topics = [c.topic for c in connectors.values()] + [settings.kafka.deadletter_topic]
    for source in connectors:
        spec = REGISTRY[source]
        if spec.topics is not None:
            topics += spec.topics(settings)
    return topics


async def open_publisher(
    settings: Settings, connectors: Mapping[str, Connector], resources: AsyncExitStack
) -> KafkaPublisher:
    """Check the brokers answer, create the worker's topics, and open the one producer."""
    security = kafka_security(settings.kafka)
    # one quiet try naming KAFKA_BROKERS, before librdkafka would retry it in the logs
    await asyncio.to_thread(topic_names, settings.kafka.brokers, security=security)
    topic_config = created_topic_config(settings)
    await asyncio.to_thread(
        functools.partial(ensure_topics, config=topic_config, security=security),
        settings.kafka.brokers,
        worker_topics(settings, connectors),
        settings.kafka.topic_partitions,
    )
    publisher = KafkaPublisher(
        settings.kafka.brokers,
        client_id="synchub-worker",
        delivery_timeout_seconds=settings.kafka.delivery_timeout_seconds,
        topic_partitions=settings.kafka.topic_partitions,
        topic_config=topic_config,
        security=security,
    )
    resources.callback(publisher.close)
    return publisher


def source_activities(
    connectors: Mapping[str, Connector], deps: WorkerDeps
) -> list[Callable[..., Any]]:
    """The activities each configured source declares beyond the generic ones (its spec's)."""
    found: list[Callable[..., Any]] = []
    for source, connector in connectors.items():
        spec = REGISTRY[source]
        if spec.activities:
            found += resolve_factory(spec.activities)(connector, deps)
    return found
