"""Every Redis client the worker builds packs commands in C (hiredis), not in Python.

redis-py's asyncio connection packs each argument in Python (about a microsecond each, on
the event loop); a 10,000-shift first sync commits tens of thousands of keys and versions.
``ChangeStore.from_url`` used the hiredis packer, but the worker builds its clients with
``redis_client`` (ACL user, TLS files), which had dropped it: a first sync's profile showed
``pack_command`` again (issue 11).
"""

from __future__ import annotations

import pytest
from redis.asyncio.connection import SSLConnection
from redis.utils import HIREDIS_AVAILABLE

from infra.change_store import HiredisPacking
from infra.connections import redis_client
from settings import RedisSettings


@pytest.mark.skipif(not HIREDIS_AVAILABLE, reason="hiredis is a pinned dependency")
def test_plain_redis_clients_pack_with_hiredis() -> None:
    client = redis_client(RedisSettings(url="redis://127.0.0.1:6379/3"))
    assert issubclass(client.connection_pool.connection_class, HiredisPacking)


def test_tls_clients_keep_their_tls_connection() -> None:
    client = redis_client(RedisSettings(url="rediss://127.0.0.1:6380/0"))
    assert issubclass(client.connection_pool.connection_class, SSLConnection)
