"""The default Advoware window is one request per employee (issue 11, Advoware goal).

Advoware has no pagination: a date range bounds the answer (reference §1.6). Splitting the
default 396-day window into 31-day pages cost every employee 13 requests, 13 page digests
and their Redis round trips on every run, although the whole calendar is about a hundred
appointments. A window no longer than ``page_days`` is fetched as one page; a longer one
still follows the fixed grid of cells (``tests/test_advoware_digest.py``), and both keep
the same appointments.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from connectors.advoware import AdvowareClient, AdvowareConnector
from models.records import Page
from settings import AdvowareSettings
from simulators.advoware import AdvowareState, make_sim_app
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer

pytestmark = pytest.mark.asyncio(loop_scope="session")
TODAY = date(2031, 3, 10)
TERMINE = "GET /api/v1/advonet/Termine"


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[AdvowareState, str]]:
    state, app = make_sim_app()
    server = ThreadedServer(app).start()
    yield state, server.url
    server.stop()


def connector_for(state: AdvowareState, url: str, **overrides: Any) -> AdvowareConnector:
    """A connector configured as ``build_advoware`` does, from the settings' defaults."""
    adv = local_advoware_settings(state, url, **overrides)
    return AdvowareConnector(
        AdvowareClient(adv),
        topic="advoware.appointments",
        days_back=adv.days_back,
        days_ahead=adv.days_ahead,
        page_days=adv.page_days,
        today=lambda: TODAY,
    )


async def all_pages(connector: AdvowareConnector, kuerzel: str) -> list[Page]:
    pages: list[Page] = []
    cursor: str | None = None
    while True:
        page = await connector.fetch_page(kuerzel, cursor, {})
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def test_the_default_window_is_one_request_with_the_same_appointments(
    sim: tuple[AdvowareState, str],
) -> None:
    state, url = sim
    defaults = AdvowareSettings.model_fields
    back, ahead = defaults["days_back"].default, defaults["days_ahead"].default
    first, last = TODAY - timedelta(days=back), TODAY + timedelta(days=ahead)
    state.seed(1, 300, first - timedelta(days=5), last + timedelta(days=5), seed=3)
    (kuerzel,) = [e["kuerzel"] for e in state.employees() if e["aktiv"]]
    began = datetime.combine(first - timedelta(days=3), time(9))  # overlaps the first day
    long_one = state.add(kuerzel, began, began + timedelta(days=5), abwesenheit=1)

    gridded = connector_for(state, url, page_days=31)
    one = connector_for(state, url)
    try:
        by_grid = await all_pages(gridded, kuerzel)
        before = state.requests[TERMINE]
        pages = await all_pages(one, kuerzel)
        requests = state.requests[TERMINE] - before
    finally:
        await gridded.aclose()
        await one.aclose()

    assert len(by_grid) > 10  # the old default: a page per 31-day cell
    assert (len(pages), requests) == (1, 1), "the default window must be one request"
    keys = [r.key for r in pages[0].records]
    assert len(keys) == len(set(keys))
    assert set(keys) == {r.key for p in by_grid for r in p.records}
    assert str(long_one) in keys
    assert pages[0].stable and pages[0].raw_digest is not None
