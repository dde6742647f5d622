"""TEMU inventory reconciliation: ERP desired stock -> TEMU current stock -> diff -> edits.

Redis layout (``<p>`` = ``synchub:temu-inventory:<shop>``), no TTL unless said:

* ``<p>:desired`` hash, seller SKU (TEMU ``outSkuSn``) -> ``"<stock>:<kafka partition>-<offset>"``:
  the ERP's desired stock and its version (the Kafka position of the message that set
  that value; a message repeating the value keeps the older version, see ``_MATERIALISE``).
* ``<p>:dirty`` set: SKUs whose desired stock arrived since they were last settled.
* ``<p>:retry`` set: SKUs TEMU rejected (or whose edit must be verified): re-checked by the
  next quick run, so a failure is never silently dropped.
* ``<p>:pushed`` hash, SKU -> ``"<version>;<gen>;<unix ts>;<1|0>"``: the last edit TEMU
  answered for the SKU (applied or rejected) and its generation (see ``_plan``).
* ``<p>:work:<run_token>`` list (one day TTL): the SKUs of one run, addressed by index, so a
  retried batch re-reads the same SKUs.
* ``<p>:batch:<run_token>:<cursor>`` string (one day TTL): the batch's plan (its counts and
  the edits with their ``requestUniqueKey`` s), and ``...:done`` hash: TEMU's answer per
  edit. A retried batch replays the plan instead of diffing again (see ``reconcile_batch``).

A shop's runs never overlap: the child workflow id ``sync/temu-inventory/<shop>`` is the
lock, so these keys have one writer at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, Field
from temporalio import activity

from activities.errors import translate_errors
from activities.heartbeat import heartbeating
from activities.messages import audit_message, deadletter_message, traceparent
from connectors.temu.client import TemuClient
from connectors.temu.errors import TemuBusinessError
from connectors.temu.inventory import SOURCE
from infra.consumer import CommittingReader, Consumed
from infra.publisher import KafkaPublisher, OutMessage
from infra.telemetry import publishing
from models import activity_names
from models.errors import NotConfiguredError, RetryableError
from models.inventory import (
    FinishInventoryInput,
    InventoryCounts,
    LoadStockInput,
    LoadStockResult,
    ReconcileBatchInput,
    ReconcileBatchResult,
)

log = logging.getLogger("synchub.temu.inventory")

RUN_TTL_SECONDS = 86_400
"""Work lists and batch plans of a run that never finishes live a day at most."""
STALE_READ_SECONDS = 60.0
"""TEMU's stock reads lag its edits by about 5 s. A SKU whose edit TEMU confirmed less than
this long ago and that still reads differently is taken as "not visible yet", not as drift."""
EDIT_CONCURRENCY = 4
"""Stock edits of one batch in flight at once; the shared rate limiter still paces them, and
a few in flight hide each request's latency so a shop gets close to the app key's rate."""
POLL_MAX = 500
"""ERP messages read (and written to Redis in one round trip) per poll."""
POLL_SECONDS = 1.0
"""A poll waits this long for its first message; an empty one ends the load once the backlog
that existed at its start is read (``CommittingReader.next_batch``)."""

# Write desired stock, keeping the version when the value did not change (the ERP may
# re-publish a level unchanged: it must not look like a new change, or a stale TEMU read
# would make it push again under a new requestUniqueKey), and mark the SKU dirty.
# ARGV: sku1, stock1, version1, sku2, ... in topic order, so the last message of a key wins.
_MATERIALISE = """
for i = 1, #ARGV, 3 do
  local sku, stock, version = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local old = redis.call('HGET', KEYS[1], sku)
  if not old or string.match(old, '^([^:]*)') ~= stock then
    redis.call('HSET', KEYS[1], sku, stock .. ':' .. version)
  end
  redis.call('SADD', KEYS[2], sku)
end
return #ARGV / 3
"""

# Build the run's work list inside Redis (no SKU list crosses the network): quick = dirty
# plus retry, full = every SKU with a desired stock; sorted, so batches are reproducible.
_BUILD_WORK = """
redis.call('DEL', KEYS[4])
local skus
if ARGV[1] == 'full' then
  skus = redis.call('HKEYS', KEYS[1])
else
  skus = redis.call('SUNION', KEYS[2], KEYS[3])
end
table.sort(skus)
for i = 1, #skus, 1000 do
  redis.call('RPUSH', KEYS[4], unpack(skus, i, math.min(i + 999, #skus)))
end
if #skus > 0 then redis.call('EXPIRE', KEYS[4], ARGV[2]) end
return #skus
"""


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def request_unique_key(shop: str, goods_id: int, changes: list[SkuChange]) -> str:
    """TEMU's idempotency key of one edit, derived from the desired state it establishes.

    Inputs are the shop, the product and, per SKU, ``(skuId, target, version, gen)``, sorted:
    never the attempt, the time or the run. So an activity that is retried after TEMU
    applied its edit (worker crash, lost answer, timeout) sends the same key and TEMU
    answers "duplicate" instead of applying it again.

    This is also why TEMU's eventually consistent reads (an edit shows in queries only after
    about 5 s) are harmless: a read taken before our own edit became visible may make a
    later pass want the same change again, but that change has the same desired state,
    hence the same key, and TEMU refuses to apply it twice. A stock that really changed at
    TEMU in between (a sale) is therefore never bumped back up by a stale read. A truly new
    change (new ERP value -> new version) or a deliberate re-push (a rejection, or drift
    seen long after our edit -> ``gen`` + 1) gets a new key.
    """
    parts = sorted((c.sku_id, c.to, c.version, c.gen) for c in changes)
    raw = json.dumps([shop, goods_id, parts], separators=(",", ":"))
    return "synchub-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def audit_event_id(shop: str, sku: str, version: str, to: int, gen: int = 0) -> str:
    """Deterministic ``event_id`` of an applied change: a re-published audit repeats it.

    ``gen`` (a deliberate re-push of the same desired value after drift) enters only when
    non-zero, so the usual id is exactly hash(shop, sku, version, to).
    """
    raw = f"{shop}\x1f{sku}\x1f{version}\x1f{to}" + (f"\x1f{gen}" if gen else "")
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class SkuChange(BaseModel):
    """One SKU to set: what TEMU showed and what the ERP wants."""

    sku: str
    """Seller SKU (``outSkuSn``), the ERP's key."""
    sku_id: int
    goods_id: int
    from_stock: int | None = None
    """TEMU's stock as read (may lag our own recent edits by ~5 s)."""
    to: int
    version: str
    """Version of the desired value (``<kafka partition>-<offset>``)."""
    gen: int = 0
    """Deliberate re-pushes of this version (after a rejection or after drift)."""


class Edit(BaseModel):
    """One ``bg.local.goods.stock.edit`` call: the changes of one product."""

    goods_id: int
    key: str
    """``requestUniqueKey`` (see ``request_unique_key``)."""
    changes: list[SkuChange]


class BatchPlan(BaseModel):
    """What a batch decided before calling TEMU; stored so a retry does the same."""

    counts: InventoryCounts = Field(default_factory=InventoryCounts)
    """fetched / unchanged / not_listed (the edits add applied / failed)."""
    edits: list[Edit] = Field(default_factory=list)
    next_cursor: int | None = None


@dataclass(frozen=True)
class _Pushed:
    version: str
    gen: int
    at: float
    ok: bool

    @classmethod
    def parse(cls, raw: bytes | str | None) -> _Pushed | None:
        text = _text(raw)
        if not text:
            return None
        try:
            version, gen, at, ok = text.split(";")
            return cls(version, int(gen), float(at), ok == "1")
        except ValueError:
            return None

    def dump(self) -> str:
        return f"{self.version};{self.gen};{self.at:.3f};{int(self.ok)}"


def parse_desired(raw: bytes | str | None) -> tuple[int, str] | None:
    """``"<stock>:<version>"`` from the desired hash -> ``(stock, version)``."""
    text = _text(raw)
    if not text:
        return None
    stock, _, version = text.partition(":")
    try:
        return int(stock), version
    except ValueError:
        return None


def desired_from_message(msg: Consumed) -> int | None:
    """The stock an ERP message asks for; ``None`` when the message is malformed.

    A tombstone (null value: the ERP withdrew the SKU) means desired stock 0. Forgetting
    the SKU instead would leave TEMU selling its last stock level with nothing behind it;
    0 stops sales and stays visible (and reversible) in the audit trail.
    """
    if not msg.value:
        return 0
    try:
        body = json.loads(msg.value)
    except ValueError:
        return None
    stock = body.get("stock") if isinstance(body, dict) else None
    if isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
        return None
    return stock


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
        self._r = redis
        self._publisher = publisher
        self._brokers = brokers
        self._security = kafka_security
        self._stock_topic = stock_topic
        self._audit = audit_topic
        self._deadletter = deadletter_topic
        self._clock = clock
        self._materialise = redis.register_script(_MATERIALISE)
        self._build_work = redis.register_script(_BUILD_WORK)

    @staticmethod
    def prefix(shop: str) -> str:
        """Redis key prefix of a shop's inventory state."""
        return f"synchub:{SOURCE}:{shop}"

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
            p = self.prefix(input.shop)
            keys = [f"{p}:desired", f"{p}:dirty", f"{p}:retry", f"{p}:work:{input.run_token}"]
            work = int(await self._build_work(keys=keys, args=[input.mode, RUN_TTL_SECONDS]))
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
        p = self.prefix(shop)
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
        loaded = invalid = 0
        try:
            while True:
                batch = await asyncio.to_thread(reader.next_batch, POLL_MAX, POLL_SECONDS)
                if not batch:
                    break
                args: list[str] = []
                dead: list[Consumed] = []
                for msg in batch:
                    stock = desired_from_message(msg) if msg.key else None
                    if stock is None:
                        dead.append(msg)
                        continue
                    args += [msg.key, str(stock), f"{msg.partition}-{msg.offset}"]
                if dead:
                    with publishing(SOURCE, shop):  # the dead letters carry this span's context
                        trace = traceparent(input.run_token)
                        await self._publisher.publish([self._invalid(shop, m, trace) for m in dead])
                if args:
                    await self._materialise(keys=[f"{p}:desired", f"{p}:dirty"], args=args)
                last: dict[int, Consumed] = {}
                for msg in batch:  # committing a partition's last message covers the rest
                    last[msg.partition] = msg
                for msg in last.values():
                    await asyncio.to_thread(reader.commit, msg)
                loaded += len(args) // 3
                invalid += len(dead)
        finally:
            await asyncio.to_thread(reader.close)
        return loaded, invalid

    def _invalid(self, shop: str, msg: Consumed, trace: str) -> OutMessage:
        raw: Any = msg.value.decode(errors="replace")
        return deadletter_message(
            topic=self._deadletter,
            source=SOURCE,
            partition=shop,
            key=msg.key or None,
            reason=(
                f"invalid desired-stock message at {msg.topic}[{msg.partition}]@{msg.offset}: "
                'expected key = seller SKU and value {"stock": <integer >= 0>} or null'
            ),
            raw=raw,
            trace=trace,
        )

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
        shop, p = input.shop, self.prefix(input.shop)
        client = self._client(shop)
        plan_key = f"{p}:batch:{input.run_token}:{input.cursor}"
        stored = _text(await self._r.get(plan_key))
        if stored is not None:
            plan = BatchPlan.model_validate_json(stored)
        else:
            plan = await self._plan(input, client)
            if not plan.counts.fetched:
                return ReconcileBatchResult(next_cursor=None)
            await self._r.set(plan_key, plan.model_dump_json(), ex=RUN_TTL_SECONDS)
        counts = plan.counts.model_copy()
        done_key = f"{plan_key}:done"
        answered = {
            str(_text(k)): json.loads(str(_text(v)))
            for k, v in (await self._r.hgetall(done_key)).items()
        }
        gate = asyncio.Semaphore(EDIT_CONCURRENCY)

        async def send(edit: Edit) -> dict[str, Any]:
            if edit.key in answered:
                return dict(answered[edit.key])
            targets = {c.sku_id: c.to for c in edit.changes}
            async with gate:
                try:
                    statuses = await client.stock_edit(
                        goods_id=edit.goods_id, targets=targets, request_unique_key=edit.key
                    )
                    outcome: dict[str, Any] = {
                        "dup": False,
                        "skus": {str(s): [ok, msg] for s, (ok, msg) in statuses.items()},
                    }
                except TemuBusinessError as exc:
                    # neither "applied" nor a per-SKU rejection: a repeated key (whatever
                    # code TEMU gives it) or a refused product. TEMU's stock decides.
                    outcome = await self._verify(client, edit, exc)
                counts.edits += 1
            await self._r.hset(done_key, edit.key, json.dumps(outcome))
            await self._r.expire(done_key, RUN_TTL_SECONDS)
            return outcome

        # An edit that fails (retries exhausted, credentials) must not hide the others: what
        # TEMU applied is audited and settled first, then the failure fails the batch.
        results = await asyncio.gather(*(send(e) for e in plan.edits), return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        now = float(self._clock())
        with publishing(SOURCE, shop):  # the audit events carry this span's context
            trace = traceparent(input.run_token)
            out: list[OutMessage] = []
            pipe = self._r.pipeline(transaction=True)
            for edit, outcome in zip(plan.edits, results, strict=True):
                if isinstance(outcome, BaseException):
                    continue  # unknown: its SKUs stay dirty, the retry sends the same key
                for c in edit.changes:
                    ok, why = outcome["skus"].get(str(c.sku_id), [False, "no status from TEMU"])
                    if ok:
                        counts.applied += 1
                        counts.duplicates += int(outcome["dup"])
                        out.append(self._audit_event(shop, edit, c, trace))
                        pipe.srem(f"{p}:dirty", c.sku)
                        if outcome["dup"] and not outcome.get("verified"):
                            pipe.sadd(f"{p}:retry", c.sku)  # assumed applied: verify next run
                        else:
                            pipe.srem(f"{p}:retry", c.sku)
                        pipe.hset(f"{p}:pushed", c.sku, _Pushed(c.version, c.gen, now, True).dump())
                    else:
                        counts.failed += 1
                        out.append(self._rejected(shop, edit, c, str(why), trace))
                        pipe.srem(f"{p}:dirty", c.sku)
                        pipe.sadd(f"{p}:retry", c.sku)
                        nxt = _Pushed(c.version, c.gen + 1, now, False)  # the retry needs a new key
                        pipe.hset(f"{p}:pushed", c.sku, nxt.dump())
            await self._publisher.publish(out)  # publish first, then settle the SKUs
        await pipe.execute()
        if counts.applied or counts.failed:
            log.info("%s/%s: batch at %d: %s", SOURCE, shop, input.cursor, counts.model_dump())
        if failure is not None:
            raise failure
        return ReconcileBatchResult(counts=counts, next_cursor=plan.next_cursor)

    async def _verify(
        self, client: TemuClient, edit: Edit, answer: TemuBusinessError
    ) -> dict[str, Any]:
        """Decide an edit TEMU answered ambiguously from TEMU's current stock of its SKUs.

        A SKU showing the target counts as applied (typically a repeat of an edit TEMU
        applied before, answered with whatever code that TEMU uses); any other SKU as not
        applied, with TEMU's answer as the reason, so it is dead-lettered and re-pushed
        under a new key by the next run. A read taken within TEMU's ~5 s visibility lag of
        an earlier attempt may still show the old stock: then the SKU is pushed once more
        with the same absolute target, which sets nothing new.
        """
        shown = {
            int(row["skuId"]): row.get("stock")
            for row in await client.stock_query(sku_ids=[c.sku_id for c in edit.changes])
            if row.get("skuId") is not None
        }
        skus: dict[str, list[Any]] = {}
        for c in edit.changes:
            have = shown.get(c.sku_id)
            if have == c.to:
                skus[str(c.sku_id)] = [True, None]
            else:
                skus[str(c.sku_id)] = [False, f"{answer}; TEMU shows stock {have}, not {c.to}"]
        log.info(
            "%s/%s: edit of goods %d answered %s; verified %d of %d applied",
            SOURCE,
            client.shop_id,
            edit.goods_id,
            answer.code,
            sum(1 for ok, _ in skus.values() if ok),
            len(skus),
        )
        return {"dup": True, "verified": True, "skus": skus}

    async def _plan(self, input: ReconcileBatchInput, client: TemuClient) -> BatchPlan:
        """Read the batch's SKUs, their desired and TEMU's current stock; decide the edits.

        ``gen`` counts deliberate re-pushes of the same desired version: after TEMU rejected
        it (the retry must not be refused as a duplicate), or after TEMU confirmed it but
        shows a different stock more than ``STALE_READ_SECONDS`` later (drift, e.g. an
        operator's edit in the seller center). Within that window a difference is our own
        edit not visible yet, and nothing is sent.
        """
        p = self.prefix(input.shop)
        end = input.cursor + input.batch_size
        pipe = self._r.pipeline(transaction=False)
        pipe.lrange(f"{p}:work:{input.run_token}", input.cursor, end - 1)
        pipe.llen(f"{p}:work:{input.run_token}")
        raw_skus, total = await pipe.execute()
        skus = [str(_text(s)) for s in raw_skus]
        plan = BatchPlan(next_cursor=end if end < int(total) else None)
        if not skus:
            return plan
        pipe = self._r.pipeline(transaction=False)
        pipe.hmget(f"{p}:desired", skus)
        pipe.hmget(f"{p}:pushed", skus)
        desired_raw, pushed_raw = await pipe.execute()
        current = {
            str(row["outSkuSn"]): row
            for row in await client.stock_query(out_sku_sns=skus)
            if row.get("outSkuSn") is not None
        }
        now = float(self._clock())
        settled: list[str] = []  # equal or not listed: leave dirty and retry
        pending: list[str] = []  # our own edit not visible yet: leave dirty, keep retry
        by_goods: dict[int, list[SkuChange]] = {}
        plan.counts.fetched = len(skus)
        for sku, d_raw, pu_raw in zip(skus, desired_raw, pushed_raw, strict=True):
            desired = parse_desired(d_raw)
            row = current.get(sku)
            if desired is None or row is None:  # the ERP or TEMU does not know the SKU
                plan.counts.not_listed += 1
                settled.append(sku)
                continue
            target, version = desired
            have = row.get("stock")
            if have == target:
                plan.counts.unchanged += 1
                settled.append(sku)
                continue
            gen = 0
            pushed = _Pushed.parse(pu_raw)
            if pushed is not None and pushed.version == version:
                if pushed.ok and now - pushed.at < STALE_READ_SECONDS:
                    plan.counts.unchanged += 1
                    pending.append(sku)
                    continue
                gen = pushed.gen + 1 if pushed.ok else pushed.gen
            change = SkuChange(
                sku=sku,
                sku_id=int(row["skuId"]),
                goods_id=int(row["goodsId"]),
                from_stock=have if isinstance(have, int) else None,
                to=target,
                version=version,
                gen=gen,
            )
            by_goods.setdefault(change.goods_id, []).append(change)
        plan.edits = [
            Edit(goods_id=g, key=request_unique_key(input.shop, g, cs), changes=cs)
            for g, cs in sorted(by_goods.items())
        ]
        if settled or pending:
            pipe = self._r.pipeline(transaction=True)
            pipe.srem(f"{p}:dirty", *settled, *pending)
            if settled:
                pipe.srem(f"{p}:retry", *settled)
            await pipe.execute()
        return plan

    def _audit_event(self, shop: str, edit: Edit, c: SkuChange, trace: str) -> OutMessage:
        event = audit_event_id(shop, c.sku, c.version, c.to, c.gen)
        return audit_message(
            topic=self._audit,
            source=SOURCE,
            key=c.sku,
            event=event,
            body={
                "shop": shop,
                "sku": c.sku,
                "goods_id": c.goods_id,
                "sku_id": c.sku_id,
                "from": c.from_stock,
                "to": c.to,
                "version": c.version,
                "request_unique_key": edit.key,
            },
            trace=trace,
        )

    def _rejected(self, shop: str, edit: Edit, c: SkuChange, why: str, trace: str) -> OutMessage:
        return deadletter_message(
            topic=self._deadletter,
            source=SOURCE,
            partition=shop,
            key=c.sku,
            reason=f"TEMU rejected the stock update (kept for retry): {why}",
            raw={
                "goods_id": c.goods_id,
                "sku_id": c.sku_id,
                "from": c.from_stock,
                "to": c.to,
                "version": c.version,
                "request_unique_key": edit.key,
            },
            trace=trace,
        )

    # -- cleanup ---------------------------------------------------------------------------

    @activity.defn(name=activity_names.FINISH_STOCK_RUN)
    @translate_errors
    async def finish_run(self, input: FinishInventoryInput) -> int:
        """Delete the run's work list and batch plans; returns how many keys were removed.

        SKUs a stopped run did not reach stay dirty (or in retry), so the next quick run
        takes them up; nothing depends on these keys once the run has ended.
        """
        p = self.prefix(input.shop)
        keys = [f"{p}:work:{input.run_token}"]
        async for key in self._r.scan_iter(match=f"{p}:batch:{input.run_token}:*", count=1000):
            keys.append(str(_text(key)))
        removed = 0
        for start in range(0, len(keys), 500):
            removed += int(await self._r.delete(*keys[start : start + 500]))
        return removed
