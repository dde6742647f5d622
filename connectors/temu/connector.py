"""TEMU parent orders as synchub records: one partition per shop, read incrementally.

A pass reads the orders whose ``updateTime`` lies in ``[checkpoint - overlap, now]`` (or the
last ``days_back`` days when a run asks for it), and stores ``now`` as the next checkpoint
only when the whole pass has been published and committed, so a failed pass is read again.

The overlap (``TEMU_ORDERS_OVERLAP_SECONDS``, default 600) is re-read by every pass, because
``updateTime`` is stamped by TEMU's clock and shows up in TEMU's list only once its index has
caught up: a change stamped before the last checkpoint (TEMU's clock behind the worker's,
which its gateway accepts up to 300 s) or listed late (index lag) is still read. Change
detection (fingerprints) keeps the overlap from publishing anything twice.

TEMU sorts by ``updateTime`` *descending* and pages by number, and orders with equal
``updateTime`` may come in a different order on every request. Paging by number through
one window therefore skips orders twice over: an order updated during the pass leaves the
window and shifts the rest, and a tie that straddles a page edge is cut differently on each
request. So a pass never asks for page 2 of a window. It reads page 1 of ``[start, end]``,
keeps every order newer than the page's oldest second, and asks again for ``[start, that
second]``: a moving order can only leave what is still to be read, and each second is read
whole, from one answer. A page that holds a single second (more orders updated in one
second than fit a page: a bulk edit) is read by itself, page by page, repeatedly until as
many distinct orders were read as TEMU counts; if that does not succeed within
``TIE_ROUNDS``, the checkpoint stays below that second, so the next pass reads it again.
The list calls a pass made are in ``Page.requests`` (the run result's ``records.requests``).

Published record (key = ``parentOrderSn``): the parent order as TEMU sends it
(``parentOrderMap`` + ``orderList``). Every state of an order in a shippable status also
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
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import ConnectorBase, ConnectorSpec, check_shop, retrying
from connectors.temu.client import MAX_PAGE_SIZE, TemuClient, shop_clients
from connectors.temu.errors import TemuBusinessError
from connectors.temu.schedules import temu_orders_schedules
from connectors.temu.schemas import ParentOrder, ParentOrderStatus
from models import activity_names
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
"""Statuses whose orders the ERP still has to ship: only these carry the address."""

FIRST_PASS_DAYS = 7
"""Days read by a shop's very first pass (no checkpoint yet) unless ``days_back`` is given."""
DEFAULT_OVERLAP_SECONDS = 600
"""Seconds before the checkpoint every pass reads again: TEMU's accepted clock skew (300 s)
plus room for its list's index lag."""
TIE_ROUNDS = 10
"""Times the pages of one over-full second are read before the pass gives up on it (and
keeps the checkpoint below it). With a stable order one round suffices; with the order
shuffled per request, 260 orders in one second need about five."""
ADDRESS_TTL_SECONDS = 8 * 86_400
"""Expiry of a shop's address cache, renewed by every pass that reads a shippable order."""


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
    """Where a pass is: what of its fixed window is left to read (newest first)."""

    start: int
    """Lower end of the pass's window (inclusive)."""
    end: int
    """Upper end of what is left to read (inclusive); the window's end on the first page."""
    page: int = 1
    """Only in cursors written before keyset reading (pages counted down); ignored."""
    status: int | None = None
    keyset: bool = False
    """False for a cursor of the older page-number reading: the pass restarts its window."""
    ceiling: int | None = None
    """The checkpoint this pass may store: the window's end, lowered below any second whose
    orders could not all be read."""
    covers: bool = False
    """The pass reads everything since the stored checkpoint, so it may move it."""


class TemuOrdersConnector(ConnectorBase):
    """``connectors.base.Connector`` for TEMU parent orders of the configured shops.

    Args:
        clients: one ``TemuClient`` per shop id (owned: closed by ``aclose``).
        topic: Kafka topic of the order events.
        page_size: orders per TEMU page (at most 100).
        enrich_concurrency: shipping look-ups in flight per page (the rate limiter still
            keeps every worker under the app key's limit).
        clock: unix seconds; tests move it.
        redis: Redis of the rate limiter and the address cache (owned: closed by
            ``aclose``). Without it every read of a shippable order fetches its address.
        overlap_seconds: seconds before the checkpoint each pass reads again.
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
        overlap_seconds: int = DEFAULT_OVERLAP_SECONDS,
    ) -> None:
        if overlap_seconds < 0:
            raise ValueError("overlap_seconds must be >= 0 (TEMU_ORDERS_OVERLAP_SECONDS)")
        self.clients = dict(clients)
        self._redis = redis
        self.topic = topic
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self._enrich_gate = asyncio.Semaphore(enrich_concurrency)
        self._clock = clock
        self.overlap_seconds = overlap_seconds

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
        """The newest orders of what is left of the shop's window (see the module docstring)."""
        client = self._client(partition)
        if cursor is not None:
            at = _Cursor.model_validate_json(cursor)
            if not at.keyset:  # written by the page-number reading: read its window anew
                at = at.model_copy(update={"keyset": True, "ceiling": at.end, "covers": False})
        else:
            at = self._window(partition, _params(params), checkpoint)
        items, calls, next_end, ceiling = await self._read(client, at)
        page = self._page(partition, items)
        page.requests = calls
        await self._attach_addresses(partition, client, page.records)
        if next_end is not None and next_end >= at.start:
            page.next_cursor = at.model_copy(
                update={"end": next_end, "ceiling": ceiling}
            ).model_dump_json()
        elif at.covers and ceiling is not None:
            page.checkpoint = str(ceiling)
        return page

    def _window(self, shop: str, p: TemuOrdersParams, checkpoint: str | None) -> _Cursor:
        """The pass's window: from the checkpoint minus the overlap (or ``days_back``) to now."""
        now = int(self._clock())
        since = int(checkpoint) if checkpoint else None
        if p.days_back is not None:
            start = now - p.days_back * 86_400
        elif since is not None:
            start = since - self.overlap_seconds
        else:
            start = now - FIRST_PASS_DAYS * 86_400
        # Advance only over what this pass reads in full: all statuses, from the checkpoint.
        covers = p.parent_order_status is None and (since is None or start <= since)
        log.info(
            "temu-orders/%s: window %d..%d%s",
            shop,
            start,
            now,
            "" if covers else " (checkpoint kept)",
        )
        return _Cursor(
            start=start,
            end=now,
            status=p.parent_order_status,
            keyset=True,
            ceiling=now,
            covers=covers,
        )

    async def _read(
        self, client: TemuClient, at: _Cursor
    ) -> tuple[list[Any], int, int | None, int | None]:
        """One step of the keyset reading.

        Returns:
            The raw orders read, the list calls made, the upper end of what is left to
            read (``None``: the window is through) and the checkpoint the pass may store.
        """
        ceiling = at.ceiling if at.ceiling is not None else at.end
        if at.end < at.start:
            return [], 0, None, ceiling
        body = await self._list(client, at, at.start, at.end, 1)
        items = list(body.get("pageItems") or [])
        total = int(body.get("totalItemNum") or 0)
        if not items or total <= len(items):
            return items, 1, None, ceiling  # everything left came in this answer
        times = [t for t in map(_raw_time, items) if t is not None]
        if times and min(times) < max(times):
            oldest = min(times)  # maybe cut by the page edge: read whole by the next request
            return [i for i in items if _raw_time(i) != oldest], 1, oldest, ceiling
        if not times:  # a full page without a readable updateTime: nothing to go by
            log.warning("temu-orders/%s: list page without updateTime", client.shop_id)
            return items, 1, None, min(ceiling, at.start - 1)
        second = times[0]
        tied, calls, complete = await self._read_second(client, at, second)
        if not complete:
            log.warning(
                "temu-orders/%s: could not read all orders updated at %d; the checkpoint "
                "stays below it",
                client.shop_id,
                second,
            )
            ceiling = min(ceiling, second - 1)
        return tied, 1 + calls, second - 1, ceiling

    async def _read_second(
        self, client: TemuClient, at: _Cursor, second: int
    ) -> tuple[list[Any], int, bool]:
        """Every order updated in one second, read page by page until TEMU's count is met.

        Returns:
            The distinct raw orders, the list calls made, and whether they are all.
        """
        seen: dict[str, Any] = {}
        calls = 0
        total: int | None = None
        for _ in range(TIE_ROUNDS):
            pages = 1 if total is None else max(1, -(-total // self.page_size))
            for number in range(1, pages + 1):
                body = await self._list(client, at, second, second, number)
                calls += 1
                total = int(body.get("totalItemNum") or 0)
                items = body.get("pageItems") or []
                for raw in items:
                    seen[_raw_key(raw) or f"#{len(seen)}"] = raw
                if len(seen) >= total:
                    return list(seen.values()), calls, True
                if not items:
                    break
        return list(seen.values()), calls, False

    async def lookup(self, partition: str, keys: list[str], params: dict[str, Any]) -> list[Lookup]:
        """Never needed: an incremental pass has no missing keys (orders are not deleted)."""
        return []

    async def _attach_addresses(self, shop: str, client: TemuClient, records: list[Record]) -> None:
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
                    address = await retrying(
                        lambda: client.shipping_info(record.key), self._enrich_gate
                    )
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

    async def _list(
        self, client: TemuClient, at: _Cursor, start: int, end: int, page: int
    ) -> dict[str, Any]:
        # retried on its own: an over-full second takes dozens of list calls per page
        return await retrying(
            lambda: client.list_orders(
                update_start=start,
                update_end=end,
                page_number=page,
                page_size=self.page_size,
                parent_order_status=at.status,
            )
        )

    def _page(self, shop: str, items: list[Any]) -> Page:
        page = Page()
        for raw in items:
            try:
                order = ParentOrder.model_validate(raw)
            except ValidationError as exc:
                key = _raw_key(raw)
                reason = "; ".join(
                    f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                page.malformed.append(Malformed(key=key, reason=reason, raw=raw))
                continue
            page.records.append(
                Record(
                    key=order.key,
                    data=order.wire(),
                    partition=shop,
                    version_marker=str(order.update_time),  # event ids survive a Redis loss
                )
            )
        return page


def build_temu_orders(settings: Settings) -> TemuOrdersConnector:
    """One client per configured shop, all sharing one Redis rate limiter per app key."""
    clients, redis = shop_clients(settings)
    return TemuOrdersConnector(
        clients,
        topic=settings.temu.orders_topic,
        redis=redis,
        overlap_seconds=settings.temu.orders_overlap_seconds,
    )


SPEC = ConnectorSpec(
    source="temu-orders",
    build=build_temu_orders,
    schedules=temu_orders_schedules,
    params=TemuOrdersParams,
    description="TEMU parent orders per shop, incremental by updateTime; confirms shipments",
    steps=(activity_names.CONFIRM_SHIPMENTS,),
    check_partition=check_shop,
    simulator="simulators.temu",
    topics=lambda settings: [settings.temu.shipments_topic],
    activities="activities.temu:worker_activities",
)


def _params(params: dict[str, Any]) -> TemuOrdersParams:
    try:
        return TemuOrdersParams.model_validate(params)
    except ValidationError as exc:
        raise InvalidParamsError(
            f"invalid temu-orders parameters: {exc.errors()[0]['msg']}"
        ) from None


def _raw_time(raw: Any) -> int | None:
    """``parentOrderMap.updateTime`` of a raw list item, if it has a readable one."""
    if isinstance(raw, dict):
        value = (raw.get("parentOrderMap") or {}).get("updateTime")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


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


def _raw_key(raw: Any) -> str | None:
    if isinstance(raw, dict):
        sn = (raw.get("parentOrderMap") or {}).get("parentOrderSn")
        return str(sn) if sn is not None else None
    return None


__all__ = ["TemuOrdersConnector", "TemuOrdersParams"]
