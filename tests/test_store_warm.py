"""The change store is warm when the worker starts: its connections open, its scripts loaded.

Real valkey from the dev stack. A first run would otherwise open a connection per partition
and have each script refused as unknown (NOSCRIPT) and sent again, on its critical path.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from infra.change_store import ChangeStore

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_ping_opens_the_connections_and_loads_every_script(redis_url: str) -> None:
    admin = aioredis.Redis.from_url(f"{redis_url}/12")
    await admin.script_flush()
    store = ChangeStore.from_url(f"{redis_url}/12", 3_600)
    try:
        await store.ping(connections=5)
        shas = [s.sha for s in store._scripts]
        assert len(shas) == 6 and all(await admin.script_exists(*shas))
        clients = await admin.client_list()
        assert sum(str(c.get("db")) == "12" for c in clients) - 1 >= 5  # without admin's
    finally:
        await store.aclose()
        await admin.aclose()
