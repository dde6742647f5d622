"""Calls retried on their own: one upstream hiccup costs one more request, not the batch.

``retrying`` wraps one call; ``point_lookups`` looks record ids up one by one through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from models.errors import RetryableError
from models.records import Lookup

T = TypeVar("T")

LOOKUP_ATTEMPTS = 5
"""Tries per point lookup before a transient failure fails the chunk (and the activity)."""
LOOKUP_BACKOFF_SECONDS = 0.2
"""First wait between tries of one lookup; doubled per try."""
LOOKUP_MAX_WAIT_SECONDS = 10.0
"""Longest wait between tries, also when the upstream asks for more (``Retry-After``)."""


async def retrying(
    call: Callable[[], Awaitable[T]],
    gate: asyncio.Semaphore | None = None,
    *,
    attempts: int = LOOKUP_ATTEMPTS,
    backoff: float = LOOKUP_BACKOFF_SECONDS,
) -> T:
    """``call()`` (inside ``gate``, if given), tried again on its own after a ``RetryableError``.

    Waits double from ``backoff`` (or are what the upstream asked for in ``Retry-After``),
    at most ``LOOKUP_MAX_WAIT_SECONDS``, outside the gate, so a waiting call does not hold
    a slot others could use. One failure among hundreds of calls then costs one more
    request, not the whole batch and every call of it again.

    Raises:
        RetryableError: the call still failed after ``attempts`` tries.
    """
    for attempt in range(1, attempts + 1):
        try:
            if gate is None:
                return await call()
            async with gate:
                return await call()
        except RetryableError as exc:
            if attempt >= attempts:
                raise
            wait = exc.retry_after or backoff * 2 ** (attempt - 1)
            await asyncio.sleep(min(wait, LOOKUP_MAX_WAIT_SECONDS))
    raise AssertionError("unreachable")  # pragma: no cover


async def point_lookups(
    keys: list[str],
    fetch: Callable[[int], Awaitable[dict[str, Any] | None]],
    convert: Callable[[str, dict[str, Any]], Lookup | None],
    concurrency: int,
    *,
    attempts: int = LOOKUP_ATTEMPTS,
    backoff: float = LOOKUP_BACKOFF_SECONDS,
) -> list[Lookup]:
    """Look up numeric record ids one by one, ``concurrency`` at a time.

    A key that is not a number cannot be an upstream id and ``fetch`` answering ``None``
    (404) both mean "does not exist": a deletion. ``convert`` turns a found raw record into
    its ``Lookup`` or returns ``None`` when it cannot be read: such a key gets no answer,
    so the engine leaves it as it is instead of guessing.

    Each lookup is retried on its own (``RetryableError``: 5xx, timeouts, rate limits) up to
    ``attempts`` times with doubling waits (or the upstream's ``Retry-After``), so one 500
    among hundreds of lookups costs one more request, not the whole chunk.

    Raises:
        RetryableError: a lookup still failed after ``attempts`` tries.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(key: str) -> Lookup | None:
        if not key.isdigit():
            return Lookup(key=key, record=None)
        raw = await retrying(lambda: fetch(int(key)), gate, attempts=attempts, backoff=backoff)
        return Lookup(key=key, record=None) if raw is None else convert(key, raw)

    found = await asyncio.gather(*(one(k) for k in keys))
    return [item for item in found if item is not None]
