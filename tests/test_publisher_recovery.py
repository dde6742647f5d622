"""The Kafka publisher survives a broker that is killed and restarted on the same port.

tansu keeps topics in memory: after a restart the topic is gone and the broker no longer
knows the idempotent producer's id, so it answers every produce with ``UnknownProducerId``
(seen in its log). The publisher must notice, rebuild its producer, recreate the topic with
the configured partition count (not the broker's auto-create default), and say why the
failed batch failed. A broker of its own is used, so the session's broker stays up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from devstack.services import KAFKA, DevStack
from infra.consumer import TopicReader
from infra.publisher import KafkaPublisher, OutMessage, ensure_topics
from models.errors import RetryableError

pytestmark = pytest.mark.asyncio(loop_scope="session")
TOPIC = "recovery.test"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DevStack]:
    with DevStack(kafka_port=0, services=[KAFKA], state_dir=tmp_path) as dev:
        yield dev


def batch(n: int, tag: str) -> list[OutMessage]:
    return [
        OutMessage(TOPIC, f"k{i}".encode(), f"{tag}-{i}".encode(), [("event_id", f"{tag}-{i}")])
        for i in range(n)
    ]


def partitions(brokers: str, topic: str) -> int:
    meta = AdminClient({"bootstrap.servers": brokers}).list_topics(timeout=5)
    return len(meta.topics[topic].partitions) if topic in meta.topics else 0


async def test_producer_recovers_after_broker_restart(
    broker: DevStack, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_topics(broker.kafka_brokers, [TOPIC], 2)
    publisher = KafkaPublisher(
        broker.kafka_brokers, delivery_timeout_seconds=4.0, topic_partitions=2
    )
    try:
        await publisher.publish(batch(20, "before"))
        broker.kill(KAFKA)
        broker.restart(KAFKA)
        errors: list[str] = []
        for _attempt in range(3):  # what Temporal's retries of the page would do
            try:
                await publisher.publish(batch(20, "after"))
                break
            except RetryableError as exc:
                errors.append(str(exc))
        else:
            raise AssertionError(f"publisher never recovered: {errors}")
        assert publisher.rebuilds >= 1
        assert any(
            r.levelno == logging.ERROR and "producer rebuilt" in r.getMessage()
            for r in caplog.records
        )
        for err in errors:  # each failure names the topic and the broker's answer
            assert TOPIC in err and "Kafka" in err, err
    finally:
        publisher.close(2.0)
    # recreated by synchub with its partition count, not auto-created by the broker (4)
    assert partitions(broker.kafka_brokers, TOPIC) == 2
    reader = TopicReader(broker.kafka_brokers, TOPIC)
    try:
        got = await asyncio.to_thread(reader.read, 1.0, 30.0, 20)
    finally:
        reader.close()
    assert sorted(m.value.decode() for m in got) == sorted(f"after-{i}" for i in range(20))


async def test_publish_to_a_dead_broker_gives_up_within_the_delivery_timeout(
    broker: DevStack,
) -> None:
    """A flush stuck on a dead broker is bounded, so a SIGTERMed worker still exits in time."""
    ensure_topics(broker.kafka_brokers, [TOPIC], 2)
    publisher = KafkaPublisher(
        broker.kafka_brokers, delivery_timeout_seconds=2.0, topic_partitions=2
    )
    try:
        broker.kill(KAFKA)
        began = time.monotonic()
        with pytest.raises(
            RetryableError, match=f"Kafka did not acknowledge 5 of 5 messages to {TOPIC}"
        ):
            await publisher.publish(batch(5, "dead"))
        # the delivery timeout, then at most 5 s to look for vanished topics, plus slack
        assert time.monotonic() - began < 2.0 + 5.0 + 3.0
    finally:
        publisher.close(1.0)
