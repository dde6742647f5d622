"""A rate limiter shared by every worker process through Redis.

TEMU allows 20 requests per second per app key, and an app key is shared by every worker
process (and every activity in it) that syncs that shop. A limiter in process memory would
let N workers send N times the limit, so the bucket lives in Redis and is read, refilled and
taken from by one Lua script per attempt, atomically in the server.

The script reads the clock with Redis ``TIME``, so the wall clocks of the worker processes
never enter the computation: only durations (how long to sleep) leave Redis.

The bucket is kept as one number, the *theoretical arrival time* of the next token (GCRA,
the token bucket written as a timestamp). An attempt either takes a token now or learns how
long until the next one; the caller sleeps that long and tries again. Tokens are granted
only at the moment of an attempt, never reserved ahead: a process that wakes late from its
sleep (a busy host easily adds tens of milliseconds) then gets a later token instead of
sending late into a slot planned for it, right before requests that went on time. Reserved
slots were measured to put 21 requests into some one-second windows at the upstream under
load; attempts at the moment of sending do not. Within one process the waiters for a key
queue on a local lock, so only one of them polls Redis at a time and they are served in
order.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref

import redis.asyncio as aioredis

from infra.telemetry import METRICS

# KEYS[1] bucket; ARGV[1] interval between tokens (µs), ARGV[2] burst (tokens).
# Returns 0 when a token was taken, else the microseconds until the next one is due.
# Times are microseconds since the epoch held in Lua doubles: exact up to 2^53 (year 2255).
_ACQUIRE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = (tonumber(ARGV[2]) - 1) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if allow_at > now then return math.ceil(allow_at - now) end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat),
           'PX', math.floor((next_tat - now) / 1000) + 1000)
return 0
"""


class RedisRateLimiter:
    """Token buckets in Redis, one per key, shared by every process using the same Redis.

    Args:
        redis: client of the Redis that holds the buckets (the change store's is fine).
        prefix: key prefix; the bucket of ``key`` is ``<prefix>:<sha256(key)[:32]>`` so the
            raw key (a TEMU app key) is never stored in Redis.
    """

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "synchub:ratelimit") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_ACQUIRE)
        self._queues: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    def bucket_key(self, key: str) -> str:
        """The Redis key holding the bucket of ``key`` (hashed, never the raw key)."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return f"{self._prefix}:{digest}"

    async def acquire(self, key: str, rate_per_second: float, burst: int | None = None) -> None:
        """Wait until a request under ``key`` may be sent, then return (send right away).

        There is no timeout of its own: the caller's (an activity's) timeout bounds the
        wait, and a cancelled waiter holds no token.

        Args:
            key: what the limit applies to (the TEMU app key).
            rate_per_second: sustained requests per second for ``key``, over all processes.
            burst: requests allowed back to back after an idle spell. Default 1: requests
                leave evenly spaced at ``1/rate`` seconds. The upstream counts with a
                per-second budget of its own; a burst from us (added to network jitter that
                bunches requests anyway) could fill one of its seconds past the limit, and
                every request over it costs an error and a retry. Smooth spacing keeps every
                one-second window at the upstream at or below the rate, and costs nothing at
                steady load, which is when the limit matters.

        Raises:
            ValueError: a rate or burst that is not positive.
        """
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        burst = 1 if burst is None else burst
        if burst < 1:
            raise ValueError("burst must be at least 1")
        interval_us = 1_000_000.0 / rate_per_second
        bucket = self.bucket_key(key)
        # asyncio locks belong to one event loop; tests may use several
        queues = self._queues.setdefault(asyncio.get_running_loop(), {})
        async with queues.setdefault(bucket, asyncio.Lock()):
            while True:
                wait_us = int(await self._script(keys=[bucket], args=[interval_us, burst]))
                if wait_us <= 0:
                    return
                METRICS.rate_limit_wait(wait_us / 1_000_000)
                await asyncio.sleep(wait_us / 1_000_000)
