"""Heartbeat in the background for as long as an activity works.

A crashed worker is noticed after the heartbeat timeout, so that timeout should be short;
but one upstream call can take longer than that (a 5,000-shift day, an on-premise Advoware
connector). Beating from a side task keeps the timeout short without cutting slow calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

HEARTBEAT_EVERY_SECONDS = 3.0
"""Well under the heartbeat timeouts in ``workflows/options.py``."""


@contextlib.asynccontextmanager
async def heartbeating(every: float = HEARTBEAT_EVERY_SECONDS) -> AsyncIterator[None]:
    """Heartbeat every ``every`` seconds until the block ends."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
