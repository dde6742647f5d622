"""Reading topics without a consumer group: for ``starter.py watch``, tests and the benchmark.

Partitions are assigned directly (no group join, which tansu holds for half the session
timeout). ``TopicReader`` decides "caught up" by a quiet period, not by the high watermark
(tansu reports it wrong for multi-record batches); ``CommittingReader`` uses the watermark only
as a lower bound of the backlog it must read before an empty poll may end a run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition

log = logging.getLogger("synchub.consumer")

CATCH_UP_SECONDS = 30.0
"""How long ``CommittingReader.next_batch`` keeps polling without getting a message while the
backlog that existed when the reader was created is not read yet; then it gives up with a
WARNING (the rest waits for the next run, nothing is lost)."""


@dataclass(frozen=True)
class Consumed:
    """A message as read back."""

    topic: str
    partition: int
    offset: int
    key: str
    value: bytes
    headers: dict[str, str]
    tombstone: bool = False
    """The value was null on the wire (``value`` is then ``b""``): a Kafka tombstone."""


READ_POLL_SECONDS = 0.2
"""How long one consume of ``TopicReader.read`` waits for its first message."""


class _Backlog:
    """Where each partition's reading stands against its high watermark at the start.

    A fresh consumer may fetch nothing in its first polls (metadata, fetch session, a busy
    machine), so an empty poll means "nothing more" only once this backlog is read. The
    position moves past each message returned and to where librdkafka reports a partition's
    end (which skips offsets without a message, such as a transaction's commit marker). tansu
    reports the high watermark of a multi-record batch as its first offset + 1, i.e. too low,
    never too high: reaching it means the last batch was fetched.
    """

    def __init__(self) -> None:
        self.position: dict[int, int] = {}
        self.end: dict[int, int] = {}

    def start(self, consumer: Consumer, topic: str, partition: int, committed: int) -> None:
        """Note ``partition``'s high watermark; reading starts at ``committed`` or its start."""
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=10, cached=False
        )
        self.position[partition] = committed if committed >= 0 else low
        self.end[partition] = high

    def advance(self, batch: list[Any]) -> None:
        """Move past what ``batch`` (raw messages, partition-end events included) covered."""
        for m in batch:
            err = m.error()
            if err is not None and err.code() != KafkaError._PARTITION_EOF:
                continue
            p, at = m.partition(), m.offset()
            if p is not None and at is not None:
                at = at if err is not None else at + 1
                self.position[p] = max(self.position.get(p, 0), at)

    def unread(self) -> dict[int, int]:
        """Per partition, about how many messages of the starting backlog are not read yet."""
        return {
            p: end - self.position.get(p, 0)
            for p, end in self.end.items()
            if end > self.position.get(p, 0)
        }


class TopicReader:
    """Reads a topic from the beginning (or its end) and returns what arrived since last read.

    From the beginning, the messages that existed when the reader was created are read before
    a quiet period may end a read (within its ``timeout``): a slow first fetch is not "empty".
    """

    def __init__(
        self,
        brokers: str,
        topic: str,
        from_beginning: bool = True,
        *,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": brokers,
                "group.id": "synchub-reader",
                "enable.auto.commit": False,
                "session.timeout.ms": 6000,
                "enable.partition.eof": True,  # the end of a partition moves its position
                **(security or {}),
            }
        )
        meta = self._consumer.list_topics(topic, timeout=10)
        parts = meta.topics[topic].partitions if topic in meta.topics else {0: None}
        self._backlog = _Backlog()
        if from_beginning and topic in meta.topics and meta.topics[topic].error is None:
            for p in sorted(parts):
                self._backlog.start(self._consumer, topic, p, -1)
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        self._consumer.assign([TopicPartition(topic, p, start) for p in sorted(parts)])

    def read(
        self, idle: float = 1.0, timeout: float = 60.0, expect: int | None = None
    ) -> list[Consumed]:
        """Messages until none arrived for ``idle`` seconds (or ``expect`` were read)."""
        out: list[Consumed] = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if expect is not None and len(out) >= expect:
                break
            batch = self._consumer.consume(1000, READ_POLL_SECONDS)
            got = [m for m in batch if m.error() is None]
            for m in batch:
                err = m.error()
                if err is not None and err.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"consume failed: {err}")
            self._backlog.advance(batch)
            if got or self._backlog.unread():
                quiet_since = time.monotonic()
                out.extend(_convert(m) for m in got)
            elif time.monotonic() - quiet_since >= idle:
                break
        return out

    def close(self) -> None:
        """Leave without committing anything."""
        self._consumer.close()


def _convert(m: object) -> Consumed:
    key = m.key()  # type: ignore[attr-defined]
    headers = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in (m.headers() or [])}  # type: ignore[attr-defined]
    return Consumed(
        topic=m.topic(),  # type: ignore[attr-defined]
        partition=m.partition(),  # type: ignore[attr-defined]
        offset=m.offset(),  # type: ignore[attr-defined]
        key=key.decode() if isinstance(key, bytes) else str(key or ""),
        value=m.value() or b"",  # type: ignore[attr-defined]
        headers=headers,
        tombstone=m.value() is None,  # type: ignore[attr-defined]
    )


def tail(
    brokers: str,
    topic: str,
    from_beginning: bool = True,
    follow: bool = True,
    security: Mapping[str, Any] | None = None,
) -> Iterator[Consumed]:
    """Yield messages as they arrive; with ``follow`` never stops (Ctrl-C ends it)."""
    reader = TopicReader(brokers, topic, from_beginning, security=security)
    try:
        while True:
            yield from reader.read(idle=0.5, timeout=1.0)
            if not follow:
                return
    finally:
        reader.close()


class CommittingReader:
    """Reads a topic as consumer group ``group`` and commits one message at a time.

    Partitions are assigned, not subscribed (no group join, which tansu holds for seconds),
    and reading starts at the group's committed offsets. A message is committed only after
    the caller has acted on it, so a crash in between delivers it again: the caller's action
    must be idempotent (TEMU treats a repeated shipment confirmation so).

    The reader notes each partition's high watermark when it is created: the backlog a run
    must not skip (``_Backlog``); ``next_batch`` returns empty only once it is read.
    """

    def __init__(
        self,
        brokers: str,
        topic: str,
        group: str,
        security: Mapping[str, Any] | None = None,
        *,
        catch_up_seconds: float = CATCH_UP_SECONDS,
    ) -> None:
        self.topic = topic
        self._consumer = Consumer(
            {
                "bootstrap.servers": brokers,
                "group.id": group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": True,  # the end of a partition moves its position
                **(security or {}),
            }
        )
        meta = self._consumer.list_topics(topic, timeout=10)
        if topic not in meta.topics or meta.topics[topic].error is not None:
            self._consumer.close()
            raise RuntimeError(f"Kafka topic {topic!r} does not exist")
        parts = [TopicPartition(topic, p) for p in sorted(meta.topics[topic].partitions)]
        committed = self._consumer.committed(parts, timeout=10)
        self._backlog = _Backlog()
        for t in committed:
            self._backlog.start(self._consumer, topic, t.partition, t.offset)
        self._consumer.assign(
            [
                TopicPartition(topic, t.partition, t.offset if t.offset >= 0 else OFFSET_BEGINNING)
                for t in committed
            ]
        )
        self._catch_up_seconds = catch_up_seconds
        self._gave_up = False

    def poll(self, max_messages: int = 100, timeout: float = 0.5) -> list[Consumed]:
        """Up to ``max_messages`` messages, waiting at most ``timeout`` for the first."""
        batch = self._consumer.consume(max_messages, timeout)
        for m in batch:
            err = m.error()
            if err is not None and err.code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(f"consume from {self.topic} failed: {err}")
        self._backlog.advance(batch)
        return [_convert(m) for m in batch if m.error() is None]

    @property
    def caught_up(self) -> bool:
        """Whether every message that existed when the reader was created has been returned."""
        return not self.unread()

    def unread(self) -> dict[int, int]:
        """Per partition, about how many messages of the starting backlog are not read yet."""
        return self._backlog.unread()

    def next_batch(self, max_messages: int = 100, poll_seconds: float = 0.5) -> list[Consumed]:
        """The next messages; empty only once the starting backlog is read, or waited too long.

        Polls again after an empty poll while the backlog is not read, for at most
        ``catch_up_seconds`` without a message; then logs a WARNING naming what is left and
        returns empty (the next run reads it: nothing is committed past it).
        """
        if self._gave_up:
            return []
        started = time.monotonic()
        while True:
            batch = self.poll(max_messages, poll_seconds)
            if batch or self.caught_up:
                return batch
            if time.monotonic() - started >= self._catch_up_seconds:
                self._gave_up = True
                log.warning(
                    "%s: no message for %.0f s although about %d of its backlog are unread "
                    "(partition: messages %s); stopping, the next run reads them",
                    self.topic,
                    self._catch_up_seconds,
                    sum(self.unread().values()),
                    self.unread(),
                )
                return []

    def commit(self, message: Consumed) -> None:
        """Commit past ``message`` (synchronously: done means stored by the broker)."""
        self._consumer.commit(
            offsets=[TopicPartition(message.topic, message.partition, message.offset + 1)],
            asynchronous=False,
        )

    def close(self) -> None:
        """Leave; committed offsets stay with the group."""
        self._consumer.close()
