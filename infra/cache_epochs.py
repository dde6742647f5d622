"""Cache epochs: whether a partition's cache still describes what its topic holds.

The change store remembers what was published so that unchanged records are not published
again. That memory is only true while the topic still holds those messages. When the topic
is deleted and recreated, or a broker that keeps topics in memory restarts, Redis would go on
saying "published" for records the topic no longer has, and they would never be published
again. So each source records the id of the topic incarnation it publishes to, and when that
id changes the source's cache epoch is raised: every partition whose cache belongs to an
older epoch is *void* and republishes its current state (under the same event ids) until a
complete pass has brought it up to date. An operator's resync voids the same way.

Keys (no TTL on the source's, the cache TTL on the partition's):

* ``synchub:<source>:epoch``: the source's cache epoch (an integer, 0 when absent).
* ``synchub:<source>:topic_id``: the topic incarnation the epoch belongs to.
* ``synchub:<source>:<partition>:epoch``: the epoch the partition's cache was last made
  complete in (0 when absent, ``void`` after a resync of just that partition).

One round trip per check; nothing is scanned, whatever the size of the cache.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from infra.redis_text import as_text

VOID = "void"
"""Partition epoch that matches no source epoch: set by a resync of single partitions."""


class CacheEpochs:
    """Reads and moves the cache epochs of sources and their partitions.

    Args:
        client: Redis connection (the change store's database).
        expire_seconds: TTL of a partition's epoch, the same as its fingerprints'.

    """

    def __init__(self, client: aioredis.Redis, expire_seconds: int) -> None:
        self._r = client
        self._ttl = expire_seconds

    @staticmethod
    def _source(source: str) -> str:
        return f"synchub:{source}:epoch"

    @staticmethod
    def _partition(source: str, partition: str) -> str:
        return f"synchub:{source}:{partition}:epoch"

    async def check_topic(self, source: str, topic_id: str) -> bool:
        """Compare the topic's incarnation with the recorded one; void the source if it changed.

        The first check of a source only records the id (nothing was published before it, or
        the cache was lost with it).

        Returns:
            True when the topic was recreated since the last check and the cache was voided.

        """
        key = f"synchub:{source}:topic_id"
        recorded = as_text(await self._r.get(key))
        if recorded == topic_id:
            return False
        pipe = self._r.pipeline(transaction=True)
        if recorded is not None:
            pipe.incr(self._source(source))
        pipe.set(key, topic_id)
        await pipe.execute()
        return recorded is not None

    async def void(self, source: str, partitions: list[str] | None = None) -> None:
        """Void the cache of ``partitions`` (all of the source's when None)."""
        if partitions is None:
            await self._r.incr(self._source(source))
            return
        if partitions:
            pipe = self._r.pipeline(transaction=True)
            for part in partitions:
                pipe.set(self._partition(source, part), VOID, ex=self._ttl)
            await pipe.execute()

    async def is_void(self, source: str, partition: str) -> bool:
        """True while the partition's cache belongs to an older epoch than its source's."""
        current, mine = await self._r.mget(
            [self._source(source), self._partition(source, partition)]
        )
        return (as_text(mine) or "0") != (as_text(current) or "0")

    async def mark_complete(self, source: str, partition: str) -> None:
        """A complete pass has published the partition's current state: its cache is valid."""
        current = as_text(await self._r.get(self._source(source))) or "0"
        await self._r.set(self._partition(source, partition), current, ex=self._ttl)
