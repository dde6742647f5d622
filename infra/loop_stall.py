"""How long the worker's event loop was held: the longest stall, measured from inside.

The event loop of a worker runs workflow tasks, activity heartbeats, progress queries and the
Redis client. CPU work that holds it (parsing or fingerprinting a big page) delays all of them:
Redis replies time out, workflow tasks exceed their 5 s, queries take seconds. A task that
sleeps a few milliseconds and records how late it wakes up measures exactly that delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

log = logging.getLogger("synchub.loop")


class LoopStallMonitor:
    """Sleeps ``interval`` in a loop and records how much later than asked it woke up.

    Args:
        interval: Seconds between probes; the resolution of the measurement.
        warn_after: Stalls at least this long are logged at WARNING as they happen.

    """

    def __init__(self, interval: float = 0.01, warn_after: float = 1.0) -> None:
        self.interval = interval
        self.warn_after = warn_after
        self.longest = 0.0
        """Longest stall seen so far, in seconds."""
        self.stalls_over_100ms = 0
        """How many probes woke up more than 100 ms late."""
        self._task: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(self.interval)
            late = time.perf_counter() - began - self.interval
            if late > self.longest:
                self.longest = late
            if late > 0.1:
                self.stalls_over_100ms += 1
            if late >= self.warn_after:
                log.warning("event loop was blocked for %.0f ms", late * 1000)

    def start(self) -> LoopStallMonitor:
        """Start probing on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._probe())
        return self

    async def stop(self) -> float:
        """Stop probing; returns the longest stall in seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return self.longest
