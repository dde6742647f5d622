"""The diff of a page (or of a finish step's lookups): a pure plan of what to publish and commit.

The page path is a straight line: fetch -> ``diff_page`` -> (enrich the keys the plan
names) -> ``plan_messages`` -> publish -> commit ``Plan.commit``. All version rules,
moves, enrichment choices and tombstones live here, as pure functions of what the change
store knows (a ``Snapshot``) and what the upstream said, so every rule is tested without
services (``tests/test_plan.py``) and the activities only do I/O in order.

Rules, per key:

* cached here with the same fingerprint -> unchanged (void cache: republished under its
  current version, so with the same ``event_id`` as before);
* the source-wide version already has this fingerprint (published by the partition it
  moved from) -> unchanged here, but now cached here (void cache: republished);
* otherwise -> upsert under the next version, with the record's change marker; a key
  never published before (version 0) is enriched first;
* reported deleted -> only the partition whose cache holds it tombstones it (a deleted
  feed shared by two windows deletes it once), and not again when the version already is
  a tombstone;
* lookups of missing keys: gone -> tombstone (unless already one); found in another
  partition or outside the window -> leaves this cache, upsert only if its state was
  never published; found here -> cached and seen, upsert if it changed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from infra.change_store import TOMBSTONE, Commit, Snapshot, Version
from models.records import Lookup, Malformed, Record
from models.sync import RecordCounts


@dataclass
class Plan:
    """What one page (or one finish step) publishes and commits; built by a diff."""

    upserts: dict[str, Version] = field(default_factory=dict)
    """Keys published as upserts, with their new version."""
    republish: dict[str, Version] = field(default_factory=dict)
    """Void cache: keys published again under their current version (same ``event_id``)."""
    deletes: dict[str, Version] = field(default_factory=dict)
    """Keys published as tombstones, with their tombstone version."""
    dead_letters: list[Malformed] = field(default_factory=list)
    """Malformed records, each dead-lettered once with its reason."""
    enrich: list[str] = field(default_factory=list)
    """Keys whose records the connector enriches before their messages are built (first
    publish, or republish): a record's fingerprint stays that of the record as fetched."""
    commit: Commit = field(default_factory=Commit)
    """The change-store writes, applied after the publish succeeded."""
    counts: RecordCounts = field(default_factory=RecordCounts)
    """What the plan does, counted (``fetched`` and ``requests`` are the caller's)."""


def diff_page(
    snap: Snapshot,
    records: Mapping[str, Record],
    fps: Mapping[str, str],
    deleted: Iterable[str],
    malformed: Iterable[Malformed] = (),
    *,
    void: bool = False,
    stamp_fp: bool = False,
    page: tuple[str, str] | None = None,
    kept: Collection[str] = (),
) -> Plan:
    """Diff a fetched page against the store's snapshot of its keys.

    Args:
        snap: cached fingerprints and versions of every key in ``fps`` and ``deleted``.
        records: the page's records by key (a key repeated in a page: the last one).
        fps: fingerprint per key of ``records`` (content as fetched).
        deleted: keys the upstream reports deleted, not in ``records``, each once.
        malformed: records that could not be read, dead-lettered once each.
        void: the cache is not trusted (topic lost what it says was published).
        stamp_fp: record when fingerprints are written (incremental sources).
        page: ``(cursor, raw digest)`` of a stable page, so the next pass can prove it
            unchanged in one read.
        kept: keys of the page proven unchanged before parsing (raw fingerprint and cached
            fingerprint as committed; not in ``fps``): seen and unchanged.
    """
    seen = [*fps, *kept]
    plan = Plan(commit=Commit(seen=seen, stamp_fp=stamp_fp))
    change, counts = plan.commit, plan.counts
    # names bound once and a local counter: a first sync runs this loop once per record
    cached, versions, set_fp = snap.cached, snap.versions, change.set_fp
    upserts, republish, enrich = plan.upserts, plan.republish, plan.enrich
    unchanged = 0
    for key, fp in fps.items():
        if cached[key] == fp and not void:
            unchanged += 1
            continue
        set_fp[key] = fp
        current = versions[key]
        if current.fingerprint == fp:  # already published by another partition (moved here)
            if void:
                republish[key] = current  # same version and fingerprint: same event id
            else:
                unchanged += 1
            continue
        upserts[key] = Version(current.number + 1, fp, records[key].version_marker)
        if current.number == 0:
            enrich.append(key)
    counts.unchanged += unchanged
    enrich += republish
    for key in deleted:
        if snap.cached[key] is None:
            # reported by a window this partition shares (a shift crossing midnight):
            # the partition that owns the key deletes it, once
            continue
        change.drop_fp.append(key)
        current = snap.versions[key]
        if current.fingerprint == TOMBSTONE:
            continue  # already deleted downstream (cached here = it was published)
        plan.deletes[key] = Version(current.number + 1, TOMBSTONE, current.marker)
    counts.unchanged += len(kept)
    plan.dead_letters = list(malformed)
    if page is not None:
        change.page = (page[0], page[1], seen)
    return _counted(plan)


def diff_lookups(
    partition: str, snap: Snapshot, found: Iterable[Lookup], fps: Mapping[str, str]
) -> Plan:
    """Diff the point lookups of keys missing from a pass (``finish_partition``).

    Args:
        partition: the partition asking (its cache holds the keys).
        snap: cached fingerprints and versions of the looked-up keys.
        found: the upstream's answers; ``record=None`` = it does not exist.
        fps: fingerprint per key of each answer that has a record.
    """
    plan = Plan()
    change = plan.commit
    for lk in found:
        current = snap.versions[lk.key]
        if lk.record is None:
            change.drop_fp.append(lk.key)
            if current.fingerprint != TOMBSTONE:  # cached here = published
                plan.deletes[lk.key] = Version(current.number + 1, TOMBSTONE, current.marker)
            continue
        fp = fps[lk.key]
        if lk.record.partition == partition:  # appeared after the page was fetched
            change.set_fp[lk.key] = fp
            change.seen.append(lk.key)
        else:  # moved to another partition, or out of every window of this run
            change.drop_fp.append(lk.key)
        # published before: by this partition (the state it cached) or by the
        # partition it moved to (the source-wide version)
        if fp not in (snap.cached[lk.key], current.fingerprint):
            plan.upserts[lk.key] = Version(current.number + 1, fp, lk.record.version_marker)
    return _counted(plan)


def _counted(plan: Plan) -> Plan:
    """Count the plan's messages and put all new versions into its commit."""
    counts = plan.counts
    counts.upserted += len(plan.upserts)
    counts.republished += len(plan.republish)
    counts.deleted += len(plan.deletes)
    counts.dead_lettered += len(plan.dead_letters)
    plan.commit.set_versions.update(plan.upserts)
    plan.commit.set_versions.update(plan.deletes)
    return plan
