"""The stored last successes (``infra.last_success``) on a real valkey: newest wins, bounded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from infra.last_success import KEY_PREFIX, LastSuccess

pytestmark = pytest.mark.asyncio(loop_scope="session")
DAY = 86_400.0


@pytest_asyncio.fixture(loop_scope="session")
async def store(redis_url: str) -> AsyncIterator[LastSuccess]:
    s = LastSuccess(aioredis.Redis.from_url(redis_url), retention=7 * DAY, max_partitions=3)
    yield s
    await s.aclose()


def source() -> str:
    return f"src-{uuid.uuid4().hex[:8]}"


async def test_a_newer_success_wins_and_an_older_one_is_ignored(store: LastSuccess) -> None:
    src = source()
    await store.save(src, "p", 1_000_000.5)
    await store.save(src, "p", 999_000.0)  # a slower worker reporting an older success
    assert await store.load([src, "other"]) == {(src, "p"): 1_000_000.5}
    await store.save(src, "p", 1_000_100.25)
    assert await store.load([src]) == {(src, "p"): 1_000_100.25}


async def test_partitions_that_left_the_window_are_dropped(store: LastSuccess) -> None:
    src = source()
    t0 = 1_000_000.0
    await store.save(src, "2026-01-01", t0)
    await store.save(src, "2026-01-02", t0 + DAY)
    await store.save(src, "2026-01-09", t0 + 7 * DAY + 1)  # the 1st is now 7 days + 1 s old
    assert set(await store.load([src])) == {(src, "2026-01-02"), (src, "2026-01-09")}


async def test_at_most_max_partitions_are_kept_the_newest(
    store: LastSuccess, redis_url: str
) -> None:
    src = source()
    for i in range(5):
        await store.save(src, f"p{i}", 1_000_000.0 + i)
    assert sorted(p for _, p in await store.load([src])) == ["p2", "p3", "p4"]
    r = aioredis.Redis.from_url(redis_url)
    try:
        ttl = await r.ttl(KEY_PREFIX + src)  # a source no longer synced leaves Redis too
    finally:
        await r.aclose()
    assert 0 < ttl <= 7 * DAY
