"""Redis change store: fingerprints, per-key versions, page digests and seen keys.

Layout (``<p>`` = ``synchub:<source>:<partition>``):

* ``<p>:fp`` hash, record key -> fingerprint: what this partition last published.
* ``synchub:<source>:ver`` hash, record key -> ``"<version>:<fingerprint>[:<marker>]"``:
  the per-key change counter of the whole source and the upstream's change marker of the
  state published last; ``event_id`` comes from the marker where the upstream has one (so
  it needs no Redis state) and from the counter otherwise (``-`` as fingerprint marks a
  tombstone).
* ``<p>:digest:<cursor>`` string: raw digest of a stable page, to prove "unchanged" in one GET.
* ``<p>:raw:<cursor>`` string: the raw index of a page read fingerprint-first
  (``RawIndex``): which records of the page need no parsing next time, prefixed with the
  fingerprints' generation it was written in.
* ``<p>:fpgen`` string: the generation of ``<p>:fp``, a random token replaced before every
  write to it (and dropped when retention deletes from it). While it equals the one a raw
  index was written in, the cached fingerprints are still those the index recorded, and
  they need not be read back (``PriorIndex.trusted``).
* ``<p>:keysgen:<cursor>`` string: the fingerprints' generation (``<p>:fpgen``) the page's
  key set was written in. While it is current, every key of the set is cached, so a pass
  that saw just that page misses nothing when the set is as large as the cache.
* ``<p>:keys:<cursor>`` set: the keys of that page, so an unchanged page marks them seen
  inside Redis without sending them.
* ``<p>:seen:<run_token>`` set: keys seen in the current pass, to find the missing ones.
* ``<p>:seenref:<run_token>`` list: key sets (``<p>:keys:<cursor>``) of pages whose keys
  count as seen in the current pass without being copied into the seen-set: at most
  ``SEEN_PAGE_REFS`` of them, so finding the missing keys stays a few lookups per key.
* ``<p>:tally:<run_token>`` hash, ``<cursor>:upserted`` / ``<cursor>:deleted`` -> how many
  versions each page of the pass committed, written in the same transaction as those
  versions: a page retried after its commit's reply was lost reports what it published
  (see ``Tally``). Dropped with the seen-set at the end of the pass.
* ``synchub:<source>:ver:at`` sorted set, record key -> when its version was last written
  (epoch seconds, from ``models.clock``): versions and tombstones not written for the
  retention (``EXPIRE_CACHE``) are dropped in bounded steps at the end of each partition.
  So the hash holds what changed within the retention, not every key ever seen.
* ``<p>:fp:at`` sorted set (incremental sources only): when each fingerprint was last
  written; fingerprints not written for the retention drop out the same way.

Every operation is a few round trips per page (a pipeline or a script), never one per
record, and every round trip carries at most ``STORE_CHUNK`` keys: a 40,000-record page is
diffed and committed in bounded steps that never approach the client's read timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import chain, repeat
from operator import attrgetter
from typing import Any, NamedTuple

import orjson
import redis.asyncio as aioredis
from hiredis import pack_command as _pack
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

from infra.redis_text import as_text as _text
from models import clock

TOMBSTONE = "-"
"""Fingerprint stored in the version hash after a delete."""

SEEN_TTL_SECONDS = 86_400
"""A pass that never finishes (worker gone for good) leaves its seen-set for a day at most."""

PASS_PROGRESS_TTL_SECONDS = 3_600
"""How long a local partition pass's progress is kept. It is read only when the same pass
runs again (retries of the local activity, or a re-run after a worker died before its
result reached history): all within the pass's retry policy (five 10-minute attempts at
most). One key per partition and run, so an hour keeps a few runs' worth, not a day's."""

STORE_CHUNK = 1_000

SEEN_PAGE_REFS = 4
"""Pages per pass whose keys count as seen by referring to their key set instead of copying
it into the seen-set (a copy is a Redis write per key: most partitions are one page, seen
whole). Each reference is one more membership test per cached key when the missing keys
are computed, so a pass of many pages copies the rest."""

DEAD_LETTER_LEASE = timedelta(minutes=5)
"""How long a dead letter claimed by one pass is left to it: longer than any page's publish,
so a second partition returning the same bad record does not send it too; after that a
claim never confirmed (the pass failed before its publish) is taken over by a later pass."""
"""Keys per Redis command and per round trip: a 40,000-record page is 40 short round trips,
never one that outlasts the client's read timeout or blocks the server."""


def fingerprint(payload: bytes) -> str:
    """Content fingerprint of a record's canonical JSON."""
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def event_id(source: str, key: str, version: int | str, fp: str) -> str:
    """Deterministic event id: a retried publish repeats it, a later change never does.

    ``version`` is the upstream's change marker (``"m:<marker>"`` for a state,
    ``"d:<marker>"`` for the deletion after it) where the upstream has one, so the id needs
    no Redis state; otherwise synchub's per-key change counter.
    """
    raw = f"{source}\x1f{key}\x1f{version}\x1f{fp}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


# One bounded step of "keys cached for the partition but absent from the pass's seen-set":
# HSCAN from a cursor, keep the fields that are in none of the sets KEYS[2..] (the key sets
# of pages seen by reference and the seen-set; those that exist). Computed in Redis, so a
# pass where nothing is missing moves no key lists over the network, and no call walks a
# whole hash. Returns {next cursor, missing keys}.
_MISSING_STEP = """
local scan = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local out = {}
local fields = scan[2]
local sets = {}
for k = 2, #KEYS do
  if redis.call('EXISTS', KEYS[k]) == 1 then sets[#sets + 1] = KEYS[k] end
end
for i = 1, #fields, 2 do
  local seen = false
  for k = 1, #sets do
    if redis.call('SISMEMBER', sets[k], fields[i]) == 1 then
      seen = true
      break
    end
  end
  if not seen then out[#out + 1] = fields[i] end
end
return {scan[1], out}
"""

# Whether a pass that saw one page, by reference and nothing else, misses no cached key:
# the page's key set was written in the fingerprints' current generation (then all its
# keys were cached, and nothing was written to the cache since), and is as large as the
# cache. KEYS: fingerprints, their generation, the page's key set, its generation, the
# pass's seen-set. Returns 1 when nothing is missing, 0 when the keys must be compared.
_NOTHING_MISSING = """
if redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
local current = redis.call('GET', KEYS[2])
if not current or current ~= redis.call('GET', KEYS[4]) then return 0 end
if redis.call('HLEN', KEYS[1]) ~= redis.call('SCARD', KEYS[3]) then return 0 end
return 1
"""

# A page's key set counts as seen in this pass by reference, unless the pass already refers
# to ``ARGV[2]`` others (then the caller copies the keys). KEYS: the pass's reference list.
# ARGV: the page's key set, the limit, the TTL. Returns 1 when referenced (or already was).
_REF_PAGE = """
if redis.call('LPOS', KEYS[1], ARGV[1]) then return 1 end
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# One bounded step of "mark an unchanged page's keys seen": SSCAN the page's key set from a
# cursor and add what it returns to the seen-set. O(page) in all, never O(seen). Returns the
# next cursor.
_KEEP_STEP = """
local scan = redis.call('SSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local keys = scan[2]
for i = 1, #keys, 500 do
  redis.call('SADD', KEYS[2], unpack(keys, i, math.min(i + 499, #keys)))
end
return scan[1]
"""


# One bounded step of retention: the members of a "written at" sorted set older than the
# cutoff leave it and the hash they stamp; a generation key KEYS[3], if given, goes with
# them. Returns how many went.
_PRUNE_STEP = """
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #old > 0 then
  redis.call('HDEL', KEYS[1], unpack(old))
  redis.call('ZREM', KEYS[2], unpack(old))
  if KEYS[3] then redis.call('DEL', KEYS[3]) end
end
return #old
"""

# Claim dead letters for one pass of one partition. Hash value: the owner while the claim is
# pending, "" once sent. Unclaimed -> this owner's; claimed by this owner (a retried page)
# -> send again; sent -> a repeat; pending for another owner -> a repeat while that claim is
# younger than the lease (the other partition is publishing it), else taken over (its pass
# failed before it published). The "written at" sorted set holds the claim or send time.
# Atomic, so two partitions returning the same bad record never both send it.
# KEYS: claims hash, its "written at" sorted set. ARGV: owner, now, lease cutoff, ttl, ids.
# Returns 1 (send) or 0 (repeat) per event id.
_CLAIM_DEAD = """
local owner, stamp, cutoff = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local current = redis.call('HGET', KEYS[1], id)
  local take = false
  if not current or current == owner then
    take = true
  elseif current ~= '' then
    local since = tonumber(redis.call('ZSCORE', KEYS[2], id) or '0')
    take = since <= cutoff
  end
  if take then
    redis.call('HSET', KEYS[1], id, owner)
    redis.call('ZADD', KEYS[2], stamp, id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return out
"""

PRUNE_STEPS = 8
"""Retention steps (of ``STORE_CHUNK`` keys each) per finished partition: far more than a
run writes, so retention keeps pace, and still bounded per run."""


def _chunks(items: list[str], size: int = STORE_CHUNK) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Version(NamedTuple):
    """Last committed version of a key across its source (immutable).

    A named tuple: a first sync makes one per new record, at half a frozen dataclass's
    cost (``object.__setattr__`` per field).
    """

    number: int = 0
    fingerprint: str | None = None
    marker: str | None = None
    """Upstream change marker of the state published last (``None``: it has none)."""

    @classmethod
    def parse(cls, raw: bytes | str | None) -> Version:
        """Read ``"<n>:<fp>[:<marker>]"``; absent -> version 0, never published."""
        if raw is None:
            return _NEVER if cls is Version else cls()
        text = raw.decode() if isinstance(raw, bytes) else raw
        number, _, rest = text.partition(":")
        fp, sep, marker = rest.partition(":")
        return cls(int(number), fp or None, marker if sep else None)

    def dump(self) -> str:
        """The stored form (see ``parse``), as ``_dumped`` writes it for a batch."""
        return _dumped((self,))[0]

    def event(self, source: str, key: str) -> str:
        """The ``event_id`` of publishing this version of ``key``.

        From the upstream's marker where there is one (the same change always gets the
        same id, also after Redis lost everything; a later change has a later marker),
        else from the counter.
        """
        fp = self.fingerprint or TOMBSTONE
        if self.marker is None:
            return event_id(source, key, self.number, fp)
        kind = "d" if fp == TOMBSTONE else "m"
        return event_id(source, key, f"{kind}:{self.marker}", fp)


_NEVER = Version()
"""Version 0 (frozen, so shared): every key of a first sync reads it."""


@dataclass(frozen=True)
class Tally:
    """What earlier attempts of a page committed in this pass (``ChangeStore.tally``).

    A retried page finds those records cached and would count them unchanged; adding the
    tally keeps the run's totals equal to what was published.
    """

    upserted: int = 0
    deleted: int = 0


@dataclass
class Snapshot:
    """What the store knows about a page's keys, read in one round trip."""

    cached: dict[str, str | None]
    """Partition fingerprint per key (None = not cached in this partition)."""
    versions: dict[str, Version]
    """Source-wide version per key (records and reported deletions)."""


@dataclass
class Commit:
    """Everything one page (or one finish step) writes, applied in one round trip."""

    set_fp: dict[str, str] = field(default_factory=dict)
    """Keys that now belong to the partition with this fingerprint."""
    drop_fp: list[str] = field(default_factory=list)
    """Keys that left the partition (deleted or moved away)."""
    set_versions: dict[str, Version] = field(default_factory=dict)
    """New versions of published keys."""
    seen: list[str] = field(default_factory=list)
    """Keys seen in this pass."""
    page: tuple[str, str, list[str]] | None = None
    """``(cursor, raw digest, keys)`` of a stable page, for the next pass's unchanged check."""
    stamp_fp: bool = False
    """Record when ``set_fp`` keys were written, so fingerprints not written again for the
    retention drop out (incremental sources: a pass reads only what changed, so a key
    never read again would otherwise stay forever)."""
    tally: str | None = None
    """The page's cursor: count the versions written under it in the pass's tally, in the
    same transaction, so a retry after a lost reply can report them (``ChangeStore.tally``)."""
    raw_index: tuple[str, bytes] | None = None
    """``(cursor, index)`` of a page read fingerprint-first: the encoded ``RawIndex`` the
    next pass compares raw fingerprints with (``ChangeStore.raw_index``)."""
    page_keys_stored: bool = False
    """The page's stored key set holds exactly ``page``'s keys already (known from a
    trusted raw index): it is kept as it is instead of being written again."""


RAW_FP_LENGTH = 32
"""Hex digits of a raw fingerprint, the first part of every ``RawIndex`` entry."""

RawIndex = dict[str, str]
"""A page's raw fingerprints as committed: record key -> raw fingerprint (32 hex digits)
followed by the record's content fingerprint, or by nothing when the record belongs to
another partition. An accelerator only: a key counts as unchanged when its raw fingerprint
is equal *and* the partition's cached fingerprint still equals the one recorded here."""


def encode_raw_index(index: RawIndex) -> bytes:
    """The stored form of a ``RawIndex`` (one JSON object; the commit prefixes its generation)."""
    return orjson.dumps(index)


@dataclass(frozen=True)
class PriorIndex:
    """A page's raw index as committed (``ChangeStore.raw_index``)."""

    entries: RawIndex = field(default_factory=dict)
    trusted: bool = False
    """The partition's fingerprints were not written since the index was: each entry's
    content fingerprint is still the cached one, without reading it back."""


def _pairs(first: Iterable[Any], second: Iterable[Any]) -> Iterable[Any]:
    """``a1, b1, a2, b2, ...``: a mapping as a command's arguments, without a Python loop."""
    return chain.from_iterable(zip(first, second, strict=False))  # ``first`` may repeat


def _dumped(versions: Iterable[Version]) -> list[str]:
    """The stored form of each version, ``"<n>:<fp>[:<marker>]"``, in one comprehension.

    The only writer of that form (``Version.dump`` calls it): a first sync dumps one
    version per record.
    """
    return [
        f"{v.number}:{v.fingerprint}"
        if v.marker is None
        else f"{v.number}:{v.fingerprint}:{v.marker}"
        for v in versions
    ]


_fingerprint_of = attrgetter("fingerprint")


class HiredisPacking(aioredis.Connection):
    """A Redis connection that packs commands with hiredis (C), as redis-py's sync client does.

    redis-py's asyncio connection packs every argument in Python, about a microsecond
    each on the event loop: a page's commit sends tens of thousands of keys and versions.
    The bytes on the wire are the same (``tests/test_raw_first.py``).
    """

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        """One buffer with the command in RESP, packed by hiredis.

        ``HiredisRespSerializer.pack`` with its per-argument Python pass (turning
        ``bytearray``/``memoryview`` into ``bytes``) left out: that pass cost a third of
        a microsecond per argument, a first sync's commit sends several per record, and
        hiredis takes ``memoryview`` itself. What it refuses (a ``bytearray``, a wrong
        type) goes through the serializer, which converts or raises ``DataError`` as
        before. The same bytes (``tests/test_store_fast.py``).
        """
        name = args[0]
        if isinstance(name, str):
            command = (*name.encode().split(), *args[1:])
        elif b" " in name:
            command = (*name.split(), *args[1:])
        else:
            command = args
        try:
            return [_pack(command)]
        except TypeError:
            return self._packer.pack(*args)  # type: ignore[no-any-return]


class ChangeStore:
    """Compare/commit against Redis for one worker; shared by all its activities."""

    def __init__(self, client: aioredis.Redis, expire_seconds: int) -> None:
        self._r = client
        self._ttl = expire_seconds
        self._missing_step = client.register_script(_MISSING_STEP)
        self._keep_step = client.register_script(_KEEP_STEP)
        self._prune_step = client.register_script(_PRUNE_STEP)
        self._claim_dead = client.register_script(_CLAIM_DEAD)
        self._ref_page = client.register_script(_REF_PAGE)
        self._nothing_missing = client.register_script(_NOTHING_MISSING)
        self._scripts = (
            self._missing_step,
            self._keep_step,
            self._prune_step,
            self._claim_dead,
            self._ref_page,
            self._nothing_missing,
        )

    @classmethod
    def from_url(cls, url: str, expire_seconds: int) -> ChangeStore:
        """Connect lazily to ``url`` (connections are made on first use)."""
        plain_tcp = url.startswith("redis://") and HIREDIS_AVAILABLE
        extra: dict[str, Any] = {"connection_class": HiredisPacking} if plain_tcp else {}
        return cls(aioredis.Redis.from_url(url, **extra), expire_seconds)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._r.aclose()

    async def ping(self, connections: int = 1) -> None:
        """Fail early when Redis is unreachable; open ``connections`` and load the scripts.

        A worker's partitions run at once, each on its own connection: opened here, they
        are not opened (and every script is not first refused as unknown, then sent) on the
        first run's critical path.
        """
        await asyncio.gather(*(self._r.ping() for _ in range(max(1, connections))))
        for script in self._scripts:
            await self._r.script_load(script.script)

    @staticmethod
    def _p(source: str, partition: str) -> str:
        return f"synchub:{source}:{partition}"

    @staticmethod
    def _ver(source: str) -> str:
        return f"synchub:{source}:ver"

    @staticmethod
    def _at(hash_key: str) -> str:
        """The sorted set of write times (epoch seconds) of a hash's fields."""
        return f"{hash_key}:at"

    def _seen(self, source: str, partition: str, run_token: str) -> str:
        return f"{self._p(source, partition)}:seen:{run_token}"

    def _seen_refs(self, source: str, partition: str, run_token: str) -> str:
        return f"{self._p(source, partition)}:seenref:{run_token}"

    async def _see_by_reference(
        self, source: str, partition: str, run_token: str, keys_key: str
    ) -> bool:
        """Count a page's key set as seen in this pass without copying it, if allowed."""
        refs = self._seen_refs(source, partition, run_token)
        ok = await self._ref_page(keys=[refs], args=[keys_key, SEEN_PAGE_REFS, SEEN_TTL_SECONDS])
        return bool(int(ok))

    def _tally(self, source: str, partition: str, run_token: str) -> str:
        return f"{self._p(source, partition)}:tally:{run_token}"

    async def tally(self, source: str, partition: str, run_token: str, cursor: str) -> Tally:
        """Versions committed so far in this pass for the page at ``cursor`` (one HMGET)."""
        raw = await self._r.hmget(
            self._tally(source, partition, run_token), [f"{cursor}:upserted", f"{cursor}:deleted"]
        )
        return Tally(*(int(v or 0) for v in raw))

    async def page_digest(self, source: str, partition: str, cursor: str) -> str | None:
        """Raw digest of the page at ``cursor`` as last committed, if any."""
        return _text(await self._r.get(f"{self._p(source, partition)}:digest:{cursor}"))

    async def keep_page(self, source: str, partition: str, run_token: str, cursor: str) -> int:
        """An unchanged page: mark its keys seen and refresh every TTL.

        The page's key set counts as seen by reference (``SEEN_PAGE_REFS``); beyond that
        its keys are copied to the seen-set inside Redis in steps of ``STORE_CHUNK``
        (SSCAN), so the work is bounded by the page, not by everything seen in the pass so
        far. Returns the number of records in the page.
        """
        p = self._p(source, partition)
        keys_key, seen_key = f"{p}:keys:{cursor}", self._seen(source, partition, run_token)
        scan: bytes | str | int = 0
        referenced = await self._see_by_reference(source, partition, run_token, keys_key)
        while not referenced:
            scan = await self._keep_step(keys=[keys_key, seen_key], args=[scan, STORE_CHUNK])
            if int(scan) == 0:
                break
        pipe = self._r.pipeline(transaction=False)
        pipe.scard(keys_key)
        pipe.expire(seen_key, SEEN_TTL_SECONDS)
        for key in (f"{p}:fp", self._ver(source), f"{p}:digest:{cursor}", keys_key):
            pipe.expire(key, self._ttl)
        pipe.expire(f"{p}:raw:{cursor}", self._ttl)
        pipe.expire(f"{p}:fpgen", self._ttl)
        pipe.expire(f"{p}:keysgen:{cursor}", self._ttl)
        return int((await pipe.execute())[0])

    async def raw_index(self, source: str, partition: str, cursor: str) -> PriorIndex:
        """The raw index committed with the page at ``cursor``; empty when there is none.

        Trusted when it was written in the fingerprints' current generation and they and
        the page's key set still exist (an index of an older synchub has no generation:
        never trusted).
        """
        p = self._p(source, partition)
        pipe = self._r.pipeline(transaction=False)
        pipe.get(f"{p}:raw:{cursor}")
        pipe.get(f"{p}:fpgen")
        pipe.exists(f"{p}:fp", f"{p}:keys:{cursor}")
        blob, generation, cached = await pipe.execute()
        if blob is None:
            return PriorIndex()
        written_in, body = None, blob
        if blob[:1] != b"{":  # "<generation> <index>"; an older synchub wrote the index alone
            written_in, _, body = blob.partition(b" ")
        try:
            index = orjson.loads(body)
        except orjson.JSONDecodeError:
            return PriorIndex()
        if not isinstance(index, dict):
            return PriorIndex()
        trusted = written_in is not None and written_in == generation and cached == 2
        return PriorIndex(index, trusted)

    async def snapshot(
        self, source: str, partition: str, keys: list[str], version_keys: list[str]
    ) -> Snapshot:
        """Read cached fingerprints of ``keys`` and versions of ``version_keys``.

        One round trip per ``STORE_CHUNK`` keys of each list. The first also asks whether
        the partition has fingerprints at all: when not (its first sync), the later chunks
        do not ask for them. Only this partition's pass writes them (one workflow per
        partition), so none appear meanwhile.
        """
        fp_key, ver_key = f"{self._p(source, partition)}:fp", self._ver(source)
        cached: dict[str, str | None] = {}
        versions: dict[str, Version] = {}
        key_chunks, ver_chunks = _chunks(keys), _chunks(version_keys)
        ask_fps = True
        for i in range(max(len(key_chunks), len(ver_chunks))):
            pipe = self._r.pipeline(transaction=False)
            some_keys = key_chunks[i] if i < len(key_chunks) else []
            some_versions = ver_chunks[i] if i < len(ver_chunks) else []
            probe = i == 0 and len(key_chunks) > 1
            if probe:
                pipe.exists(fp_key)
            read_fps = bool(some_keys) and ask_fps
            if read_fps:
                pipe.hmget(fp_key, some_keys)
            if some_versions:
                pipe.hmget(ver_key, some_versions)
            replies = await pipe.execute()
            if probe:
                ask_fps = bool(replies.pop(0))
            # a first sync reads nothing but Nones: then no per-key Python at all
            if read_fps:
                raw = replies.pop(0)
                if raw.count(None) == len(some_keys):
                    cached.update(dict.fromkeys(some_keys))
                else:
                    cached.update(zip(some_keys, map(_text, raw), strict=True))
            elif some_keys:  # the partition has no fingerprints
                cached.update(dict.fromkeys(some_keys))
            if some_versions:
                raw = replies.pop(0)
                if raw.count(None) == len(some_versions):
                    versions.update(dict.fromkeys(some_versions, _NEVER))
                else:
                    versions.update(zip(some_versions, map(Version.parse, raw), strict=True))
        return Snapshot(cached, versions)

    async def commit(self, source: str, partition: str, run_token: str, change: Commit) -> None:
        """Apply a page's writes and refresh every TTL, ``STORE_CHUNK`` keys per round trip.

        The steps are ordered so that a commit cut short (a crash between round trips)
        leaves nothing that hides work: versions first (a retried page then finds the
        publish done and repeats nothing), then fingerprints and seen keys, and the page
        digest last, after its key set is complete (until then the page is re-diffed).
        """
        p = self._p(source, partition)
        fp_key, ver_key = f"{p}:fp", self._ver(source)
        seen_key = self._seen(source, partition, run_token)
        r = self._r
        stamp = clock.now().timestamp()
        # commands get flat argument lists (built by C-level helpers, packed by hiredis):
        # the same commands redis-py's ``hset(mapping=)`` and ``zadd`` send, without
        # their per-pair Python loops
        score = repr(stamp)  # what the packers send for a float, formatted once, not per key
        ver_keys = list(change.set_versions)
        ver_values = _dumped(change.set_versions.values())
        ver_fps = list(map(_fingerprint_of, change.set_versions.values()))
        tally_key = self._tally(source, partition, run_token)
        for i in range(0, len(ver_keys), STORE_CHUNK):
            batch = ver_keys[i : i + STORE_CHUNK]
            pipe = r.pipeline(transaction=True)
            pipe.execute_command("HSET", ver_key, *_pairs(batch, ver_values[i : i + STORE_CHUNK]))
            pipe.execute_command("ZADD", self._at(ver_key), *_pairs(repeat(score), batch))
            if change.tally is not None:  # counted in the transaction that writes them
                gone = ver_fps[i : i + STORE_CHUNK].count(TOMBSTONE)
                pipe.hincrby(tally_key, f"{change.tally}:upserted", len(batch) - gone)
                pipe.hincrby(tally_key, f"{change.tally}:deleted", gone)
                pipe.expire(tally_key, SEEN_TTL_SECONDS)
            await pipe.execute()
        generation = None
        if change.set_fp or change.drop_fp or change.raw_index or change.page:
            # a new generation before the first write: no earlier raw index or page key
            # set vouches for fingerprints from here on, even if this commit is cut short
            generation = uuid.uuid4().hex.encode()
            await r.set(f"{p}:fpgen", generation, ex=self._ttl)
        fp_keys, fp_values = list(change.set_fp), list(change.set_fp.values())
        for i in range(0, len(fp_keys), STORE_CHUNK):
            batch = fp_keys[i : i + STORE_CHUNK]
            pipe = r.pipeline(transaction=True)
            pipe.execute_command("HSET", fp_key, *_pairs(batch, fp_values[i : i + STORE_CHUNK]))
            if change.stamp_fp:
                pipe.execute_command("ZADD", self._at(fp_key), *_pairs(repeat(score), batch))
            await pipe.execute()
        for part in _chunks(change.drop_fp):
            await r.hdel(fp_key, *part)
        # a stable page's keys are exactly what it saw: its key set, written below, is
        # referred to instead of copied into the seen-set (``SEEN_PAGE_REFS``)
        by_page = change.page is not None and change.page[2] == change.seen
        if not by_page:
            for part in _chunks(change.seen):
                await r.sadd(seen_key, *part)
        if change.page is not None:
            cursor, digest, page_keys = change.page
            digest_key, keys_key = f"{p}:digest:{cursor}", f"{p}:keys:{cursor}"
            if change.page_keys_stored:
                await r.delete(digest_key)
            else:
                await r.delete(digest_key, keys_key)
                for part in _chunks(page_keys):
                    await r.sadd(keys_key, *part)
            pipe = r.pipeline(transaction=False)
            pipe.expire(keys_key, self._ttl)
            if generation is not None:  # complete now, in this generation
                pipe.set(f"{p}:keysgen:{cursor}", generation, ex=self._ttl)
            await pipe.execute()
            if by_page and not await self._see_by_reference(source, partition, run_token, keys_key):
                for part in _chunks(change.seen):
                    await r.sadd(seen_key, *part)
            await r.set(digest_key, digest, ex=self._ttl)
        pipe = self._r.pipeline(transaction=False)
        if change.raw_index is not None and generation is not None:
            # after the fingerprints it vouches for, in their generation
            cursor, blob = change.raw_index
            pipe.set(f"{p}:raw:{cursor}", generation + b" " + blob, ex=self._ttl)
        if change.seen:
            pipe.expire(seen_key, SEEN_TTL_SECONDS)
        for key in (fp_key, ver_key, self._at(ver_key), self._at(fp_key), f"{p}:fpgen"):
            pipe.expire(key, self._ttl)
        await pipe.execute()

    async def prune(self, source: str, partition: str) -> int:
        """Apply the retention (``expire_seconds``, i.e. ``EXPIRE_CACHE``) in bounded steps.

        Versions (tombstones included) not written for the retention leave the source's
        version hash, and so do stamped fingerprints (``Commit.stamp_fp``) of the
        partition. Event ids do not depend on what is dropped where the upstream has a
        change marker. Returns how many entries went.
        """
        cutoff = clock.now().timestamp() - self._ttl
        gone = 0
        p = self._p(source, partition)
        for keys in (
            [self._ver(source), self._at(self._ver(source))],
            [f"{p}:fp", self._at(f"{p}:fp"), f"{p}:fpgen"],
        ):
            for _ in range(PRUNE_STEPS):
                n = int(await self._prune_step(keys=keys, args=[cutoff, STORE_CHUNK]))
                gone += n
                if n < STORE_CHUNK:
                    break
        return gone

    async def checkpoint(self, source: str, partition: str) -> str | None:
        """Where the next pass of an incremental partition starts (no TTL: it is state)."""
        return _text(await self._r.get(f"{self._p(source, partition)}:checkpoint"))

    async def set_checkpoint(self, source: str, partition: str, checkpoint: str) -> None:
        """Advance the checkpoint once a pass has committed everything up to it."""
        await self._r.set(f"{self._p(source, partition)}:checkpoint", checkpoint)

    async def listed_count(self, source: str) -> int | None:
        """Partitions the source's last non-empty listing had (one key per source, no TTL)."""
        raw = _text(await self._r.get(f"synchub:{source}:listed"))
        return int(raw) if raw is not None else None

    async def set_listed_count(self, source: str, count: int) -> None:
        """Remember a non-empty listing's size, so a later empty one can be told apart."""
        await self._r.set(f"synchub:{source}:listed", count)

    async def missing_keys(self, source: str, partition: str, run_token: str) -> list[str]:
        """Keys cached for the partition but not seen in this pass.

        A pass that saw one page, whose key set is provably the whole cache, costs one
        script (``_NOTHING_MISSING``). Otherwise the partition's hash is walked in steps of
        ``STORE_CHUNK`` fields (HSCAN inside a script), so no call holds Redis for the
        whole hash.
        """
        p = self._p(source, partition)
        refs = [
            str(_text(k))
            for k in await self._r.lrange(
                self._seen_refs(source, partition, run_token), 0, SEEN_PAGE_REFS - 1
            )
        ]
        seen_key = self._seen(source, partition, run_token)
        if len(refs) == 1 and refs[0].startswith(f"{p}:keys:"):
            page_gen = f"{p}:keysgen:{refs[0][len(p) + 6 :]}"
            shortcut = [f"{p}:fp", f"{p}:fpgen", refs[0], page_gen, seen_key]
            if int(await self._nothing_missing(keys=shortcut)):
                return []
        keys = [f"{p}:fp", *refs, seen_key]  # pages first: in most passes they hold all
        missing: set[str] = set()
        scan: bytes | str | int = 0
        while True:
            scan, found = await self._missing_step(keys=keys, args=[scan, STORE_CHUNK])
            missing.update(str(_text(k)) for k in found)
            if int(scan) == 0:
                break
        return sorted(missing)

    async def end_pass(self, source: str, partition: str, run_token: str) -> None:
        """Forget the pass's seen-set, its page references and its tally."""
        await self._r.delete(
            self._seen(source, partition, run_token),
            self._seen_refs(source, partition, run_token),
            self._tally(source, partition, run_token),
        )

    async def cached_count(self, source: str, partition: str) -> int:
        """Keys cached for a partition (for tests and status)."""
        return int(await self._r.hlen(f"{self._p(source, partition)}:fp"))

    async def cached(self, source: str, partition: str) -> dict[str, str]:
        """Whole fingerprint hash of a partition (for tests and diagnostics)."""
        raw = await self._r.hgetall(f"{self._p(source, partition)}:fp")
        return {str(_text(k)): str(_text(v)) for k, v in raw.items()}

    async def claim_dead_letters(
        self, source: str, partition: str, run_token: str, event_ids: list[str]
    ) -> list[bool]:
        """Which dead letters this pass sends: those no earlier pass or partition sent.

        ``synchub:<source>:dead`` maps a dead letter's event id (source, key, reason and
        raw record: one per bad record per state) to the pass that claimed it, or to ``""``
        once ``confirm_dead_letters`` says it was published. A bad record is sent once,
        however often its page changes and however many windows return it; a retried page
        of the claiming pass sends it again (at least once, same event id), and a claim not
        confirmed within ``DEAD_LETTER_LEASE`` passes to a later pass. Entries older than
        the retention (``EXPIRE_CACHE``) are dropped in one bounded step per call, so a
        record still bad after that is reported again.

        Returns:
            One flag per event id, in order: True = publish it.
        """
        key = f"synchub:{source}:dead"
        now = clock.now().timestamp()
        await self._prune_step(keys=[key, self._at(key)], args=[now - self._ttl, STORE_CHUNK])
        owner = f"{partition}\x1f{run_token}"
        cutoff = now - DEAD_LETTER_LEASE.total_seconds()
        flags: list[bool] = []
        for part in _chunks(event_ids):
            replies = await self._claim_dead(
                keys=[key, self._at(key)], args=[owner, now, cutoff, self._ttl, *part]
            )
            flags += [bool(int(v)) for v in replies]
        return flags

    async def confirm_dead_letters(self, source: str, event_ids: list[str]) -> None:
        """Mark claimed dead letters as published: no later pass sends them again."""
        key = f"synchub:{source}:dead"
        now = clock.now().timestamp()
        for part in _chunks(event_ids):
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(key, mapping=dict.fromkeys(part, ""))
            pipe.zadd(self._at(key), dict.fromkeys(part, now))
            await pipe.execute()

    def _progress(self, source: str, partition: str, run_token: str) -> str:
        return f"{self._p(source, partition)}:pass:{run_token}"

    async def pass_progress(self, source: str, partition: str, run_token: str) -> str | None:
        """What a local partition pass committed so far (JSON), if it ran before."""
        return _text(await self._r.get(self._progress(source, partition, run_token)))

    async def set_pass_progress(
        self, source: str, partition: str, run_token: str, progress: str
    ) -> None:
        """Remember a local pass's committed progress: a re-run resumes there.

        A local activity has no heartbeat to carry its cursor; kept for
        ``PASS_PROGRESS_TTL_SECONDS``.
        """
        await self._r.set(
            self._progress(source, partition, run_token), progress, ex=PASS_PROGRESS_TTL_SECONDS
        )
