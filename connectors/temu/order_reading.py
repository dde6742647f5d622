"""How one pass window of a shop's TEMU orders is read: keyset steps, over-full seconds.

See ``connectors.temu.connector`` for why a pass never asks for page 2 of a window.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from connectors.base import retrying
from connectors.temu.client import TemuClient

log = logging.getLogger("connectors.temu.connector")

TIE_ROUNDS = 10
"""Times the pages of one over-full second are read before the pass gives up on it (and
keeps the checkpoint below it). With a stable order one round suffices; with the order
shuffled per request, 260 orders in one second need about five."""


class Cursor(BaseModel):
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


class WindowReader:
    """Reads a window newest first, each second whole, ``page_size`` orders per list call."""

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size

    async def read(
        self, client: TemuClient, at: Cursor
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
        times = [t for t in map(raw_time, items) if t is not None]
        if times and min(times) < max(times):
            oldest = min(times)  # maybe cut by the page edge: read whole by the next request
            return [i for i in items if raw_time(i) != oldest], 1, oldest, ceiling
        if not times:  # a full page without a readable updateTime: nothing to go by
            log.warning("temu-orders/%s: list page without updateTime", client.shop_id)
            return items, 1, None, min(ceiling, at.start - 1)
        second = times[0]
        tied, calls, complete = await self.read_second(client, at, second)
        if not complete:
            log.warning(
                "temu-orders/%s: could not read all orders updated at %d; the checkpoint "
                "stays below it",
                client.shop_id,
                second,
            )
            ceiling = min(ceiling, second - 1)
        return tied, 1 + calls, second - 1, ceiling

    async def read_second(
        self, client: TemuClient, at: Cursor, second: int
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
                    seen[raw_key(raw) or f"#{len(seen)}"] = raw
                if len(seen) >= total:
                    return list(seen.values()), calls, True
                if not items:
                    break
        return list(seen.values()), calls, False

    async def _list(
        self, client: TemuClient, at: Cursor, start: int, end: int, page: int
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


def raw_time(raw: Any) -> int | None:
    """``parentOrderMap.updateTime`` of a raw list item, if it has a readable one."""
    if isinstance(raw, dict):
        value = (raw.get("parentOrderMap") or {}).get("updateTime")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def raw_key(raw: Any) -> str | None:
    """``parentOrderMap.parentOrderSn`` of a raw list item, if it has one."""
    if isinstance(raw, dict):
        sn = (raw.get("parentOrderMap") or {}).get("parentOrderSn")
        return str(sn) if sn is not None else None
    return None
