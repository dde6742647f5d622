"""The last successful sync per source and partition, kept in Redis across worker restarts.

The freshness gauges (``synchub_freshness_seconds``, ``synchub_last_success_timestamp_seconds``)
are read from memory at scrape time; a worker that only remembered its own successes would
export nothing after a restart until the next success, a blind spot for the freshness alert.
Each success is also written here, and a starting worker loads them.

Layout: one hash per source, ``synchub:last_success:<source>``, partition -> unix seconds.
It stays bounded: each write drops the partitions not synced for ``retention`` seconds (a WIW
day that left the window), keeps at most ``max_partitions`` (the newest), and the key expires
``retention`` after its last write (a source no longer synced).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from infra.redis_text import as_text

KEY_PREFIX = "synchub:last_success:"

MAX_PARTITIONS = 2000
"""Partitions kept per source (the newest); far above any window (WIW: a day each)."""

# KEYS[1] hash; ARGV: partition, when, cutoff, max fields, ttl seconds.
# A newer stamp only (workers race; the newest success wins), then the bound.
_SAVE = """
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local when = tonumber(ARGV[2])
if when > old then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local cutoff = tonumber(ARGV[3])
local flat = redis.call('HGETALL', KEYS[1])
local kept = {}
for i = 1, #flat, 2 do
  local t = tonumber(flat[i + 1]) or 0
  if t < cutoff then redis.call('HDEL', KEYS[1], flat[i])
  else table.insert(kept, {flat[i], t}) end
end
local cap = tonumber(ARGV[4])
if #kept > cap then
  table.sort(kept, function(a, b) return a[2] > b[2] end)
  for i = cap + 1, #kept do redis.call('HDEL', KEYS[1], kept[i][1]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return #kept
"""


class LastSuccess:
    """Reads and writes the last-success hashes (one Redis round trip each)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        retention: float,
        max_partitions: int = MAX_PARTITIONS,
    ) -> None:
        """Bind to the worker's Redis client.

        Args:
            redis: the worker's Redis client (closed by ``aclose``).
            retention: seconds after which a partition's stamp is dropped (the gauge's own
                retention, ``infra.telemetry.FRESHNESS_RETENTION_SECONDS``).
            max_partitions: stamps kept per source at most.
        """
        self._r = redis
        self._retention = retention
        self._max = max_partitions
        self._save = redis.register_script(_SAVE)

    async def save(self, source: str, partition: str, when: float) -> None:
        """Record a success at ``when`` (unix seconds), unless a newer one is stored."""
        await self._save(
            keys=[KEY_PREFIX + source],
            args=[partition, repr(when), repr(when - self._retention), self._max, self._ttl],
        )

    async def load(self, sources: Iterable[str]) -> dict[tuple[str, str], float]:
        """Every stored stamp of ``sources``: (source, partition) -> unix seconds."""
        names = list(sources)
        pipe = self._r.pipeline(transaction=False)
        for source in names:
            pipe.hgetall(KEY_PREFIX + source)
        out: dict[tuple[str, str], float] = {}
        for source, stamps in zip(names, await pipe.execute(), strict=True):
            for part, when in stamps.items():
                out[(source, as_text(part))] = float(as_text(when))
        return out

    async def aclose(self) -> None:
        """Close the Redis client."""
        await self._r.aclose()

    @property
    def _ttl(self) -> int:
        return max(1, int(self._retention))
