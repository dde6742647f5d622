"""Shipping addresses of a shop's shippable TEMU orders: attached to their records, cached.

Every state of a TEMU order in a shippable status also
carries ``shipping`` (the address from ``bg.order.shippinginfo.v2.get``): personal data
that goes to Kafka and to the shop's address cache in Redis, never into workflow history.
The cache (hash ``synchub:temu-orders:<shop>:shipping``, order -> ``updateTime`` read at and
address) holds the shop's shippable orders only, so it is bounded by the live orders; an
address is fetched again only when the order's ``updateTime`` moved past the cached one
(TEMU marks an address change only by bumping ``updateTime``), so re-reading the overlap
costs no address calls, and the calls that remain go through the shared rate limiter.
Each list and address call is retried on its own (``connectors.base.retrying``: bounded backoff,
``Retry-After`` honoured), and the addresses a failed page did fetch are cached anyway, so
a few percent of TEMU system exceptions cost a few more calls, not the page.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import redis.asyncio as aioredis

from connectors.base import retrying
from connectors.temu.client import TemuClient
from connectors.temu.errors import TemuBusinessError
from connectors.temu.schemas import ParentOrderStatus
from models.records import Record

log = logging.getLogger("connectors.temu.connector")

SHIPPABLE = {
    ParentOrderStatus.PENDING,
    ParentOrderStatus.UN_SHIPPING,
    ParentOrderStatus.PARTIALLY_SHIPPED,
}
"""Statuses whose orders the ERP still has to ship: only these carry the address."""
ADDRESS_TTL_SECONDS = 8 * 86_400
"""Expiry of a shop's address cache, renewed by every pass that reads a shippable order."""


class AddressCache:
    """The address cache of the ``temu-orders`` source and the address calls it saves.

    Args:
        source: registry name (the cache key's prefix).
        redis: the cache's Redis (owned by the connector). ``None``: every read of a
            shippable order fetches its address.
        gate: address calls in flight per page (the rate limiter still keeps every worker
            under the app key's limit).
    """

    def __init__(self, source: str, redis: aioredis.Redis | None, gate: asyncio.Semaphore) -> None:
        self.source = source
        self._redis = redis
        self._gate = gate

    async def attach(self, shop: str, client: TemuClient, records: list[Record]) -> None:
        """Give every shippable order its current address (in place), from the cache or TEMU.

        An address is fetched when the cache has none for the order or holds one read at an
        older ``updateTime``; orders no longer shippable leave the cache.
        """
        shippable = [r for r in records if _status(r) in SHIPPABLE]
        done = [r.key for r in records if _status(r) not in SHIPPABLE]
        key = f"synchub:{self.source}:{shop}:shipping"
        cached: list[Any] = [None] * len(shippable)
        if self._redis is not None and shippable:
            cached = await self._redis.hmget(key, [r.key for r in shippable])
        fresh: dict[Any, Any] = {}  # redis-py types mapping keys invariantly

        async def one(record: Record, raw: Any) -> None:
            stamp = _update_time(record)
            entry = _cache_entry(raw)
            if entry is not None and entry[0] >= stamp:
                address = entry[1]
            else:
                try:
                    address = await retrying(lambda: client.shipping_info(record.key), self._gate)
                except TemuBusinessError as exc:  # e.g. no permission: publish without
                    log.warning(
                        "temu-orders/%s: no shipping details for %s: %s", shop, record.key, exc
                    )
                    address = None
                fresh[record.key] = json.dumps([stamp, address], separators=(",", ":"))
            if address is not None:
                record.data = {**record.data, "shipping": address}

        outcomes = await asyncio.gather(
            *(one(r, c) for r, c in zip(shippable, cached, strict=True)), return_exceptions=True
        )
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if self._redis is not None and (fresh or done or shippable):
            # also when a call failed: the retried page then fetches only what is missing
            pipe = self._redis.pipeline(transaction=False)
            if fresh:
                pipe.hset(key, mapping=fresh)
            if done:
                pipe.hdel(key, *done)
            pipe.expire(key, ADDRESS_TTL_SECONDS)
            await pipe.execute()
        if failed:
            raise failed[0]


def _status(record: Record) -> Any:
    return record.data.get("parentOrderMap", {}).get("parentOrderStatus")


def _update_time(record: Record) -> int:
    return int(record.data.get("parentOrderMap", {}).get("updateTime") or 0)


def _cache_entry(raw: Any) -> tuple[int, dict[str, Any] | None] | None:
    """``(updateTime read at, address or None)`` from the address cache, if readable."""
    if raw is None:
        return None
    try:
        stamp, address = json.loads(raw)
        return int(stamp), address if isinstance(address, dict) else None
    except (TypeError, ValueError):
        return None
