"""Kafka publishing behind one small module, so the client library can change in one place.

confluent-kafka is used because it produces several times faster than aiokafka against
tansu and its idempotent producer works there. Its calls block, so a batch is produced
and flushed in a thread; the activity awaits the whole batch (acks=all) before it commits
fingerprints to Redis: publish first, then commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

from models.errors import RetryableError

log = logging.getLogger("synchub.publisher")


class OutMessage(NamedTuple):
    """One message to publish (immutable).

    A named tuple rather than a frozen dataclass: a first sync builds one per new record,
    and a frozen dataclass's ``__init__`` (``object.__setattr__`` per field) costs twice
    as much.
    """

    topic: str
    key: bytes
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]]


RECOVERABLE_BY_REBUILD = frozenset(
    {
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError._FATAL,
        KafkaError._MSG_TIMED_OUT,
    }
)
"""Delivery errors after which the producer is replaced by a new one.

A restarted broker that lost its state (tansu in memory) answers every produce of the old
idempotent producer with ``UnknownProducerId``; librdkafka keeps retrying internally and
reports only ``Message timed out``. A new producer gets a new producer id, so a timed-out
batch also rebuilds it: rebuilding is cheap, and staying with a dead producer loses the run.
"""


class KafkaPublisher:
    """One producer per worker process, shared by all activities.

    Args:
        brokers: Comma-separated bootstrap servers.
        client_id: Client id the broker logs.
        delivery_timeout_seconds: How long a message may wait for its acknowledgement
            (``message.timeout.ms``); bounds a flush against a dead broker, so it must stay
            below the worker's graceful shutdown timeout.
        topic_partitions: Partition count for topics the publisher recreates when they have
            vanished (a broker restarted without its data).
        topic_config: Configuration of the topics it creates, e.g. ``cleanup.policy``.
        security: librdkafka SASL/TLS options (``infra.connections.kafka_security``).
        admin_timeout_seconds: How long a topic check or creation may wait for the broker.
        **overrides: librdkafka settings, e.g. ``{"linger.ms": 20}``.

    """

    def __init__(
        self,
        brokers: str,
        client_id: str = "synchub",
        *,
        delivery_timeout_seconds: float = 30.0,
        topic_partitions: int = 4,
        topic_config: dict[str, str] | None = None,
        security: Mapping[str, Any] | None = None,
        admin_timeout_seconds: float = 15.0,
        **overrides: Any,
    ) -> None:
        self._brokers = brokers
        self._security = dict(security or {})
        self._partitions = topic_partitions
        self._topics = TopicAdmin(
            brokers,
            topic_partitions,
            config=topic_config,
            security=self._security,
            timeout=admin_timeout_seconds,
        )
        self._config: dict[str, Any] = {
            "bootstrap.servers": brokers,
            "client.id": client_id,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            "message.timeout.ms": int(delivery_timeout_seconds * 1000),
            # a vanished topic is recreated by us with our partition count (see _recover),
            # not auto-created by the broker with its own
            "allow.auto.create.topics": False,
            # a delivered message calls no Python: a batch is resolved when flush returns
            # with nothing left, and only failures report (about 10,000 calls less a page)
            "delivery.report.only.error": True,
            "error_cb": self._on_error,
        }
        self._config.update(self._security)
        self._config.update(overrides)
        self._timeout = self._config["message.timeout.ms"] / 1000 + 5
        self._lock = threading.Lock()  # flush and poll: one thread serves callbacks at a time
        self._swap = threading.Lock()
        self._fatal: KafkaError | None = None
        self.rebuilds = 0
        """How often the producer was replaced (fatal or idempotence errors, timeouts)."""
        self._producer = Producer(self._config)

    def _on_error(self, err: KafkaError) -> None:
        """Error callback of librdkafka: remember a fatal error so the next batch rebuilds."""
        if err.fatal():
            log.error("Kafka producer hit a fatal error: %s", err.str())
            self._fatal = err

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        """Publish a batch and wait until every message is acknowledged by all replicas.

        Raises:
            RetryableError: a message was not acknowledged; the page is redone on retry,
                and repeated messages carry the same ``event_id``. When the producer was
                broken (fatal or idempotence error, timeout), it has been rebuilt already.

        """
        if messages:
            await asyncio.to_thread(self._publish_blocking, list(messages), self._timeout)

    def _publish_blocking(self, messages: list[OutMessage], timeout: float) -> None:
        if self._fatal is not None:
            self._rebuild(self._producer, f"fatal error {self._fatal.str()}")
        producer = self._producer
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:  # only failures are reported (delivery.report.only.error)
                errors.append(err)

        for m in messages:
            while True:
                try:
                    producer.produce(
                        m.topic,
                        key=m.key,
                        value=m.value,
                        headers=m.headers,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    with self._lock:  # callbacks are only served under the lock
                        producer.poll(0.05)
                except KafkaException as exc:
                    self._recover(producer, exc.args[0], messages)
                    raise RetryableError(f"Kafka produce failed: {exc}") from None
        # flush serves the failure callbacks; other activities' messages may flush too.
        # Nothing left queued: each of this batch's messages was acknowledged or failed,
        # and its failure callback has run (callbacks are only served under the lock).
        with self._lock:
            left = producer.flush(timeout)
        if errors or left:
            first = errors[0] if errors else None
            rebuilt = self._recover(producer, first, messages)
            topics = ", ".join(sorted({m.topic for m in messages}))
            why = first.str() if first is not None else "delivery timed out"
            unacked = len(errors) or min(left, len(messages))
            raise RetryableError(
                f"Kafka did not acknowledge {unacked} of {len(messages)} "
                f"messages to {topics}: {why}"
                + ("; the producer was rebuilt, the retry uses a new one" if rebuilt else "")
            )

    def _recover(
        self, producer: Producer, err: KafkaError | None, messages: list[OutMessage]
    ) -> bool:
        """After a failed batch: rebuild a broken producer and recreate vanished topics.

        Returns:
            True when the producer was rebuilt.

        """
        rebuilt = False
        if err is None or err.fatal() or err.code() in RECOVERABLE_BY_REBUILD:
            reason = err.str() if err is not None else "delivery timed out"
            rebuilt = self._rebuild(producer, reason)
        try:
            created = self._topics.ensure({m.topic for m in messages}, timeout=5.0)
        except (KafkaException, RuntimeError) as exc:
            log.warning("cannot check Kafka topics after a failed publish: %s", exc)
        else:
            if created:
                log.error(
                    "Kafka topics %s had vanished (broker restarted without its data?); "
                    "recreated with %d partitions",
                    ", ".join(created),
                    self._partitions,
                )
        return rebuilt

    def _rebuild(self, broken: Producer, reason: str) -> bool:
        """Replace ``broken`` by a new producer unless another batch already did."""
        with self._swap:
            if self._producer is not broken:
                return True  # a concurrent batch rebuilt it already
            self._producer = Producer(self._config)
            self._fatal = None
            self.rebuilds += 1
        log.error("Kafka producer rebuilt after: %s", reason)
        # the old producer's queue holds only failed messages; drop it without waiting
        with contextlib.suppress(Exception), self._lock:
            broken.purge(in_queue=True, in_flight=True)
            broken.flush(0)
        return True

    async def prepare_topics(self, topic: str, *others: str) -> str | None:
        """Create whichever of ``topic`` and ``others`` is missing; return ``topic``'s id.

        Every run asks this before it syncs (the id tells whether the topic was recreated
        since the last run), so it costs one metadata request on a kept admin client, plus
        the creations and a second request only when topics are missing. A deleted and
        recreated topic (or one a restarted in-memory broker lost) gets a new id.

        Returns:
            The broker's id of ``topic``'s current incarnation; None if the broker has none.

        Raises:
            RetryableError: the broker did not answer or refused to create a topic; names
                the brokers.

        """
        try:
            return await asyncio.to_thread(self._topics.prepare, topic, *others)
        except RuntimeError as exc:
            raise RetryableError(str(exc)) from None
        except KafkaException as exc:
            raise RetryableError(f"cannot check Kafka topics on {self._brokers}: {exc}") from None

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, then close the producer's connections.

        Without an explicit close the producer lives until garbage collection and keeps
        reconnecting (and logging) after the broker is gone.
        """
        self._producer.flush(timeout)
        self._producer.close()
        self._topics.close()


ANSWER_GRACE = 1.0
"""Seconds an admin request's future is awaited beyond its request timeout, so that
librdkafka's own answer (with its reason) arrives rather than a bare wait timeout."""


class TopicAdmin:
    """Checks, describes and creates topics through one admin client, made on first use.

    A new librdkafka client per question costs a bootstrap connection and a metadata fetch
    (6 to 60 ms measured against tansu, on a run of 200 ms), so the publisher keeps one for
    its lifetime: a question then costs one metadata request (under 1 ms). librdkafka
    reconnects a kept client by itself after a broker restart. Thread-safe.

    Topics are created explicitly because a broker that auto-creates a topic on first produce
    picks its own partition count (tansu: 4), which would silently change per-key ordering
    and consumer parallelism. Existing topics are left alone, whatever their partition count.

    Args:
        brokers: Comma-separated bootstrap servers.
        partitions: Partition count for the topics that get created.
        config: Topic configuration of the created topics (``{"cleanup.policy":
            "compact"}`` with ``KAFKA_COMPACT_TOPICS``); existing topics keep theirs.
        security: librdkafka SASL/TLS options (``infra.connections.kafka_security``).
        timeout: Seconds for each metadata request and each creation.

    """

    def __init__(
        self,
        brokers: str,
        partitions: int,
        *,
        config: dict[str, str] | None = None,
        security: Mapping[str, Any] | None = None,
        timeout: float = 15.0,
    ) -> None:
        self._brokers = brokers
        self._partitions = partitions
        self._config = config or {}
        self._security = dict(security or {})
        self._timeout = timeout
        self._client: AdminClient | None = None
        self._lock = threading.Lock()

    def _admin(self) -> AdminClient:
        with self._lock:
            if self._client is None:
                self._client = AdminClient({"bootstrap.servers": self._brokers, **self._security})
            return self._client

    def ids(self, topics: Iterable[str], timeout: float | None = None) -> dict[str, str | None]:
        """Each topic's id (tansu and Kafka ≥ 2.8 assign one), None if it does not exist.

        One ``DescribeTopics`` (a metadata request) for all of them.

        Raises:
            RuntimeError: the broker did not answer or refused; names the brokers.

        """
        names = list(dict.fromkeys(topics))
        if not names:
            return {}
        wait = self._timeout if timeout is None else timeout
        futures = self._admin().describe_topics(TopicCollection(names), request_timeout=wait)
        ids: dict[str, str | None] = {}
        for name in names:
            try:
                ids[name] = str(futures[name].result(wait + ANSWER_GRACE).topic_id)
            except KafkaException as exc:
                err = exc.args[0]
                if isinstance(err, KafkaError) and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    ids[name] = None
                    continue
                why = str(exc)
            except TimeoutError:
                why = f"no answer within {wait:g} s"
            else:
                continue
            raise RuntimeError(
                f"cannot check Kafka topics on {self._brokers}: describing {name!r}: {why}"
            )
        return ids

    def create(self, topics: Iterable[str], timeout: float | None = None) -> list[str]:
        """Create ``topics``; one that exists already (created concurrently) is fine.

        Returns:
            The names of the topics this call created.

        Raises:
            RuntimeError: a topic could not be created (the broker's reason is included).

        """
        wanted = list(dict.fromkeys(topics))
        if not wanted:
            return []
        wait = self._timeout if timeout is None else timeout
        futures = self._admin().create_topics(
            [
                NewTopic(
                    t, num_partitions=self._partitions, replication_factor=1, config=self._config
                )
                for t in wanted
            ],
            operation_timeout=wait,
            request_timeout=wait,
        )
        created: list[str] = []
        for topic, future in futures.items():
            try:
                future.result(wait + ANSWER_GRACE)
                created.append(topic)
            except KafkaException as exc:
                err = exc.args[0]
                if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue  # created concurrently by someone else: fine
                why = str(exc)
            except TimeoutError:
                why = f"no answer within {wait:g} s"
            else:
                continue
            raise RuntimeError(f"cannot create Kafka topic {topic!r} on {self._brokers}: {why}")
        return created

    def ensure(self, topics: Iterable[str], timeout: float | None = None) -> list[str]:
        """Create those of ``topics`` that do not exist; return the names it created."""
        ids = self.ids(topics, timeout)
        return self.create([t for t, topic_id in ids.items() if topic_id is None], timeout)

    def prepare(self, topic: str, *others: str) -> str | None:
        """Create whichever of ``topic`` and ``others`` is missing; return ``topic``'s id.

        One metadata request when all exist; a second one for the id of a created ``topic``.
        """
        ids = self.ids([topic, *others])
        self.create(t for t, topic_id in ids.items() if topic_id is None)
        return ids[topic] if ids[topic] is not None else self.ids([topic])[topic]

    def close(self) -> None:
        """Let go of the admin client; librdkafka closes its connections when it is freed."""
        with self._lock:
            self._client = None


def ensure_topics(
    brokers: str,
    topics: Iterable[str],
    partitions: int,
    *,
    timeout: float = 15.0,
    config: dict[str, str] | None = None,
    security: Mapping[str, Any] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet, each with ``partitions`` partitions.

    Calling this at every start is safe: existing topics are left alone (``TopicAdmin``).

    Args:
        brokers: Comma-separated bootstrap servers.
        topics: Topic names; duplicates are ignored.
        partitions: Partition count for the topics that get created.
        timeout: Seconds for the metadata request and for each creation.
        config: Topic configuration of the created topics (``{"cleanup.policy":
            "compact"}`` with ``KAFKA_COMPACT_TOPICS``); existing topics keep theirs.
        security: librdkafka SASL/TLS options (``infra.connections.kafka_security``).

    Returns:
        The names of the topics this call created.

    Raises:
        RuntimeError: the broker did not answer, or a topic could not be created (the
            broker's reason is included).

    """
    admin = TopicAdmin(brokers, partitions, config=config, security=security, timeout=timeout)
    try:
        return admin.ensure(topics)
    finally:
        admin.close()
