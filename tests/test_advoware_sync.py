"""End to end: Advoware calendars through Temporal, Kafka and Redis, one child per employee.

The Advoware simulator serves employees and appointments over real HTTP with its HMAC token
gateway; an in-process worker syncs them; messages are read back from the topic.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from temporalio.client import Client, WorkflowFailureError

from models.failures import failure_message
from models.sync import RunState, SyncAllInput, SyncAllResult
from simulators.advoware import AdvowareState
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from tests.helpers import Engine, envelope, make_settings, read, running_engine, served_advoware
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
BERLIN = ZoneInfo("Europe/Berlin")
DAYS_BACK, DAYS_AHEAD = 10, 60


def today() -> date:
    return datetime.now(BERLIN).date()


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[AdvowareState, ThreadedServer]]:
    with served_advoware() as served:
        yield served


def settings_for(sim, temporal_address, kafka_brokers, redis_url, db: int, **adv):
    state, server = sim
    return make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=db,
        advoware=local_advoware_settings(
            state, server.url, days_back=DAYS_BACK, days_ahead=DAYS_AHEAD, page_days=31, **adv
        ),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    sim, temporal_client: Client, temporal_address, kafka_brokers, redis_url
) -> AsyncIterator[Engine]:
    settings = settings_for(sim, temporal_address, kafka_brokers, redis_url, db=8)
    async with running_engine(temporal_client, settings, settings.kafka.advoware_topic) as eng:
        yield eng


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean_store(engine: Engine) -> None:
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    await r.flushdb()
    await r.aclose()


async def sync(eng: Engine, **kw) -> SyncAllResult:
    return await eng.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="advoware", **kw),
        id=f"syncall/advoware/test-{uuid.uuid4().hex[:8]}",
        task_queue=eng.settings.temporal.task_queue,
    )


def seed(state: AdvowareState, employees: int, per_employee: int, s: int) -> list[str]:
    state.seed(
        employees,
        per_employee,
        today() - timedelta(days=DAYS_BACK - 1),
        today() + timedelta(days=DAYS_AHEAD - 1),
        seed=s,
    )
    return [e["kuerzel"] for e in state.employees() if e["aktiv"]]


def in_window(state: AdvowareState, active: list[str]) -> dict[str, dict]:
    """Appointments the sync must publish: real ones, owned by an active employee."""
    return {
        str(t["frNr"]): t
        for t in state.appointments()
        if int(t["frNr"]) > 0 and t["anwalt"] in active
    }


async def test_change_detection_end_to_end(sim, engine: Engine) -> None:
    state, _ = sim
    active = seed(state, 4, 12, s=3)
    expected = in_window(state, active)

    first = await sync(engine)
    assert first.state == RunState.COMPLETED and first.partitions.done == len(active)
    msgs = await read(engine.topic, expect=len(expected))
    msgs += await read(engine.topic, idle=1.0)
    assert sorted(m.key for m in msgs) == sorted(expected)
    assert {m.headers["op"] for m in msgs} == {"upsert"}
    for m in msgs:
        env = envelope(m)
        assert env["partition"] == expected[m.key]["anwalt"] == env["data"]["kuerzel"]
    assert first.pages >= len(active) * 3  # 70 days in 31-day pages: 3 pages per employee

    again = await sync(engine)
    assert again.records.upserted == 0 and again.records.deleted == 0
    assert again.unchanged_pages == again.pages
    assert await read(engine.topic, idle=1.5) == []

    by_owner: dict[str, list[int]] = defaultdict(list)
    for key, t in sorted(expected.items()):
        if not t.get("privat"):
            by_owner[t["anwalt"]].append(int(key))
    a, b = active[0], active[1]
    edited = [by_owner[a][0], by_owner[b][0]]
    deleted = [by_owner[a][1], by_owner[b][1]]
    private = by_owner[a][2]
    reassigned = by_owner[a][3]
    moved_out = by_owner[b][2]
    for frnr in edited:
        state.change(frnr, text=f"Verlegt {frnr}")
    for frnr in deleted:
        state.delete(frnr)
    state.change(private, privat=1)
    state.reassign(reassigned, b)
    start = datetime.combine(today() + timedelta(days=DAYS_AHEAD + 20), datetime.min.time())
    state.move(moved_out, start.replace(hour=10))
    added = state.add(
        b,
        datetime.combine(today() + timedelta(days=2), datetime.min.time()).replace(hour=14),
        datetime.combine(today() + timedelta(days=2), datetime.min.time()).replace(hour=15),
        text="Neuer Termin",
        ort="Saal 2",
    )

    third = await sync(engine)
    assert third.state == RunState.COMPLETED
    msgs = await read(engine.topic, idle=2.0)
    upserts = {m.key for m in msgs if m.headers["op"] == "upsert"}
    deletes = {m.key for m in msgs if m.headers["op"] == "delete"}
    assert upserts == {str(i) for i in [*edited, private, reassigned, moved_out, added]}
    assert deletes == {str(i) for i in deleted}
    events: dict[str, set[str]] = defaultdict(set)
    for m in msgs:
        events[m.key].add(m.headers["event_id"])
    assert all(len(e) == 1 for e in events.values())
    latest = {m.key: envelope(m) for m in msgs if not m.tombstone}
    assert latest[str(edited[0])]["data"]["subject"] == f"Verlegt {edited[0]}"
    hidden = latest[str(private)]["data"]
    assert hidden["private"] is True and hidden["content_redacted"] is True
    assert not {"subject", "notes", "location", "case"} & set(hidden)
    assert latest[str(reassigned)]["data"]["kuerzel"] == b
    assert latest[str(added)]["data"]["location"] == "Saal 2"

    fourth = await sync(engine)
    assert fourth.records.upserted == 0 and fourth.records.deleted == 0
    assert await read(engine.topic, idle=1.5) == []


async def test_full_content_false_publishes_busy_blocks_only(sim, engine: Engine) -> None:
    state, _ = sim
    active = seed(state, 3, 10, s=5)
    expected = in_window(state, active)
    secrets = {
        str(t.get(f))
        for t in expected.values()
        for f in ("text", "notiz", "ort", "azRubrum")
        if t.get(f) and len(str(t.get(f))) > 3
    }
    assert secrets  # the seeded calendars do have content to hide

    result = await sync(engine, params={"full_content": False})
    assert result.state == RunState.COMPLETED
    msgs = await read(engine.topic, expect=len(expected))
    msgs += await read(engine.topic, idle=1.0)
    assert sorted(m.key for m in msgs) == sorted(expected)
    for m in msgs:
        body = m.value.decode()
        assert not any(s in body for s in secrets), body
        data = json.loads(body)["data"]
        assert data["content_redacted"] is True
        assert not {"subject", "notes", "location", "case"} & set(data)
        assert data["start"] and data["end"]

    # switching the mode back republishes every appointment, now with content
    full = await sync(engine, params={"full_content": True})
    assert full.records.upserted == len(expected) - sum(
        1 for t in expected.values() if t.get("privat")
    )
    await read(engine.topic, idle=1.0)


async def test_token_expiry_mid_run(sim, engine: Engine) -> None:
    state, _ = sim
    active = seed(state, 4, 6, s=9)
    state.reset_counters()
    state.set_knobs(token_ttl_seconds=1, latency_ms=150)
    state.revoke_tokens()  # the worker's cached token is gone; new ones live one second
    try:
        result = await sync(engine, max_concurrent=2)
    finally:
        state.set_knobs(token_ttl_seconds=3300, latency_ms=0)
    assert result.state == RunState.COMPLETED and result.partitions.done == len(active)
    assert state.requests["POST /api/v1/Token"] >= 2  # re-authenticated during the run
    assert result.records.upserted == len(in_window(state, active))
    await read(engine.topic, idle=1.0)


async def test_fan_out_with_debug_filter_and_one_failing_employee(
    sim,
    temporal_client: Client,
    temporal_address,
    kafka_brokers,
    redis_url,
) -> None:
    state, _ = sim
    active = seed(state, 50, 3, s=13)
    assert len(active) >= 40
    chosen = active[:3]
    broken = chosen[1]
    settings = settings_for(
        sim, temporal_address, kafka_brokers, redis_url, db=9, debug_kuerzel=",".join(chosen)
    )
    state.set_knobs(fail_kuerzel={broken})
    try:
        async with running_engine(temporal_client, settings, settings.kafka.advoware_topic) as eng:
            result = await sync(eng)
            msgs = await read(eng.topic, idle=1.5)
    finally:
        state.set_knobs(fail_kuerzel=set())
    assert result.state == RunState.FAILED
    assert result.partitions.total == 3
    assert result.partitions.done == 2 and result.partitions.failed == 1
    assert [f.partition for f in result.failed] == [broken]
    assert (
        "nicht freigeschaltet" in result.failed[0].error
        or "ADVOWARE_USER" in result.failed[0].error
    )
    owners = {envelope(m)["partition"] for m in msgs}
    assert owners == set(chosen) - {broken}


async def test_listing_employees_failure_fails_the_run(sim, engine: Engine) -> None:
    state, _ = sim
    seed(state, 2, 2, s=17)
    saved = dict(state.users)
    state.users = {k: "a-changed-password" for k in saved}  # the API user's password changed
    state.revoke_tokens()
    try:
        with pytest.raises(WorkflowFailureError) as caught:
            await sync(engine)
    finally:
        state.users = saved
    message = failure_message(caught.value)
    assert "cannot list what to sync" in message and "ADVOWARE_PASSWORD" in message
    assert all(pw not in message for pw in saved.values())
