"""TEMU inventory reconciliation: ERP desired stock -> TEMU current stock -> diff -> edits.

The activities orchestrate one step each; what a batch decides is ``activities.temu_stock_plan``
(pure), and the Redis state it reads and settles is ``infra.inventory_store``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as aioredis
from temporalio import activity

from activities.errors import translate_errors
from activities.heartbeat import heartbeating
from activities.messages import traceparent
from activities.temu_desired_stock import load_desired
from activities.temu_stock_edits import send_edits
from activities.temu_stock_messages import audit_event, invalid_stock_message, rejected_edit
from activities.temu_stock_plan import (
    BatchPlan,
    Pushed,
    plan_batch,
)
from activities.worker_deps import WorkerDeps
from connectors.base import Connector
from connectors.temu.client import TemuClient
from connectors.temu.inventory import SOURCE, TemuInventoryConnector
from infra.consumer import CommittingReader, Consumed
from infra.inventory_store import InventoryStore
from infra.publisher import KafkaPublisher, OutMessage
from infra.telemetry import publishing
from models import activity_names
from models.errors import NotConfiguredError, RetryableError
from models.inventory import (
    FinishInventoryInput,
    LoadStockInput,
    LoadStockResult,
    ReconcileBatchInput,
    ReconcileBatchResult,
)

log = logging.getLogger("synchub.temu.inventory")

EDIT_CONCURRENCY = 4
"""Stock edits of one batch in flight at once; the shared rate limiter still paces them, and
a few in flight hide each request's latency so a shop gets close to the app key's rate."""
POLL_MAX = 500
"""ERP messages read (and written to Redis in one round trip) per poll."""
POLL_SECONDS = 1.0
"""A poll waits this long for its first message; an empty one ends the load once the backlog
that existed at its start is read (``CommittingReader.next_batch``)."""


class TemuInventoryActivities:
    """The inventory activities; built in ``worker.py`` when TEMU shops are configured.

    Args:
        clients: one ``TemuClient`` per shop id (shared with the inventory connector).
        redis: Redis client for the inventory keys (owned by the caller).
        publisher: the worker's Kafka publisher.
        brokers: bootstrap servers, for reading ``stock_topic`` as a consumer group.
        stock_topic: the ERP's compacted desired-stock topic (``erp.stock``).
        audit_topic: audit events of applied changes (``temu.inventory.changes``).
        deadletter_topic: invalid ERP messages and SKUs TEMU rejected.
        clock: unix seconds (tests move it).
        kafka_security: librdkafka SASL/TLS options for that consumer.
    """

    def __init__(
        self,
        clients: Mapping[str, TemuClient],
        redis: aioredis.Redis,
        publisher: KafkaPublisher,
        *,
        brokers: str,
        stock_topic: str,
        audit_topic: str,
        deadletter_topic: str,
        clock: Any = time.time,
        kafka_security: Mapping[str, Any] | None = None,
    ) -> None:
        self._clients = clients
        self._store = InventoryStore(redis)
        self._publisher = publisher
        self._brokers = brokers
        self._security = kafka_security
        self._stock_topic = stock_topic
        self._audit = audit_topic
        self._deadletter = deadletter_topic
        self._clock = clock

    prefix = staticmethod(InventoryStore.prefix)

    def _client(self, shop: str) -> TemuClient:
        try:
            return self._clients[shop]
        except KeyError:
            raise NotConfiguredError(
                f"TEMU shop {shop!r} is not configured on this worker", setting="TEMU_SHOPS"
            ) from None

    # -- step 1: desired stock -------------------------------------------------------------

    @activity.defn(name=activity_names.LOAD_DESIRED_STOCK)
    @translate_errors
    async def load_desired_stock(self, input: LoadStockInput) -> LoadStockResult:
        """Materialise the ERP's new stock messages into Redis, then build the work list.

        Reads ``erp.stock`` as group ``synchub-temu-stock-<shop>`` from its committed
        offsets and commits only after the Redis write, so a crash re-reads (and rewrites
        the same values) instead of losing a change.
        """
        self._client(input.shop)  # fail early, naming the setting, for an unknown shop
        async with heartbeating():
            loaded, invalid = await self._load(input)
            work = await self._store.build_work(input.shop, input.run_token, input.mode)
        log.info(
            "%s/%s: %d stock messages loaded (%d invalid), %s run over %d SKUs",
            SOURCE,
            input.shop,
            loaded,
            invalid,
            input.mode,
            work,
        )
        return LoadStockResult(loaded=loaded, invalid=invalid, work=work)

    async def _load(self, input: LoadStockInput) -> tuple[int, int]:
        shop = input.shop
        try:
            reader = await asyncio.to_thread(
                CommittingReader,
                self._brokers,
                self._stock_topic,
                f"synchub-temu-stock-{shop}",
                self._security,
            )
        except RuntimeError as exc:  # topic missing: the ERP has not published yet
            raise RetryableError(f"{SOURCE}/{shop}: cannot read desired stock: {exc}") from None

        async def dead_letters(dead: list[Consumed]) -> None:
            with publishing(SOURCE, shop):  # the dead letters carry this span's context
                trace = traceparent(input.run_token)
                await self._publisher.publish(
                    [invalid_stock_message(self._deadletter, shop, m, trace) for m in dead]
                )

        try:
            return await load_desired(
                reader,
                self._store,
                shop,
                dead_letters,
                poll_max=POLL_MAX,
                poll_seconds=POLL_SECONDS,
            )
        finally:
            await asyncio.to_thread(reader.close)

    # -- steps 2-4: read, diff, edit -------------------------------------------------------

    @activity.defn(name=activity_names.RECONCILE_STOCK_BATCH)
    @translate_errors
    async def reconcile_batch(self, input: ReconcileBatchInput) -> ReconcileBatchResult:
        """Reconcile one slice of the work list: read TEMU, diff, edit, audit, commit.

        The first attempt stores its plan (counts and edits with their keys) before calling
        TEMU, and each edit's answer as soon as it arrives. A retried attempt replays that
        plan: edits already answered are not sent again, an edit whose answer was lost is
        sent again with the same ``requestUniqueKey`` (TEMU answers "duplicate": already
        applied), and the audit events are published again with the same ``event_id`` s.
        Diffing again instead could find the edit already visible and publish no audit
        event for it, or find a stale read and push under a different product grouping.
        """
        async with heartbeating():
            return await self._reconcile(input)

    async def _reconcile(self, input: ReconcileBatchInput) -> ReconcileBatchResult:
        shop, token, cursor = input.shop, input.run_token, input.cursor
        client = self._client(shop)
        stored = await self._store.stored_plan(shop, token, cursor)
        if stored is not None:
            plan = BatchPlan.model_validate_json(stored)
        else:
            plan = await self._plan(input, client)
            if not plan.counts.fetched:
                return ReconcileBatchResult(next_cursor=None)
            await self._store.store_plan(shop, token, cursor, plan.model_dump_json())
        counts = plan.counts.model_copy()
        answered = await self._store.answers(shop, token, cursor)

        async def record(key: str, outcome: dict[str, Any]) -> None:
            counts.edits += 1
            await self._store.record_answer(shop, token, cursor, key, outcome)

        # An edit that fails (retries exhausted, credentials) must not hide the others: what
        # TEMU applied is audited and settled first, then the failure fails the batch.
        results = await send_edits(client, plan.edits, answered, record, EDIT_CONCURRENCY)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        now = float(self._clock())
        with publishing(SOURCE, shop):  # the audit events carry this span's context
            trace = traceparent(token)
            out: list[OutMessage] = []
            settle = self._store.settlement(shop)
            for edit, outcome in zip(plan.edits, results, strict=True):
                if isinstance(outcome, BaseException):
                    continue  # unknown: its SKUs stay dirty, the retry sends the same key
                for c in edit.changes:
                    ok, why = outcome["skus"].get(str(c.sku_id), [False, "no status from TEMU"])
                    if ok:
                        counts.applied += 1
                        counts.duplicates += int(outcome["dup"])
                        out.append(audit_event(self._audit, shop, edit, c, trace))
                        # a duplicate not verified is assumed applied: verify next run
                        verify = bool(outcome["dup"] and not outcome.get("verified"))
                        pushed = Pushed(c.version, c.gen, now, True).dump()
                        settle.applied(c.sku, pushed, verify=verify)
                    else:
                        counts.failed += 1
                        out.append(rejected_edit(self._deadletter, shop, edit, c, str(why), trace))
                        nxt = Pushed(c.version, c.gen + 1, now, False)  # the retry needs a new key
                        settle.rejected(c.sku, nxt.dump())
            await self._publisher.publish(out)  # publish first, then settle the SKUs
        await settle.execute()
        if counts.applied or counts.failed:
            log.info("%s/%s: batch at %d: %s", SOURCE, shop, cursor, counts.model_dump())
        if failure is not None:
            raise failure
        return ReconcileBatchResult(counts=counts, next_cursor=plan.next_cursor)

    async def _plan(self, input: ReconcileBatchInput, client: TemuClient) -> BatchPlan:
        """Read the batch's SKUs, their desired and TEMU's current stock; decide the edits.

        SKUs that need no edit are settled at once (``plan_batch`` says which); the edits
        are sent by the caller after the plan is stored.
        """
        shop = input.shop
        skus, total = await self._store.work_slice(
            shop, input.run_token, input.cursor, input.batch_size
        )
        end = input.cursor + input.batch_size
        if not skus:
            return BatchPlan(next_cursor=end if end < total else None)
        desired_raw, pushed_raw = await self._store.desired_and_pushed(shop, skus)
        current = {
            str(row["outSkuSn"]): row
            for row in await client.stock_query(out_sku_sns=skus)
            if row.get("outSkuSn") is not None
        }
        decision = plan_batch(shop, skus, desired_raw, pushed_raw, current, float(self._clock()))
        decision.plan.next_cursor = end if end < total else None
        await self._store.settle_unsent(shop, decision.settled, decision.pending)
        return decision.plan

    # -- cleanup ---------------------------------------------------------------------------

    @activity.defn(name=activity_names.FINISH_STOCK_RUN)
    @translate_errors
    async def finish_run(self, input: FinishInventoryInput) -> int:
        """Delete the run's work list and batch plans; returns how many keys were removed.

        SKUs a stopped run did not reach stay dirty (or in retry), so the next quick run
        takes them up; nothing depends on these keys once the run has ended.
        """
        return await self._store.finish_run(input.shop, input.run_token)


def worker_activities(connector: Connector, deps: WorkerDeps) -> list[Callable[..., Any]]:
    """The reconciliation steps over the inventory connector's shop clients (``SPEC.activities``).

    Raises:
        TypeError: ``connector`` is not the TEMU inventory connector (a wiring mistake).

    """
    if not isinstance(connector, TemuInventoryConnector):
        raise TypeError(f"{SOURCE} activities need TemuInventoryConnector, got {connector!r}")
    settings = deps.settings
    stock = TemuInventoryActivities(
        connector.clients,
        deps.redis(),
        deps.publisher,
        brokers=settings.kafka.brokers,
        stock_topic=settings.temu.stock_topic,
        audit_topic=settings.temu.inventory_topic,
        deadletter_topic=settings.kafka.deadletter_topic,
        kafka_security=deps.kafka_security,
    )
    return [stock.load_desired_stock, stock.reconcile_batch, stock.finish_run]
