"""Fingerprint-first WIW pages: only shifts whose raw form changed are parsed.

Real Temporal, tansu, valkey and the WIW simulator over HTTP. The raw index
(``<p>:raw:<cursor>``) only ever saves work: a state written before it existed republishes
nothing, and a cache changed underneath it is noticed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from temporalio.client import Client

from connectors.wiw.connector import WiwConnector
from infra.change_store import ChangeStore, Commit, HiredisPacking
from infra.consumer import TopicReader
from infra.publisher import ensure_topics
from models.records import Page
from models.sync import RunState, SyncAllInput, SyncAllResult
from settings import Settings
from simulators.wiw import WiwState
from tests.helpers import days, read, served_wiw
from worker import build_worker
from workflows.sync_all import SyncAllWorkflow

REDIS_DB = 7


@dataclass
class Rig:
    settings: Settings
    client: Client
    redis: aioredis.Redis
    topic: TopicReader
    converted: list[int]
    """How many raw shifts each ``convert`` call of the worker's WIW connector got."""


@pytest.fixture(scope="module")
def sim() -> Iterator[WiwState]:
    with served_wiw() as (state, server):
        state.server_url = server.url  # type: ignore[attr-defined]
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    sim: WiwState,
    temporal_client: Client,
    settings_for: Callable[..., Settings],
) -> AsyncIterator[Rig]:
    settings = settings_for(
        redis_db=REDIS_DB,
        wiw_url=sim.server_url,  # type: ignore[attr-defined]
        days_ahead=1,
    )
    await asyncio.to_thread(
        ensure_topics,
        settings.kafka.brokers,
        [settings.kafka.wiw_topic, settings.kafka.deadletter_topic],
        settings.kafka.topic_partitions,
    )
    r = aioredis.Redis.from_url(settings.redis.url, decode_responses=True)
    bundle = await build_worker(temporal_client, settings)
    wiw = bundle.connectors["wiw"]
    assert isinstance(wiw, WiwConnector)
    converted: list[int] = []
    convert = wiw.convert

    def counting(partition: str, raw: list[Any]) -> Page:
        converted.append(len(raw))
        return convert(partition, raw)

    wiw.convert = counting  # type: ignore[method-assign]
    reader = TopicReader(settings.kafka.brokers, settings.kafka.wiw_topic)
    try:
        async with bundle.worker:
            yield Rig(settings, temporal_client, r, reader, converted)
    finally:
        reader.close()
        await r.aclose()
        await bundle.aclose()


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean(rig: Rig) -> None:
    await rig.redis.flushdb()
    rig.converted.clear()


async def sync(rig: Rig) -> SyncAllResult:
    result = await rig.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw"),
        id=f"syncall/wiw/rawfirst-{uuid.uuid4().hex[:8]}",
        task_queue=rig.settings.temporal.task_queue,
    )
    assert result.state == RunState.COMPLETED, result.failed
    return result


async def drop(rig: Rig, pattern: str) -> int:
    keys = [k async for k in rig.redis.scan_iter(match=pattern)]
    if keys:
        await rig.redis.delete(*keys)
    return len(keys)


@pytest.mark.asyncio(loop_scope="session")
async def test_upgrade_republishes_nothing_and_a_change_parses_one_shift(
    sim: WiwState, rig: Rig
) -> None:
    ids = sim.seed(80, days=days(2), seed=5)
    first = await sync(rig)
    assert first.records.upserted == 80
    assert len(await read(rig.topic, expect=80)) == 80
    assert await drop(rig, "synchub:wiw:*:raw:*") == 2

    # the state an older synchub left (no raw index) and no page digest: every shift is
    # parsed and compared, and nothing is published again
    await drop(rig, "synchub:wiw:*:digest:*")
    rig.converted.clear()
    again = await sync(rig)
    assert (again.records.upserted, again.records.unchanged) == (0, 80)
    assert sum(rig.converted) >= 80  # all parsed: there was no raw index yet
    assert await read(rig.topic, idle=1.0) == []

    # one shift changes: only it is parsed, only it is published
    sim.change(ids[7], notes="changed")
    rig.converted.clear()
    third = await sync(rig)
    assert (third.records.upserted, third.records.unchanged) == (1, 79)
    assert sum(rig.converted) == 1
    msgs = await read(rig.topic, idle=1.0)
    assert [m.key for m in msgs] == [str(ids[7])]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_cache_changed_underneath_the_raw_index_is_noticed(sim: WiwState, rig: Rig) -> None:
    window = days(2)
    sim.seed(40, days=window, seed=6)
    await sync(rig)
    await read(rig.topic, expect=40)
    fp_key = f"synchub:wiw:{window[0].isoformat()}:fp"
    cached = await rig.redis.hgetall(fp_key)
    victim, other = sorted(cached)[:2]
    # another writer of the partition's cache (a finish step's commit, say) changes it
    store = ChangeStore.from_url(rig.settings.redis.url, 3_600)
    try:
        await store.commit(
            "wiw", window[0].isoformat(), "other-pass", Commit(set_fp={str(victim): "0" * 32})
        )
    finally:
        await store.aclose()
    sim.change(int(other), notes="changed")  # the day's page changes: the raw path runs
    rig.converted.clear()
    result = await sync(rig)
    # the victim was parsed again (its raw form did not change, its cache entry did) and
    # its fingerprint repaired; it is not published: its version already has that state
    assert sum(rig.converted) == 2
    assert await rig.redis.hget(fp_key, victim) == cached[victim]
    msgs = await read(rig.topic, idle=1.0)
    assert [m.key for m in msgs] == [other]
    assert result.records.upserted == 1


@pytest.mark.asyncio(loop_scope="session")
async def test_an_untouched_cache_is_not_read_back(sim: WiwState, rig: Rig) -> None:
    """No fingerprint was written since the raw index was: the unchanged shifts of a
    changed day are kept without reading their cached fingerprints (only the changed
    shift's is read), and an index that a stale generation wrote is read back again."""
    window = days(2)
    ids = sim.seed(40, days=window, seed=8)
    await sync(rig)
    await read(rig.topic, expect=40)
    sim.change(ids[3], notes="changed")
    hmgets = await fp_reads(rig, lambda: sync(rig))
    assert hmgets and max(hmgets) == 1, hmgets  # the changed shift's own snapshot only
    assert [m.key for m in await read(rig.topic, idle=1.0)] == [str(ids[3])]

    # a stale generation (as if a commit had been cut short after writing fingerprints)
    for day in window:
        await rig.redis.set(f"synchub:wiw:{day.isoformat()}:fpgen", "stale")
    sim.change(ids[3], notes="changed again")
    hmgets = await fp_reads(rig, lambda: sync(rig))
    assert max(hmgets) >= 19, hmgets  # the day's unchanged shifts read back, as before
    assert [m.key for m in await read(rig.topic, idle=1.0)] == [str(ids[3])]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_damaged_raw_index_only_costs_a_full_compare(rig: Rig) -> None:
    store = ChangeStore.from_url(rig.settings.redis.url, 3_600)
    try:
        for blob in (b"no-space-at-all", b"gen {not json", b'{"k": "old format"}'):
            await rig.redis.set("synchub:wiw:2026-12-01:raw:start", blob)
            prior = await store.raw_index("wiw", "2026-12-01", "start")
            assert not prior.trusted
            assert prior.entries == ({"k": "old format"} if blob[:1] == b"{" else {})
    finally:
        await store.aclose()


async def fp_reads(rig: Rig, run: Callable[[], Awaitable[Any]]) -> list[int]:
    """Keys per ``HMGET`` of a partition's fingerprints while ``run`` runs (slowlog)."""
    return [
        len(words) - 2
        for words in await commands_during(rig, run)
        if words[0].upper() == "HMGET" and words[1].endswith(":fp")
    ]


async def commands_during(rig: Rig, run: Callable[[], Awaitable[Any]]) -> list[list[str]]:
    """Every Redis command (as words) while ``run`` runs, from the slowlog."""
    saved = await rig.redis.config_get("slowlog-*")
    await rig.redis.config_set("slowlog-log-slower-than", 0)
    await rig.redis.config_set("slowlog-max-len", 10_000)
    await rig.redis.slowlog_reset()
    try:
        await run()
        log = await rig.redis.slowlog_get(10_000)
    finally:
        for name, value in saved.items():
            await rig.redis.config_set(str(name), str(value))
    commands = []
    for entry in log:
        command = entry["command"]
        commands.append((command.decode() if isinstance(command, bytes) else command).split(" "))
    return commands


@pytest.mark.asyncio(loop_scope="session")
async def test_a_day_with_the_same_shifts_keeps_its_key_set(sim: WiwState, rig: Rig) -> None:
    """A changed day whose shifts are the same ones keeps its stored key set (known from
    the trusted raw index); a day with a new shift writes it again, new shift included."""
    window = days(2)
    ids = sim.seed(40, days=window, seed=9)
    await sync(rig)
    await read(rig.topic, expect=40)

    def key_set_writes(commands: list[list[str]]) -> list[str]:
        return [w[1] for w in commands if w[0].upper() == "SADD" and ":keys:" in w[1]]

    sim.change(ids[3], notes="changed")
    assert key_set_writes(await commands_during(rig, lambda: sync(rig))) == []
    assert [m.key for m in await read(rig.topic, idle=1.0)] == [str(ids[3])]

    today = window[0]
    new = sim.add(datetime.combine(today, time(8)), datetime.combine(today, time(12)))
    written = key_set_writes(await commands_during(rig, lambda: sync(rig)))
    keys_key = f"synchub:wiw:{today.isoformat()}:keys:start"
    assert written == [keys_key]
    assert await rig.redis.sismember(keys_key, str(new))
    assert [m.key for m in await read(rig.topic, idle=1.0)] == [str(new)]
    again = await sync(rig)  # and the next pass misses nothing
    assert (again.records.upserted, again.records.deleted) == (0, 0)


def test_hiredis_packing_sends_the_same_bytes() -> None:
    plain, fast = aioredis.Connection(), HiredisPacking()
    commands: list[tuple[Any, ...]] = [
        ("HSET", "synchub:wiw:2026-12-01:fp", "k1", "a" * 32, "k2", "b" * 32),
        ("SADD", "seen", *[str(i) for i in range(3000)]),  # beyond redis-py's buffer cutoff
        ("CONFIG GET", "maxmemory"),
        ("SET", b"raw", b"\x00\xff" * 5000, "EX", 604800),
        ("ZADD", "at", 1732863600.5, "k1"),
        ("EVALSHA", "f" * 40, 2, "a", "b", "ü", 0),
        ("SET", "k", memoryview(b"view"), "GET"),
        ("SET", "k", bytearray(b"array")),
        ("HSET", "h", "f", 1.5, "g", -(2**63)),
        ("SET", b"bytes-name", "v"),
    ]
    for cmd in commands:
        assert b"".join(fast.pack_command(*cmd)) == b"".join(plain.pack_command(*cmd))
