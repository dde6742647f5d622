"""Missing keys over simulated time: records that leave a window, lookups under 5xx, deletions.

Real services (Temporal dev server, tansu, valkey) and the simulators over real HTTP. "Today"
comes from a ``ManualClock`` installed as the process-wide clock, so the window slides by
days without waiting; lookups are counted at the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from temporalio.client import Client

from activities.sync import LOOKUP_CHUNK, SyncActivities
from connectors.base import LOOKUP_ATTEMPTS, LOOKUP_BACKOFF_SECONDS
from infra.change_store import SEEN_PAGE_REFS, STORE_CHUNK, ChangeStore, Commit, Version
from infra.publisher import KafkaPublisher
from models.clock import ManualClock
from models.sync import RunState, SyncAllInput, SyncAllResult, SyncPageInput
from simulators.advoware import AdvowareState
from simulators.advoware import make_sim_app as make_advoware_app
from simulators.advoware.app import TERMIN
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from simulators.wiw import WiwState
from simulators.wiw import make_sim_app as make_wiw_app
from tests.clocks import default_clock_at
from tests.helpers import SIM_TOKEN, Engine, make_settings, read, running_engine
from worker import build_connectors
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
BERLIN = ZoneInfo("Europe/Berlin")
DAYS_BACK, DAYS_AHEAD = 3, 10
WIW_LOOKUP = "GET /2/shifts/{id}"
START = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # a Monday; Berlin and UTC on the same day


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    """The process-wide clock, set by the test and restored afterwards."""
    with default_clock_at(START) as manual:
        yield manual


@pytest.fixture(scope="module")
def adv_sim() -> Iterator[tuple[AdvowareState, ThreadedServer]]:
    state, app = make_advoware_app()
    server = ThreadedServer(app).start()
    yield state, server
    server.stop()


@pytest.fixture(scope="module")
def wiw_sim() -> Iterator[tuple[WiwState, ThreadedServer]]:
    state, app = make_wiw_app(timezone="UTC", static_token=SIM_TOKEN)
    server = ThreadedServer(app).start()
    yield state, server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def adv(
    adv_sim, temporal_client: Client, temporal_address, kafka_brokers, redis_url
) -> AsyncIterator[Engine]:
    state, server = adv_sim
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=13,
        advoware=local_advoware_settings(
            state, server.url, days_back=DAYS_BACK, days_ahead=DAYS_AHEAD, page_days=7
        ),
    )
    async with running_engine(temporal_client, settings, settings.kafka.advoware_topic) as eng:
        yield eng


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def wiw(
    wiw_sim, temporal_client: Client, temporal_address, kafka_brokers, redis_url
) -> AsyncIterator[Engine]:
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=14,
        wiw_url=wiw_sim[1].url,
        days_ahead=2,
        days_prior=0,
    )
    async with running_engine(temporal_client, settings) as eng:
        yield eng


async def flush(eng: Engine) -> None:
    r = aioredis.Redis.from_url(eng.settings.redis.url)
    await r.flushdb()
    await r.aclose()


async def sync(eng: Engine, source: str, **kw) -> SyncAllResult:
    result = await eng.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source=source, **kw),
        id=f"syncall/{source}/test-{uuid.uuid4().hex[:8]}",
        task_queue=eng.settings.temporal.task_queue,
    )
    assert result.state == RunState.COMPLETED, result
    return result


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour))


async def test_advoware_records_leaving_the_window_are_looked_up_once(
    adv_sim, adv: Engine, clock: ManualClock
) -> None:
    state, _ = adv_sim
    await flush(adv)
    await read(adv.topic, idle=0.5)
    today = clock.now().astimezone(BERLIN).date()
    state.seed(2, 15, today - timedelta(days=DAYS_BACK), today + timedelta(days=2), seed=5)
    owner = next(e["kuerzel"] for e in state.employees() if e["aktiv"])
    far = state.add(owner, at(today + timedelta(days=1), 9), at(today + timedelta(days=1), 10))

    await sync(adv, "advoware")
    await read(adv.topic, idle=1.0)

    # a week later everything seeded has aged out; one appointment moved far ahead
    clock.advance(timedelta(days=7))
    state.move(far, at(today + timedelta(days=400), 9))
    state.reset_counters()
    second = await sync(adv, "advoware")
    aged_lookups = state.requests[TERMIN]
    assert aged_lookups > 20  # every cached appointment was missing once
    msgs = await read(adv.topic, idle=1.5)
    assert [m.key for m in msgs] == [str(far)]  # only the one that changed is published
    assert second.records.upserted == 1 and second.records.deleted == 0

    # they left the employees' caches: the next runs ask for none of them again
    for _ in range(2):
        state.reset_counters()
        again = await sync(adv, "advoware")
        assert state.requests[TERMIN] == 0
        assert again.records.upserted == 0 and again.records.deleted == 0
    assert await read(adv.topic, idle=1.0) == []


async def test_wiw_shift_moved_out_of_the_window_is_looked_up_once(
    wiw_sim, wiw: Engine, clock: ManualClock
) -> None:
    state, _ = wiw_sim
    await flush(wiw)
    await read(wiw.topic, idle=0.5)
    today = clock.now().date()
    window = [today + timedelta(days=d) for d in range(3)]
    ids = state.seed(12, days=window, seed=7)
    await sync(wiw, "wiw")
    await read(wiw.topic, idle=1.0)

    moved = ids[0]
    state.move(moved, datetime.combine(today + timedelta(days=30), time(9), UTC))
    state.reset_counters()
    await sync(wiw, "wiw")
    assert state.requests[WIW_LOOKUP] == 1
    assert [m.key for m in await read(wiw.topic, idle=1.5)] == [str(moved)]

    state.reset_counters()
    await sync(wiw, "wiw")
    assert state.requests[WIW_LOOKUP] == 0
    assert await read(wiw.topic, idle=1.0) == []
    assert Counter(state.statuses)[500] == 0


async def test_lookups_converge_under_5xx(wiw_sim, wiw: Engine, clock: ManualClock) -> None:
    """300 shifts move out of the window while 5 % of requests answer 500: one run resolves
    all of them (per-lookup retries), and none is looked up again."""
    state, _ = wiw_sim
    await flush(wiw)
    await read(wiw.topic, idle=0.5)
    today = clock.now().date()
    ids = state.seed(300, days=[today + timedelta(days=d) for d in range(3)], seed=9)
    await sync(wiw, "wiw")
    await read(wiw.topic, expect=300)

    for n, shift_id in enumerate(ids):
        state.move(shift_id, datetime.combine(today + timedelta(days=40 + n % 5), time(9), UTC))
    state.reset_counters()
    state.set_knobs(error_rate=0.05)
    try:
        moved = await sync(wiw, "wiw")
    finally:
        state.set_knobs(error_rate=0.0)
    assert state.statuses[500] > 5  # the faults did happen
    assert moved.records.upserted == 300
    msgs = await read(wiw.topic, expect=300)
    msgs += await read(wiw.topic, idle=1.0)
    assert {m.key for m in msgs} == {str(i) for i in ids}

    state.reset_counters()
    await sync(wiw, "wiw")
    assert state.requests[WIW_LOOKUP] == 0


@contextlib.asynccontextmanager
async def page_activities(eng: Engine) -> AsyncIterator[SyncActivities]:
    """The engine's activities with their real dependencies, to call outside a workflow."""
    connectors, _ = build_connectors(eng.settings)
    store = ChangeStore.from_url(eng.settings.redis.url, eng.settings.redis.expire_cache)
    publisher = KafkaPublisher(eng.settings.kafka.brokers)
    try:
        yield SyncActivities(connectors, store, publisher, eng.settings.kafka.deadletter_topic)
    finally:
        publisher.close()
        await store.aclose()
        for conn in connectors.values():
            await conn.aclose()


async def test_deleted_midnight_crossing_shifts_are_deleted_once(
    wiw_sim, wiw: Engine, clock: ManualClock
) -> None:
    """Both days' windows report a deleted overnight shift; only its start day deletes it,
    even when both days' pages are diffed at the same moment."""
    state, _ = wiw_sim
    await flush(wiw)
    await read(wiw.topic, idle=0.5)
    today = clock.now().date()
    night = [
        state.add(
            datetime.combine(today, time(22, 0), UTC) + timedelta(minutes=10 * n),
            datetime.combine(today, time(4, 0), UTC) + timedelta(days=1),
        )
        for n in range(4)
    ]
    await sync(wiw, "wiw")
    await read(wiw.topic, expect=len(night))

    for shift_id in night:
        state.delete(shift_id)
    days_ = [today.isoformat(), (today + timedelta(days=1)).isoformat()]
    async with page_activities(wiw) as acts:
        results = await asyncio.gather(
            *(
                acts._sync_page(SyncPageInput(source="wiw", partition=d, run_token="t"), None)
                for d in days_
            )
        )
    msgs = await read(wiw.topic, idle=1.5)
    deletes = Counter(m.key for m in msgs if m.headers["op"] == "delete" and m.value)
    assert deletes == Counter(str(i) for i in night)
    assert [r.records.deleted for r in results] == [len(night), 0]


def command_sizes(slowlog: list[dict]) -> list[tuple[int, str]]:
    """(argument count, command name) of each logged command; valkey logs 31 arguments and
    then ``... (N more arguments)``."""
    sizes = []
    for entry in slowlog:
        raw = entry["command"]
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        more = re.search(r"\.\.\. \((\d+) more arguments\)$", text)
        n = 31 + int(more.group(1)) if more else len(text.split(" "))
        sizes.append((n, text.split(" ", 1)[0]))
    return sizes


async def test_a_page_of_40000_records_goes_to_redis_in_bounded_commands(
    wiw: Engine,
) -> None:
    """Every Redis command for a 40,000-record page (diff, commit, unchanged page, missing
    keys) carries a bounded number of keys, so no round trip grows with the page."""
    await flush(wiw)
    store, src, part = wiw.store, "wiw", "2026-03-02"
    keys = [str(2_000_000_000 + i) for i in range(40_000)]
    r = aioredis.Redis.from_url(wiw.settings.redis.url)
    saved = await r.config_get("slowlog-*")
    await r.config_set("slowlog-log-slower-than", 0)  # log every command with its arguments
    await r.config_set("slowlog-max-len", 20_000)
    await r.slowlog_reset()
    await r.config_resetstat()
    try:
        snap = await store.snapshot(src, part, keys, keys)
        change = Commit(
            set_fp={k: f"fp{k}" for k in keys},
            set_versions={k: Version(1, f"fp{k}") for k in keys},
            seen=keys,
            page=("start", "digest-1", keys),
        )
        await store.commit(src, part, "run-1", change)
        # the pass already refers to as many pages as it may: this one is copied, in steps
        for i in range(SEEN_PAGE_REFS):
            await store.keep_page(src, part, "run-2", f"other-{i}")
        kept = await store.keep_page(src, part, "run-2", "start")
        log = await r.slowlog_get(20_000)
        await r.config_set("slowlog-log-slower-than", str(saved["slowlog-log-slower-than"]))
        seen_again = await store.missing_keys(src, part, "run-2")
        missing = await store.missing_keys(src, part, "run-3")
        stats = await r.info("commandstats")
    finally:
        for name, value in saved.items():
            await r.config_set(str(name), str(value))
        await r.aclose()
    assert set(snap.cached.values()) == {None} and len(snap.versions) == 40_000
    assert kept == 40_000 and seen_again == [] and len(missing) == 40_000
    assert await store.cached_count(src, part) == 40_000
    sizes = command_sizes(log)
    assert len(sizes) > 100
    biggest = max(sizes)
    assert biggest[0] <= 2 * STORE_CHUNK + 8, biggest
    # no command that reads or copies a whole hash or set in one go
    whole = {"cmdstat_hkeys", "cmdstat_hgetall", "cmdstat_smembers", "cmdstat_sunionstore"}
    assert not whole & set(stats), sorted(whole & set(stats))
    assert stats["cmdstat_hscan"]["calls"] >= 40 and stats["cmdstat_sscan"]["calls"] >= 40


async def test_pages_seen_by_reference_or_copied_leave_nothing_missing(wiw: Engine) -> None:
    """A pass of more pages than it may refer to: the first pages' key sets count as seen
    by reference, the others are copied; either way the missing keys are exactly those of
    the page the next pass did not see."""
    await flush(wiw)
    store, src, part = wiw.store, "wiw", "2026-03-03"
    pages = {f"p{n}": [f"{n}-{i}" for i in range(30)] for n in range(SEEN_PAGE_REFS + 2)}
    for cursor, keys in pages.items():
        change = Commit(
            set_fp={k: f"fp{k}" for k in keys},
            set_versions={k: Version(1, f"fp{k}") for k in keys},
            seen=keys,
            page=(cursor, f"digest-{cursor}", keys),
        )
        await store.commit(src, part, "run-1", change)
    assert await store.missing_keys(src, part, "run-1") == []
    cursors = list(pages)
    for cursor in cursors[:-1]:  # the last page is not seen by run-2
        assert await store.keep_page(src, part, "run-2", cursor) == 30
    assert await store.missing_keys(src, part, "run-2") == sorted(pages[cursors[-1]])
    for cursor in reversed(cursors[1:]):  # the first page is not seen by run-3
        await store.keep_page(src, part, "run-3", cursor)
    assert await store.missing_keys(src, part, "run-3") == sorted(pages[cursors[0]])
    await store.end_pass(src, part, "run-2")
    assert len(await store.missing_keys(src, part, "run-2")) == 30 * len(pages)


async def test_a_pass_of_one_whole_page_misses_nothing_without_a_walk(wiw: Engine) -> None:
    """A pass that saw one page whose key set is the cache, written in the fingerprints'
    current generation, misses nothing and walks no hash; every other case is walked."""
    await flush(wiw)
    store, src, part = wiw.store, "wiw", "2026-03-04"
    keys = [f"k{i}" for i in range(50)]

    def page(cursor: str, fps: list[str], seen: list[str]) -> Commit:
        return Commit(
            set_fp={k: f"fp{k}" for k in fps},
            set_versions={k: Version(1, f"fp{k}") for k in fps},
            seen=seen,
            page=(cursor, f"digest-{cursor}", seen),
        )

    r = aioredis.Redis.from_url(wiw.settings.redis.url)

    async def walks(run: str) -> tuple[list[str], int]:
        await r.config_resetstat()
        missing = await store.missing_keys(src, part, run)
        stats = await r.info("commandstats")
        return missing, stats.get("cmdstat_hscan", {}).get("calls", 0)

    try:
        await store.commit(src, part, "run-1", page("start", keys, keys))
        assert await walks("run-1") == ([], 0)  # right after the page's commit
        await store.keep_page(src, part, "run-2", "start")
        assert await walks("run-2") == ([], 0)  # an unchanged page, next pass

        # a key cached after the page was written (a finish step's lookup, say): walked
        await store.commit(src, part, "run-2", Commit(set_fp={"late": "fp-late"}))
        await store.keep_page(src, part, "run-3", "start")
        missing, hscans = await walks("run-3")
        assert missing == ["late"] and hscans > 0

        # as many keys as the page, but not the same (one left, one came): walked
        await store.commit(src, part, "run-3", Commit(drop_fp=["k1"]))
        await store.keep_page(src, part, "run-6", "start")
        missing, hscans = await walks("run-6")
        assert missing == ["late"] and hscans > 0

        # the page's own commit cached a key it did not see: as large? no -> walked
        await store.commit(src, part, "run-4", page("start", [*keys, "extra"], keys))
        missing, hscans = await walks("run-4")
        assert "extra" in missing and hscans > 0

        # a pass that also saw keys outside its pages: walked
        await store.commit(src, part, "run-5", page("start", keys, keys))
        await store.commit(src, part, "run-5", Commit(seen=["k0"]))
        assert (await walks("run-5"))[1] > 0
    finally:
        await r.aclose()


async def test_event_ids_survive_a_redis_that_lost_everything(
    wiw_sim, wiw: Engine, clock: ManualClock
) -> None:
    """After FLUSHDB every record is republished under the id it had (same data, same id),
    and a record that returns to an earlier state gets an id never used before."""
    state, _ = wiw_sim
    await flush(wiw)
    await read(wiw.topic, idle=0.5)
    today = clock.now().date()
    ids = state.seed(10, days=[today], seed=17)
    edited, back = ids[0], ids[1]
    original_notes = state.shift(back).get("notes")
    await sync(wiw, "wiw")
    used: dict[str, set[str]] = {}
    latest: dict[str, str] = {}

    def note(msgs) -> None:
        for m in msgs:
            used.setdefault(m.key, set()).add(m.headers["event_id"])
            latest[m.key] = m.headers["event_id"]

    note(await read(wiw.topic, expect=10))
    state.change(edited, notes="edited once")
    state.change(back, notes="edited, then changed back")
    await sync(wiw, "wiw")
    note(await read(wiw.topic, expect=2))
    before = dict(latest)

    await flush(wiw)  # Redis lost everything: every record is published again
    await sync(wiw, "wiw")
    again = await read(wiw.topic, expect=10)
    assert {m.key: m.headers["event_id"] for m in again} == before

    state.change(back, notes=original_notes)  # the earlier state, changed again upstream
    await sync(wiw, "wiw")
    [returned] = await read(wiw.topic, expect=1)
    assert returned.key == str(back)
    assert returned.headers["event_id"] not in used[str(back)]


async def test_redis_state_stays_flat_over_simulated_days(
    wiw_sim, temporal_client: Client, temporal_address, kafka_brokers, redis_url, clock
) -> None:
    """A week of daily churn (new shifts entering the window, edits, deletions) with a
    one-day retention: the source's version hash does not grow with history."""
    state, server = wiw_sim
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=15,
        wiw_url=server.url,
        days_ahead=1,
    )
    settings = settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"expire_cache": 86_400})}
    )
    today = clock.now().date()
    state.seed(12, days=[today, today + timedelta(days=1)], seed=1)
    r = aioredis.Redis.from_url(settings.redis.url)
    sizes: list[int] = []
    memory: list[int] = []
    try:
        async with running_engine(temporal_client, settings) as eng:
            for d in range(7):
                if d:
                    clock.advance(timedelta(days=1))
                    day = clock.now().date()
                    state.seed(12, days=[day + timedelta(days=1)], seed=100 + d, replace=False)
                    live = [
                        int(s["id"])
                        for s in state.all_shifts()
                        if parsedate_to_datetime(s["start_time"]).astimezone(UTC).date() == day
                    ]
                    assert len(live) >= 4
                    for shift_id in live[:2]:
                        state.delete(shift_id)
                    for shift_id in live[2:4]:
                        state.change(shift_id, notes=f"day {d}")
                await sync(eng, "wiw")
                sizes.append(int(await r.hlen("synchub:wiw:ver")))
                memory.append(int(await r.memory_usage("synchub:wiw:ver") or 0))
            await read(eng.topic, idle=0.5)
    finally:
        await r.aclose()
    assert sizes[0] >= 12
    assert max(sizes[3:]) <= max(sizes[:3]) + 4, sizes  # flat, not growing by 12 a day
    assert max(memory[3:]) <= 1.5 * max(memory[:3]), memory
    print("ver entries per simulated day:", sizes, "bytes:", memory)


async def test_retention_drops_old_versions_and_stamped_fingerprints_only(
    wiw: Engine, clock: ManualClock
) -> None:
    """Versions (tombstones too) and stamped fingerprints (incremental sources) not written
    for ``EXPIRE_CACHE`` are pruned; a window's fingerprints are not."""
    await flush(wiw)
    store, ttl = wiw.store, wiw.settings.redis.expire_cache
    await store.commit(
        "src",
        "shop",
        "run",
        Commit(set_fp={"old": "f1"}, set_versions={"old": Version(1, "f1")}, stamp_fp=True),
    )
    await store.commit(
        "src", "day", "run", Commit(set_fp={"kept": "f2"}, set_versions={"gone": Version(2, "-")})
    )
    clock.advance(timedelta(seconds=ttl - 60))
    await store.commit(
        "src",
        "shop",
        "run",
        Commit(set_fp={"new": "f3"}, set_versions={"new": Version(1, "f3")}, stamp_fp=True),
    )
    clock.advance(timedelta(seconds=120))
    r = aioredis.Redis.from_url(wiw.settings.redis.url)
    generations = ["synchub:src:shop:fpgen", "synchub:src:day:fpgen"]
    try:
        assert await r.exists(*generations) == 2
        assert await store.prune("src", "shop") == 3  # old's version and fp, the tombstone
        assert await store.prune("src", "day") == 0
        # fingerprints were deleted from the shop: no raw index of it vouches for them now
        assert [await r.exists(g) for g in generations] == [0, 1]
    finally:
        await r.aclose()
    assert await store.cached("src", "shop") == {"new": "f3"}
    assert await store.cached("src", "day") == {"kept": "f2"}
    snap = await store.snapshot("src", "shop", [], ["old", "gone", "new"])
    assert snap.versions["new"] == Version(1, "f3")
    assert snap.versions["old"] == snap.versions["gone"] == Version()


async def test_a_retried_finish_resumes_after_its_last_committed_chunk(
    wiw_sim, wiw: Engine, clock: ManualClock
) -> None:
    """The upstream fails for good while the second chunk of lookups runs: the retried
    activity looks up only what was not committed, and the run counts every record once."""
    state, _ = wiw_sim
    await flush(wiw)
    await read(wiw.topic, idle=0.5)
    today = clock.now().date()
    ids = state.seed(300, days=[today], seed=23)
    await sync(wiw, "wiw")
    await read(wiw.topic, expect=300)
    for shift_id in ids:
        state.move(shift_id, datetime.combine(today + timedelta(days=60), time(9), UTC))
    state.reset_counters()

    async def outage_during_second_chunk() -> None:
        # the simulator counts in its own thread: poll (chunk 2 running = chunk 1 committed)
        while state.requests[WIW_LOOKUP] < LOOKUP_CHUNK + 5:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        state.set_knobs(fail_next=1_000_000)
        await asyncio.sleep(LOOKUP_BACKOFF_SECONDS * 2**LOOKUP_ATTEMPTS)  # > all retries
        state.set_knobs(fail_next=0)

    outage = asyncio.create_task(outage_during_second_chunk())
    state.set_knobs(rate_limit_per_minute=100_000)  # only the outage, no 429 waits
    try:
        result = await sync(wiw, "wiw")
    finally:
        outage.cancel()
        state.set_knobs(fail_next=0, rate_limit_per_minute=600)
    assert state.statuses[503] > 0  # the outage did fail the first attempt
    assert result.records.upserted == 300  # counts of the first attempt are kept
    answered = state.statuses[200] - 3  # minus the three day pages
    assert 300 <= answered < 300 + 100 + 20, answered  # chunk 1 was not looked up again
    msgs = await read(wiw.topic, expect=300)
    msgs += await read(wiw.topic, idle=1.0)
    assert sorted(m.key for m in msgs) == sorted(str(i) for i in ids)  # each published once
