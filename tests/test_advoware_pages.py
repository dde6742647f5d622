"""Advoware page edges (issue 8 case 7): nothing lost, nothing twice, whatever ``to`` means.

The reference leaves open whether Advoware's Termine range treats ``to`` as inclusive or
exclusive, and whether it matches appointments by overlap or by start day. The simulator
plays each reading (knobs ``to_exclusive`` and ``match_by``); appointments sit on every page
edge of the employee's window. Each must be published exactly once by the first run, and a
second run must find nothing missing (no point lookups) and publish nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from temporalio.client import Client

from models.sync import RunState, SyncAllInput, SyncAllResult
from simulators.advoware import AdvowareState
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from tests.helpers import Engine, make_settings, read, running_engine, served_advoware
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
BERLIN = ZoneInfo("Europe/Berlin")
DAYS_BACK, DAYS_AHEAD, PAGE_DAYS = 3, 16, 5
LOOKUP = "GET /api/v1/advonet/Termine?frnr"


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[AdvowareState, ThreadedServer]]:
    with served_advoware() as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    sim, temporal_client: Client, temporal_address, kafka_brokers, redis_url
) -> AsyncIterator[Engine]:
    state, server = sim
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=15,
        advoware=local_advoware_settings(
            state, server.url, days_back=DAYS_BACK, days_ahead=DAYS_AHEAD, page_days=PAGE_DAYS
        ),
    )
    async with running_engine(temporal_client, settings, settings.kafka.advoware_topic) as eng:
        yield eng


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean(sim, engine: Engine) -> AsyncIterator[None]:
    state, _ = sim
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    await r.flushdb()
    await r.aclose()
    yield
    state.reset_knobs()


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour))


def edge_calendar(state: AdvowareState) -> tuple[str, dict[int, bool]]:
    """One employee with appointments on every page edge; frNr -> starts before the window."""
    today = datetime.now(BERLIN).date()
    first, last = today - timedelta(days=DAYS_BACK), today + timedelta(days=DAYS_AHEAD)
    state.seed(1, 0, first, last, seed=1, system_entries=False)
    (kuerzel,) = [e["kuerzel"] for e in state.employees() if e["aktiv"]]
    made: dict[int, bool] = {}

    def add(start: datetime, end: datetime, early: bool = False) -> None:
        made[state.add(kuerzel, start, end, text=f"edge {start:%m-%d %H}")] = early

    add(at(first, 8), at(first, 9))
    add(at(last, 16), at(last, 17))
    add(at(last, 20), at(last + timedelta(days=2), 9))  # runs past the window
    add(at(first - timedelta(days=2), 9), at(first + timedelta(days=1), 9), early=True)
    page_start = first + timedelta(days=PAGE_DAYS)
    while page_start <= last:
        page_end = page_start - timedelta(days=1)
        add(at(page_end, 10), at(page_end, 11))  # last day of a page
        add(at(page_end, 23), at(page_start, 1))  # crosses into the next page
        add(at(page_start, 0), at(page_start, 1))  # first hour of the next page
        add(at(page_end, 18), at(page_end + timedelta(days=3), 18))  # spans the edge
        page_start += timedelta(days=PAGE_DAYS)
    return kuerzel, made


async def sync(eng: Engine) -> SyncAllResult:
    return await eng.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="advoware"),
        id=f"syncall/advoware/pages-{datetime.now().timestamp()}",
        task_queue=eng.settings.temporal.task_queue,
    )


@pytest.mark.parametrize("to_exclusive", [False, True], ids=["to-inclusive", "to-exclusive"])
@pytest.mark.parametrize("match_by", ["overlap", "start"])
async def test_page_edges_lose_nothing_and_publish_once(
    sim, engine: Engine, to_exclusive: bool, match_by: str
) -> None:
    state, _ = sim
    _, made = edge_calendar(state)
    state.set_knobs(to_exclusive=to_exclusive, match_by=match_by)
    # an API matching by start day never reports what began before the window
    expected = {str(f) for f, early in made.items() if match_by == "overlap" or not early}
    state.reset_counters()

    first = await sync(engine)
    msgs = await read(engine.topic, expect=len(expected))
    msgs += await read(engine.topic, idle=1.0)
    assert first.state == RunState.COMPLETED
    published = Counter(m.key for m in msgs)
    assert sorted(set(published)) == sorted(expected), "lost or extra at a page edge"
    assert [k for k, n in published.items() if n > 1] == [], "published by two pages"
    assert first.records.upserted == len(expected)

    again = await sync(engine)
    assert again.state == RunState.COMPLETED
    assert (again.records.upserted, again.records.deleted) == (0, 0)
    assert await read(engine.topic, idle=1.0) == []
    assert state.requests[LOOKUP] == 0, "a record at a page edge was seen as missing"
