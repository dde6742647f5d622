"""End to end: When I Work shifts through Temporal, Kafka and Redis, all real services.

The simulator serves shifts over real HTTP; a worker runs in-process against the session's
Temporal dev server, tansu and valkey; messages are read back from the topic.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from temporalio.client import Client, WorkflowExecutionStatus

from models.sync import RunState, SyncAllInput, SyncAllResult, SyncPartitionInput
from settings import Settings
from simulators.server import ThreadedServer
from simulators.wiw import WiwState
from tests.helpers import (
    SIM_TOKEN,
    Engine,
    days,
    envelope,
    read,
    running_engine,
    served_wiw,
)
from workflows.options import partition_workflow_id
from workflows.sync_all import SyncAllWorkflow
from workflows.sync_partition import SyncPartitionWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[WiwState, ThreadedServer]]:
    with served_wiw() as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    sim: tuple[WiwState, ThreadedServer],
    temporal_client: Client,
    settings_for: Callable[..., Settings],
) -> AsyncIterator[Engine]:
    settings = settings_for(
        redis_db=1,
        wiw_url=sim[1].url,
        days_ahead=1,
        days_prior=0,
    )
    async with running_engine(temporal_client, settings) as eng:
        yield eng


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean_store(engine: Engine) -> None:
    """Each test starts from an empty change store: seeding replaces the simulator's shifts,
    and thousands of cached keys vanishing at once would mean thousands of point lookups."""
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    await r.flushdb()
    await r.aclose()


def start_day(shift: dict) -> str:
    return parsedate_to_datetime(shift["start_time"]).astimezone(UTC).date().isoformat()


async def sync(eng: Engine, **kw) -> SyncAllResult:
    return await eng.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw", **kw),
        id=f"syncall/wiw/test-{uuid.uuid4().hex[:8]}",
        task_queue=eng.settings.temporal.task_queue,
    )


async def test_first_run_no_change_and_changes(sim, engine: Engine) -> None:
    state, _ = sim
    window = days(2)  # today and tomorrow: days_prior=0, days_ahead=1
    ids = state.seed(40, days=window, seed=11)
    outside = state.add(
        datetime.combine(window[0], datetime.min.time(), UTC) + timedelta(hours=9),
        datetime.combine(window[0], datetime.min.time(), UTC) + timedelta(hours=17),
    )
    all_ids = {str(i) for i in [*ids, outside]}

    # 1. first run publishes every shift once, as upserts with distinct event ids
    result = await sync(engine)
    assert result.state == RunState.COMPLETED
    assert result.partitions.done == 2 and result.partitions.failed == 0
    msgs = await read(engine.topic, expect=len(all_ids))
    msgs += await read(engine.topic, idle=1.0)
    assert sorted(m.key for m in msgs) == sorted(all_ids)
    assert {m.headers["op"] for m in msgs} == {"upsert"}
    assert len({m.headers["event_id"] for m in msgs}) == len(all_ids)
    assert all(m.headers["source"] == "wiw" and m.headers["traceparent"] for m in msgs)
    env = envelope(msgs[0])
    assert env["event_id"] == msgs[0].headers["event_id"] and env["op"] == "upsert"
    assert env["data"]["start_time"].endswith("Z")  # UTC ISO 8601, as slot_sync published
    assert result.records.upserted == len(all_ids) and result.records.fetched == len(all_ids)

    # 2. no upstream change: nothing is published
    again = await sync(engine)
    assert again.state == RunState.COMPLETED
    assert again.records.upserted == 0 and again.records.deleted == 0
    assert again.records.unchanged == len(all_ids)
    assert again.pages == 2 and again.unchanged_pages == 2  # decided by digest, nothing parsed
    assert await read(engine.topic, idle=1.5) == []

    # 3. change 3, delete 2, move 1 within the window, move 1 outside the window
    shifts = sorted(state.all_shifts(), key=lambda s: s["id"])
    by_day: dict[str, list[int]] = defaultdict(list)
    for s in shifts:
        by_day[start_day(s)].append(int(s["id"]))
    d0, d1 = window[0].isoformat(), window[1].isoformat()
    changed = by_day[d0][:2] + by_day[d1][:1]
    deleted = [by_day[d0][2], by_day[d1][1]]
    moved_in = by_day[d0][3]
    moved_out = by_day[d1][2]
    for i in changed:
        state.change(i, notes=f"changed {i}")
    for i in deleted:
        state.delete(i)
    old = parsedate_to_datetime(state.shift(moved_in)["start_time"])
    state.move(moved_in, old + timedelta(days=1))
    old = parsedate_to_datetime(state.shift(moved_out)["start_time"])
    state.move(moved_out, old + timedelta(days=5))

    third = await sync(engine)
    assert third.state == RunState.COMPLETED
    assert third.unchanged_pages == 0
    msgs = await read(engine.topic, idle=2.0)
    upserts = {m.key for m in msgs if m.headers["op"] == "upsert"}
    deletes = {m.key for m in msgs if m.headers["op"] == "delete"}
    assert upserts == {str(i) for i in [*changed, moved_in, moved_out]}
    assert deletes == {str(i) for i in deleted}
    per_key: dict[str, set[str]] = defaultdict(set)
    for m in msgs:
        per_key[m.key].add(m.headers["event_id"])
    assert all(len(ev) == 1 for ev in per_key.values()), per_key  # repeats share the event id
    moved_env = next(envelope(m) for m in msgs if m.key == str(moved_out))
    assert moved_env["data"]["start_time"].startswith(
        (window[1] + timedelta(days=5)).isoformat()[:7]
    )
    assert envelope(next(m for m in msgs if m.key == str(deleted[0])))["data"] is None

    # the cache matches upstream: every partition holds exactly the shifts starting that day
    live = state.all_shifts()
    for day in (d0, d1):
        cached = await engine.store.cached("wiw", day)
        assert set(cached) == {str(s["id"]) for s in live if start_day(s) == day}

    # 4. and a run after that publishes nothing again
    fourth = await sync(engine)
    assert fourth.records.upserted == 0 and fourth.records.deleted == 0
    assert await read(engine.topic, idle=1.5) == []


async def test_malformed_shift_goes_to_deadletter(sim, engine: Engine) -> None:
    state, _ = sim
    ids = state.seed(10, days=days(1), seed=5)
    await sync(engine)
    await read(engine.topic, idle=1.0)
    bad = ids[3]
    state.change(ids[4], notes="still flows")
    state.set_knobs(malformed_ids={bad})
    try:
        result = await sync(engine)
    finally:
        state.set_knobs(malformed_ids=set())
    assert result.state == RunState.COMPLETED
    assert result.records.dead_lettered == 1
    dead = await read(engine.deadletter, expect=1)
    body = envelope(dead[0])
    assert dead[0].key == str(bad) and body["reason"] and body["raw"]["id"] == bad
    msgs = await read(engine.topic, idle=1.5)
    assert [m.key for m in msgs] == [str(ids[4])]


async def test_second_run_of_a_running_partition_is_skipped(sim, engine: Engine) -> None:
    state, _ = sim
    state.seed(5, days=days(2), seed=3)
    day = days(1)[0].isoformat()
    state.set_knobs(latency_ms=2500)
    try:
        holder = await engine.client.start_workflow(
            SyncPartitionWorkflow.run,
            SyncPartitionInput(source="wiw", partition=day),
            id=partition_workflow_id("wiw", day),
            task_queue=engine.settings.temporal.task_queue,
        )
        result = await sync(engine)
        await holder.result()
    finally:
        state.set_knobs(latency_ms=0)
    assert result.partitions.skipped == 1 and result.skipped == [day]
    assert result.partitions.done == 1
    assert result.state == RunState.COMPLETED


async def test_pause_resume_stop_and_progress(sim, engine: Engine) -> None:
    state, _ = sim
    state.seed(30, days=days(10), seed=9)
    state.set_knobs(latency_ms=400)
    try:
        handle = await engine.client.start_workflow(
            SyncAllWorkflow.run,
            SyncAllInput(source="wiw", params={"days_ahead": 9}, max_concurrent=2),
            id=f"syncall/wiw/steer-{uuid.uuid4().hex[:6]}",
            task_queue=engine.settings.temporal.task_queue,
        )
        progress = await _wait_progress(handle, lambda p: p.partitions.done >= 1)
        assert progress.partitions.total == 10 and progress.state == RunState.RUNNING

        await handle.signal(SyncAllWorkflow.pause)
        await _wait_progress(handle, lambda p: p.state == RunState.PAUSED)
        await asyncio.sleep(1.0)  # pages in flight finish; then nothing moves
        paused = await handle.query(SyncAllWorkflow.progress)
        fetches = state.requests["GET /2/shifts"]
        await asyncio.sleep(1.5)
        still = await handle.query(SyncAllWorkflow.progress)
        assert state.requests["GET /2/shifts"] == fetches  # no page fetched while paused
        assert still.partitions.done == paused.partitions.done
        assert still.partitions.pending > 0 and still.state == RunState.PAUSED

        await handle.signal(SyncAllWorkflow.resume)
        resumed = await _wait_progress(handle, lambda p: p.partitions.done > paused.partitions.done)
        assert resumed.state == RunState.RUNNING

        await handle.signal(SyncAllWorkflow.stop)
        result = await handle.result()
    finally:
        state.set_knobs(latency_ms=0)
    assert result.state == RunState.STOPPED
    assert result.partitions.pending > 0 and result.partitions.done < 10
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.COMPLETED
    assert desc.typed_search_attributes is not None
    listed = [
        w.id
        async for w in engine.client.list_workflows(
            f"WorkflowId = '{handle.id}' AND SynchubSource = 'wiw' AND SynchubState = 'STOPPED'"
        )
    ]
    assert listed == [handle.id]


async def _wait_progress(handle, predicate, limit: float = 30.0):
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        p = await handle.query(SyncAllWorkflow.progress)
        if predicate(p):
            return p
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"progress never matched: {p}")
        await asyncio.sleep(0.1)


async def test_history_does_not_grow_with_records(sim, engine: Engine) -> None:
    state, _ = sim
    day = days(1)[0]
    lengths = {}
    for n in (50, 5000):
        state.seed(n, days=[day], seed=n)
        wid = f"sync/wiw/{day.isoformat()}"
        handle = await engine.client.start_workflow(
            SyncPartitionWorkflow.run,
            SyncPartitionInput(source="wiw", partition=day.isoformat()),
            id=wid,
            task_queue=engine.settings.temporal.task_queue,
        )
        result = await handle.result()
        assert result.records.fetched == n
        history = await handle.fetch_history()
        lengths[n] = len(history.events)
    await read(engine.topic, idle=1.0)
    assert lengths[50] == lengths[5000], lengths
    assert lengths[5000] < 40


async def test_continue_as_new_keeps_counting(sim, engine: Engine) -> None:
    state, _ = sim
    state.seed(35, days=days(7), seed=21)
    handle = await engine.client.start_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw", params={"days_ahead": 6}, max_concurrent=2, children_per_run=2),
        id=f"syncall/wiw/can-{uuid.uuid4().hex[:6]}",
        task_queue=engine.settings.temporal.task_queue,
    )
    result = await handle.result()  # follows the continue-as-new chain
    assert result.state == RunState.COMPLETED
    assert result.partitions.total == 7 and result.partitions.done == 7
    assert result.partitions.pending == 0 and result.partitions.running == 0
    assert result.records.fetched == 35
    runs = [w async for w in engine.client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) >= 4  # 7 partitions, 2 per run
    await read(engine.topic, idle=1.0)


async def test_transient_upstream_errors_are_retried(sim, engine: Engine) -> None:
    state, _ = sim
    ids = state.seed(12, days=days(2), seed=31)
    state.reset_counters()
    state.set_knobs(fail_next=3)  # three 503s, then healthy
    result = await sync(engine)
    assert result.state == RunState.COMPLETED
    assert state.statuses[503] >= 3
    msgs = await read(engine.topic, idle=1.5)
    assert {str(i) for i in ids} <= {m.key for m in msgs}


async def test_rejected_credentials_fail_partitions_with_the_setting_to_fix(
    sim, engine: Engine
) -> None:
    state, _ = sim
    state.seed(4, days=days(2), seed=41)
    state.reset_counters()
    state.set_knobs(reject_tokens=True)
    try:
        result = await sync(engine)
    finally:
        state.set_knobs(reject_tokens=False)
    assert result.state == RunState.FAILED
    assert result.partitions.failed == 2 and result.partitions.done == 0
    assert {e.partition for e in result.failed} == {d.isoformat() for d in days(2)}
    for err in result.failed:
        assert "WIW_KEY" in err.error and SIM_TOKEN not in err.error
    assert state.statuses[401] == 2  # non-retryable: one attempt per partition, no retry storm
