"""The change store's fast paths write and read exactly what the per-key code did.

``ChangeStore.commit`` hands Redis flat argument lists (no ``hset(mapping=)``/``zadd``
loops, the score formatted once) and ``HiredisPacking`` packs them without redis-py's
per-argument pass; ``snapshot`` skips per-key parsing when a chunk reads nothing but
Nones. Each is compared with the reference: the same commands as redis-py packs them, and
the Redis contents (keys, types, values, TTLs) that the commit as it was before writes,
reproduced below. Real valkey from the dev stack; no other service.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from infra.change_store import (
    STORE_CHUNK,
    TOMBSTONE,
    ChangeStore,
    Commit,
    HiredisPacking,
    Version,
    _dumped,
)
from infra.redis_text import as_text
from models import clock as clock_module
from models.clock import ManualClock
from tests.clocks import default_clock_at

session_loop = pytest.mark.asyncio(loop_scope="session")
REDIS_DB = 6
TTL = 3_600
_GENERATION = re.compile(r"^[0-9a-f]{32}(?= |$)")
NOW = datetime(2026, 11, 29, 10, 0, 0, 123456, tzinfo=UTC)


def test_packing_sends_what_redis_py_sends() -> None:
    plain, fast = aioredis.Connection(), HiredisPacking()
    commands: list[tuple[Any, ...]] = [
        ("HSET", "h", *[f"k{i}" for i in range(2000)]),
        ("ZADD", "at", 1764410400.123456, "k1", repr(1764410400.123456), "k2"),
        ("SCRIPT LOAD", "return 1"),
        (b"CONFIG GET", b"maxmemory"),
        ("SET", "k", bytearray(b"\x00\xff"), "EX", 60),  # hiredis refuses: redis-py converts
        ("SET", "k", memoryview(b"\x00\xff" * 4000)),
        ("HMGET", "h", "ü", "😀"),
    ]
    for cmd in commands:
        assert b"".join(fast.pack_command(*cmd)) == b"".join(plain.pack_command(*cmd)), cmd


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    with default_clock_at(NOW) as manual:
        yield manual


@pytest_asyncio.fixture(loop_scope="session")
async def store(redis_url: str) -> AsyncIterator[ChangeStore]:
    st = ChangeStore.from_url(f"{redis_url}/{REDIS_DB}", TTL)
    try:
        yield st
    finally:
        await st.aclose()


async def _reference_commit(
    store: ChangeStore, source: str, partition: str, run_token: str, change: Commit
) -> None:
    """``ChangeStore.commit`` before its fast path, verbatim but for ``self``."""
    self = store
    p = self._p(source, partition)
    fp_key, ver_key = f"{p}:fp", self._ver(source)
    seen_key = self._seen(source, partition, run_token)
    r = self._r
    stamp = clock_module.now().timestamp()
    ver_items = [(k, v.dump()) for k, v in change.set_versions.items()]
    tally_key = self._tally(source, partition, run_token)
    for i in range(0, len(ver_items), STORE_CHUNK):
        batch = dict(ver_items[i : i + STORE_CHUNK])
        pipe = r.pipeline(transaction=True)
        pipe.hset(ver_key, mapping=batch)  # type: ignore[arg-type]
        pipe.zadd(self._at(ver_key), dict.fromkeys(batch, stamp))
        if change.tally is not None:
            gone = sum(change.set_versions[k].fingerprint == TOMBSTONE for k in batch)
            pipe.hincrby(tally_key, f"{change.tally}:upserted", len(batch) - gone)
            pipe.hincrby(tally_key, f"{change.tally}:deleted", gone)
            pipe.expire(tally_key, 86_400)
        await pipe.execute()
    generation = None
    if change.set_fp or change.drop_fp or change.raw_index or change.page:
        generation = b"GENERATION"
        await r.set(f"{p}:fpgen", generation, ex=self._ttl)
    fp_items = list(change.set_fp.items())
    for i in range(0, len(fp_items), STORE_CHUNK):
        batch = dict(fp_items[i : i + STORE_CHUNK])
        pipe = r.pipeline(transaction=True)
        pipe.hset(fp_key, mapping=batch)  # type: ignore[arg-type]
        if change.stamp_fp:
            pipe.zadd(self._at(fp_key), dict.fromkeys(batch, stamp))
        await pipe.execute()
    for i in range(0, len(change.drop_fp), STORE_CHUNK):
        await r.hdel(fp_key, *change.drop_fp[i : i + STORE_CHUNK])
    by_page = change.page is not None and change.page[2] == change.seen
    if not by_page:
        for i in range(0, len(change.seen), STORE_CHUNK):
            await r.sadd(seen_key, *change.seen[i : i + STORE_CHUNK])
    if change.page is not None:
        cursor, digest, page_keys = change.page
        digest_key, keys_key = f"{p}:digest:{cursor}", f"{p}:keys:{cursor}"
        if change.page_keys_stored:
            await r.delete(digest_key)
        else:
            await r.delete(digest_key, keys_key)
            for i in range(0, len(page_keys), STORE_CHUNK):
                await r.sadd(keys_key, *page_keys[i : i + STORE_CHUNK])
        pipe = r.pipeline(transaction=False)
        pipe.expire(keys_key, self._ttl)
        if generation is not None:
            pipe.set(f"{p}:keysgen:{cursor}", generation, ex=self._ttl)
        await pipe.execute()
        if by_page and not await self._see_by_reference(source, partition, run_token, keys_key):
            for i in range(0, len(change.seen), STORE_CHUNK):
                await r.sadd(seen_key, *change.seen[i : i + STORE_CHUNK])
        await r.set(digest_key, digest, ex=self._ttl)
    pipe = self._r.pipeline(transaction=False)
    if change.raw_index is not None and generation is not None:
        cursor, blob = change.raw_index
        pipe.set(f"{p}:raw:{cursor}", generation + b" " + blob, ex=self._ttl)
    if change.seen:
        pipe.expire(seen_key, 86_400)
    for key in (fp_key, ver_key, self._at(ver_key), self._at(fp_key), f"{p}:fpgen"):
        pipe.expire(key, self._ttl)
    await pipe.execute()


async def _contents(r: aioredis.Redis, source: str) -> dict[str, Any]:
    """Every key of ``source`` (named without it) with its type, value and TTL."""
    out: dict[str, Any] = {}
    async for raw in r.scan_iter(f"synchub:{source}:*"):
        key = as_text(raw)
        kind = as_text(await r.type(key))
        value: Any
        if kind == "hash":
            value = await r.hgetall(key)
        elif kind == "zset":
            value = await r.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = await r.smembers(key)
        elif kind == "list":  # key names of page key sets
            value = [as_text(v).replace(source, "SOURCE") for v in await r.lrange(key, 0, -1)]
        else:
            # the fingerprints' generation is a random token per commit (the reference
            # writes a constant): compared by where it stands
            value = _GENERATION.sub("GENERATION", as_text(await r.get(key)) or "")
        ttl = await r.ttl(key)
        out[key.replace(f"synchub:{source}:", "")] = (kind, value, ttl // 10)
    return out


def _keys(n: int, tag: str = "") -> list[str]:
    return [f"{tag}{2077529202 + 7 * i}" for i in range(n)]


def _commits() -> list[list[tuple[str, Commit]]]:
    """Sequences of commits (partition, change) covering every branch of ``commit``."""
    keys = _keys(2_500)  # three chunks
    fps = {k: f"{i:032x}" for i, k in enumerate(keys)}
    first = Commit(
        set_fp=dict(fps),
        set_versions={k: Version(1, fp, "2026-11-25T05:48:27Z") for k, fp in fps.items()},
        seen=list(keys),
        tally="start",
        raw_index=("start", b'{"a":"b"}'),
    )
    first.page = ("start", "digest-1", first.seen)
    gone, changed = keys[:700], keys[700:1_800]
    second = Commit(
        set_fp={k: "f" * 32 for k in changed},
        drop_fp=list(gone),
        set_versions={
            **{k: Version(2, TOMBSTONE, "2026-11-25T05:48:27Z") for k in gone[:300]},
            **{k: Version(2, TOMBSTONE) for k in gone[300:]},
            **{k: Version(2, "f" * 32) for k in changed},
        },
        seen=list(changed),
        stamp_fp=True,
        tally="c2",
        page=("c2", "digest-2", list(changed)),
        page_keys_stored=True,
    )
    seen_only = Commit(seen=_keys(1_200, "s"))
    refs = [
        ("2026-11-30", Commit(seen=_keys(3, f"r{n}"), page=(f"p{n}", "d", _keys(3, f"r{n}"))))
        for n in range(6)  # beyond SEEN_PAGE_REFS: copied into the seen-set
    ]
    for _, change in refs:
        change.page = (change.page[0], change.page[1], change.seen)  # type: ignore[index]
    return [
        [("2026-11-29", first)],
        [("2026-11-29", first), ("2026-11-29", second), ("2026-11-30", seen_only)],
        refs,
    ]


@session_loop
@pytest.mark.parametrize("case", range(3))
async def test_commit_writes_what_the_reference_writes(
    store: ChangeStore, clock: ManualClock, case: int
) -> None:
    fast, ref = f"fast-{uuid.uuid4().hex}", f"ref-{uuid.uuid4().hex}"
    for partition, change in _commits()[case]:
        await store.commit(fast, partition, "run", change)
        await _reference_commit(store, ref, partition, "run", change)
    got, want = await _contents(store._r, fast), await _contents(store._r, ref)
    assert got.keys() == want.keys()
    assert len(got) >= 6
    for key in want:
        assert got[key] == want[key], key


@session_loop
async def test_snapshot_reads_what_is_stored_and_nones_fast(
    store: ChangeStore, clock: ManualClock
) -> None:
    source = f"snap-{uuid.uuid4().hex}"
    keys = _keys(2_500)
    stored = keys[1_000:1_100] + keys[2_400:]  # one chunk of Nones, two mixed
    change = Commit(
        set_fp={k: f"fp-{k}" for k in stored},
        set_versions={
            **{k: Version(3, f"fp-{k}", "m") for k in stored[:50]},
            **{k: Version(4, TOMBSTONE) for k in stored[50:]},
        },
    )
    await store.commit(source, "p", "run", change)
    snap = await store.snapshot(source, "p", keys, keys)
    assert snap.cached == {k: change.set_fp.get(k) for k in keys}
    assert snap.versions == {k: change.set_versions.get(k, Version()) for k in keys}
    assert list(snap.cached) == keys and list(snap.versions) == keys


@session_loop
async def test_snapshot_of_a_partition_without_fingerprints_still_reads_versions(
    store: ChangeStore, clock: ManualClock
) -> None:
    """Its first sync: fingerprints are asked for once, versions (source-wide) in full."""
    source = f"snap-{uuid.uuid4().hex}"
    keys = _keys(2_500)
    moved = {k: Version(2, f"fp-{k}", "m") for k in keys[2_450:]}  # published elsewhere
    await store.commit(source, "other", "run", Commit(set_versions=moved))
    snap = await store.snapshot(source, "p", keys, keys)
    assert snap.cached == dict.fromkeys(keys)
    assert snap.versions == {k: moved.get(k, Version()) for k in keys}
    await store.commit(source, "p", "run", Commit(set_fp={keys[-1]: "x"}))
    snap = await store.snapshot(source, "p", keys, keys)
    assert snap.cached == {**dict.fromkeys(keys), keys[-1]: "x"}


def test_versions_are_stored_as_number_fingerprint_and_marker() -> None:
    """The stored form every version hash already holds: it must never change."""
    marker = "Wed, 25 Nov 2026 05:48:27 +0000"  # WIW's: colons inside the marker
    versions = [Version(3, "ab", marker), Version(1, TOMBSTONE, None), Version(7, "cd", "")]
    assert _dumped(versions) == [f"3:ab:{marker}", "1:-", "7:cd:"]
    for version in versions:
        assert version.dump() == _dumped([version])[0]
        assert Version.parse(version.dump()) == version
        assert Version.parse(version.dump().encode()) == version
