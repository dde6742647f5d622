"""Redis as the soak sees it: keys expired in simulated time, and the source's size.

Redis TTLs run on the wall clock while a simulated week passes in about a real minute, so
the worker's ``EXPIRE_CACHE`` is set beyond the soak and keys are expired here instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import redis

SIMULATED_TTL = timedelta(seconds=604_800)
"""``EXPIRE_CACHE``'s default, applied by the harness in simulated time."""


class SimulatedRedis:
    """Expiry in simulated time and the size of one source's state (see the module docstring).

    Args:
        source: the source whose keys (``synchub:<source>:*``) are measured.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._touched: dict[bytes, datetime] = {}
        """Key -> simulated time it was last accessed (for the simulated TTL)."""

    def expire(self, r: redis.Redis, now: datetime, tick_seconds: float) -> None:
        """Expire, in simulated time, keys with a TTL that were not accessed for a week.

        ``OBJECT IDLETIME`` (seconds since the last access, not changed by the harness's
        own SCAN, TTL and MEMORY USAGE calls) below the tick's real duration means the
        tick's runs used the key, and every access of the change store refreshes its TTL.
        """
        keys = list(r.scan_iter(count=1000))
        if not keys:
            return
        pipe = r.pipeline(transaction=False)
        for key in keys:
            pipe.object("idletime", key)
            pipe.pttl(key)
        replies = pipe.execute()
        gone = []
        for i, key in enumerate(keys):
            idle, ttl = replies[2 * i], replies[2 * i + 1]
            if ttl is None or int(ttl) < 0:
                continue  # no TTL: state that must stay (or already gone)
            if idle is not None and int(idle) <= tick_seconds + 1:
                self._touched[key] = now
            last = self._touched.setdefault(key, now)
            if now - last >= SIMULATED_TTL:
                gone.append(key)
        for key in gone:
            self._touched.pop(key, None)
        if gone:
            r.delete(*gone)

    def size(self, r: redis.Redis) -> tuple[int, int]:
        """Keys and bytes (``MEMORY USAGE``) of the source's state (measuring may SCAN)."""
        keys = list(r.scan_iter(match=f"synchub:{self.source}:*", count=1000))
        pipe = r.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key)
        sizes = pipe.execute() if keys else []
        return len(keys), sum(int(s or 0) for s in sizes)
