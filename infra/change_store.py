"""Redis change store: fingerprints, per-key versions, page digests and seen keys.

Layout (``<p>`` = ``synchub:<source>:<partition>``):

* ``<p>:fp`` hash, record key -> fingerprint: what this partition last published.
* ``synchub:<source>:ver`` hash, record key -> ``"<version>:<fingerprint>"``: the per-key
  change counter of the whole source, so ``event_id`` stays stable when a record moves
  between partitions (``-`` as fingerprint marks a tombstone).
* ``<p>:digest:<cursor>`` string: digest of a stable page, to prove "unchanged" in one GET.
* ``<p>:seen:<run_token>`` set: keys seen in the current pass, to find the missing ones.

Every operation is one round trip per page (a pipeline), never one per record.
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


def page_digest(entries: list[tuple[str, str]]) -> str:
    """Digest of a page's (key, fingerprint) pairs, independent of upstream order."""
    h = hashlib.blake2b(digest_size=16)
    for key, fp in sorted(entries):
        h.update(f"{key}={fp}\n".encode())
    return h.hexdigest()


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
    digest: tuple[str, str] | None = None
    """``(cursor, digest)`` of a stable page."""


class ChangeStore:
    """Compare/commit against Redis for one worker; shared by all its activities."""

    def __init__(self, client: aioredis.Redis, expire_seconds: int) -> None:
        self._r = client
        self._ttl = expire_seconds

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

    async def digest_matches(self, source: str, partition: str, cursor: str, digest: str) -> bool:
        """True when the stored digest of this page equals ``digest``."""
        stored = await self._r.get(f"{self._p(source, partition)}:digest:{cursor}")
        return _text(stored) == digest

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
        if change.digest is not None:
            cursor, digest = change.digest
            pipe.set(f"{p}:digest:{cursor}", digest, ex=self._ttl)
        pipe.expire(fp_key, self._ttl)
        pipe.expire(ver_key, self._ttl)
        await pipe.execute()

    async def missing_keys(self, source: str, partition: str, run_token: str) -> list[str]:
        """Keys cached for the partition but not seen in this pass (one round trip)."""
        p = self._p(source, partition)
        pipe = self._r.pipeline(transaction=False)
        pipe.hkeys(f"{p}:fp")
        pipe.smembers(self._seen(source, partition, run_token))
        cached, seen = await pipe.execute()
        return sorted({str(_text(k)) for k in cached} - {str(_text(k)) for k in seen})

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
