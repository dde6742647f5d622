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
(``parentOrderMap`` + ``orderList``); every state of an order in a shippable status also
carries ``shipping``, its address (``connectors.temu.addresses``: cached in Redis, never in
workflow history). How one window is read is ``connectors.temu.order_reading``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import ConnectorBase, ConnectorSpec, check_shop, chosen_partitions
from connectors.overlap import pass_start
from connectors.temu.addresses import SHIPPABLE, AddressCache
from connectors.temu.client import MAX_PAGE_SIZE, TemuClient, shop_clients
from connectors.temu.order_reading import Cursor, WindowReader, raw_key
from connectors.temu.schedules import temu_orders_schedules
from connectors.temu.schemas import ParentOrder
from models import activity_names
from models.clock import unix as unix_now
from models.errors import InvalidParamsError, NotConfiguredError
from models.records import Lookup, Malformed, Page, Record

if TYPE_CHECKING:
    from settings import Settings

log = logging.getLogger(__name__)

FIRST_PASS_DAYS = 7
"""Days read by a shop's very first pass (no checkpoint yet) unless ``days_back`` is given."""
DEFAULT_OVERLAP_SECONDS = 600
"""Seconds before the checkpoint every pass reads again: TEMU's accepted clock skew (300 s)
plus room for its list's index lag."""


class TemuOrdersParams(BaseModel):
    """Run parameters of ``temu-orders`` (the seed's ``trigger_job_now`` arguments)."""

    model_config = ConfigDict(extra="forbid")

    days_back: int | None = Field(default=None, ge=1, le=90)
    """Read the last N days instead of what changed since the checkpoint."""
    parent_order_status: int | None = None
    """Only orders in this status (seed example: 2 = paid, not shipped)."""
    shops: list[str] | None = None
    """Only these shops (ids from TEMU_SHOPS)."""


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
        self._addresses = AddressCache(self.source, redis, asyncio.Semaphore(enrich_concurrency))
        self._reader = WindowReader(self.page_size)
        self._clock = clock
        self.overlap_seconds = overlap_seconds

    async def list_partitions(self, params: dict[str, Any]) -> list[str]:
        """The configured shops, or those named in ``shops``."""
        return chosen_partitions(
            _params(params).shops, list(self.clients), "TEMU shops", "TEMU_SHOPS"
        )

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
            at = Cursor.model_validate_json(cursor)
            if not at.keyset:  # written by the page-number reading: read its window anew
                at = at.model_copy(update={"keyset": True, "ceiling": at.end, "covers": False})
        else:
            at = self._window(partition, _params(params), checkpoint)
        items, calls, next_end, ceiling = await self._reader.read(client, at)
        page = self._page(partition, items)
        page.requests = calls
        await self._addresses.attach(partition, client, page.records)
        if next_end is not None and next_end >= at.start:
            page.next_cursor = at.model_copy(
                update={"end": next_end, "ceiling": ceiling}
            ).model_dump_json()
        elif at.covers and ceiling is not None:
            page.checkpoint = str(ceiling)
        return page

    def _window(self, shop: str, p: TemuOrdersParams, checkpoint: str | None) -> Cursor:
        """The pass's window: from the checkpoint minus the overlap (or ``days_back``) to now."""
        now = int(self._clock())
        since = int(checkpoint) if checkpoint else None
        start = pass_start(
            now,
            since,
            days_back=p.days_back,
            overlap_seconds=self.overlap_seconds,
            first_pass_days=FIRST_PASS_DAYS,
        )
        # Advance only over what this pass reads in full: all statuses, from the checkpoint.
        covers = p.parent_order_status is None and (since is None or start <= since)
        log.info(
            "temu-orders/%s: window %d..%d%s",
            shop,
            start,
            now,
            "" if covers else " (checkpoint kept)",
        )
        return Cursor(
            start=start,
            end=now,
            status=p.parent_order_status,
            keyset=True,
            ceiling=now,
            covers=covers,
        )

    async def lookup(self, partition: str, keys: list[str], params: dict[str, Any]) -> list[Lookup]:
        """Never needed: an incremental pass has no missing keys (orders are not deleted)."""
        return []

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

    def _page(self, shop: str, items: list[Any]) -> Page:
        page = Page()
        for raw in items:
            try:
                order = ParentOrder.model_validate(raw)
            except ValidationError as exc:
                key = raw_key(raw)
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


__all__ = ["SHIPPABLE", "TemuOrdersConnector", "TemuOrdersParams"]
