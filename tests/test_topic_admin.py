"""The topic check on every run's critical path: one admin client, one metadata round trip.

``list_partitions`` makes sure the source's topic and the dead-letter topic exist and reads
the topic's id (a new id voids the cache, see ``test_topic_reset``). A new librdkafka admin
client per check costs a bootstrap connection and a metadata fetch, 6 to 60 ms, on a run of
the order of 200 ms; the publisher keeps one for its lifetime instead. The admin client here
is the real one, counted by a subclass, against a broker of the test's own (it is restarted).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from confluent_kafka.admin import AdminClient

import infra.publisher
from activities.sync import SyncActivities
from devstack.services import KAFKA, REDIS, DevStack
from infra.cache_epochs import CacheEpochs
from infra.change_store import ChangeStore
from infra.publisher import KafkaPublisher
from models.errors import RetryableError
from models.sync import ListPartitionsInput
from simulators.server import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")


class CountingAdmin(AdminClient):
    """The real admin client, counting how many are made and their metadata requests."""

    made = 0
    metadata = 0

    def __init__(self, conf: dict[str, Any]) -> None:
        super().__init__(conf)
        CountingAdmin.made += 1

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        CountingAdmin.metadata += 1
        return super().list_topics(*args, **kwargs)

    def describe_topics(self, *args: Any, **kwargs: Any) -> Any:
        CountingAdmin.metadata += 1
        return super().describe_topics(*args, **kwargs)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    with DevStack(
        kafka_port=0,
        redis_port=0,
        services=[KAFKA, REDIS],
        state_dir=tmp_path_factory.mktemp("topic-admin"),
    ) as dev:
        yield dev


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> type[CountingAdmin]:
    monkeypatch.setattr(infra.publisher, "AdminClient", CountingAdmin)
    CountingAdmin.made = CountingAdmin.metadata = 0
    return CountingAdmin


@pytest_asyncio.fixture(loop_scope="session")
async def redis(services: DevStack) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(services.redis_url)
    yield client
    await client.aclose()


class Source:
    """A source of its own whose runs check their topics as ``list_partitions`` does."""

    def __init__(self, publisher: KafkaPublisher, redis: aioredis.Redis) -> None:
        self.activities = SyncActivities(
            {},
            ChangeStore(redis, 3600),
            publisher,
            f"dlq.{uuid.uuid4().hex[:8]}",
            epochs=CacheEpochs(redis, 3600),
        )
        self.connector: Any = SimpleNamespace(
            topic=f"t.{uuid.uuid4().hex[:8]}", partition_noun="day"
        )
        self.run = ListPartitionsInput(source=f"src-{uuid.uuid4().hex[:8]}")

    async def check(self) -> str | None:
        """One run's topic check; why the cache was voided, if it was."""
        return await self.activities._check_cache(self.run, self.connector, ["d1"])


@pytest_asyncio.fixture(loop_scope="session")
async def source(
    services: DevStack, redis: aioredis.Redis, counting: type[CountingAdmin]
) -> AsyncIterator[Source]:
    publisher = KafkaPublisher(services.kafka_brokers, topic_partitions=2)
    yield Source(publisher, redis)
    publisher.close()


async def test_every_run_checks_its_topics_with_one_admin_client_and_one_request(
    source: Source, counting: type[CountingAdmin]
) -> None:
    assert await source.check() is None  # creates both topics
    counting.metadata = 0
    for _ in range(5):
        assert await source.check() is None
    assert counting.made == 1, f"{counting.made} admin clients made for 6 runs"
    assert counting.metadata == 5, f"{counting.metadata} metadata requests for 5 runs"


async def test_the_admin_client_outlives_a_broker_restart(
    source: Source, services: DevStack, counting: type[CountingAdmin]
) -> None:
    """The restarted in-memory broker lost both topics: they are recreated, the id is new."""
    assert await source.check() is None
    services.kill(KAFKA)
    services.restart(KAFKA)
    why = await source.check()
    assert why is not None and "recreated" in why, why
    assert await source.check() is None
    topics = AdminClient({"bootstrap.servers": services.kafka_brokers}).list_topics(timeout=5)
    # both recreated by synchub with its partition count, not the broker's default
    for name in (source.connector.topic, source.activities._deadletter):
        assert len(topics.topics[name].partitions) == 2, name
    assert counting.made == 1


async def test_an_unreachable_broker_is_a_retryable_error_naming_the_brokers() -> None:
    brokers = f"127.0.0.1:{free_port()}"
    publisher = KafkaPublisher(brokers, admin_timeout_seconds=1.0)
    try:
        with pytest.raises(RetryableError, match=f"cannot check Kafka topics on {brokers}"):
            await publisher.prepare_topics("t", "dlq")
    finally:
        publisher.close(0)


async def test_the_admin_client_uses_the_security_options(services: DevStack) -> None:
    """TLS towards the plaintext test broker cannot work: proof the options reach the client."""
    publisher = KafkaPublisher(
        services.kafka_brokers, admin_timeout_seconds=1.0, security={"security.protocol": "SSL"}
    )
    try:
        with pytest.raises(RetryableError, match="cannot check Kafka topics"):
            await publisher.prepare_topics(f"t.{uuid.uuid4().hex[:8]}")
    finally:
        publisher.close(0)
