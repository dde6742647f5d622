"""Advoware page digests survive the window sliding by a day (issue 8, soak).

A page's raw digest is stored under its cursor (``<p>:digest:<cursor>``). When every page
started at ``first + k * page_days``, the cursors moved with "today", so each morning no
page found a digest and every employee's whole window was parsed and compared again (the
soak's ~21,000-appointment employee ``BIG`` on every tick). Pages on a fixed grid of days
keep their cursor and their request: a page that lies inside yesterday's and today's
window, with nothing changed, is proven unchanged by its digest. Only the window's first
and last page change with the day. Each appointment is still kept by exactly one page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import pytest

from connectors.advoware import AdvowareClient, AdvowareConnector
from models.records import Page
from simulators.advoware import AdvowareState, make_sim_app
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer

pytestmark = pytest.mark.asyncio(loop_scope="session")
DAYS_BACK, DAYS_AHEAD, PAGE_DAYS = 7, 28, 14
MONDAY = date(2031, 3, 10)


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[AdvowareState, str]]:
    state, app = make_sim_app()
    server = ThreadedServer(app).start()
    yield state, server.url
    server.stop()


async def _pass(
    connector: AdvowareConnector, kuerzel: str, known: dict[str, str | None]
) -> dict[str, Page]:
    """Every page of one pass, by cursor id (``start`` for the first)."""
    pages: dict[str, Page] = {}
    cursor: str | None = None
    while True:
        cursor_id = cursor or "start"
        page = await connector.fetch_page(kuerzel, cursor, {}, known.get(cursor_id))
        pages[cursor_id] = page
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def _window(today: date) -> tuple[date, date]:
    return today - timedelta(days=DAYS_BACK), today + timedelta(days=DAYS_AHEAD)


def _expected(state: AdvowareState, kuerzel: str, today: date) -> set[str]:
    first, last = _window(today)
    return {
        str(t["frNr"])
        for t in state.appointments(kuerzel)
        if t["frNr"] > 0
        and date.fromisoformat(t["datum"][:10]) <= last
        and date.fromisoformat(t["datumBis"][:10]) >= first
    }


async def test_a_page_unchanged_overnight_is_proven_unchanged_by_its_digest(
    sim: tuple[AdvowareState, str],
) -> None:
    state, url = sim
    state.seed(1, 400, MONDAY - timedelta(days=20), MONDAY + timedelta(days=40), seed=4)
    (kuerzel,) = [e["kuerzel"] for e in state.employees() if e["aktiv"]]
    today = [MONDAY]
    settings = local_advoware_settings(
        state, url, days_back=DAYS_BACK, days_ahead=DAYS_AHEAD, page_days=PAGE_DAYS
    )
    connector = AdvowareConnector(
        AdvowareClient(settings),
        topic="advoware.appointments",
        days_back=DAYS_BACK,
        days_ahead=DAYS_AHEAD,
        page_days=PAGE_DAYS,
        today=lambda: today[0],
    )
    try:
        known: dict[str, str | None] = {}
        for day in (MONDAY, MONDAY + timedelta(days=1), MONDAY + timedelta(days=2)):
            today[0] = day
            pages = await _pass(connector, kuerzel, known)
            if known:  # a day after the first: the pages between the window's edges
                inner = [c for c, p in pages.items() if c != "start" and p.next_cursor]
                assert inner, f"no page lies inside the window: {list(pages)}"
                stale = [c for c in inner if not pages[c].unchanged]
                assert not stale, f"{day}: unchanged pages {stale} missed their digest"
            # parse everything (no digests) to check each appointment is on exactly one page
            full = await _pass(connector, kuerzel, {})
            kept = Counter(r.key for p in full.values() for r in p.records)
            assert set(kept) == _expected(state, kuerzel, day)
            assert max(kept.values()) == 1
            known = {c: p.raw_digest for c, p in full.items()}
        # a change inside a middle page is not hidden by the digest
        inner_day = MONDAY + timedelta(days=2 + PAGE_DAYS)
        frnr = state.add(
            kuerzel, datetime.combine(inner_day, time(9)), datetime.combine(inner_day, time(10))
        )
        pages = await _pass(connector, kuerzel, known)
        assert str(frnr) in {r.key for p in pages.values() if not p.unchanged for r in p.records}
    finally:
        await connector.aclose()
