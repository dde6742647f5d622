"""CommittingReader reads the backlog that existed at its start before an empty poll ends a run.

Against the session's real tansu broker: a fresh consumer's first polls may come back empty
(metadata, fetch session, a busy machine), which must not read as "nothing waiting".
"""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from confluent_kafka import Producer

from infra.consumer import CommittingReader, TopicReader
from infra.publisher import ensure_topics

TINY_POLL = 0.001
"""So short that a fresh consumer's first poll returns nothing."""


def new_topic(brokers: str, partitions: int = 2) -> str:
    topic = f"backlog.{uuid.uuid4().hex[:8]}"
    ensure_topics(brokers, [topic], partitions)
    return topic


def produce(brokers: str, topic: str, n: int, **config: object) -> None:
    """``n`` messages over the partitions; with ``linger.ms`` they go as multi-record batches."""
    producer = Producer({"bootstrap.servers": brokers, "acks": "all", **config})
    transactional = "transactional.id" in config
    if transactional:
        producer.init_transactions(10)
        producer.begin_transaction()
    for i in range(n):
        producer.produce(topic, key=f"k{i}".encode(), value=b"v", partition=i % 2)
    if transactional:
        producer.commit_transaction(10)
    assert producer.flush(10) == 0


def drain(reader: CommittingReader) -> list[str]:
    keys: list[str] = []
    while batch := reader.next_batch(100, TINY_POLL):
        keys += [m.key for m in batch]
        for m in batch:
            reader.commit(m)
    return keys


def test_the_whole_backlog_is_read_although_the_first_polls_are_empty(kafka_brokers: str) -> None:
    topic = new_topic(kafka_brokers)
    produce(kafka_brokers, topic, 7, **{"linger.ms": 50})  # multi-record batches
    produce(kafka_brokers, topic, 3)
    reader = CommittingReader(kafka_brokers, topic, f"g-{uuid.uuid4().hex[:6]}")
    try:
        assert not reader.caught_up
        assert sorted(drain(reader)) == sorted([*(f"k{i}" for i in range(7)), "k0", "k1", "k2"])
        assert reader.caught_up and reader.unread() == {}
    finally:
        reader.close()


def test_an_empty_topic_or_a_read_backlog_ends_at_once(kafka_brokers: str) -> None:
    topic = new_topic(kafka_brokers)
    group = f"g-{uuid.uuid4().hex[:6]}"
    reader = CommittingReader(kafka_brokers, topic, group)
    try:
        started = time.monotonic()
        assert reader.next_batch(100, TINY_POLL) == []
        assert time.monotonic() - started < 2
    finally:
        reader.close()
    produce(kafka_brokers, topic, 4)
    first = CommittingReader(kafka_brokers, topic, group)
    try:
        assert len(drain(first)) == 4
    finally:
        first.close()
    again = CommittingReader(kafka_brokers, topic, group)  # starts at the committed offsets
    try:
        started = time.monotonic()
        assert again.caught_up and again.next_batch(100, TINY_POLL) == []
        assert time.monotonic() - started < 2
    finally:
        again.close()


def test_a_transactional_backlog_ends_without_waiting_for_its_commit_markers(
    kafka_brokers: str,
) -> None:
    """A transaction's commit marker takes an offset no message is returned for."""
    topic = new_topic(kafka_brokers)
    produce(kafka_brokers, topic, 4, **{"transactional.id": f"tx-{uuid.uuid4().hex[:6]}"})
    reader = CommittingReader(kafka_brokers, topic, f"g-{uuid.uuid4().hex[:6]}")
    try:
        started = time.monotonic()
        assert len(drain(reader)) == 4
        assert time.monotonic() - started < 5
    finally:
        reader.close()


def test_a_backlog_that_never_arrives_ends_after_the_bounded_wait_with_a_warning(
    kafka_brokers: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = new_topic(kafka_brokers)
    produce(kafka_brokers, topic, 3)
    reader = CommittingReader(
        kafka_brokers, topic, f"g-{uuid.uuid4().hex[:6]}", catch_up_seconds=0.3
    )
    try:
        # stands in for a broker that does not deliver: the fetches of both partitions stopped
        reader._consumer.pause(reader._consumer.assignment())
        with caplog.at_level(logging.WARNING, logger="synchub.consumer"):
            started = time.monotonic()
            assert reader.next_batch(100, TINY_POLL) == []
            assert 0.3 <= time.monotonic() - started < 3
        assert sum(reader.unread().values()) >= 2  # tansu's watermark: at least one per partition
        (warning,) = [r for r in caplog.records if r.name == "synchub.consumer"]
        assert topic in warning.getMessage() and "unread" in warning.getMessage()
        assert reader.next_batch(100, TINY_POLL) == []  # gave up: no second wait
    finally:
        reader.close()


def test_a_topic_reader_reads_what_was_there_although_its_first_fetch_is_slow(
    kafka_brokers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import infra.consumer

    monkeypatch.setattr(infra.consumer, "READ_POLL_SECONDS", TINY_POLL)
    topic = new_topic(kafka_brokers)
    produce(kafka_brokers, topic, 5, **{"linger.ms": 50})
    reader = TopicReader(kafka_brokers, topic)
    try:
        assert sorted(m.key for m in reader.read(idle=0.0, timeout=20)) == [
            f"k{i}" for i in range(5)
        ]
        started = time.monotonic()  # caught up: a quiet period ends the next read again
        assert reader.read(idle=0.2, timeout=20) == []
        assert time.monotonic() - started < 3
    finally:
        reader.close()
