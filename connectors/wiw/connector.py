"""When I Work shifts as synchub records: one partition per calendar day of the sync window.

A day is a natural partition for WIW: ``/2/shifts`` has no pagination, one day's window is
small, re-fetching it yields the same page unless something changed (so the engine's page
digest applies), and the deleted feed (``deleted_ids``) comes with it. A shift belongs to
the day of its start in the configured timezone, so one that crosses midnight is published
once, from its start day, although both days' windows return it; and deleted once, by the
day whose cache holds it, although both days' ``deleted_ids`` report it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import orjson
import xxhash

from connectors.base import ConnectorBase, days_param, iso_day, point_lookups
from connectors.wiw.client import WiwClient
from connectors.wiw.schemas import (
    MalformedShiftError,
    WiwShift,
    fast_published,
    id_key,
    parse_shift,
    parse_wiw_datetime,
    shift_key,
)
from models import clock
from models.records import Lookup, Malformed, Page, Record

log = logging.getLogger(__name__)

OUTPUT_VERSION = "wiw-shift-1"
"""Raise when the published shape changes, so unchanged pages are re-published once."""
RAW_VERSION = "wiw-raw-2"
"""Part of every raw fingerprint: raise when what a raw fingerprint covers changes (2: xxh3 of
the shift's text as received, instead of blake2b of it re-encoded; each page's first pass
after the upgrade converts it once more, and publishes nothing)."""


def _seed(*parts: str) -> int:
    """A 64-bit hash seed standing for ``parts`` (stable across processes and versions)."""
    joined = "\x1e".join(parts).encode()
    return int.from_bytes(hashlib.blake2b(joined, digest_size=8).digest(), "big")


def body_digest(tz: str, partition: str, content: bytes) -> str:
    """``Page.raw_digest`` of a day: the response bytes as received, and what shapes them.

    Every record, malformed entry and deleted key of the page is a function of the body,
    the timezone, the day and ``OUTPUT_VERSION``, so equal digests mean an equal page and
    the body need not even be decoded. Bytes that differ without a real change (another key
    order, a volatile field) only cost one full compare, never a missed change.

    xxh3 (128 bits, seeded with what shapes the page): an accelerator's hash, not a
    published fingerprint, so it need not be cryptographic. blake2b took 2.3 ms per 2 MB
    day, on every no-change pass; xxh3 takes 0.03 ms (issue 11).
    """
    return xxhash.xxh3_128_hexdigest(content, seed=_seed(OUTPUT_VERSION, tz, partition))


class WiwConnector(ConnectorBase):
    """``connectors.base.Connector`` for When I Work shifts.

    Args:
        client: the HTTP client (owned: closed by ``aclose``).
        source: registry name, also the Redis key prefix.
        topic: Kafka topic of the shift events.
        timezone: IANA zone whose calendar days are the partitions.
        days_ahead: days after today in the window (``SYNC_DAYS_AHEAD``).
        days_prior: days before today in the window (``SYNC_DAYS_PRIOR``).
        today: clock for "today" (tests inject one); default: now in ``timezone``.
        lookup_concurrency: point lookups in flight; default: the client's settings.
    """

    def __init__(
        self,
        client: WiwClient,
        *,
        source: str = "wiw",
        topic: str,
        timezone: str = "UTC",
        days_ahead: int = 1,
        days_prior: int = 0,
        today: Callable[[], date] | None = None,
        lookup_concurrency: int | None = None,
    ) -> None:
        self.client = client
        self.partition_noun = "day"
        self.source = source
        self.topic = topic
        self.tz = ZoneInfo(timezone)
        self.days_ahead = days_ahead
        self.days_prior = days_prior
        self._today = today or (lambda: clock.today(self.tz))
        self._lookup_concurrency = lookup_concurrency or client.settings.lookup_concurrency

    async def list_partitions(self, params: dict[str, Any]) -> list[str]:
        """Days ``today - days_prior`` .. ``today + days_ahead`` as ``YYYY-MM-DD``, oldest first.

        ``params`` may override ``days_ahead`` / ``days_prior`` for one run.
        """
        ahead = days_param(params, "days_ahead", self.days_ahead)
        prior = days_param(params, "days_prior", self.days_prior)
        today = self._today()
        return [(today + timedelta(days=d)).isoformat() for d in range(-prior, ahead + 1)]

    async def fetch_page(
        self,
        partition: str,
        cursor: str | None,
        params: dict[str, Any],
        known_digest: str | None = None,
        checkpoint: str | None = None,
    ) -> Page:
        """All shifts starting on the partition's day; the day's ``deleted_ids``; one page.

        WIW returns every shift *overlapping* the window, so shifts that started the day
        before are dropped here (their own day publishes them). When the raw day equals
        ``known_digest`` nothing is decoded or parsed: hashing the response bytes is all a
        no-change day costs.
        """
        return await self._fetch(partition, known_digest, raw=False)

    async def fetch_page_raw(
        self,
        partition: str,
        cursor: str | None,
        params: dict[str, Any],
        known_digest: str | None = None,
        checkpoint: str | None = None,
    ) -> Page:
        """``fetch_page``, with every shift that has an id left unconverted in ``Page.raw``.

        Its raw fingerprint hashes the shift's JSON text as received with ``OUTPUT_VERSION``,
        the timezone and the day: all that shapes the published record and whether it
        belongs to this day (``connectors.base.RawPages``; see ``_split_raw``).
        """
        return await self._fetch(partition, known_digest, raw=True)

    def convert(self, partition: str, raw: list[Any]) -> Page:
        """Convert raw shifts of ``partition`` (from ``Page.raw``); other days' are left out.

        An item is a decoded shift or its JSON text (``WiwClient.split_shifts``): a text is
        decoded here, one at a time, so a big day is never held decoded and converted at once.
        """
        page = Page(stable=True)
        self._convert_into(page, raw, iso_day(partition, "WIW partition"), partition)
        return page

    async def _fetch(self, partition: str, known_digest: str | None, *, raw: bool) -> Page:
        day = iso_day(partition, "WIW partition")
        start = datetime.combine(day, time(), tzinfo=self.tz)
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=self.tz)
        # handed over in a list the thread empties, so no frame here keeps the bytes alive
        content = [await self.client.shifts_raw(start, end)]
        # hashing, decoding and parsing a big day takes CPU: off the event loop, which
        # also serves workflow tasks, heartbeats and the Redis client
        return await asyncio.to_thread(self._page, content, partition, day, known_digest, raw)

    def _page(
        self, held: list[bytes], partition: str, day: date, known_digest: str | None, raw: bool
    ) -> Page:
        content = held.pop()
        digest = body_digest(str(self.tz), partition, content)
        if digest == known_digest:
            return Page(stable=True, raw_digest=digest, unchanged=True)
        page = Page(next_cursor=None, stable=True, raw_digest=digest)
        texts = self.client.split_shifts(content) if raw else None
        decoded: list[Any] | None = None
        if texts is not None and known_digest is not None:
            deleted = texts[1]
        else:  # the whole day decoded (see ``_split_raw`` for when the raw path does so)
            body = self.client.decode_shifts(content)
            decoded = body.get("shifts") or []
            deleted = body.get("deleted_ids") or []
            del body
        del content  # a 40,000-shift day should not be held twice (texts are views of it)
        shifts: list[Any] = decoded or []
        if raw:
            shifts = self._split_raw(page, partition, None if texts is None else texts[0], decoded)
        del texts, decoded
        self._convert_into(page, shifts, day, partition)
        page.deleted_keys = list(dict.fromkeys(str(i) for i in deleted))
        return page

    def _split_raw(
        self, page: Page, partition: str, texts: list[Any] | None, decoded: list[Any] | None
    ) -> list[Any]:
        """Move every shift with an id into ``page.raw``, unconverted, with its raw fingerprint.

        Returns the others (converted now: they can only be dead letters). The raw
        fingerprint of a shift hashes its JSON text as received (xxh3, seeded with
        ``RAW_VERSION``, ``OUTPUT_VERSION``, the timezone and the day). The ``texts`` come
        from ``WiwClient.split_shifts``, which scans the day without decoding it, so a day
        with a few changed shifts decodes only those (in ``convert``). With ``decoded`` (no
        digest known: a first pass, or the cache voided, so every shift will be converted)
        the day was also decoded whole, which is cheaper than shift by shift, and
        ``page.raw`` holds the decoded shifts. A body the split cannot read (no ``texts``)
        was decoded whole, and its shifts are re-encoded for their fingerprints (a text of
        the same value: at worst converted once more, never missed).
        """
        seed = _seed(RAW_VERSION, OUTPUT_VERSION, str(self.tz), partition)
        hexdigest, items, keyless = xxhash.xxh3_128_hexdigest, page.raw, []
        if texts is None:
            texts = [orjson.dumps(s) for s in decoded or []]
        if decoded is not None and len(decoded) == len(texts):
            for text, shift in zip(texts, decoded, strict=True):
                key = shift_key(shift)
                if key is None:
                    keyless.append(shift)
                else:
                    items.append((key, hexdigest(text, seed=seed), shift))
        else:
            shift_id = self.client.shift_id
            for text in texts:
                key = id_key(shift_id(text))
                if key is None:
                    keyless.append(text)
                else:
                    items.append((key, hexdigest(text, seed=seed), text))
        return keyless

    def _convert_into(self, page: Page, shifts: list[Any], day: date, partition: str) -> None:
        """Convert raw shifts into ``page.records`` / ``page.malformed`` (this day's only)."""
        records = page.records
        decode = self.client.decode_shift
        for i, raw in enumerate(shifts):
            shifts[i] = None  # the converted copy replaces it: one copy of the day in memory
            if type(raw) is msgspec.Raw or type(raw) is bytes:
                raw = decode(raw)
            fast = fast_published(raw)
            if fast is not None:
                data, starts = fast
                if starts.astimezone(self.tz).date() == day:
                    key = str(data["id"])
                    marker = data.get("updated_at")
                    records.append(Record.of(key, data, partition, str(marker) if marker else None))
                continue
            try:
                shift = parse_shift(raw)
            except MalformedShiftError as exc:
                if self._starts_elsewhere(raw, day):
                    continue
                page.malformed.append(Malformed(key=exc.key, reason=exc.reason, raw=raw))
                continue
            if shift.start_time.astimezone(self.tz).date() != day:
                continue
            records.append(_record(shift, partition))

    async def lookup(self, partition: str, keys: list[str], params: dict[str, Any]) -> list[Lookup]:
        """Current state of shifts missing from their day, ``record=None`` when WIW says 404.

        The found record's ``partition`` is the day it starts on now (it may have moved), or
        ``None`` when that day is outside this run's window (no partition will see it).
        A key that is not a number cannot be a WIW shift id and is answered as not found.
        A shift that exists but cannot be read gets no ``Lookup`` (it is neither deleted nor
        known): the engine should leave such keys as they are; the day that now holds the
        shift dead-letters it.
        """
        window = set(await self.list_partitions(params))

        def convert(key: str, raw: dict[str, Any]) -> Lookup | None:
            try:
                shift = parse_shift(raw)
            except MalformedShiftError as exc:
                log.warning("WIW shift %s is malformed, left unresolved: %s", key, exc.reason)
                return None
            day = shift.start_time.astimezone(self.tz).date().isoformat()
            return Lookup(key=key, record=_record(shift, day if day in window else None))

        return await point_lookups(keys, self.client.shift, convert, self._lookup_concurrency)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    def _starts_elsewhere(self, raw: Any, day: date) -> bool:
        """True when a malformed shift's start is readable and on another day.

        Then that day dead-letters it, and the same bad record is not reported twice.
        """
        try:
            start = parse_wiw_datetime(raw.get("start_time") if isinstance(raw, dict) else None)
        except ValueError:
            return False
        return start.astimezone(self.tz).date() != day


def _record(shift: WiwShift, partition: str | None) -> Record:
    data = shift.published()
    marker = data.get("updated_at")
    return Record(
        key=str(shift.id),
        data=data,
        partition=partition,
        version_marker=str(marker) if marker else None,
    )


__all__ = ["WiwConnector"]
