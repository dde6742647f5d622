"""BASELINE ONLY: the naive per-record syncer that synchub exists to beat. Do not copy it.

This is how a Temporal sync is often first written, and what ``ARCHITECTURE.md`` rules 1 and
2 forbid:

* one activity lists the shift ids of the window and returns them **through workflow
  history**;
* then **one activity per record**: fetch the shift by id (``GET /2/shifts/{id}``), read its
  fingerprint from Redis (one ``GET`` per key), publish it alone (produce + flush per message)
  and write the fingerprint back (one ``SET`` per key).

Every record therefore costs an upstream request, two Redis round trips, a Kafka flush and
about three history events plus its share of workflow tasks. The baseline is given its best
shot so the comparison is conservative: record activities run concurrently (bounded by
``NaiveSyncInput.concurrency``), Kafka is flushed without lingering, the upstream client,
Redis pool and producer are shared, and the message is the same envelope synchub publishes.
Deletions are not handled at all (the naive design cannot see them).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import redis.asyncio as aioredis
    from confluent_kafka import Producer

    from activities.messages import canonical, change_message
    from connectors.wiw import build_wiw
    from connectors.wiw.connector import WiwConnector
    from connectors.wiw.schemas import parse_shift
    from infra.change_store import event_id, fingerprint
    from infra.publisher import OutMessage
    from settings import Settings

SOURCE = "wiw"
"""Source name in the envelope and headers (the same as synchub's)."""
REDIS_PREFIX = "naive:wiw:"
"""Redis key of a shift's fingerprint: one plain string per record."""

_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)


class NaiveSyncInput(BaseModel):
    """Input of ``NaiveSyncWorkflow``."""

    days: list[str]
    """Day partitions (``YYYY-MM-DD``) whose shifts are synced."""
    concurrency: int = Field(default=40, ge=1)
    """Record activities in flight at once."""


class NaiveSyncResult(BaseModel):
    """Counts of a naive run."""

    fetched: int = 0
    """Shifts fetched one by one."""
    upserted: int = 0
    """Shifts published (one flush each)."""
    unchanged: int = 0
    """Shifts whose fingerprint matched Redis."""
    missing: int = 0
    """Ids listed but gone by the time they were fetched."""


class ListIdsInput(BaseModel):
    """Input of the ``naive_list_ids`` activity."""

    days: list[str]
    """Day partitions to list."""


class SyncOneInput(BaseModel):
    """Input of the ``naive_sync_one`` activity: one record."""

    shift_id: int
    """The shift to fetch, compare and publish."""
    day: str
    """Its day partition (goes into the envelope)."""


class SyncOneResult(BaseModel):
    """What happened to one record (travels through history, like everything here)."""

    outcome: str
    """``upserted``, ``unchanged`` or ``missing``."""


class NaiveActivities:
    """The per-record activities; built once with shared clients (its best case).

    Args:
        connector: WIW connector (its HTTP client is used for the per-id fetch).
        redis: Redis client for the per-key ``GET``/``SET``.
        producer: Kafka producer; flushed after every message.
        topic: Topic the shifts are published to.
        expire_seconds: TTL of the fingerprint keys.

    """

    def __init__(
        self,
        connector: WiwConnector,
        redis: aioredis.Redis,
        producer: Producer,
        topic: str,
        expire_seconds: int,
    ) -> None:
        self._connector = connector
        self._redis = redis
        self._producer = producer
        self._topic = topic
        self._ttl = expire_seconds

    @activity.defn(name="naive_list_ids")
    async def list_ids(self, input: ListIdsInput) -> list[list[Any]]:
        """List ``[shift_id, day]`` of every shift starting in the window (ids into history)."""
        out: list[list[Any]] = []
        for day in input.days:
            page = await self._connector.fetch_page(day, None, {})
            out.extend([int(rec.key), day] for rec in page.records)
        return out

    @activity.defn(name="naive_sync_one")
    async def sync_one(self, input: SyncOneInput) -> SyncOneResult:
        """Fetch one shift by id, compare with Redis, publish it alone, remember it."""
        raw = await self._connector.client.shift(input.shift_id)
        if raw is None:
            return SyncOneResult(outcome="missing")
        data = parse_shift(raw).published()
        fp = fingerprint(canonical(data))
        key = f"{REDIS_PREFIX}{input.shift_id}"
        old = await self._redis.get(key)
        if (old.decode() if isinstance(old, bytes) else old) == fp:
            return SyncOneResult(outcome="unchanged")
        message = change_message(
            topic=self._topic,
            source=SOURCE,
            partition=input.day,
            key=str(input.shift_id),
            op="upsert",
            fp=fp,
            event=event_id(SOURCE, str(input.shift_id), 1, fp),
            data=data,
            trace="00-" + "0" * 32 + "-" + "0" * 16 + "-01",
        )
        await asyncio.to_thread(self._produce_and_flush, message)
        await self._redis.set(key, fp, ex=self._ttl)
        return SyncOneResult(outcome="upserted")

    def _produce_and_flush(self, message: OutMessage) -> None:
        errors: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        self._producer.produce(
            message.topic,
            key=message.key,
            value=message.value,
            headers=message.headers,
            on_delivery=on_delivery,
        )
        left = self._producer.flush(30)
        if errors or left:
            raise RuntimeError(f"naive publish failed: {errors[:1] or f'{left} left in queue'}")


@workflow.defn(name="BenchNaiveSyncWorkflow")
class NaiveSyncWorkflow:
    """BASELINE: list ids through history, then one activity per record."""

    @workflow.run
    async def run(self, input: NaiveSyncInput) -> NaiveSyncResult:
        """List the ids, then sync each record in its own activity, ``concurrency`` at once."""
        listed = await workflow.execute_activity_method(
            NaiveActivities.list_ids,
            ListIdsInput(days=input.days),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=_RETRY,
        )
        gate = asyncio.Semaphore(input.concurrency)

        async def one(shift_id: int, day: str) -> SyncOneResult:
            async with gate:
                return await workflow.execute_activity_method(
                    NaiveActivities.sync_one,
                    SyncOneInput(shift_id=shift_id, day=day),
                    start_to_close_timeout=timedelta(minutes=1),
                    retry_policy=_RETRY,
                )

        outcomes = await asyncio.gather(*(one(int(i), str(d)) for i, d in listed))
        result = NaiveSyncResult(fetched=len(outcomes))
        for o in outcomes:
            if o.outcome == "upserted":
                result.upserted += 1
            elif o.outcome == "unchanged":
                result.unchanged += 1
            else:
                result.missing += 1
        return result


@dataclass
class NaiveBundle:
    """The naive activities and the clients to close after its worker stopped."""

    activities: NaiveActivities
    connector: WiwConnector
    redis: aioredis.Redis
    producer: Producer

    async def aclose(self) -> None:
        """Close the HTTP client and the Redis pool; deliver what the producer holds, close it."""
        await self.connector.aclose()
        await self.redis.aclose()
        self.producer.flush(10)
        self.producer.close()


def build_naive(settings: Settings, topic: str, redis_url: str) -> NaiveBundle:
    """Build the naive activities from the same settings the engine's worker uses.

    Args:
        settings: The benchmark's settings tree (WIW and Kafka sections are used).
        topic: Topic of the naive run (kept apart from the engine's).
        redis_url: Redis database of the naive run (kept apart from the engine's).

    Returns:
        The activities and the clients behind them.

    """
    connector = build_wiw(settings)
    redis = aioredis.Redis.from_url(redis_url)
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka.brokers,
            "client.id": "bench-naive",
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 0,  # flushed after every message anyway: do not wait for a batch
        }
    )
    acts = NaiveActivities(connector, redis, producer, topic, settings.redis.expire_cache)
    return NaiveBundle(acts, connector, redis, producer)
