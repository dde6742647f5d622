"""Redis change store: fingerprints, per-key versions, page digests and seen keys.

Layout (``<p>`` = ``synchub:<source>:<partition>``):

* ``<p>:fp`` hash, record key -> fingerprint: what this partition last published.
* ``synchub:<source>:ver`` hash, record key -> ``"<version>:<fingerprint>"``: the per-key
  change counter of the whole source, so ``event_id`` stays stable when a record moves
  between partitions (``-`` as fingerprint marks a tombstone).
* ``<p>:digest:<cursor>`` string: raw digest of a stable page, to prove "unchanged" in one GET.
* ``<p>:keys:<cursor>`` set: the keys of that page, so an unchanged page marks them seen
  inside Redis without sending them.
* ``<p>:seen:<run_token>`` set: keys seen in the current pass, to find the missing ones.

Every operation is one round trip per page (a pipeline or a script), never one per record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import redis.asyncio as aioredis

TOMBSTONE = "-"
"""Fingerprint stored in the version hash after a delete."""

SEEN_TTL_SECONDS = 86_400
"""A pass that never finishes (worker gone for good) leaves its seen-set for a day at most."""


def fingerprint(payload: bytes) -> str:
    """Content fingerprint of a record's canonical JSON."""
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def event_id(source: str, key: str, version: int, fp: str) -> str:
    """Deterministic event id: a retried publish repeats it, a later change never does."""
    raw = f"{source}\x1f{key}\x1f{version}\x1f{fp}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


# Keys cached for the partition but absent from the pass's seen-set, computed in Redis so a
# pass where nothing is missing moves no key lists over the network.
_MISSING = """
local out = {}
for _, k in ipairs(redis.call('HKEYS', KEYS[1])) do
  if redis.call('SISMEMBER', KEYS[2], k) == 0 then out[#out + 1] = k end
end
return out
"""


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Version:
    """Last committed version of a key across its source."""

    number: int = 0
    fingerprint: str | None = None

    @classmethod
    def parse(cls, raw: bytes | str | None) -> Version:
        """Read ``"<n>:<fp>"``; absent -> version 0, never published."""
        if raw is None:
            return cls()
        text = raw.decode() if isinstance(raw, bytes) else raw
        number, _, fp = text.partition(":")
        return cls(int(number), fp or None)


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


class ChangeStore:
    """Compare/commit against Redis for one worker; shared by all its activities."""

    def __init__(self, client: aioredis.Redis, expire_seconds: int) -> None:
        self._r = client
        self._ttl = expire_seconds
        self._missing = client.register_script(_MISSING)

    @classmethod
    def from_url(cls, url: str, expire_seconds: int) -> ChangeStore:
        """Connect lazily to ``url`` (connections are made on first use)."""
        return cls(aioredis.Redis.from_url(url), expire_seconds)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._r.aclose()

    async def ping(self) -> None:
        """Fail early when Redis is unreachable."""
        await self._r.ping()

    @staticmethod
    def _p(source: str, partition: str) -> str:
        return f"synchub:{source}:{partition}"

    @staticmethod
    def _ver(source: str) -> str:
        return f"synchub:{source}:ver"

    def _seen(self, source: str, partition: str, run_token: str) -> str:
        return f"{self._p(source, partition)}:seen:{run_token}"

    async def page_digest(self, source: str, partition: str, cursor: str) -> str | None:
        """Raw digest of the page at ``cursor`` as last committed, if any."""
        return _text(await self._r.get(f"{self._p(source, partition)}:digest:{cursor}"))

    async def keep_page(self, source: str, partition: str, run_token: str, cursor: str) -> int:
        """An unchanged page: mark its keys seen and refresh every TTL, in one round trip.

        Returns the number of records in the page.
        """
        p = self._p(source, partition)
        seen_key = self._seen(source, partition, run_token)
        pipe = self._r.pipeline(transaction=True)
        pipe.scard(f"{p}:keys:{cursor}")
        pipe.sunionstore(seen_key, [seen_key, f"{p}:keys:{cursor}"])
        pipe.expire(seen_key, SEEN_TTL_SECONDS)
        for key in (f"{p}:fp", self._ver(source), f"{p}:digest:{cursor}", f"{p}:keys:{cursor}"):
            pipe.expire(key, self._ttl)
        return int((await pipe.execute())[0])

    async def snapshot(
        self, source: str, partition: str, keys: list[str], version_keys: list[str]
    ) -> Snapshot:
        """Read cached fingerprints of ``keys`` and versions of ``version_keys``."""
        pipe = self._r.pipeline(transaction=False)
        if keys:
            pipe.hmget(f"{self._p(source, partition)}:fp", keys)
        if version_keys:
            pipe.hmget(self._ver(source), version_keys)
        replies = await pipe.execute() if keys or version_keys else []
        cached: dict[str, str | None] = {}
        versions: dict[str, Version] = {}
        if keys:
            raw = replies.pop(0)
            cached = {k: _text(v) for k, v in zip(keys, raw, strict=True)}
        if version_keys:
            raw = replies.pop(0)
            versions = {k: Version.parse(v) for k, v in zip(version_keys, raw, strict=True)}
        return Snapshot(cached, versions)

    async def commit(self, source: str, partition: str, run_token: str, change: Commit) -> None:
        """Apply a page's writes and refresh every TTL, in one round trip."""
        p = self._p(source, partition)
        fp_key, ver_key = f"{p}:fp", self._ver(source)
        seen_key = self._seen(source, partition, run_token)
        pipe = self._r.pipeline(transaction=True)
        if change.set_fp:
            pipe.hset(fp_key, mapping=change.set_fp)  # type: ignore[arg-type]
        if change.drop_fp:
            pipe.hdel(fp_key, *change.drop_fp)
        if change.set_versions:
            pipe.hset(
                ver_key,
                mapping={k: f"{v.number}:{v.fingerprint}" for k, v in change.set_versions.items()},
            )  # type: ignore[arg-type]
        if change.seen:
            pipe.sadd(seen_key, *change.seen)
            pipe.expire(seen_key, SEEN_TTL_SECONDS)
        if change.page is not None:
            cursor, digest, keys = change.page
            pipe.delete(f"{p}:keys:{cursor}")
            if keys:
                pipe.sadd(f"{p}:keys:{cursor}", *keys)
                pipe.expire(f"{p}:keys:{cursor}", self._ttl)
            pipe.set(f"{p}:digest:{cursor}", digest, ex=self._ttl)
        pipe.expire(fp_key, self._ttl)
        pipe.expire(ver_key, self._ttl)
        await pipe.execute()

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
        """Keys cached for the partition but not seen in this pass (one script call)."""
        keys = [f"{self._p(source, partition)}:fp", self._seen(source, partition, run_token)]
        return sorted(str(_text(k)) for k in await self._missing(keys=keys))

    async def end_pass(self, source: str, partition: str, run_token: str) -> None:
        """Forget the pass's seen-set."""
        await self._r.delete(self._seen(source, partition, run_token))

    async def cached_count(self, source: str, partition: str) -> int:
        """Keys cached for a partition (for tests and status)."""
        return int(await self._r.hlen(f"{self._p(source, partition)}:fp"))

    async def cached(self, source: str, partition: str) -> dict[str, str]:
        """Whole fingerprint hash of a partition (for tests and diagnostics)."""
        raw = await self._r.hgetall(f"{self._p(source, partition)}:fp")
        return {str(_text(k)): str(_text(v)) for k, v in raw.items()}
