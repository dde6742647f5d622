"""TEMU parent orders as synchub records: one partition per shop, read incrementally.

A pass reads the orders whose ``updateTime`` lies in ``[checkpoint, now]`` (or the last
``days_back`` days when a run asks for it), and the checkpoint advances to ``now`` only when
the whole pass has been published and committed, so a failed pass is read again.

TEMU sorts by ``updateTime`` *descending* and pages by number. An order updated while a pass
pages through the window leaves the window (its new ``updateTime`` is past the end), which
shifts every older order one place up. Read front to back, that shift would move an order
from a page not yet read into one already read: it would be skipped, and the checkpoint
would pass it for good. So pages are read from the last to the first: a shift can then only
move an order into a page still to be read (read twice, published once thanks to its
fingerprint), never into one already read.

Published record (key = ``parentOrderSn``): the parent order as TEMU sends it
(``parentOrderMap`` + ``orderList``). New orders in a shippable status also carry
``shipping`` (the address from ``bg.order.shippinginfo.v2.get``), fetched once, on their
first publication: personal data that goes to Kafka only, never into workflow history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import ConnectorBase, ConnectorSpec
from connectors.temu.client import MAX_PAGE_SIZE, TemuClient, shop_clients
from connectors.temu.errors import TemuBusinessError
from connectors.temu.schemas import ParentOrder, ParentOrderStatus
from models.clock import unix as unix_now
from models.errors import InvalidParamsError, NotConfiguredError
from models.records import Lookup, Malformed, Page, Record

if TYPE_CHECKING:
    from settings import Settings

log = logging.getLogger(__name__)

SHIPPABLE = {
    ParentOrderStatus.PENDING,
    ParentOrderStatus.UN_SHIPPING,
    ParentOrderStatus.PARTIALLY_SHIPPED,
}
"""Statuses whose orders the ERP still has to ship: only these are enriched with addresses."""

FIRST_PASS_DAYS = 7
"""Days read by a shop's very first pass (no checkpoint yet) unless ``days_back`` is given."""


class TemuOrdersParams(BaseModel):
    """Run parameters of ``temu-orders`` (the seed's ``trigger_job_now`` arguments)."""

    model_config = ConfigDict(extra="forbid")

    days_back: int | None = Field(default=None, ge=1, le=90)
    """Read the last N days instead of what changed since the checkpoint."""
    parent_order_status: int | None = None
    """Only orders in this status (seed example: 2 = paid, not shipped)."""
    shops: list[str] | None = None
    """Only these shops (ids from TEMU_SHOPS)."""


class _Cursor(BaseModel):
    """Where a pass is: the fixed window and the page to read next (counting down)."""

    start: int
    end: int
    page: int
    status: int | None = None


class TemuOrdersConnector(ConnectorBase):
    """``connectors.base.Connector`` for TEMU parent orders of the configured shops.

    Args:
        clients: one ``TemuClient`` per shop id (owned: closed by ``aclose``).
        topic: Kafka topic of the order events.
        page_size: orders per TEMU page (at most 100).
        enrich_concurrency: shipping look-ups in flight per page (the rate limiter still
            keeps every worker under the app key's limit).
        clock: unix seconds; tests move it.
        redis: the rate limiter's Redis client (owned: closed by ``aclose``).
    """

    source = "temu-orders"
    partition_noun = "shop"
    incremental = True

    def __init__(
        self,
        clients: Mapping[str, TemuClient],
        *,
        topic: str,
        page_size: int = MAX_PAGE_SIZE,
        enrich_concurrency: int = 8,
        clock: Callable[[], float] = unix_now,
        redis: aioredis.Redis | None = None,
    ) -> None:
        self.clients = dict(clients)
        self._redis = redis
        self.topic = topic
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self._enrich_gate = asyncio.Semaphore(enrich_concurrency)
        self._clock = clock

    async def list_partitions(self, params: dict[str, Any]) -> list[str]:
        """The configured shops, or those named in ``shops``."""
        wanted = _params(params).shops
        if wanted is None:
            return list(self.clients)
        unknown = sorted(set(wanted) - set(self.clients))
        if unknown:
            raise InvalidParamsError(
                f"unknown TEMU shops {', '.join(unknown)}; configured in TEMU_SHOPS: "
                f"{', '.join(self.clients) or 'none'}"
            )
        return [s for s in self.clients if s in wanted]

    async def fetch_page(
        self,
        partition: str,
        cursor: str | None,
        params: dict[str, Any],
        known_digest: str | None = None,
        checkpoint: str | None = None,
    ) -> Page:
        """One page of the shop's window, last page first (see the module docstring)."""
        client = self._client(partition)
        p = _params(params)
        if cursor is not None:
            at = _Cursor.model_validate_json(cursor)
            body = await self._list(client, at, at.page)
            return self._page(partition, body, at, at.page - 1)

        now = int(self._clock())
        since = int(checkpoint) if checkpoint else None
        if p.days_back is not None:
            start = now - p.days_back * 86_400
        else:
            start = since if since is not None else now - FIRST_PASS_DAYS * 86_400
        at = _Cursor(start=start, end=now, page=1, status=p.parent_order_status)
        # Advance only over what this pass reads in full: all statuses, from the checkpoint.
        covers = p.parent_order_status is None and (since is None or start <= since)
        first = await self._list(client, at, 1)
        pages = max(1, -(-int(first.get("totalItemNum") or 0) // self.page_size))
        if pages > 1:
            first = await self._list(client, at, pages)
        page = self._page(partition, first, at, pages - 1)
        page.checkpoint = str(now) if covers else None
        log.info(
            "temu-orders/%s: window %d..%d, %d pages%s",
            partition,
            start,
            now,
            pages,
            "" if covers else " (checkpoint kept)",
        )
        return page

    async def lookup(self, partition: str, keys: list[str], params: dict[str, Any]) -> list[Lookup]:
        """Never needed: an incremental pass has no missing keys (orders are not deleted)."""
        return []

    async def enrich(self, partition: str, records: list[Record]) -> list[Record]:
        """Attach the shipping address to new orders that still have to be shipped."""
        client = self._client(partition)

        async def one(record: Record) -> Record:
            status = record.data.get("parentOrderMap", {}).get("parentOrderStatus")
            if status not in SHIPPABLE:
                return record
            try:
                async with self._enrich_gate:
                    shipping = await client.shipping_info(record.key)
            except TemuBusinessError as exc:  # e.g. no permission for addresses: publish without
                log.warning(
                    "temu-orders/%s: no shipping details for %s: %s", partition, record.key, exc
                )
                return record
            return record.model_copy(update={"data": {**record.data, "shipping": shipping}})

        return list(await asyncio.gather(*(one(r) for r in records)))

    async def aclose(self) -> None:
        """Close every shop's HTTP client and the rate limiter's Redis pool."""
        await asyncio.gather(*(c.aclose() for c in self.clients.values()))
        if self._redis is not None:
            await self._redis.aclose()

    def _client(self, shop: str) -> TemuClient:
        try:
            return self.clients[shop]
        except KeyError:
            raise NotConfiguredError(
                f"TEMU shop {shop!r} is not configured on this worker", setting="TEMU_SHOPS"
            ) from None

    async def _list(self, client: TemuClient, at: _Cursor, page: int) -> dict[str, Any]:
        return await client.list_orders(
            update_start=at.start,
            update_end=at.end,
            page_number=page,
            page_size=self.page_size,
            parent_order_status=at.status,
        )

    def _page(self, shop: str, body: dict[str, Any], at: _Cursor, next_page: int) -> Page:
        page = Page(
            next_cursor=at.model_copy(update={"page": next_page}).model_dump_json()
            if next_page >= 1
            else None
        )
        for raw in body.get("pageItems") or []:
            try:
                order = ParentOrder.model_validate(raw)
            except ValidationError as exc:
                key = _raw_key(raw)
                reason = "; ".join(
                    f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                page.malformed.append(Malformed(key=key, reason=reason, raw=raw))
                continue
            page.records.append(Record(key=order.key, data=order.wire(), partition=shop))
        return page


def build_temu_orders(settings: Settings) -> TemuOrdersConnector:
    """One client per configured shop, all sharing one Redis rate limiter per app key."""
    clients, redis = shop_clients(settings)
    return TemuOrdersConnector(clients, topic=settings.temu.orders_topic, redis=redis)


SPEC = ConnectorSpec(
    source="temu-orders",
    build=build_temu_orders,
    params=TemuOrdersParams,
    description="TEMU parent orders per shop, incremental by updateTime; confirms shipments",
    steps=("confirm_shipments",),
)


def _params(params: dict[str, Any]) -> TemuOrdersParams:
    try:
        return TemuOrdersParams.model_validate(params)
    except ValidationError as exc:
        raise InvalidParamsError(
            f"invalid temu-orders parameters: {exc.errors()[0]['msg']}"
        ) from None


def _raw_key(raw: Any) -> str | None:
    if isinstance(raw, dict):
        sn = (raw.get("parentOrderMap") or {}).get("parentOrderSn")
        return str(sn) if sn is not None else None
    return None


__all__ = ["TemuOrdersConnector", "TemuOrdersParams"]
