"""What the worker hands a source's own activity factory (``ConnectorSpec.activities``).

A source whose partitions do more than pages of records (TEMU confirms shipments, reconciles
stock) declares a factory ``(connector, WorkerDeps) -> [activity methods]`` by dotted name;
the worker resolves it with ``importlib`` so ``connectors/`` never imports ``activities/``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infra.connections import redis_client

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from connectors.base import Connector
    from infra.publisher import KafkaPublisher
    from settings import Settings

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
