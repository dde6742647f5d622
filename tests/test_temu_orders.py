"""End to end: TEMU orders per shop through Temporal, Kafka and Redis, and shipment confirms.

The TEMU simulator checks signatures, tokens and its 20 QPS bucket over real HTTP; the ERP's
shipment confirmations arrive on a real Kafka topic.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from confluent_kafka import Producer
from pydantic import SecretStr
from temporalio.client import Client

from models.sync import RunState, SyncAllInput, SyncAllResult
from settings import TemuShop
from simulators.server import ThreadedServer
from simulators.temu import SIM_ACCESS_TOKEN, SIM_APP_KEY, SIM_APP_SECRET, TemuState, make_sim_app
from tests.helpers import Engine, envelope, make_settings, read, running_engine
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
ROOT = Path(__file__).resolve().parents[1]
SHOP = "us-1"


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[TemuState, ThreadedServer]]:
    state, app = make_sim_app()
    server = ThreadedServer(app).start()
    yield state, server
    server.stop()


def shop(server: ThreadedServer) -> TemuShop:
    return TemuShop(
        id=SHOP,
        region="us",
        app_key=SIM_APP_KEY,
        app_secret=SecretStr(SIM_APP_SECRET),
        access_token=SecretStr(SIM_ACCESS_TOKEN),
        api_url=f"{server.url}/openapi/router",
    )


def settings_for(sim, temporal_address, kafka_brokers, redis_url, db):
    return make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=db,
        temu_shops=[shop(sim[1])],
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    sim, temporal_client: Client, temporal_address, kafka_brokers, redis_url
) -> AsyncIterator[Engine]:
    settings = settings_for(sim, temporal_address, kafka_brokers, redis_url, db=10)
    async with running_engine(temporal_client, settings, settings.temu.orders_topic) as eng:
        yield eng


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean(engine: Engine, sim) -> None:
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    await r.flushdb()
    await r.aclose()
    sim[0].reset_knobs()


async def sync(client: Client, settings, **kw) -> SyncAllResult:
    return await client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="temu-orders", **kw),
        id=f"syncall/temu-orders/test-{uuid.uuid4().hex[:8]}",
        task_queue=settings.temporal.task_queue,
    )


def publish_shipments(brokers: str, topic: str, messages: list[tuple[str, object]]) -> None:
    producer = Producer({"bootstrap.servers": brokers, "acks": "all"})
    for key, value in messages:
        body = value if isinstance(value, bytes) else json.dumps(value).encode()
        producer.produce(topic, key=key.encode(), value=body)
    assert producer.flush(10) == 0
    producer.close()


def shipment(state: TemuState, sn: str, tracking: str) -> dict:
    order = state.order(sn)
    assert order is not None
    return {
        "shop": SHOP,
        "parent_order_sn": sn,
        "order_sns": [line["orderSn"] for line in order["orderList"]],
        "carrier_id": "699272611",
        "tracking_number": tracking,
    }


async def test_orders_first_run_no_change_and_changes(sim, engine: Engine) -> None:
    state, _ = sim
    now = int(time.time())
    seeded = state.seed_orders(120, start_ts=now - 3 * 86_400, end_ts=now - 60, seed=4)

    first = await sync(engine.client, engine.settings)
    assert first.state == RunState.COMPLETED, first
    msgs = await read(engine.topic, expect=len(seeded))
    msgs += await read(engine.topic, idle=1.0)
    assert sorted(m.key for m in msgs) == sorted(seeded)
    assert {m.headers["op"] for m in msgs} == {"upsert"}
    for m in msgs:
        data = envelope(m)["data"]
        shippable = data["parentOrderMap"]["parentOrderStatus"] in (1, 2, 41)
        assert ("shipping" in data) == shippable, data["parentOrderMap"]
    assert first.pages == 2  # 120 orders: two pages of 100, read last page first
    assert state.rate_limited == 0

    again = await sync(engine.client, engine.settings)
    assert again.records.upserted == 0
    assert await read(engine.topic, idle=1.5) == []

    await asyncio.sleep(1.1)  # the changes happen in a later second than the checkpoint
    changes = state.advance(n_new=4, n_status_changes=3, n_cancellations=2)
    third = await sync(engine.client, engine.settings)
    msgs = await read(engine.topic, idle=1.5)
    expected = {*changes["new"], *changes["changed"], *changes["cancelled"]}
    assert {m.key for m in msgs} == expected
    for m in msgs:
        data = envelope(m)["data"]
        if m.key in changes["cancelled"]:
            assert data["parentOrderMap"]["parentOrderStatus"] == 3
        shippable = data["parentOrderMap"]["parentOrderStatus"] in (1, 2, 41)
        assert ("shipping" in data) == shippable  # every state of a shippable order has it
        if m.key in changes["new"]:
            assert "shipping" in data  # new and waiting for shipment
    assert third.records.upserted == len(expected)

    # an operator's re-read of the last days publishes nothing that did not change
    back = await sync(engine.client, engine.settings, params={"days_back": 7})
    assert back.records.fetched >= 120 and back.records.upserted == 0
    assert await read(engine.topic, idle=1.0) == []


async def test_status_filter_does_not_advance_the_checkpoint(sim, engine: Engine) -> None:
    state, _ = sim
    now = int(time.time())
    state.seed_orders(40, start_ts=now - 86_400, end_ts=now - 60, seed=6)
    await sync(engine.client, engine.settings)
    await read(engine.topic, idle=1.0)
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    key = f"synchub:temu-orders:{SHOP}:checkpoint"
    before = await r.get(key)
    await asyncio.sleep(1.1)
    filtered = await sync(
        engine.client, engine.settings, params={"parent_order_status": 2, "days_back": 2}
    )
    after = await r.get(key)
    await r.aclose()
    assert filtered.state == RunState.COMPLETED
    assert before is not None and after == before


async def test_shipments_confirmed_rejected_and_committed(sim, engine: Engine) -> None:
    state, _ = sim
    now = int(time.time())
    state.seed_orders(30, start_ts=now - 86_400, end_ts=now - 60, seed=8)
    paid = [
        sn
        for sn in state.order_sns()
        if state.order(sn)["parentOrderMap"]["parentOrderStatus"] == 2
    ]
    assert len(paid) >= 4
    ok, refused = paid[:3], paid[3]
    state.set_knobs(reject_shipments={refused})
    publish_shipments(
        engine.settings.kafka.brokers,
        engine.settings.temu.shipments_topic,
        [
            *((sn, shipment(state, sn, f"TRK{i}")) for i, sn in enumerate(ok)),
            (refused, shipment(state, refused, "TRK-R")),
            ("other", {**shipment(state, paid[0], "TRK-O"), "shop": "eu-9"}),  # another shop's
            ("junk", b"not json"),
        ],
    )
    result = await sync(engine.client, engine.settings)
    assert result.state == RunState.COMPLETED, result
    assert result.steps["confirm_shipments.confirmed"] == 3
    assert result.steps["confirm_shipments.rejected"] == 1
    assert result.steps["confirm_shipments.invalid"] == 1
    assert sorted(s["parentOrderSn"] for s in state.shipment_log()) == sorted(ok)
    dead = await read(engine.deadletter, idle=1.0)
    reasons = {m.key: envelope(m)["reason"] for m in dead}
    assert "TEMU rejected the shipment" in reasons[refused]
    assert "invalid shipment message" in reasons["junk"]
    await read(engine.topic, idle=0.5)

    # offsets were committed: the next run confirms nothing again
    again = await sync(engine.client, engine.settings)
    assert again.steps.get("confirm_shipments.confirmed", 0) == 0
    assert len(state.shipment_log()) == 3


async def test_shipment_survives_a_crash_between_temu_and_the_offset_commit(
    sim,
    temporal_client: Client,
    temporal_address,
    kafka_brokers,
    redis_url,
    tmp_path: Path,
) -> None:
    state, server = sim
    settings = settings_for(sim, temporal_address, kafka_brokers, redis_url, db=11)
    r = aioredis.Redis.from_url(settings.redis.url)
    await r.flushdb()
    await r.aclose()
    from infra.publisher import ensure_topics

    ensure_topics(
        kafka_brokers,
        [
            settings.temu.orders_topic,
            settings.temu.shipments_topic,
            settings.kafka.deadletter_topic,
        ],
        1,
    )
    now = int(time.time())
    state.seed_orders(6, start_ts=now - 3600, end_ts=now - 60, seed=10)
    sn = next(
        s for s in state.order_sns() if state.order(s)["parentOrderMap"]["parentOrderStatus"] == 2
    )
    publish_shipments(
        kafka_brokers, settings.temu.shipments_topic, [(sn, shipment(state, sn, "TRK-C"))]
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEMU_", "KAFKA_", "REDIS_"))},
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_TASK_QUEUE": settings.temporal.task_queue,
        "KAFKA_BROKERS": kafka_brokers,
        "KAFKA_DEADLETTER_TOPIC": settings.kafka.deadletter_topic,
        "KAFKA_TEMU_ORDERS_TOPIC": settings.temu.orders_topic,
        "KAFKA_ERP_SHIPMENTS_TOPIC": settings.temu.shipments_topic,
        "REDIS_HOST": settings.redis.url,
        "TEMU_SHOPS": json.dumps(
            [
                {
                    **shop(server).model_dump(),
                    "app_secret": SIM_APP_SECRET,
                    "access_token": SIM_ACCESS_TOKEN,
                }
            ]
        ),
    }
    log = tmp_path / "worker.log"

    def start_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    first = start_worker()
    try:
        handle = await temporal_client.start_workflow(
            SyncAllWorkflow.run,
            SyncAllInput(source="temu-orders"),
            id=f"syncall/temu-orders/crash-{uuid.uuid4().hex[:6]}",
            task_queue=settings.temporal.task_queue,
        )
        # TEMU applies the confirmation, then takes 3 s to answer: kill the worker in between
        deadline = time.monotonic() + 60
        while not any(s["parentOrderSn"] == sn for s in state.shipment_log()):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            if state.requests.get("bg.order.list.v2.get"):
                state.set_knobs(latency_ms=3000)
            await asyncio.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        state.set_knobs(latency_ms=0)
        second = start_worker()
        try:
            result = await asyncio.wait_for(handle.result(), 120)
        finally:
            second.send_signal(signal.SIGINT)
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
        state.set_knobs(latency_ms=0)
    assert result.state == RunState.COMPLETED, result
    # the message was delivered again, TEMU answered "duplicate", one shipment exists
    assert result.steps.get("confirm_shipments.duplicates") == 1
    assert [s["parentOrderSn"] for s in state.shipment_log()].count(sn) == 1


# -- real-world timing: the checkpoint never passes an order it has not read -------------


def list_calls(state: TemuState) -> int:
    return state.requests["bg.order.list.v2.get"]


async def first_pass(engine: Engine, state: TemuState, n: int, seed: int) -> list[str]:
    """Seed ``n`` older orders and sync them once; the topic is drained afterwards."""
    now = int(state.now())
    seeded = state.seed_orders(n, start_ts=now - 86_400, end_ts=now - 3_600, seed=seed)
    first = await sync(engine.client, engine.settings)
    assert first.state == RunState.COMPLETED, first
    await read(engine.topic, expect=len(seeded))
    await read(engine.topic, idle=0.5)
    return seeded


async def test_clock_skew_behind_the_worker_loses_no_change(sim, engine: Engine) -> None:
    state, _ = sim
    state.set_knobs(clock_offset_seconds=-20)  # TEMU's clock runs 20 s behind the worker's
    await first_pass(engine, state, 30, seed=31)
    # made right after the pass, stamped with TEMU's (earlier) time: before the checkpoint
    changes = state.advance(n_new=5, n_status_changes=10, n_cancellations=5)
    expected = {*changes["new"], *changes["changed"], *changes["cancelled"]}
    second = await sync(engine.client, engine.settings)
    assert second.state == RunState.COMPLETED, second
    msgs = await read(engine.topic, idle=1.5)
    assert {m.key for m in msgs} == expected
    assert len(msgs) == len(expected)  # the overlap re-read publishes nothing twice


async def test_index_lag_loses_no_change(sim, engine: Engine) -> None:
    state, _ = sim
    state.set_knobs(list_lag_seconds=60)  # TEMU's list shows a change a minute after it
    await first_pass(engine, state, 30, seed=32)
    changes = state.advance(
        n_new=4, n_status_changes=8, n_cancellations=3, now=int(state.now()) - 1
    )
    expected = {*changes["new"], *changes["changed"], *changes["cancelled"]}
    blind = await sync(engine.client, engine.settings)  # the list does not show them yet
    assert blind.records.upserted == 0
    state.set_knobs(clock_offset_seconds=70)  # 70 s pass at TEMU: its list has caught up
    caught_up = await sync(engine.client, engine.settings)
    assert caught_up.state == RunState.COMPLETED, caught_up
    msgs = await read(engine.topic, idle=1.5)
    assert {m.key for m in msgs} == expected
    assert len(msgs) == len(expected)


async def test_orders_tied_in_one_second_are_all_read(sim, engine: Engine) -> None:
    state, _ = sim
    await first_pass(engine, state, 50, seed=33)
    state.set_knobs(unstable_ties=True)  # equal updateTime: a new order on every request
    tied = state.advance(n_new=260)["new"]  # one bulk change: 260 orders in the same second
    result = await sync(engine.client, engine.settings)
    assert result.state == RunState.COMPLETED, result
    msgs = await read(engine.topic, idle=1.5)
    assert sorted({m.key for m in msgs}) == sorted(tied)
    assert len(msgs) == len(tied)
    again = await sync(engine.client, engine.settings)  # the overlap: read, nothing published
    assert again.records.fetched >= 260 and again.records.upserted == 0
    assert await read(engine.topic, idle=1.0) == []


async def test_each_pass_reads_every_list_page_once(sim, engine: Engine) -> None:
    state, _ = sim
    now = int(state.now())
    state.seed_orders(250, start_ts=now - 3 * 86_400, end_ts=now - 3_600, seed=34)
    before = list_calls(state)
    first = await sync(engine.client, engine.settings)
    assert first.state == RunState.COMPLETED, first
    assert list_calls(state) - before == 3  # 250 orders, pages of 100: page 1 once
    assert first.records.requests == 3  # the cost of a pass is in the run result
    assert first.records.fetched == 250
    await read(engine.topic, expect=250)
    await read(engine.topic, idle=0.5)
    before = list_calls(state)
    again = await sync(engine.client, engine.settings)  # only the overlap: one call
    assert again.records.requests == list_calls(state) - before == 1


def set_status(state: TemuState, sn: str, status: int) -> None:
    """A status change made at TEMU (the simulator's own step, bumping updateTime)."""
    with state._lock:
        state._set_status(sn, status, int(state.now()))


def ship_one_line(state: TemuState, sn: str) -> None:
    """The seller ships one line of a multi-line order in the seller center: 41."""
    with state._lock:
        first_line = state._orders[sn]["orderList"][0]["orderSn"]
        state._ship(sn, [first_line], int(state.now()))


async def test_every_published_state_of_a_shippable_order_carries_its_address(
    sim, engine: Engine
) -> None:
    state, _ = sim
    now = int(state.now())
    state.seed_orders(60, start_ts=now - 86_400, end_ts=now - 3_600, seed=35)
    by_status: dict[int, list[str]] = {}
    for sn in state.order_sns():
        order = state.order(sn)
        assert order is not None
        by_status.setdefault(order["parentOrderMap"]["parentOrderStatus"], []).append(sn)
    pending = by_status[1][0]
    multi_line = [
        sn for sn in by_status[2] if len((state.order(sn) or {}).get("orderList", [])) > 1
    ]
    partial = multi_line[0]
    moved = next(sn for sn in by_status[2] if sn != partial)
    first = await sync(engine.client, engine.settings)
    assert first.state == RunState.COMPLETED, first
    await read(engine.topic, expect=60)
    await read(engine.topic, idle=0.5)

    set_status(state, pending, 2)  # paid: now waiting for shipment
    ship_one_line(state, partial)  # partially shipped: the rest still has to go
    new_address = state.change_address(moved)  # the buyer moved
    second = await sync(engine.client, engine.settings)
    assert second.state == RunState.COMPLETED, second
    msgs = {m.key: envelope(m)["data"] for m in await read(engine.topic, idle=1.5)}
    assert set(msgs) == {pending, partial, moved}
    assert msgs[partial]["parentOrderMap"]["parentOrderStatus"] == 41
    for sn, data in msgs.items():
        assert data.get("shipping") == state.shipping(sn), sn
    assert msgs[moved]["shipping"] == new_address


@pytest.mark.parametrize("answer", ["reject", "success"])
async def test_a_repeated_confirmation_temu_rejects_is_reported_confirmed(
    sim, engine: Engine, answer: str
) -> None:
    state, _ = sim
    now = int(state.now())
    seed = 36 if answer == "reject" else 37  # order numbers of their own: TEMU keeps shipments
    state.seed_orders(30, start_ts=now - 86_400, end_ts=now - 3_600, seed=seed)
    paid = [
        sn
        for sn in state.order_sns()
        if state.order(sn)["parentOrderMap"]["parentOrderStatus"] == 2
    ]
    sent, cancelled = paid[0], paid[1]
    set_status(state, cancelled, 3)
    with state._lock:
        for line in state._orders[cancelled]["orderList"]:
            line["quantity"] = 0
    message = shipment(state, sent, "TRK-REPEAT")
    topic = engine.settings.temu.shipments_topic
    publish_shipments(engine.settings.kafka.brokers, topic, [(sent, message)])
    first = await sync(engine.client, engine.settings)
    assert first.steps["confirm_shipments.confirmed"] == 1

    # the worker died after TEMU confirmed, before the offset commit: the ERP's message comes
    # again, and this TEMU answers a repeat with a rejection (or a plain success)
    state.set_knobs(repeat_shipment=answer)
    refused = {**shipment(state, cancelled, "TRK-X"), "order_sns": []}  # nothing left to ship
    publish_shipments(engine.settings.kafka.brokers, topic, [(sent, message), (cancelled, refused)])
    again = await sync(engine.client, engine.settings)
    assert again.state == RunState.COMPLETED, again
    outcome = "duplicates" if answer == "reject" else "confirmed"  # a plain success: no telling
    assert again.steps.get(f"confirm_shipments.{outcome}") == 1
    assert again.steps.get("confirm_shipments.rejected", 0) == 0
    assert again.steps.get("confirm_shipments.refused") == 1
    assert [s["parentOrderSn"] for s in state.shipment_log()].count(sent) == 1
    reasons = {m.key: envelope(m)["reason"] for m in await read(engine.deadletter, idle=1.0)}
    assert sent not in reasons  # no false alarm
    assert reasons[cancelled].startswith("shipment not sent to TEMU")
    assert "TEMU rejected" not in reasons[cancelled]
    await read(engine.topic, idle=0.5)


async def test_a_slow_first_poll_still_confirms_the_waiting_shipments(
    sim, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh consumer on a busy machine may fetch nothing in its first poll: not "done"."""
    import activities.temu

    monkeypatch.setattr(activities.temu, "POLL_SECONDS", 0.001)  # the first poll comes back empty
    state, _ = sim
    now = int(state.now())
    state.seed_orders(20, start_ts=now - 86_400, end_ts=now - 3_600, seed=38)
    sn = next(
        s for s in state.order_sns() if state.order(s)["parentOrderMap"]["parentOrderStatus"] == 2
    )
    publish_shipments(
        engine.settings.kafka.brokers,
        engine.settings.temu.shipments_topic,
        [(sn, shipment(state, sn, "TRK-SLOW"))],
    )
    result = await sync(engine.client, engine.settings)
    assert result.state == RunState.COMPLETED, result
    assert result.steps.get("confirm_shipments.confirmed") == 1
    assert [s["parentOrderSn"] for s in state.shipment_log()].count(sn) == 1
    await read(engine.topic, idle=0.5)
