"""The generic sync activities: list partitions, sync one page, finish a partition.

One activity does a whole page: fetch, fingerprint, compare with Redis (one round trip per
``STORE_CHUNK`` keys), publish the changes to Kafka (one batch, acks=all), commit to Redis
(bounded round trips). The diff is a pure function (``activities.plan``): this module
only does the I/O around it, in that order. A retry re-does the page from the upstream,
and repeats the same ``event_id`` s: they come from the upstream's change marker (or from
versions that are only committed after the publish succeeded).

Ownership: a key belongs to the partition whose cache holds it. Only that partition
tombstones it (a deleted feed shared by two windows deletes it once), and a point lookup
that finds it in no partition of this run's window drops it from the cache, so it is not
looked up again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from temporalio import activity

from activities.dry_run import would_change
from activities.encoding import Output
from activities.errors import translate_errors
from activities.heartbeat import Beat, heartbeating, resumed_details
from activities.messages import canonical, deadletter_event, plan_messages, traceparent
from activities.plan import Plan, diff_lookups, diff_page
from connectors import get_spec
from connectors.base import Connector, PagedConnector, RawPages, paged
from infra.cache_epochs import CacheEpochs
from infra.change_store import (
    RAW_FP_LENGTH,
    ChangeStore,
    Commit,
    PriorIndex,
    RawIndex,
    Tally,
    encode_raw_index,
    fingerprint,
)
from infra.publisher import KafkaPublisher, OutMessage
from infra.telemetry import publishing, traced_page
from models import activity_names
from models.errors import InvalidParamsError, NotConfiguredError
from models.records import Page, Record
from models.sync import (
    DryRunKeys,
    FinishPartitionInput,
    FinishPartitionResult,
    ListPartitionsInput,
    ListPartitionsResult,
    PartitionPassInput,
    PartitionPassResult,
    RecordCounts,
    SyncPageInput,
    SyncPageResult,
)

log = logging.getLogger("synchub.activities")

LOOKUP_CHUNK = 200
"""Missing keys resolved (looked up, published, committed) per step of ``finish_partition``."""
FINISH_TALLY = "#finish"
"""The tally entry of ``finish_partition``'s commits (not a page cursor): a retry after a
lost commit reply reports every chunk's publishes from it."""


class SyncActivities:
    """Activities of the generic engine; built once per worker with its dependencies."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        store: ChangeStore,
        publisher: KafkaPublisher,
        deadletter_topic: str,
        unconfigured: Mapping[str, str] | None = None,
        epochs: CacheEpochs | None = None,
        output: Output | None = None,
    ) -> None:
        self._connectors = connectors
        self._store = store
        self._publisher = publisher
        self._deadletter = deadletter_topic
        self._unconfigured = unconfigured or {}
        self._epochs = epochs
        self._output = output

    def _connector(self, source: str) -> Connector:
        try:
            return self._connectors[source]
        except KeyError:
            why = self._unconfigured.get(source, f"unknown source {source!r}")
            raise NotConfiguredError(f"this worker cannot sync {source!r}: {why}") from None

    def _pages(self, source: str) -> PagedConnector:
        return paged(self._connector(source))

    @activity.defn(name=activity_names.LIST_PARTITIONS)
    @translate_errors
    async def list_partitions(self, input: ListPartitionsInput) -> ListPartitionsResult:
        """List partition ids; ``only`` narrows them and must name listed partitions."""
        connector = self._connector(input.source)
        noun = connector.partition_noun
        spec = get_spec(input.source)
        steps, child = list(spec.steps), spec.child_workflow
        log.info("Fetching %ss from %s", noun, input.source)
        listed = await connector.list_partitions(input.params)
        log.info("Found %d %ss", len(listed), noun)
        if input.only is not None:
            unknown = sorted(set(input.only) - set(listed))
            if unknown:
                shown = ", ".join(listed[:10]) + (" ..." if len(listed) > 10 else "")
                raise InvalidParamsError(
                    f"{input.source} has no partitions {', '.join(unknown)} "
                    f"(it lists {len(listed)}: {shown})"
                )
            wanted = set(input.only)
            listed = [p for p in listed if p in wanted]
        if input.dry_run:  # no topic created, no cache voided, no listing remembered
            return ListPartitionsResult(
                partitions=listed, noun=noun, steps=steps, child_workflow=child
            )
        voided = await self._check_cache(input, connector, listed)
        return ListPartitionsResult(
            partitions=listed,
            noun=noun,
            steps=steps,
            child_workflow=child,
            cache_voided=voided,
            warning=None
            if input.only is not None
            else await self._check_empty(input.source, noun, len(listed)),
        )

    async def _check_empty(self, source: str, noun: str, count: int) -> str | None:
        """Remember a non-empty listing; warn when one finds nothing after one that did.

        A source that suddenly lists nothing (a revoked permission, an answer in a shape
        that parses to nothing) would otherwise complete with nothing synced.
        """
        if count:
            await self._store.set_listed_count(source, count)
            return None
        previous = await self._store.listed_count(source)
        if not previous:
            return None
        warning = (
            f"{source} listed 0 {noun}s, but its last listing had {previous}: nothing was "
            f"synced; check the upstream account's access and the source's settings"
        )
        log.warning("%s", warning)
        return warning

    async def _check_cache(
        self, input: ListPartitionsInput, connector: Connector, listed: list[str]
    ) -> str | None:
        """Void the cache when the topic was recreated (or on a resync); say why, if so.

        The topic is created first when it is missing (a broker restarted without its data),
        with synchub's partition count rather than the broker's auto-create default.
        """
        if self._epochs is None:
            return None
        src, topic = input.source, connector.topic
        if input.resync:
            await self._epochs.void(src, listed if input.only is not None else None)
            what = f"{len(listed)} {connector.partition_noun}s" if input.only else "all"
            log.warning("%s: resync requested: cache of %s voided", src, what)
            return f"resync: cache of {what} voided; current state republished"
        topic_id = await self._publisher.prepare_topics(topic, self._deadletter)
        if topic_id is None or not await self._epochs.check_topic(src, topic_id):
            return None
        why = (
            f"Kafka topic {topic} was recreated or truncated (new topic id {topic_id}); "
            f"cache of {src} voided, current state republished"
        )
        log.warning("%s: %s", src, why)
        return why

    @activity.defn(name=activity_names.SYNC_PAGE)
    @translate_errors
    async def sync_page(self, input: SyncPageInput) -> SyncPageResult:
        """Fetch, diff, publish and commit pages in order; return counts and the next cursor.

        Each page is committed before the next is fetched and the committed cursor is
        heartbeated, so a retry after a crash resumes at the first uncommitted page (and
        redoes at most that page, with the same event ids). That page may have been
        committed after all (the commit's reply was lost, or the worker died before the
        heartbeat): its records are cached then, and the retry adds what the earlier
        attempts committed (the pass's tally) so the totals count what was published.
        """
        async with heartbeating() as beat:
            done = SyncPageResult.model_validate(
                resumed_details()
                or {
                    "records": RecordCounts(),
                    "next_cursor": input.cursor,
                    "pages": 0,
                }
            )
            beat.details = done.model_dump(mode="json")  # a retry of this retry resumes too
            started = time.monotonic()
            first = done.pages == 0 and input.cursor is None
            void = await self._is_void(input.source, input.partition)
            retried = activity.info().attempt > 1
            while done.pages < input.max_pages:
                if not first and done.next_cursor is None:
                    break  # the pass is through (possibly before a crash)
                done = await self._add_page(input, done, void, retried)
                first = retried = False
                beat.details = done.model_dump(mode="json")
                beat.now()  # the committed cursor reaches the server before the next page
                if time.monotonic() - started >= input.budget_seconds:
                    break
                if activity.is_worker_shutdown():
                    break  # SIGTERM: return the committed cursor, the next worker goes on
            return done

    async def _earlier(self, input: SyncPageInput, cursor: str | None) -> Tally:
        """What earlier attempts committed for the page at ``cursor`` in this pass."""
        return await self._store.tally(
            input.source, input.partition, input.run_token, cursor or "start"
        )

    async def _is_void(self, source: str, partition: str) -> bool:
        return self._epochs is not None and await self._epochs.is_void(source, partition)

    @traced_page
    async def _sync_page(
        self, input: SyncPageInput, cursor: str | None, void: bool = False
    ) -> SyncPageResult:
        """Fetch, diff, publish and commit one page.

        With ``void`` the cache is not trusted (the topic lost what it says was published):
        no digest shortcut, no checkpoint, and unchanged records are published again under
        their current version, so with the same event id as before.
        """
        connector = self._pages(input.source)
        src, part = input.source, input.partition
        cursor_id = cursor or "start"
        known = None if void else await self._store.page_digest(src, part, cursor_id)
        checkpoint = (
            await self._store.checkpoint(src, part) if cursor is None and not void else None
        )
        # fingerprint-first where the connector can: parse only what changed
        fetch = connector.fetch_page_raw if isinstance(connector, RawPages) else None
        page = await (fetch or connector.fetch_page)(part, cursor, input.params, known, checkpoint)
        if page.unchanged:
            same = await self._store.keep_page(src, part, input.run_token, cursor_id)
            counts = RecordCounts(fetched=same, unchanged=same, requests=page.requests)
            return SyncPageResult(
                records=counts,
                next_cursor=page.next_cursor,
                unchanged_pages=1,
                checkpoint=page.checkpoint,
            )
        kept: list[str] = []
        index: RawIndex | None = None
        stored: set[str] | None = None
        if isinstance(connector, RawPages):
            kept, index, stored = await self._raw_first(connector, page, src, part, cursor_id, void)
        records, fps = await asyncio.to_thread(_fingerprints, page.records)  # CPU: off the loop
        if index is not None:
            _index_converted(index, page.raw, fps)
            page.raw = []
        known_keys = set(kept)
        deleted = [
            k for k in dict.fromkeys(page.deleted_keys) if k not in fps and k not in known_keys
        ]
        snap = await self._store.snapshot(src, part, [*fps, *deleted], [*fps, *deleted])
        plan = diff_page(
            snap,
            records,
            fps,
            deleted,
            page.malformed,
            void=void,
            stamp_fp=connector.incremental,
            page=(cursor_id, page.raw_digest)
            if page.stable and page.raw_digest is not None
            else None,
            kept=kept,
        )
        plan.commit.tally = cursor_id  # a retried page learns what this commit published
        if stored is not None and plan.commit.page and stored == set(plan.commit.page[2]):
            plan.commit.page_keys_stored = True  # the same keys as before: not rewritten
        if index is not None:
            plan.commit.raw_index = (cursor_id, encode_raw_index(index))
        # a dry run claims nothing: the real run after it must still send its dead letters
        dead = (
            []
            if input.dry_run
            else await self._claim_dead_letters(src, part, input.run_token, plan)
        )
        counts = plan.counts
        counts.fetched = len(page.records) + len(page.malformed) + len(kept)
        counts.requests = page.requests
        if plan.enrich:  # fingerprints stay those of the records as fetched
            enriched = await connector.enrich(part, [records[k] for k in plan.enrich])
            records.update({r.key: r for r in enriched})
        if input.dry_run:  # no publish, no commit: only the pass's seen keys, for the finish
            # (keys the page drops count as seen, or the finish would look them up again)
            seen = [*plan.commit.seen, *plan.commit.drop_fp]
            await self._store.commit(src, part, input.run_token, Commit(seen=seen))
            return SyncPageResult(
                records=counts, next_cursor=page.next_cursor, would=would_change(plan)
            )
        with publishing(src, part):  # the messages carry this span's context
            trace = traceparent(input.run_token)
            out = await asyncio.to_thread(  # CPU: off the loop
                self._messages, plan, connector, src, part, records, fps, trace
            )
            await self._publisher.publish(out)
        await self._store.commit(src, part, input.run_token, plan.commit)
        if dead:
            await self._store.confirm_dead_letters(src, dead)
        return SyncPageResult(
            records=counts, next_cursor=page.next_cursor, checkpoint=page.checkpoint
        )

    async def _raw_first(
        self,
        connector: RawPages,
        page: Page,
        src: str,
        part: str,
        cursor_id: str,
        void: bool,
    ) -> tuple[list[str], RawIndex, set[str] | None]:
        """Convert only the raw records of ``page`` that may have changed (fingerprint-first).

        A record is kept unconverted when its raw fingerprint equals the one in the page's
        raw index and the partition's cached fingerprint still equals the one that index
        recorded: without a read when no fingerprint was written since the index was
        (``PriorIndex.trusted``), else one ``HMGET`` per ``STORE_CHUNK`` such keys; a
        record the index places in another partition is dropped unconverted. Everything
        else is converted into ``page.records`` / ``page.malformed``. Returns the kept
        keys, the page's new raw
        index, holding the kept and dropped records' entries (the converted ones are added
        once their fingerprints are known: ``_index_converted``), and, when the prior index
        is trusted, the keys of the page's stored key set (its entries with a content
        fingerprint: the keys the page saw when it was committed).
        """
        kept: list[str] = []
        prior = PriorIndex() if void else await self._store.raw_index(src, part, cursor_id)
        entries, trusted = prior.entries, prior.trusted
        index: RawIndex = {}
        todo: list[Any] = []
        maybe: list[tuple[str, str, Any]] = []
        for item in page.raw:
            key, raw_fp, _ = item
            entry = entries.get(key)
            if entry is None or not entry.startswith(raw_fp):
                todo.append(item)
            elif len(entry) == len(raw_fp):  # belongs to another partition: same as before
                index[key] = entry
            elif trusted:  # the cached fingerprint is still the one the index recorded
                kept.append(key)
                index[key] = entry
            else:
                maybe.append(item)
        if maybe:
            snap = await self._store.snapshot(src, part, [k for k, _, _ in maybe], [])
            cached = snap.cached
            for item in maybe:
                key, raw_fp = item[0], item[1]
                entry = entries[key]
                if cached[key] == entry[len(raw_fp) :]:
                    kept.append(key)
                    index[key] = entry
                else:
                    todo.append(item)
        # the raw records leave ``page.raw`` for the conversion, which drops each as it is
        # converted: a big day is never held raw and converted at once
        raws = [item[2] for item in todo]
        page.raw = [(key, raw_fp, None) for key, raw_fp, _ in todo]
        todo.clear()
        maybe.clear()
        if raws:
            done = await asyncio.to_thread(connector.convert, part, raws)
            page.records += done.records
            page.malformed += done.malformed
        stored = None
        if trusted:
            stored = {k for k, entry in entries.items() if len(entry) > RAW_FP_LENGTH}
        return kept, index, stored

    @activity.defn(name=activity_names.FINISH_PARTITION)
    @translate_errors
    async def finish_partition(self, input: FinishPartitionInput) -> FinishPartitionResult:
        """Resolve keys missing from this pass by asking the upstream, never by guessing.

        Not found -> tombstone. Found elsewhere (another day, another employee, outside the
        window) -> upsert of its new state, and it leaves this partition's cache.
        """
        async with heartbeating() as beat:
            if input.dry_run:
                return await self._dry_finish(input)
            return await self._finish_partition(input, beat)

    async def _finish_partition(
        self, input: FinishPartitionInput, beat: Beat, missing: list[str] | None = None
    ) -> FinishPartitionResult:
        """``finish_partition``'s work; ``missing``: the pass's missing keys, if just read."""
        src, part = input.source, input.partition
        resumed = resumed_details()
        done = FinishPartitionResult.model_validate(resumed) if resumed else None
        counts = done.records if done else RecordCounts()
        connector = self._pages(src)
        if not input.complete or connector.incremental:
            # a stopped pass did not see everything, and an incremental pass reads only
            # what changed: in neither is an absent key missing
            await self._store.end_pass(src, part, input.run_token)
            if input.complete and input.checkpoint is not None:
                await self._store.set_checkpoint(src, part, input.checkpoint)
            if input.complete and self._epochs is not None:
                await self._epochs.mark_complete(src, part)
            await self._store.prune(src, part)
            return FinishPartitionResult(records=counts)
        # a resolved key leaves the missing set (dropped, or marked seen), so a retried
        # attempt computes only what its predecessor did not commit
        if missing is None or resumed:
            missing = await self._store.missing_keys(src, part, input.run_token)
        total = done.missing if done else len(missing)
        async for plan, records, fps in self._lookup_plans(connector, part, missing, input):
            plan.commit.tally = FINISH_TALLY
            with publishing(src, part):  # the messages carry this span's context
                trace = traceparent(input.run_token)
                out = self._messages(plan, connector, src, part, records, fps, trace)
                await self._publisher.publish(out)
            await self._store.commit(src, part, input.run_token, plan.commit)
            counts = counts.add(plan.counts)
            beat.details = FinishPartitionResult(records=counts, missing=total).model_dump(
                mode="json"
            )
            beat.now()  # the committed chunk reaches the server before the next one
        if activity.info().attempt > 1:  # a chunk's commit may have gone through unreported
            tally = await self._store.tally(src, part, input.run_token, FINISH_TALLY)
            counts.upserted, counts.deleted = tally.upserted, tally.deleted
        await self._store.end_pass(src, part, input.run_token)
        if input.checkpoint is not None:
            await self._store.set_checkpoint(src, part, input.checkpoint)
        if self._epochs is not None:
            await self._epochs.mark_complete(src, part)
        await self._store.prune(src, part)
        if total:
            log.info("%s/%s: %d missing keys resolved: %s", src, part, total, counts)
        return FinishPartitionResult(records=counts, missing=total)

    async def _add_page(
        self, input: SyncPageInput, done: SyncPageResult, void: bool, retried: bool
    ) -> SyncPageResult:
        """Sync the page after ``done`` and return ``done``'s totals with it added.

        ``retried``: an earlier attempt or run may have committed this page already; what it
        published then is counted from its tally, and the page does not count as proven
        unchanged.
        """
        earlier = await self._earlier(input, done.next_cursor) if retried else None
        one = await self._sync_page(input, done.next_cursor, void)
        fix = _counted(one.records, earlier)  # published by an earlier attempt or run
        return SyncPageResult(
            records=done.records.add(one.records).add(fix),
            next_cursor=one.next_cursor,
            pages=done.pages + 1,
            unchanged_pages=done.unchanged_pages
            + (one.unchanged_pages if fix == RecordCounts() else 0),
            checkpoint=one.checkpoint or done.checkpoint,
            would=one.would if done.would is None else done.would.add(one.would),
        )

    async def _lookup_plans(
        self, connector: PagedConnector, part: str, missing: list[str], input: FinishPartitionInput
    ) -> AsyncIterator[tuple[Plan, dict[str, Record], dict[str, str]]]:
        """Look ``missing`` up in chunks; each chunk's plan, with its records and fingerprints.

        One chunk at a time, so the caller commits (or counts) a chunk before the next one
        is asked for: a retried finish resumes after its last committed chunk.
        """
        src = input.source
        for start in range(0, len(missing), LOOKUP_CHUNK):
            chunk = missing[start : start + LOOKUP_CHUNK]
            found = await connector.lookup(part, chunk, input.params)
            found_keys = [lk.key for lk in found]
            snap = await self._store.snapshot(src, part, found_keys, found_keys)
            records = {lk.key: lk.record for lk in found if lk.record is not None}
            fps = {k: fingerprint(canonical(r.data)) for k, r in records.items()}
            yield diff_lookups(part, snap, found, fps), records, fps

    async def _claim_dead_letters(
        self, src: str, part: str, run_token: str, plan: Plan
    ) -> list[str]:
        """Keep the plan's dead letters that no earlier pass or other partition sent.

        Returns:
            The event ids of those kept, to confirm once they are published.
        """
        if not plan.dead_letters:
            return []
        unique = {deadletter_event(src, b.key, b.reason, b.raw): b for b in plan.dead_letters}
        send = await self._store.claim_dead_letters(src, part, run_token, list(unique))
        kept = [(e, b) for (e, b), ok in zip(unique.items(), send, strict=True) if ok]
        plan.dead_letters = [b for _, b in kept]
        plan.counts.dead_lettered = len(kept)
        return [e for e, _ in kept]

    async def _dry_finish(self, input: FinishPartitionInput) -> FinishPartitionResult:
        """``finish_partition`` of a dry run: the same lookups and diffs, nothing written.

        Only the pass's seen keys are forgotten. Says what the lookups would have changed.
        """
        src, part = input.source, input.partition
        connector = self._pages(src)
        counts, would = RecordCounts(), DryRunKeys()
        missing: list[str] = []
        if input.complete and not connector.incremental:
            missing = await self._store.missing_keys(src, part, input.run_token)
        async for plan, _, _ in self._lookup_plans(connector, part, missing, input):
            counts, would = counts.add(plan.counts), would.add(would_change(plan))
            activity.heartbeat()
        await self._store.end_pass(src, part, input.run_token)
        return FinishPartitionResult(records=counts, missing=len(missing), would=would)

    @activity.defn(name=activity_names.SYNC_PARTITION_PASS)
    @translate_errors
    async def sync_partition_pass(self, input: PartitionPassInput) -> PartitionPassResult:
        """A partition's first pages and, when they are all of it, its finish; run locally.

        Pages as ``sync_page`` does them, each committed before the next. A local activity
        has no heartbeat, so the committed progress goes to Redis after every page: a
        re-run after a crash resumes at the first page not committed, and a re-run after
        the pass ended returns what it did. The finish runs here only when no key is
        missing (most runs); lookups are left to ``finish_partition``, which heartbeats
        and counts a retried chunk.
        """
        src, part, token = input.source, input.partition, input.run_token
        saved = await self._store.pass_progress(src, part, token)
        if saved is not None:
            resumed = PartitionPassResult.model_validate_json(saved)
            if resumed.finished is not None:
                return resumed
            done = resumed.pages
        else:
            done = SyncPageResult(records=RecordCounts(), next_cursor=None, pages=0)
        page = SyncPageInput(source=src, partition=part, run_token=token, params=input.params)
        void = await self._is_void(src, part)
        started = time.monotonic()
        retried = True  # the first page may have been committed by a run that died after it
        while done.pages < input.max_pages and (done.pages == 0 or done.next_cursor):
            done = await self._add_page(page, done, void, retried)
            retried = False
            progress = PartitionPassResult(pages=done)
            await self._store.set_pass_progress(src, part, token, progress.model_dump_json())
            if time.monotonic() - started >= input.budget_seconds:
                break
            if activity.is_worker_shutdown():
                break
        result = PartitionPassResult(pages=done)
        if done.next_cursor is not None or not input.finish:
            return result
        missing = None
        if not self._pages(src).incremental:
            missing = await self._store.missing_keys(src, part, token)
            if missing:
                return result  # lookups: finish_partition does them, heartbeating
        # saved first: a re-run after finish ended the pass (its seen-set gone) must not
        # look for missing keys again; the finish's own steps are idempotent
        result.finished = FinishPartitionResult(records=RecordCounts())
        await self._store.set_pass_progress(src, part, token, result.model_dump_json())
        finish = FinishPartitionInput(
            source=src,
            partition=part,
            run_token=token,
            params=input.params,
            checkpoint=done.checkpoint,
        )
        result.finished = await self._finish_partition(finish, Beat(), missing)
        return result

    def _messages(
        self,
        plan: Plan,
        connector: Connector,
        src: str,
        part: str,
        records: Mapping[str, Record],
        fps: Mapping[str, str],
        trace: str,
    ) -> list[OutMessage]:
        return plan_messages(
            plan,
            records,
            fps,
            topic=connector.topic,
            deadletter_topic=self._deadletter,
            source=src,
            partition=part,
            trace=trace,
            output=self._output,
        )


def _counted(now: RecordCounts, earlier: Tally | None) -> RecordCounts:
    """The correction of a retried page's counts by what earlier attempts committed.

    Those records were published, not unchanged (this attempt found them cached).
    """
    if earlier is None or earlier == Tally():
        return RecordCounts()
    return RecordCounts(
        upserted=earlier.upserted,
        deleted=earlier.deleted,
        unchanged=-min(earlier.upserted, now.unchanged),
    )


def _index_converted(index: RawIndex, raw: list[Any], fps: Mapping[str, str]) -> None:
    """Add the converted raw records to the page's raw index (``ChangeStore.RawIndex``).

    A converted record the page kept is indexed with its content fingerprint; one it left
    out (another partition's) with none; a malformed one not at all, so it is converted
    (and dead-lettered) again next time, as before.
    """
    dropped = []
    for key, raw_fp, _ in raw:
        fp = fps.get(key)
        if fp is not None:
            index[key] = raw_fp + fp
        else:
            dropped.append((key, raw_fp))
    for key, raw_fp in dropped:
        index.setdefault(key, raw_fp)


def _fingerprints(page: list[Record]) -> tuple[dict[str, Record], dict[str, str]]:
    """Records by key and their fingerprints; a key repeated within a page: the last wins."""
    records: dict[str, Record] = {}
    fps: dict[str, str] = {}
    for rec in page:
        records[rec.key] = rec
        fps[rec.key] = fingerprint(canonical(rec.data))
    return records, fps
