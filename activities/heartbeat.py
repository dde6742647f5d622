"""Heartbeat in the background for as long as an activity works.

A crashed worker is noticed after the heartbeat timeout, so that timeout should be short;
but one upstream call can take longer than that (a 5,000-shift day, an on-premise Advoware
connector). Beating from a side task keeps the timeout short without cutting slow calls.
The beat carries ``details`` (a committed cursor), which a retry reads to resume there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from temporalio import activity

HEARTBEAT_EVERY_SECONDS = 3.0
"""Well under the heartbeat timeouts in ``workflows/options.py``."""


class Beat:
    """What the background task reports; set ``details`` after each committed step."""

    def __init__(self) -> None:
        self.details: Any = None

    def now(self) -> None:
        """Report at once (the worker disables the SDK's heartbeat throttle for this)."""
        if self.details is None:
            activity.heartbeat()
        else:
            activity.heartbeat(self.details)


@contextlib.asynccontextmanager
async def heartbeating(every: float = HEARTBEAT_EVERY_SECONDS) -> AsyncIterator[Beat]:
    """Heartbeat every ``every`` seconds until the block ends."""
    beat = Beat()

    async def loop() -> None:
        while True:
            beat.now()
            await asyncio.sleep(every)

    task = asyncio.create_task(loop())
    try:
        yield beat
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def resumed_details() -> Any:
    """Details of the last heartbeat of a previous attempt, if there was one."""
    details = activity.info().heartbeat_details
    return details[0] if details else None
