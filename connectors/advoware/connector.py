"""Advoware appointments as synchub records: one partition per employee (``kuerzel``).

An employee is the natural partition: Advoware lists Termine per Kürzel and date range, one
employee's calendar is independent of the others', and a refusal for one employee (``...
nicht freigeschaltet``) must not stop the rest. Each partition is the window
``[today - days_back, today + days_ahead]`` (today in Europe/Berlin). Advoware has no
pagination (a date range bounds the answer), so a window of at most ``page_days`` days (the
default window of 396 days and the default of 400) is one page: one request per employee
and run. A longer window is fetched in pages of at most ``page_days`` days; the cursor is
the ISO date a page starts on. Pages follow a
fixed grid of ``page_days``-day cells (counted from ``PAGE_GRID_ORIGIN``), not the window's
first day: as the window slides by a day, a page inside it keeps its cursor and its
request, so its stored digest proves it unchanged (only the first page, from the window's
first day to the end of its cell, and the last change with the day). Each page asks for one day
more than its own (page requests overlap at their bounds by a day), because the reference
does not settle whether ``to`` is inclusive, nor whether Advoware matches appointments by
overlap with the range or by start day. A page keeps only the appointments owned by this
employee that *start* in its own days, so one in the overlap is published by one page only;
an appointment that began before the window but still overlaps it (a long absence, a
running series) belongs to the first page (an API matching by start day never returns it).
So every appointment of the window is published exactly once per run, however many pages
it spans or whichever reading of the range the API follows.

Published record (``Record.data``; key = ``str(frNr)``, partition = owner Kürzel):

=====================  ==================================================================
field                  meaning
=====================  ==================================================================
``frNr``               Advoware record id (int)
``kuerzel``            owner (``anwalt``), upper-case Kürzel
``start`` / ``end``    local wall-clock ISO datetime without offset, e.g.
                       ``2026-02-10T09:00:00``; for a series: the first occurrence
``timezone``           ``"Europe/Berlin"``, the zone of ``start``/``end``
``all_day``            bool (``abwesenheit``); the end is then typically ``...T23:59:00``
``recurrence``         ``{dauertermin: bool, turnus: int, turnusArt: int (1 daily,
                       2 weekly, 3 monthly, 4 yearly, 0 none), until: "YYYY-MM-DD" | null}``
``private``            bool (``privat``)
``last_modified``      ``zuletztGeaendertAm`` exactly as sent (UTC, no offset) or null
``content_redacted``   bool: true when the fields below are withheld
``subject``            ``text``            (only when content is published)
``notes``              ``notiz``           (only when content is published)
``location``           ``ort``             (only when content is published)
``case``               ``{nr: int | null, rubrum: str | null}`` from ``nr``/``azRubrum``
                       (only when content is published)
=====================  ==================================================================

Content is published when ``full_content`` is true for the owner (setting
``ADVOWARE_FULL_CONTENT``, run parameter ``full_content``, per-employee override
``full_content_kuerzel``) *and* the appointment is not private. Otherwise the four content
fields are absent, not empty: a consumer sees a busy block. Dead-lettered raw appointments
lose the same fields under the same rule (an unreadable ``privat`` counts as private).
Negative ``frNr`` (system entries) are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.advoware.client import AdvowareClient
from connectors.advoware.schemas import (
    TIMEZONE,
    MalformedTerminError,
    Termin,
    parse_employee,
    parse_termin,
    raw_owner,
    raw_private,
    start_day,
    without_content,
)
from connectors.base import ConnectorBase, days_param, iso_day, point_lookups
from connectors.shapes import shape_of
from models import clock
from models.errors import InvalidParamsError, PermanentError
from models.records import Lookup, Malformed, Page, Record, raw_digest

log = logging.getLogger(__name__)

PAGE_OVERLAP_DAYS = 1
"""Days each page request reaches into the next page. The reference does not say whether
Advoware's ``to`` is inclusive or whether it matches appointments by overlap or by start
day; asking one day more and keeping only what starts in the page is right for all four."""

PAGE_GRID_ORIGIN = date(2000, 1, 3)
"""Pages start on ``PAGE_GRID_ORIGIN + k * page_days`` (and the window's first page on its
first day): a grid that does not move with "today", so page digests keep their cursor."""

DEFAULT_PAGE_DAYS = 400
"""Days per page unless ``ADVOWARE_PAGE_DAYS`` says otherwise: the default window (30 days
back, 365 ahead) in one request. Its digest then changes with the day, so the first run of
a day parses every calendar again (and publishes nothing new); the other runs of the day
are proven unchanged by one digest per employee instead of thirteen."""

OUTPUT_VERSION = "advoware-termin-1"
"""Raise when the published shape changes, so every page digest misses once."""


class AdvowareConnector(ConnectorBase):
    """``connectors.base.Connector`` for Advoware appointments.

    Args:
        client: the HTTP client (owned: closed by ``aclose``).
        source: registry name, also the Redis key prefix.
        topic: Kafka topic of the appointment events.
        days_back: days before today in each employee's window (``ADVOWARE_DAYS_BACK``).
        days_ahead: days after today in the window (``ADVOWARE_DAYS_AHEAD``).
        page_days: days of the window per page (``ADVOWARE_PAGE_DAYS``); a window no
            longer than this is one page.
        full_content: publish subject, notes, location and case (``ADVOWARE_FULL_CONTENT``).
        debug_kuerzel: sync only these employees (``CALENDAR_SYNC_DEBUG_KUERZEL``); empty
            = all.
        today: clock for "today" (tests inject one); default: today in ``timezone``.
        lookup_concurrency: point lookups in flight; default: the client's settings.
        timezone: zone whose "today" anchors the window.
    """

    def __init__(
        self,
        client: AdvowareClient,
        *,
        source: str = "advoware",
        topic: str,
        days_back: int = 30,
        days_ahead: int = 365,
        page_days: int = DEFAULT_PAGE_DAYS,
        full_content: bool = True,
        debug_kuerzel: Iterable[str] = (),
        today: Callable[[], date] | None = None,
        lookup_concurrency: int | None = None,
        timezone: str = TIMEZONE,
    ) -> None:
        if page_days < 1:
            raise ValueError("page_days must be at least 1")
        self.client = client
        self.source = source
        self.topic = topic
        self.partition_noun = "employee"
        self.days_back = days_back
        self.days_ahead = days_ahead
        self.page_days = page_days
        self.full_content = full_content
        self.debug_kuerzel = [k.strip().upper() for k in debug_kuerzel if k.strip()]
        self.tz = ZoneInfo(timezone)
        self._today = today or (lambda: clock.today(self.tz))
        self._lookup_concurrency = lookup_concurrency or client.settings.lookup_concurrency

    async def list_partitions(self, params: dict[str, Any]) -> list[str]:
        """Kürzel of the active employees, upper-cased, in Advoware's order.

        With ``debug_kuerzel`` only those are kept (the others are logged as filtered, and a
        debug Kürzel that is not an active employee is logged as missing).

        Raises:
            PermanentError: the list has entries but none with a Kürzel we can read (a
                changed API); the message names the shape received, never its values.
        """
        _check_params(params)
        active: list[str] = []
        inactive: list[str] = []
        raws = await self.client.employees()
        if raws and not any(parse_employee(raw) for raw in raws):
            # a renamed field would otherwise look like a firm without employees
            raise PermanentError(
                f"Advoware listed {len(raws)} employees but none with a readable Kürzel "
                f"(field kuerzel); received {shape_of(raws)}"
            )
        for raw in raws:
            parsed = parse_employee(raw)
            if parsed is None:
                continue
            code, is_active = parsed
            target = active if is_active else inactive
            if code not in active and code not in inactive:
                target.append(code)
        if inactive:
            log.info("skipping %d inactive employees: %s", len(inactive), ", ".join(inactive))
        if not self.debug_kuerzel:
            return active
        kept = [k for k in active if k in self.debug_kuerzel]
        dropped = [k for k in active if k not in self.debug_kuerzel]
        log.info(
            "CALENDAR_SYNC_DEBUG_KUERZEL keeps %s; filtered out %d: %s",
            ", ".join(kept) or "nobody",
            len(dropped),
            ", ".join(dropped) or "-",
        )
        missing = [k for k in self.debug_kuerzel if k not in active]
        if missing:
            log.warning(
                "CALENDAR_SYNC_DEBUG_KUERZEL names no active employee %s", ", ".join(missing)
            )
        return kept

    async def fetch_page(
        self,
        partition: str,
        cursor: str | None,
        params: dict[str, Any],
        known_digest: str | None = None,
        checkpoint: str | None = None,
    ) -> Page:
        """One chunk of the employee's window: from ``cursor`` to the end of its grid cell.

        Keeps the appointments owned by ``partition`` that start in the chunk, plus, on the
        chunk holding the window's first day, those that started earlier and still overlap.
        ``next_cursor`` is the next chunk's first day, ``None`` after the window's last day.
        When the raw chunk (with everything else that shapes its records: the chunk's days,
        whether it is the first, the content mode) hashes to ``known_digest`` nothing is
        parsed and an ``unchanged`` page is returned.
        """
        _check_params(params)
        kuerzel = kuerzel_partition(partition)
        first, last = self.window(params)
        chunk_start = iso_day(cursor, "Advoware cursor") if cursor is not None else first
        if chunk_start > last:  # a cursor saved before the window shrank
            return Page(next_cursor=None, stable=True)
        if (last - first).days < self.page_days:  # the whole window fits: one request
            chunk_end = last
        else:
            chunk_end = min(_cell_end(chunk_start, self.page_days), last)
        is_first = chunk_start <= first
        full = self._full(params, kuerzel)

        def belongs(day: date) -> bool:
            return chunk_start <= day <= chunk_end or (is_first and day < chunk_start)

        next_cursor = None if chunk_end >= last else (chunk_end + timedelta(days=1)).isoformat()
        # one day beyond the chunk: an API whose ``to`` is exclusive still returns the
        # chunk's last day; what starts on the extra day belongs to the next page
        raws = await self.client.appointments(
            kuerzel, chunk_start, chunk_end + timedelta(days=PAGE_OVERLAP_DAYS)
        )
        digest = raw_digest(
            OUTPUT_VERSION,
            kuerzel,
            chunk_start.isoformat(),
            chunk_end.isoformat(),
            is_first,
            full,
            raws,
        )
        if digest == known_digest:
            return Page(next_cursor=next_cursor, stable=True, raw_digest=digest, unchanged=True)
        page = Page(next_cursor=next_cursor, stable=True, raw_digest=digest)
        for raw in raws:
            try:
                termin = parse_termin(raw)
            except MalformedTerminError as exc:
                owner, day = raw_owner(raw), start_day(raw)
                if (owner is not None and owner != kuerzel) or (
                    day is not None and not belongs(day)
                ):
                    continue  # another page or employee reports it
                content_ok = full and not raw_private(raw)
                page.malformed.append(
                    Malformed(
                        key=exc.key,
                        reason=exc.reason,
                        raw=raw if content_ok else without_content(raw),
                    )
                )
                continue
            if termin is None or termin.owner != kuerzel or not belongs(termin.start.date()):
                continue
            page.records.append(_record(termin, full))
        return page

    async def lookup(self, partition: str, keys: list[str], params: dict[str, Any]) -> list[Lookup]:
        """Current state of appointments missing from the employee's window.

        ``record=None`` when Advoware answers 404 (deleted), also for keys that cannot be a
        ``frNr``. A found appointment's ``partition`` is its owner *now* (it may have been
        given to another employee) while it lies in this run's window, and ``None`` once it
        does not (aged past ``days_back``, moved far away): no employee's pages return it
        any more, so the engine publishes its new state if it changed and drops it from
        this partition, and the next run does not look it up again. An appointment that
        exists but cannot be read gets no ``Lookup`` (it is neither deleted nor known), so
        the engine leaves that key as it is.
        """
        _check_params(params)
        first, last = self.window(params)

        def convert(key: str, raw: dict[str, Any]) -> Lookup | None:
            try:
                termin = parse_termin(raw)
            except MalformedTerminError as exc:
                log.warning("Advoware appointment %s is malformed, left as is: %s", key, exc.reason)
                return None
            if termin is None:  # a system entry: never published
                return Lookup(key=key, record=None)
            record = _record(termin, self._full(params, termin.owner))
            if not _overlaps(termin, first, last):
                record.partition = None
            return Lookup(key=key, record=record)

        return await point_lookups(keys, self.client.appointment, convert, self._lookup_concurrency)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    def window(self, params: dict[str, Any]) -> tuple[date, date]:
        """First and last day (inclusive) of every employee's window for this run."""
        back = days_param(params, "days_back", self.days_back)
        ahead = days_param(params, "days_ahead", self.days_ahead)
        today = self._today()
        return today - timedelta(days=back), today + timedelta(days=ahead)

    def _full(self, params: dict[str, Any], kuerzel: str) -> bool:
        """Whether content of ``kuerzel``'s appointments is published in this run."""
        per_employee = params.get("full_content_kuerzel") or {}
        for code, value in per_employee.items():
            if str(code).strip().upper() == kuerzel:
                return bool(value)
        value = params.get("full_content")
        return self.full_content if value is None else bool(value)


def _record(termin: Termin, full: bool) -> Record:
    owner = termin.owner or None
    return Record(
        key=str(termin.frNr),
        data=termin.published(full_content=full),
        partition=owner,
        version_marker=termin.zuletztGeaendertAm,
    )


def pages_in_window(first: date, last: date, page_days: int) -> int:
    """How many pages (requests) ``fetch_page`` makes for the window ``[first, last]``."""
    if (last - first).days < page_days:
        return 1
    pages, day = 0, first
    while day <= last:
        pages += 1
        day = _cell_end(day, page_days) + timedelta(days=1)
    return pages


def _cell_end(day: date, page_days: int) -> date:
    """Last day of the ``PAGE_GRID_ORIGIN`` grid cell of ``page_days`` days holding ``day``."""
    offset = (day - PAGE_GRID_ORIGIN).days % page_days
    return day + timedelta(days=page_days - 1 - offset)


def _overlaps(termin: Termin, first: date, last: date) -> bool:
    """Whether the window ``[first, last]`` returns the appointment.

    As Advoware matches ranges: it starts by ``last`` and it (or its series) lasts until
    ``first`` or later.
    """
    last_day = termin.until or termin.end.date()
    return termin.start.date() <= last and last_day >= first


def kuerzel_partition(partition: str) -> str:
    """An employee partition as Advoware spells it (upper case), or why it is not one."""
    code = partition.strip().upper()
    if not code or "," in code or "/" in code:
        raise InvalidParamsError(
            f"Advoware partition must be an employee Kürzel, got {partition!r}"
        )
    return code


def _check_params(params: dict[str, Any]) -> None:
    """Reject run parameters of the wrong kind before any request is made."""
    days_param(params, "days_back", 0)
    days_param(params, "days_ahead", 0)
    full = params.get("full_content")
    if full is not None and not isinstance(full, bool):
        raise InvalidParamsError(f"full_content must be true or false, got {full!r}")
    per_employee = params.get("full_content_kuerzel")
    if per_employee is None:
        return
    if not isinstance(per_employee, dict) or not all(
        isinstance(k, str) and k.strip() and isinstance(v, bool) for k, v in per_employee.items()
    ):
        raise InvalidParamsError(
            f"full_content_kuerzel must map employee Kürzel to true or false, got {per_employee!r}"[
                :200
            ]
        )


__all__ = ["AdvowareConnector"]
