"""Kafka publishing behind one small module, so the client library can change in one place.

confluent-kafka is used because it produces several times faster than aiokafka against
tansu and its idempotent producer works there. Its calls block, so a batch is produced
and flushed in a thread; the activity awaits the whole batch (acks=all) before it commits
fingerprints to Redis: publish first, then commit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from models.errors import RetryableError


@dataclass(frozen=True)
class OutMessage:
    """One message to publish."""

    topic: str
    key: bytes
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]]


class KafkaPublisher:
    """One producer per worker process, shared by all activities."""

    def __init__(self, brokers: str, client_id: str = "synchub", **overrides: Any) -> None:
        config: dict[str, Any] = {
            "bootstrap.servers": brokers,
            "client.id": client_id,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            "message.timeout.ms": 60_000,
        }
        config.update(overrides)
        self._producer = Producer(config)
        self._timeout = config["message.timeout.ms"] / 1000 + 5
        self._lock = threading.Lock()

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        """Publish a batch and wait until every message is acknowledged by all replicas.

        Raises:
            RetryableError: a message was not acknowledged; the page is redone on retry,
                and repeated messages carry the same ``event_id``.

        """
        if messages:
            await asyncio.to_thread(self._publish_blocking, list(messages), self._timeout)

    def _publish_blocking(self, messages: list[OutMessage], timeout: float) -> None:
        errors: list[KafkaError] = []
        remaining = [len(messages)]
        done = threading.Event()

        def on_delivery(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:
                errors.append(err)
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

        for m in messages:
            while True:
                try:
                    self._producer.produce(
                        m.topic,
                        key=m.key,
                        value=m.value,
                        headers=m.headers,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    self._producer.poll(0.05)
                except KafkaException as exc:
                    raise RetryableError(f"Kafka produce failed: {exc}") from None
        # flush serves the delivery callbacks; other activities' messages may flush too.
        with self._lock:
            self._producer.flush(timeout)
        if not done.is_set():
            done.wait(0.1)
        if errors or remaining[0] > 0:
            first = errors[0].str() if errors else "delivery timed out"
            raise RetryableError(
                f"Kafka did not acknowledge {len(errors) or remaining[0]} of {len(messages)} "
                f"messages: {first}"
            )

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, then close the producer's connections.

        Without an explicit close the producer lives until garbage collection and keeps
        reconnecting (and logging) after the broker is gone.
        """
        self._producer.flush(timeout)
        self._producer.close()


def ensure_topics(
    brokers: str, topics: Iterable[str], partitions: int, *, timeout: float = 15.0
) -> list[str]:
    """Create the topics that do not exist yet, each with ``partitions`` partitions.

    Topics are created explicitly because a broker that auto-creates a topic on first produce
    picks its own partition count (tansu: 4), which would silently change per-key ordering
    and consumer parallelism. Existing topics are left alone, whatever their partition count,
    so calling this at every start is safe.

    Args:
        brokers: Comma-separated bootstrap servers.
        topics: Topic names; duplicates are ignored.
        partitions: Partition count for the topics that get created.
        timeout: Seconds for the metadata request and for each creation.

    Returns:
        The names of the topics this call created.

    Raises:
        RuntimeError: a topic could not be created (the broker's reason is included).

    """
    admin = AdminClient({"bootstrap.servers": brokers})
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [t for t in dict.fromkeys(topics) if t not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in wanted],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    created: list[str] = []
    for topic, future in futures.items():
        try:
            future.result(timeout)
            created.append(topic)
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue  # created concurrently by someone else: fine
            raise RuntimeError(f"cannot create Kafka topic {topic!r} on {brokers}: {exc}") from None
    return created
