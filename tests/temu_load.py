"""Load generator for the two-process rate-limit test of ``test_temu_client.py``.

Run as ``python tests/temu_load.py``; reads one JSON line of config from stdin
(``router``, ``redis_url``, ``app_key``, ``app_secret``, ``access_token``, ``calls``,
``concurrency``, ``qps``, ``headroom``), builds its own ``TemuClient`` and ``RedisRateLimiter``, prints
``ready``, waits for a ``go`` line, makes the calls and prints a JSON summary.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis.asyncio as aioredis
from pydantic import SecretStr

from connectors.temu import TemuClient, TemuError
from infra.rate_limit import RedisRateLimiter
from settings import TemuShop


async def main() -> None:
    config = json.loads(sys.stdin.readline())
    redis = aioredis.Redis.from_url(config["redis_url"])
    shop = TemuShop(
        id="load",
        app_key=config["app_key"],
        app_secret=SecretStr(config["app_secret"]),
        access_token=SecretStr(config["access_token"]),
        api_url=config["router"],
    )
    client = TemuClient(
        shop,
        RedisRateLimiter(redis),
        rate_per_second=config["qps"],
        headroom=config["headroom"],
        rate_limit_retries=0,
    )
    await redis.ping()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    gate = asyncio.Semaphore(config["concurrency"])
    errors: list[str] = []

    async def one() -> None:
        async with gate:
            try:
                await client.token_info()
            except TemuError as exc:
                errors.append(f"{type(exc).__name__}: {exc.code}")

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(config["calls"])))
    elapsed = time.monotonic() - started
    await client.aclose()
    await redis.aclose()
    print(json.dumps({"elapsed": elapsed, "errors": errors}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
