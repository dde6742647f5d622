"""End to end: TEMU stock reconciled with the ERP's erp.stock topic, per shop, via Temporal.

The ERP's desired stock arrives on a real Kafka topic, Redis holds it, the TEMU simulator
(signatures, 20 QPS bucket, per-SKU edit results, delayed visibility) is called over HTTP,
and the audit events are read back from Kafka.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from confluent_kafka import Producer
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.temu_inventory import TemuInventoryActivities
from activities.temu_stock_plan import audit_event_id
from connectors import get_spec
from connectors.temu.inventory import build_temu_inventory
from infra.publisher import KafkaPublisher
from models.errors import InvalidParamsError
from models.inventory import LoadStockInput, ReconcileBatchInput
from models.sync import RunState, SyncAllInput, SyncAllResult
from settings import TemuShop
from simulators.server import ThreadedServer
from simulators.temu import SIM_ACCESS_TOKEN, SIM_APP_KEY, SIM_APP_SECRET, TemuState, make_sim_app
from simulators.temu.state import STOCK_EDIT
from tests.helpers import Engine, envelope, make_settings, read, running_engine
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
SHOP = "us-inv"
SOURCE = "temu-inventory"


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[TemuState, ThreadedServer]]:
    state, app = make_sim_app()
    server = ThreadedServer(app).start()
    yield state, server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    sim, temporal_client: Client, temporal_address, kafka_brokers, redis_url
) -> AsyncIterator[Engine]:
    shop = TemuShop(
        id=SHOP,
        region="us",
        app_key=SIM_APP_KEY,
        app_secret=SecretStr(SIM_APP_SECRET),
        access_token=SecretStr(SIM_ACCESS_TOKEN),
        api_url=f"{sim[1].url}/openapi/router",
    )
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=12,
        temu_shops=[shop],
    )
    async with running_engine(temporal_client, settings, settings.temu.inventory_topic) as eng:
        yield eng


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean(engine: Engine, sim) -> None:
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    await r.flushdb()
    await r.aclose()
    sim[0].reset_knobs()


def catalogue(state: TemuState, n_goods: int, per_goods: int, seed: int) -> dict[str, dict]:
    state.seed_stock(n_goods, per_goods, seed=seed)
    return {s["outSkuSn"]: s for s in state.skus()}


def publish_stock(engine: Engine, levels: dict[str, int | None]) -> None:
    producer = Producer({"bootstrap.servers": engine.settings.kafka.brokers, "acks": "all"})
    for sku, stock in levels.items():
        value = None if stock is None else json.dumps({"stock": stock}).encode()
        producer.produce(engine.settings.temu.stock_topic, key=sku.encode(), value=value)
    assert producer.flush(10) == 0


async def run(engine: Engine, mode: str) -> SyncAllResult:
    result: SyncAllResult = await engine.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source=SOURCE, params={"mode": mode}),
        id=f"syncall/{SOURCE}/test-{uuid.uuid4().hex[:8]}",
        task_queue=engine.settings.temporal.task_queue,
    )
    assert result.state == RunState.COMPLETED, result
    return result


def drift(state: TemuState, sku_id: int, stock: int) -> None:
    """A change made at TEMU, not through synchub (the simulator has no method for it)."""
    with state._lock:
        state._skus[sku_id]["history"].append((float("-inf"), stock))


def edit_calls(state: TemuState) -> int:
    return state.requests[STOCK_EDIT]


async def test_quick_applies_only_changes_and_retries_a_rejected_sku(sim, engine: Engine) -> None:
    state, _ = sim
    skus = catalogue(state, 10, 3, seed=21)
    names = sorted(skus)
    changed = names[:9]  # the first three products (SKUs 1-9); SKUs 10-30 stay equal
    rejected = names[0]
    desired = {n: skus[n]["stock"] + (7 if n in changed else 0) for n in names}
    publish_stock(engine, desired)
    state.set_knobs(reject_skus={skus[rejected]["skuId"]})
    edits_before = edit_calls(state)

    first = await run(engine, "quick")
    assert first.records.fetched == 30
    assert first.records.unchanged == 21
    assert first.records.upserted == 8
    assert first.records.dead_lettered == 1
    assert first.steps == {"inventory.not_listed": 0, "inventory.failed": 1, "inventory.applied": 8}
    assert edit_calls(state) - edits_before == 3  # one edit per changed product, none for equal
    current = {s["outSkuSn"]: s["stock"] for s in state.skus()}
    assert {n: current[n] for n in names if n != rejected} == {
        n: desired[n] for n in names if n != rejected
    }
    assert current[rejected] == skus[rejected]["stock"]

    audit = await read(engine.topic, idle=1.0, expect=8)
    assert sorted(m.key for m in audit) == sorted(changed[1:])
    for m in audit:
        body = envelope(m)
        assert body["to"] == desired[m.key] and body["from"] == skus[m.key]["stock"]
        assert body["shop"] == SHOP and body["sku_id"] == skus[m.key]["skuId"]
        assert body["request_unique_key"].startswith("synchub-")
        assert (
            m.headers["event_id"]
            == body["event_id"]
            == audit_event_id(SHOP, m.key, body["version"], body["to"])
        )
        assert m.headers["source"] == SOURCE and m.headers["op"] == "upsert"
    dead = await read(engine.deadletter, idle=0.5)
    assert [m.key for m in dead] == [rejected]
    assert "Stock update failed" in envelope(dead[0])["reason"]

    state.set_knobs(reject_skus=set())
    second = await run(engine, "quick")  # only the rejected SKU is looked at again
    assert second.records.fetched == 1 and second.records.upserted == 1
    assert state.stock(skus[rejected]["skuId"]) == desired[rejected]
    assert [m.key for m in await read(engine.topic, idle=1.0, expect=1)] == [rejected]

    calls = edit_calls(state)
    third = await run(engine, "quick")  # nothing changed in the ERP: nothing to do
    assert third.records.fetched == 0 and edit_calls(state) == calls
    assert await read(engine.topic, idle=0.5) == []


async def test_full_rechecks_every_sku_and_applies_only_differences(sim, engine: Engine) -> None:
    state, _ = sim
    skus = catalogue(state, 8, 2, seed=22)
    names = sorted(skus)
    publish_stock(engine, {n: skus[n]["stock"] for n in names} | {"SKU-NOT-ON-TEMU": 4})
    calls = edit_calls(state)
    first = await run(engine, "quick")
    assert first.records.unchanged == 16 and first.steps["inventory.not_listed"] == 1
    assert edit_calls(state) == calls

    # someone changes two SKUs in the seller center: only a full run notices
    drifted = [names[3], names[10]]
    for n in drifted:
        drift(state, skus[n]["skuId"], 999)
    quick = await run(engine, "quick")
    assert quick.records.fetched == 0 and edit_calls(state) == calls
    full = await run(engine, "full")
    assert full.records.fetched == 17 and full.records.unchanged == 14
    assert full.records.upserted == 2 and edit_calls(state) - calls == 2
    assert {n: state.stock(skus[n]["skuId"]) for n in drifted} == {
        n: skus[n]["stock"] for n in drifted
    }
    audit = await read(engine.topic, idle=1.0, expect=2)
    assert sorted((m.key, envelope(m)["from"], envelope(m)["to"]) for m in audit) == sorted(
        (n, 999, skus[n]["stock"]) for n in drifted
    )

    # withdrawn by the ERP (tombstone): desired 0
    publish_stock(engine, {names[0]: None})
    gone = await run(engine, "quick")
    assert gone.records.upserted == 1 and state.stock(skus[names[0]]["skuId"]) == 0
    await read(engine.topic, idle=0.5)


async def test_a_retried_batch_never_applies_twice(sim, engine: Engine) -> None:
    state, _ = sim
    skus = catalogue(state, 4, 3, seed=23)
    names = sorted(skus)
    publish_stock(engine, {n: skus[n]["stock"] + 3 for n in names})
    connector = build_temu_inventory(engine.settings)
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    publisher = KafkaPublisher(engine.settings.kafka.brokers)
    acts = TemuInventoryActivities(
        connector.clients,
        r,
        publisher,
        brokers=engine.settings.kafka.brokers,
        stock_topic=engine.settings.temu.stock_topic,
        audit_topic=engine.settings.temu.inventory_topic,
        deadletter_topic=engine.settings.kafka.deadletter_topic,
    )
    env = ActivityEnvironment()
    token = f"test/{uuid.uuid4().hex[:8]}"
    try:
        loaded = await env.run(
            acts.load_desired_stock, LoadStockInput(shop=SHOP, run_token=token, mode="quick")
        )
        assert loaded.work == 12
        batch = ReconcileBatchInput(shop=SHOP, run_token=token, cursor=0, batch_size=100)
        applied_before = len(state.stock_edits)
        once = await env.run(acts.reconcile_batch, batch)
        assert once.counts.applied == 12 and once.counts.edits == 4
        assert len(state.stock_edits) - applied_before == 12

        # the same batch again (a retry after the answers were recorded): replayed, no call
        calls = edit_calls(state)
        again = await env.run(acts.reconcile_batch, batch)
        assert again.counts.applied == 12 and edit_calls(state) == calls

        # a retry whose answers were lost (crash right after TEMU applied): same keys,
        # TEMU says duplicate, nothing is applied a second time
        await r.delete(f"{acts.prefix(SHOP)}:batch:{token}:0:done")
        lost = await env.run(acts.reconcile_batch, batch)
        assert lost.counts.applied == 12 and lost.counts.duplicates == 12
        assert edit_calls(state) - calls == 4
        assert len(state.stock_edits) - applied_before == 12
        # audit events repeat their event ids: consumers drop the repeats
        audit = await read(engine.topic, idle=1.0, expect=36)
        assert len(audit) == 36 and len({m.headers["event_id"] for m in audit}) == 12
    finally:
        publisher.close()
        await connector.aclose()
        await r.aclose()


async def test_stale_reads_after_a_full_run_push_nothing_again(sim, engine: Engine) -> None:
    state, _ = sim
    skus = catalogue(state, 5, 2, seed=24)
    names = sorted(skus)
    desired = {n: skus[n]["stock"] + 11 for n in names}
    publish_stock(engine, desired)
    state.set_knobs(visibility_delay_seconds=5)
    full = await run(engine, "full")
    assert full.records.upserted == 10
    applied = len(state.stock_edits)
    calls = edit_calls(state)
    # TEMU still shows the old stock; the ERP re-publishes the same levels, so the quick run
    # has all of them dirty and reads stale values: it must not push them again
    publish_stock(engine, desired)
    quick = await run(engine, "quick")
    assert quick.records.fetched == 10 and quick.records.upserted == 0
    assert edit_calls(state) == calls and len(state.stock_edits) == applied
    again = await run(engine, "full")
    assert again.records.upserted == 0 and len(state.stock_edits) == applied
    assert len(await read(engine.topic, idle=1.0, expect=10)) == 10
    assert await read(engine.topic, idle=0.5) == []


async def test_params_are_validated_before_anything_starts() -> None:
    spec = get_spec(SOURCE)
    assert spec.validate_params({"mode": "full"}) == {"mode": "full", "batch_size": 100}
    with pytest.raises(InvalidParamsError, match="mode"):
        spec.validate_params({"mode": "fast"})
    with pytest.raises(InvalidParamsError, match="batch_size"):
        spec.validate_params({"batch_size": 101})
    with pytest.raises(InvalidParamsError, match="days_back: Extra inputs"):
        spec.validate_params({"days_back": 1})


# -- ambiguous answers are checked against TEMU's stock, never assumed -------------------


@pytest.mark.parametrize("code", [150010099, 0], ids=["unknown-code", "accepted"])
async def test_a_repeated_key_answered_with_another_code_is_verified_and_audited(
    sim, engine: Engine, code: int
) -> None:
    state, _ = sim
    state.set_knobs(duplicate_key_code=code)  # not the code the client knows, or success
    skus = catalogue(state, 4, 3, seed=25)
    names = sorted(skus)
    publish_stock(engine, {n: skus[n]["stock"] + 5 for n in names})
    connector = build_temu_inventory(engine.settings)
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    publisher = KafkaPublisher(engine.settings.kafka.brokers)
    acts = TemuInventoryActivities(
        connector.clients,
        r,
        publisher,
        brokers=engine.settings.kafka.brokers,
        stock_topic=engine.settings.temu.stock_topic,
        audit_topic=engine.settings.temu.inventory_topic,
        deadletter_topic=engine.settings.kafka.deadletter_topic,
    )
    env = ActivityEnvironment()
    token = f"test/{uuid.uuid4().hex[:8]}"
    try:
        await env.run(
            acts.load_desired_stock, LoadStockInput(shop=SHOP, run_token=token, mode="quick")
        )
        batch = ReconcileBatchInput(shop=SHOP, run_token=token, cursor=0, batch_size=100)
        applied_before = len(state.stock_edits)
        once = await env.run(acts.reconcile_batch, batch)
        assert once.counts.applied == 12
        # the answers were lost (a crash right after TEMU applied): the retry repeats the keys
        # and this TEMU answers them with a business code nobody documented
        await r.delete(f"{acts.prefix(SHOP)}:batch:{token}:0:done")
        lost = await env.run(acts.reconcile_batch, batch)
        assert lost.counts.applied == 12 and lost.counts.failed == 0
        assert lost.counts.duplicates == (12 if code else 0)  # verified / plainly applied
        assert len(state.stock_edits) - applied_before == 12
        audit = await read(engine.topic, idle=1.0, expect=24)
        assert len(audit) == 24 and len({m.headers["event_id"] for m in audit}) == 12
        assert await read(engine.deadletter, idle=0.5) == []
    finally:
        publisher.close()
        await connector.aclose()
        await r.aclose()


async def test_one_refused_product_is_dead_lettered_and_the_rest_goes_through(
    sim, engine: Engine
) -> None:
    state, _ = sim
    skus = catalogue(state, 5, 2, seed=26)
    names = sorted(skus)
    desired = {n: skus[n]["stock"] + 9 for n in names}
    refused_goods = skus[names[0]]["goodsId"]
    refused = sorted(n for n in names if skus[n]["goodsId"] == refused_goods)
    publish_stock(engine, desired)
    state.set_knobs(reject_goods={refused_goods})  # a business error for the whole product

    result = await run(engine, "quick")
    assert result.records.upserted == len(names) - len(refused)
    assert result.steps["inventory.failed"] == len(refused)
    current = {s["outSkuSn"]: s["stock"] for s in state.skus()}
    assert {n: current[n] for n in names if n not in refused} == {
        n: desired[n] for n in names if n not in refused
    }
    audit = await read(engine.topic, idle=1.0, expect=len(names) - len(refused))
    assert sorted(m.key for m in audit) == sorted(n for n in names if n not in refused)
    dead = await read(engine.deadletter, idle=0.5)
    assert sorted(m.key for m in dead) == refused
    assert all("150010030" in envelope(m)["reason"] for m in dead)

    state.set_knobs(reject_goods=set())  # refused products are retried by the next run
    again = await run(engine, "quick")
    assert again.records.upserted == len(refused)
    assert {n: state.stock(skus[n]["skuId"]) for n in refused} == {n: desired[n] for n in refused}
    await read(engine.topic, idle=0.5)


async def test_what_temu_applied_is_audited_even_when_the_batch_fails(sim, engine: Engine) -> None:
    state, _ = sim
    skus = catalogue(state, 3, 2, seed=27)
    names = sorted(skus)
    desired = {n: skus[n]["stock"] + 4 for n in names}
    failing_goods = skus[names[0]]["goodsId"]
    failing = sorted(n for n in names if skus[n]["goodsId"] == failing_goods)
    publish_stock(engine, desired)
    state.set_knobs(fail_goods={failing_goods})  # TEMU keeps failing this product's edits
    connector = build_temu_inventory(engine.settings)
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    publisher = KafkaPublisher(engine.settings.kafka.brokers)
    acts = TemuInventoryActivities(
        connector.clients,
        r,
        publisher,
        brokers=engine.settings.kafka.brokers,
        stock_topic=engine.settings.temu.stock_topic,
        audit_topic=engine.settings.temu.inventory_topic,
        deadletter_topic=engine.settings.kafka.deadletter_topic,
    )
    env = ActivityEnvironment()
    token = f"test/{uuid.uuid4().hex[:8]}"
    try:
        await env.run(
            acts.load_desired_stock, LoadStockInput(shop=SHOP, run_token=token, mode="quick")
        )
        batch = ReconcileBatchInput(shop=SHOP, run_token=token, cursor=0, batch_size=100)
        with pytest.raises(Exception, match="4000000"):
            await env.run(acts.reconcile_batch, batch)
        applied = sorted(n for n in names if n not in failing)
        audit = await read(engine.topic, idle=1.0, expect=len(applied))
        assert sorted(m.key for m in audit) == applied  # audited although the batch failed

        state.set_knobs(fail_goods=set())  # the activity's retry: only the failed edit is sent
        calls = edit_calls(state)
        retried = await env.run(acts.reconcile_batch, batch)
        assert retried.counts.applied == len(names) and edit_calls(state) - calls == 1
        assert {n: state.stock(skus[n]["skuId"]) for n in names} == desired
        again = await read(engine.topic, idle=1.0, expect=len(names))
        assert sorted(m.key for m in again) == names  # the others repeat their event ids
        ids = {m.key: m.headers["event_id"] for m in audit}
        assert all(ids[m.key] == m.headers["event_id"] for m in again if m.key in ids)
    finally:
        publisher.close()
        await connector.aclose()
        await r.aclose()


async def test_a_slow_first_poll_still_loads_the_waiting_stock_levels(
    sim, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh consumer on a busy machine may fetch nothing in its first poll: not "done"."""
    import activities.temu_inventory

    monkeypatch.setattr(activities.temu_inventory, "POLL_SECONDS", 0.001)
    state, _ = sim
    skus = catalogue(state, 2, 2, seed=23)
    desired = {n: s["stock"] + 3 for n, s in skus.items()}
    publish_stock(engine, desired)
    result = await run(engine, "quick")
    assert result.records.fetched == 4
    assert result.records.upserted == 4
    assert {s["outSkuSn"]: s["stock"] for s in state.skus()} == desired
    await read(engine.topic, idle=1.0, expect=4)
