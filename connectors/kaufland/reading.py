"""Reading a storefront's order units by ``ts_updated_iso`` without passing an unread second.

The algorithm is described in ``connectors.kaufland.connector`` (module docstring). This
module holds the cursor a pass carries in workflow state (numbers only) and the steps that
move it: the ascending keyset reading, the re-reading of an over-full second, and the scan
used when Kaufland ignores ``sort``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from connectors.base import retrying
from connectors.kaufland.client import KauflandClient
from connectors.kaufland.schemas import iso_seconds

log = logging.getLogger(__name__)

SOURCE = "kaufland-orders"
TIE_ROUNDS = 10
"""Rounds over one over-full second before the pass gives up on it (checkpoint kept below)."""


class Cursor(BaseModel):
    """Where a pass is (JSON in workflow state: numbers only, no records)."""

    start: int
    """Lowest ``ts_updated`` second still to read."""
    since: int | None = None
    """The checkpoint the pass started from."""
    best: int | None = None
    """Newest second read whole so far."""
    cap: int | None = None
    """The checkpoint may not pass this (a second below one that was not read whole)."""
    covers: bool = False
    """The pass reads everything since the checkpoint, so it may move it."""
    scan: bool = False
    """Kaufland ignored ``sort``: read every page of the window by offset."""
    offset: int = 0
    """Scan only: next offset."""
    total: int | None = None
    """Scan only: the list's ``total`` when the scan began."""
    unstable: bool = False
    """Scan only: ``total`` changed during the scan, so the checkpoint stays."""


class UnitReader:
    """The list requests of a pass, for one seller account.

    Args:
        client: the seller's client (not owned).
        page_size: units per list request.
    """

    def __init__(self, client: KauflandClient, page_size: int) -> None:
        self.client = client
        self.page_size = page_size

    async def keyset_step(self, storefront: str, at: Cursor) -> tuple[list[Any], int, Cursor, bool]:
        """One step of the ascending keyset reading: ``(units, list calls, cursor, done)``."""
        nxt = at.model_copy()
        offset, calls = 0, 0
        while True:
            body = await self._list(storefront, at.start - 1, offset)
            calls += 1
            data, total = _data(body)
            times = [_raw_time(raw) for raw in data]
            known = [t for t in times if t is not None]
            if known != sorted(known):
                log.warning(
                    "%s/%s: list not sorted by ts_updated_iso; scanning", SOURCE, storefront
                )
                return [], calls, nxt.model_copy(update={"scan": True}), False
            rest = [raw for raw, t in zip(data, times, strict=True) if t is None or t >= at.start]
            ends = len(data) < self.page_size or offset + len(data) >= total
            if rest or ends:
                break
            offset += len(data)  # a whole page of the second below the window (inclusive from)
        rest_times = [t for t in map(_raw_time, rest) if t is not None]
        if ends:
            nxt.best = _max(nxt.best, *rest_times)
            return rest, calls, nxt, True
        if not rest_times:  # a full page without readable ts_updated_iso: nothing to go by
            nxt.cap = _min(nxt.cap, at.start - 1)
            return rest, calls, nxt, True
        newest = max(rest_times)
        older = [t for t in rest_times if t < newest]
        if older:  # the newest second may be cut by the page edge: read it whole next
            keep = [raw for raw in rest if (_raw_time(raw) or 0) < newest]
            nxt.best = _max(nxt.best, *older)
            nxt.start = newest
            return keep, calls, nxt, False
        tied, more, complete = await self._read_second(storefront, newest)
        if tied is None:
            log.warning("%s/%s: list not sorted by ts_updated_iso; scan", SOURCE, storefront)
            return [], calls + more, nxt.model_copy(update={"scan": True}), False
        if complete:
            nxt.best = _max(nxt.best, newest)
        else:
            log.warning(
                "%s/%s: could not read all units updated at %s; the checkpoint stays below it",
                SOURCE,
                storefront,
                iso(newest),
            )
            nxt.cap = _min(nxt.cap, newest - 1)
        nxt.start = newest + 1
        return tied, calls + more, nxt, False

    async def _read_second(
        self, storefront: str, second: int
    ) -> tuple[list[Any] | None, int, bool]:
        """Every unit updated in one second, by offsets, until the list's count is met.

        Returns:
            The distinct units (``None``: an answer was not in ascending order, so Kaufland
            ignores ``sort``), the list calls made, and whether they are all.
        """
        seen: dict[str, Any] = {}
        calls = 0
        for _ in range(TIE_ROUNDS):
            count, offset, ended = 0, 0, False
            while not ended:
                data, _total = _data(await self._list(storefront, second - 1, offset))
                calls += 1
                known = [t for t in map(_raw_time, data) if t is not None]
                if known != sorted(known):
                    return None, calls, False
                for raw in data:
                    t = _raw_time(raw)
                    if t is None or t < second:
                        continue
                    if t > second:
                        ended = True
                        break
                    count += 1
                    seen[raw_key(raw) or f"#{len(seen)}"] = raw
                ended = ended or len(data) < self.page_size
                offset += len(data)
            if len(seen) >= count:
                return list(seen.values()), calls, True
        return list(seen.values()), calls, False

    async def scan_step(self, storefront: str, at: Cursor) -> tuple[list[Any], int, Cursor, bool]:
        """One page of a scan by offset (Kaufland ignored ``sort``)."""
        data, total = _data(await self._list(storefront, at.start - 1, at.offset))
        nxt = at.model_copy()
        if nxt.total is None:
            nxt.total = total
        elif total != nxt.total:
            nxt.unstable = True
        keep = [raw for raw in data if (t := _raw_time(raw)) is None or t >= at.start]
        nxt.best = _max(nxt.best, *[t for t in map(_raw_time, keep) if t is not None])
        nxt.offset = at.offset + len(data)
        done = not data or nxt.offset >= total
        if done and nxt.unstable:
            nxt.best = None  # something moved during the scan: keep the checkpoint
        return keep, 1, nxt, done

    async def _list(self, storefront: str, from_second: int, offset: int) -> dict[str, Any]:
        return await retrying(
            lambda: self.client.list_order_units(
                storefront, updated_from=iso(from_second), limit=self.page_size, offset=offset
            )
        )


def _data(body: Mapping[str, Any]) -> tuple[list[Any], int]:
    data = body.get("data")
    items = list(data) if isinstance(data, list) else []
    pagination = body.get("pagination")
    total = pagination.get("total") if isinstance(pagination, dict) else None
    return items, int(total) if isinstance(total, int) else len(items)


def _raw_time(raw: Any) -> int | None:
    return iso_seconds(raw.get("ts_updated_iso")) if isinstance(raw, dict) else None


def raw_key(raw: Any) -> str | None:
    """``id_order_unit`` of a raw unit as text, if it has one."""
    if isinstance(raw, dict) and raw.get("id_order_unit") is not None:
        return str(raw["id_order_unit"])
    return None


def iso(seconds: int) -> str:
    """Unix seconds in the format of Kaufland's ``*_from_iso`` filters."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _max(current: int | None, *values: int) -> int | None:
    pool = [v for v in (current, *values) if v is not None]
    return max(pool) if pool else None


def _min(current: int | None, value: int) -> int:
    return value if current is None else min(current, value)


def checkpoint_of(at: Cursor) -> str | None:
    """What a finished pass stores: the newest second read whole, never past ``cap``."""
    value = _max(at.since, *([at.best] if at.best is not None else []))
    if value is None:
        return None
    if at.cap is not None:
        value = min(value, at.cap)
    return str(value)


__all__ = ["TIE_ROUNDS", "Cursor", "UnitReader", "checkpoint_of", "iso", "raw_key"]
