"""TemuClient + RedisRateLimiter against the TEMU simulator over real HTTP and a real Redis."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from connectors.temu import (
    ORDER_NOT_FOUND,
    ParentOrder,
    TemuBusinessError,
    TemuClient,
    TemuLocalRefusal,
    TemuRateLimitError,
    TemuRejectedError,
    TemuRetryableError,
    encode_body,
    sign,
)
from infra.rate_limit import RedisRateLimiter
from models.errors import PermanentError, RetryableError
from settings import TemuShop
from simulators.server import ThreadedServer, free_port
from simulators.temu import SIM_ACCESS_TOKEN, SIM_APP_KEY, SIM_APP_SECRET, TemuState, create_app
from simulators.temu.state import DUPLICATE_REQUEST, SHIPMENT_REJECTED, TOKEN_INFO, temu_sign

REDIS_DB = 7
T0 = 1_751_800_000
"""Start of the seeded order window (July 2025); the order API never checks it against now."""
T1 = T0 + 86_400
WRONG_SECRET = "not-the-secret-4242"
OTHER_TOKEN = "other-token-9f8e7d"


@dataclass
class Sim:
    state: TemuState
    router: str


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    state = TemuState()
    server = ThreadedServer(create_app(state)).start()
    yield Sim(state, f"{server.url}/openapi/router")
    server.stop()


@pytest.fixture(autouse=True)
def fresh_sim(sim: Sim) -> None:
    sim.state.reset()


@pytest.fixture(scope="module")
def temu_redis_url(redis_url: str) -> str:
    return f"{redis_url.rstrip('/').rsplit('/', 1)[0]}/{REDIS_DB}"


@pytest.fixture
async def limiter(temu_redis_url: str) -> AsyncIterator[RedisRateLimiter]:
    redis = aioredis.Redis.from_url(temu_redis_url)
    yield RedisRateLimiter(redis)
    await redis.aclose()


@pytest.fixture(scope="module", autouse=True)
async def flushed(temu_redis_url: str) -> None:
    redis = aioredis.Redis.from_url(temu_redis_url)
    await redis.flushdb()
    await redis.aclose()


def shop(router: str, **overrides: Any) -> TemuShop:
    values: dict[str, Any] = {
        "id": "us-main",
        "region": "us",
        "app_key": SIM_APP_KEY,
        "app_secret": SecretStr(SIM_APP_SECRET),
        "access_token": SecretStr(SIM_ACCESS_TOKEN),
        "api_url": router,
    }
    values.update(overrides)
    return TemuShop(**values)


@pytest.fixture
async def client(sim: Sim, limiter: RedisRateLimiter) -> AsyncIterator[TemuClient]:
    temu = TemuClient(shop(sim.router), limiter, timeout=5.0)
    yield temu
    await temu.aclose()


async def failing(make: Any, call: Any) -> BaseException:
    """Run ``call(client)`` on a fresh client and return what it raised."""
    client = make()
    try:
        with pytest.raises(Exception) as err:
            await call(client)
    finally:
        await client.aclose()
    return err.value


def assert_no_secrets(exc: BaseException, *secrets: str) -> None:
    """Neither the error nor anything chained to it may carry a credential."""
    seen: BaseException | None = exc
    while seen is not None:
        text = f"{seen} {seen!r} {seen.args!r}"
        for secret in (SIM_APP_SECRET, SIM_ACCESS_TOKEN, WRONG_SECRET, OTHER_TOKEN, *secrets):
            assert secret not in text
        assert not hasattr(seen, "request"), "an httpx error (holding the request) is chained"
        seen = seen.__cause__ or seen.__context__


# -- signing ------------------------------------------------------------------------------

OFFICIAL = {
    "access_token": "2nifvmpyymvypwmcms5ct4uqqudrwgpmzbcnmkt1jzjkuaf3x56iixym",
    "app_key": "f9d5cc9313893a20d5aa85c654e8f503",
    "data_type": "JSON",
    "sendRequestList": [
        {
            "orderSendInfoList": [
                {
                    "quantity": 1,
                    "orderSn": "211-21905473070712792",
                    "parentOrderSn": "PO-211-21905452099192792",
                    "goodsId": 601099548666279,
                    "skuId": 17592352673534,
                }
            ],
            "carrierId": "699272611",
            "trackingNumber": "270324232756",
        }
    ],
    "sendType": 0,
    "timestamp": 1711009072,
    "type": "bg.logistics.shipment.confirm",
}
DEMO = {"app_key": "key_demo", "access_token": "tok_demo", "timestamp": 1700000000}


def test_official_vector() -> None:
    secret = "c7e0a1a63542be4de3cb5488f9fba8149e8fc290"
    assert sign(secret, OFFICIAL) == "4CCF219942D4180C6DDA3CE36C1B838F"
    assert temu_sign(secret, OFFICIAL) == "4CCF219942D4180C6DDA3CE36C1B838F"
    assert sign(secret, {**OFFICIAL, "sign": "ignored"}) == "4CCF219942D4180C6DDA3CE36C1B838F"


def test_self_made_vectors() -> None:
    orders = {
        **DEMO,
        "data_type": "JSON",
        "type": "bg.order.list.v2.get",
        "version": "V1",
        "pageNumber": 1,
        "pageSize": 100,
        "updateAtStart": 1699990000,
        "updateAtEnd": 1700000000,
    }
    stock = {
        **DEMO,
        "data_type": "JSON",
        "type": "bg.local.goods.stock.edit",
        "goodsId": 601099548666279,
        "skuStockTargetList": [{"skuId": 17592352673534, "stockTarget": 25}],
    }
    assert sign("secret_demo", orders) == "438DF0C76C7123B0301E0F7B47F71D34"
    assert sign("secret_demo", stock) == "9E21C09C239E4DFFA6E7A07083249AF7"


def test_body_is_the_signed_dict_in_its_order() -> None:
    params = {**DEMO, "type": "x", "note": "Müller & Søn", "nested": {"b": 1, "a": [True, None]}}
    raw = encode_body("s3cret", params)
    assert "Müller".encode() in raw  # ensure_ascii=False, as signed
    assert b'"nested":{"b":1,"a":[true,null]}' in raw  # nested order as given, compact
    body = json.loads(raw)
    assert list(body) == [*params, "sign"]
    assert body["sign"] == sign("s3cret", params) == temu_sign("s3cret", body)
    reordered = {**params, "nested": {"a": [True, None], "b": 1}}
    assert sign("s3cret", reordered) != body["sign"]


# -- gateway errors -----------------------------------------------------------------------


async def test_bad_secret_is_permanent_and_names_the_shop_setting(
    sim: Sim, limiter: RedisRateLimiter
) -> None:
    err = await failing(
        lambda: TemuClient(shop(sim.router, app_secret=SecretStr(WRONG_SECRET)), limiter),
        lambda c: c.token_info(),
    )
    assert isinstance(err, TemuRejectedError) and isinstance(err, PermanentError)
    assert err.code == 3000001 and err.shop_id == "us-main" and err.api_type == TOKEN_INFO
    assert "app_secret of shop us-main (TEMU_SHOPS)" in str(err)
    assert err.setting == "app_secret of shop us-main (TEMU_SHOPS)"
    assert_no_secrets(err)


async def test_token_errors_name_the_access_token(sim: Sim, limiter: RedisRateLimiter) -> None:
    sim.state.add_token("expired-token-1", SIM_APP_KEY, expires_at=time.time() - 5)
    sim.state.add_app("other-app", "other-secret")
    sim.state.add_token(OTHER_TOKEN, "other-app")
    cases = {"expired-token-1": 3000034, "never-issued-2": 3000031, OTHER_TOKEN: 3000033}
    for token, code in cases.items():
        err = await failing(
            lambda token=token: TemuClient(
                shop(sim.router, access_token=SecretStr(token)), limiter
            ),
            lambda c: c.order_detail("PO-211-1"),
        )
        assert isinstance(err, TemuRejectedError) and err.code == code
        assert "access_token of shop us-main (TEMU_SHOPS)" in str(err)
        assert_no_secrets(err, token)


async def test_unknown_app_key(sim: Sim, limiter: RedisRateLimiter) -> None:
    err = await failing(
        lambda: TemuClient(shop(sim.router, app_key="no-such-app"), limiter),
        lambda c: c.token_info(),
    )
    assert isinstance(err, TemuRejectedError) and err.code == 3000026
    assert "app_key of shop us-main (TEMU_SHOPS)" in str(err)


@pytest.mark.parametrize(("skew", "code"), [(400, 3000011), (-400, 3000012)])
async def test_skewed_clock_names_the_workers_clock(
    sim: Sim, limiter: RedisRateLimiter, skew: int, code: int
) -> None:
    err = await failing(
        lambda: TemuClient(shop(sim.router), limiter, clock=lambda: time.time() + skew),
        lambda c: c.token_info(),
    )
    assert isinstance(err, TemuRejectedError) and err.code == code
    assert "the worker's clock" in str(err)
    # 250 s off is still inside TEMU's ±300 s
    ok = TemuClient(shop(sim.router), limiter, clock=lambda: time.time() - 250)
    try:
        assert (await ok.token_info())["mallId"]
    finally:
        await ok.aclose()


async def test_missing_scope_names_the_api(sim: Sim, limiter: RedisRateLimiter) -> None:
    sim.state.add_token("narrow-token", SIM_APP_KEY, scopes={TOKEN_INFO})
    narrow = TemuClient(shop(sim.router, access_token=SecretStr("narrow-token")), limiter)
    try:
        info = await narrow.token_info()
        assert info["apiScopeList"] == [TOKEN_INFO]
        with pytest.raises(TemuRejectedError) as err:
            await narrow.list_orders(update_start=T0, update_end=T1, page_number=1)
    finally:
        await narrow.aclose()
    assert err.value.code == 3000032
    assert "lacks the API scope bg.order.list.v2.get" in str(err.value)
    assert "TEMU seller center" in str(err.value)
    assert_no_secrets(err.value, "narrow-token")


async def test_rate_limit_answer_is_retryable_and_waited_out(
    sim: Sim, limiter: RedisRateLimiter
) -> None:
    sim.state.set_knobs(qps=2)  # bucket of 2, refilled at 2/s
    eager = TemuClient(shop(sim.router), limiter, rate_per_second=1000, rate_limit_retries=0)
    try:
        await eager.token_info()
        await eager.token_info()
        with pytest.raises(TemuRateLimitError) as err:
            await eager.token_info()
    finally:
        await eager.aclose()
    assert isinstance(err.value, RetryableError) and err.value.retry_after == 1.0
    assert err.value.code == 4000004 and sim.state.rate_limited == 1

    sim.state.reset_counters()  # full bucket again
    patient = TemuClient(shop(sim.router), limiter, rate_per_second=1000)
    try:
        started = time.monotonic()
        for _ in range(3):
            await patient.token_info()
        waited = time.monotonic() - started
    finally:
        await patient.aclose()
    assert sim.state.rate_limited == 1 and waited >= 0.9  # one 4000004, one 1 s wait


async def test_system_exception_and_transport_failures_are_retryable(
    sim: Sim, client: TemuClient, limiter: RedisRateLimiter
) -> None:
    sim.state.fail_next = 1
    with pytest.raises(TemuRetryableError) as err:
        await client.token_info()
    assert err.value.code == 4000000 and not isinstance(err.value, TemuRateLimitError)
    assert isinstance(err.value, RetryableError)
    assert_no_secrets(err.value)
    assert (await client.token_info())["mallId"]  # the fault was one-off

    sim.state.latency_ms = 600
    err2 = await failing(
        lambda: TemuClient(shop(sim.router), limiter, timeout=0.2), lambda c: c.token_info()
    )
    assert isinstance(err2, TemuRetryableError) and "timed out" in str(err2)
    assert_no_secrets(err2)

    dead = f"http://127.0.0.1:{free_port()}/openapi/router"
    err3 = await failing(lambda: TemuClient(shop(dead), limiter), lambda c: c.token_info())
    assert isinstance(err3, TemuRetryableError) and "ConnectError" in str(err3)
    assert_no_secrets(err3)


async def test_order_not_found_is_a_business_error_with_its_code(client: TemuClient) -> None:
    with pytest.raises(TemuBusinessError) as err:
        await client.order_detail("PO-211-00000000000000000")
    assert err.value.code == ORDER_NOT_FOUND and isinstance(err.value, PermanentError)
    assert "Order not found" in str(err.value)


# -- orders -------------------------------------------------------------------------------


async def test_order_pagination_covers_every_order_once(sim: Sim, client: TemuClient) -> None:
    seeded = set(sim.state.seed_orders(237, start_ts=T0, end_ts=T1, seed=3))
    sim.state.seed_orders(5, start_ts=T1 + 10, end_ts=T1 + 20, seed=4, replace=False)
    seen: list[str] = []
    times: list[int] = []
    page = 1
    while True:
        result = await client.list_orders(
            update_start=T0, update_end=T1, page_number=page, page_size=50
        )
        orders = [ParentOrder.model_validate(item) for item in result["pageItems"]]
        seen += [o.key for o in orders]
        times += [o.update_time for o in orders]
        assert result["totalItemNum"] == 237
        if not orders or page * 50 >= result["totalItemNum"]:
            break
        page += 1
    assert page == 5 and len(seen) == len(set(seen)) == 237 and set(seen) == seeded
    assert times == sorted(times, reverse=True)  # newest first

    capped = await client.list_orders(update_start=T0, update_end=T1, page_number=1, page_size=500)
    assert len(capped["pageItems"]) == 100

    shipped = await client.list_orders(
        update_start=T0, update_end=T1, page_number=1, parent_order_status=4
    )
    statuses = {ParentOrder.model_validate(i).status for i in shipped["pageItems"]}
    assert statuses == {4} and 0 < shipped["totalItemNum"] < 237


async def test_orders_change_over_time_and_keep_extra_fields(sim: Sim, client: TemuClient) -> None:
    sim.state.seed_orders(40, start_ts=T0, end_ts=T1, seed=5)
    changes = sim.state.advance(n_new=3, n_status_changes=2, n_cancellations=1, now=T1 + 100)
    touched = {*changes["new"], *changes["changed"], *changes["cancelled"]}
    assert len(touched) == 6

    result = await client.list_orders(update_start=T1 + 1, update_end=T1 + 200, page_number=1)
    orders = {o.key: o for o in map(ParentOrder.model_validate, result["pageItems"])}
    assert set(orders) == touched and result["totalItemNum"] == 6
    assert all(o.update_time >= T1 + 100 for o in orders.values())
    gone = orders[changes["cancelled"][0]]
    assert gone.status == 3
    assert all(line.quantity == 0 for line in gone.orderList)
    wire = gone.wire()
    assert wire["parentOrderMap"]["regionId"] == 211  # extra fields survive the model
    assert wire["orderList"][0]["canceledQuantityBeforeShipment"] > 0


async def test_detail_and_shipping_info(sim: Sim, client: TemuClient) -> None:
    sn = sim.state.seed_orders(3, start_ts=T0, end_ts=T1, seed=6)[0]
    detail = ParentOrder.model_validate(await client.order_detail(sn))
    assert detail.key == sn and detail.orderList and detail.orderList[0].skuId
    address = await client.shipping_info(sn)
    assert {"receiptName", "mobile", "addressLine1", "postCode", "regionName1"} <= set(address)


def order_of(sim: Sim, sn: str) -> dict[str, Any]:
    order = sim.state.order(sn)
    assert order is not None
    return order


async def test_shipment_confirm_is_idempotent_and_can_be_refused(
    sim: Sim, client: TemuClient
) -> None:
    sns = sim.state.seed_orders(60, start_ts=T0, end_ts=T1, seed=7)
    waiting = [sn for sn in sns if order_of(sim, sn)["parentOrderMap"]["parentOrderStatus"] == 2]
    first, refused = waiting[0], waiting[1]
    lines = [line["orderSn"] for line in order_of(sim, first)["orderList"]]

    done = await client.confirm_shipment(
        parent_order_sn=first, order_sns=lines, carrier_id="699272611", tracking_number="1Z999"
    )
    assert done["duplicate"] is False
    order = sim.state.order(first)
    assert order is not None and order["parentOrderMap"]["parentOrderStatus"] == 4
    again = await client.confirm_shipment(
        parent_order_sn=first,
        order_sns=lines,
        carrier_id="699272611",
        tracking_number="1Z999",
        order=ParentOrder.model_validate(order),  # no detail lookup needed
    )
    assert again["duplicate"] is True
    assert [s["parentOrderSn"] for s in sim.state.shipment_log()] == [first]
    assert sim.state.requests["bg.order.detail.v2.get"] == 1

    sim.state.set_knobs(reject_shipments={refused})
    refused_line = order_of(sim, refused)["orderList"][0]["orderSn"]
    with pytest.raises(TemuBusinessError) as err:
        await client.confirm_shipment(
            parent_order_sn=refused,
            order_sns=[refused_line],
            carrier_id="1",
            tracking_number="T2",
        )
    assert err.value.code == SHIPMENT_REJECTED and "does not allow shipment" in str(err.value)
    second = waiting[2]
    everything = await client.confirm_shipment(
        parent_order_sn=second, order_sns=[], carrier_id="1", tracking_number="T4"
    )
    assert everything["duplicate"] is False
    assert sorted(sim.state.shipment_log()[-1]["orderSns"]) == sorted(
        line["orderSn"] for line in order_of(sim, second)["orderList"]
    )
    cancelled = next(
        sn for sn in sns if order_of(sim, sn)["parentOrderMap"]["parentOrderStatus"] == 3
    )
    with pytest.raises(TemuLocalRefusal, match="no line left to ship"):
        await client.confirm_shipment(
            parent_order_sn=cancelled, order_sns=[], carrier_id="1", tracking_number="T5"
        )
    with pytest.raises(TemuLocalRefusal, match="is not part of parent order"):
        await client.confirm_shipment(
            parent_order_sn=refused, order_sns=["211-0"], carrier_id="1", tracking_number="T3"
        )
    assert len(sim.state.shipment_log()) == 2


# -- stock --------------------------------------------------------------------------------


async def test_stock_query_flattens_per_sku(sim: Sim, client: TemuClient) -> None:
    skus = sim.state.seed_stock(3, 4, seed=8)
    catalogue = {s["skuId"]: s for s in sim.state.skus()}
    by_id = await client.stock_query(sku_ids=skus[:5])
    assert [row["skuId"] for row in by_id] == skus[:5]
    assert all(row == catalogue[row["skuId"]] for row in by_id)
    by_code = await client.stock_query(out_sku_sns=["SKU-00002", "SKU-00012", "SKU-99999"])
    assert [row["outSkuSn"] for row in by_code] == ["SKU-00002", "SKU-00012"]
    assert await client.stock_query(sku_ids=[]) == []


async def test_stock_edit_reports_failed_skus_and_applies_the_rest(
    sim: Sim, client: TemuClient
) -> None:
    skus = sim.state.seed_stock(2, 4, seed=9)
    goods = sim.state.skus()[0]["goodsId"]
    mine = skus[:4]
    bad = mine[2]
    before = sim.state.stock(bad)
    sim.state.set_knobs(reject_skus={bad})
    targets = {sku: 70 + i for i, sku in enumerate(mine)}

    outcome = await client.stock_edit(goods_id=goods, targets=targets, request_unique_key="k-1")

    assert set(outcome) == set(mine)
    assert outcome[bad][0] is False and "failed" in (outcome[bad][1] or "")
    assert all(outcome[s] == (True, None) for s in mine if s != bad)
    assert {s: sim.state.stock(s) for s in mine} == {
        **targets,
        bad: before,
    }
    foreign = await client.stock_edit(
        goods_id=goods, targets={skus[5]: 1}, request_unique_key="k-2"
    )
    assert foreign[skus[5]][0] is False and "does not belong" in (foreign[skus[5]][1] or "")


async def test_duplicate_request_unique_key_is_rejected(sim: Sim, client: TemuClient) -> None:
    skus = sim.state.seed_stock(1, 2, seed=10)
    goods = sim.state.skus()[0]["goodsId"]
    await client.stock_edit(goods_id=goods, targets={skus[0]: 5}, request_unique_key="same")
    with pytest.raises(TemuBusinessError) as err:
        await client.stock_edit(goods_id=goods, targets={skus[1]: 1000}, request_unique_key="same")
    assert err.value.code == DUPLICATE_REQUEST and "Duplicate requestUniqueKey" in str(err.value)
    assert sim.state.stock(skus[0]) == 5 and sim.state.stock(skus[1]) != 1000


async def test_stock_edits_become_visible_after_the_delay(sim: Sim, client: TemuClient) -> None:
    sku = sim.state.seed_stock(1, 1, seed=11)[0]
    goods = sim.state.skus()[0]["goodsId"]
    old = sim.state.stock(sku)
    sim.state.set_knobs(visibility_delay_seconds=0.8)
    await client.stock_edit(goods_id=goods, targets={sku: old + 7}, request_unique_key="v-1")
    assert (await client.stock_query(sku_ids=[sku]))[0]["stock"] == old
    assert sim.state.stock(sku) == old + 7 and sim.state.stock(sku, visible=True) == old
    await asyncio.sleep(0.9)
    assert (await client.stock_query(sku_ids=[sku]))[0]["stock"] == old + 7


# -- the shared rate limiter --------------------------------------------------------------


async def test_limiter_paces_one_process_below_the_limit(
    sim: Sim, limiter: RedisRateLimiter, temu_redis_url: str
) -> None:
    temu = TemuClient(shop(sim.router), limiter)  # 20 QPS, the default
    gate = asyncio.Semaphore(10)

    async def one() -> None:
        async with gate:
            await temu.token_info()

    try:
        await temu.token_info()  # warm the connection; the timing starts at a known slot
        sim.state.reset_counters()
        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(100)))
        elapsed = time.monotonic() - started
    finally:
        await temu.aclose()
    rate = 100 / elapsed
    arrivals = sim.state.arrivals()
    print(
        f"one process: 100 calls in {elapsed:.2f} s = {rate:.2f}/s (limit 20); at the "
        f"simulator {99 / (arrivals[-1] - arrivals[0]):.2f}/s, "
        f"max {sim.state.max_in_window(1.0)} in 1 s"
    )
    assert elapsed >= 4.5 and rate <= 20
    assert sim.state.rate_limited == 0
    assert sim.state.requests[TOKEN_INFO] == 100
    assert sim.state.max_in_window(1.0) <= 20

    redis = aioredis.Redis.from_url(temu_redis_url)
    try:
        keys = [k.decode() if isinstance(k, bytes) else k for k in await redis.keys("*")]
    finally:
        await redis.aclose()
    assert limiter.bucket_key(SIM_APP_KEY) in keys
    assert not any(SIM_APP_KEY in k for k in keys)  # the app key is hashed


async def test_limiter_is_shared_by_two_processes(sim: Sim, temu_redis_url: str) -> None:
    script = Path(__file__).with_name("temu_load.py")
    config = {
        "router": sim.router,
        "redis_url": temu_redis_url,
        "app_key": SIM_APP_KEY,
        "app_secret": SIM_APP_SECRET,
        "access_token": SIM_ACCESS_TOKEN,
        "calls": 60,
        "concurrency": 4,
        "qps": 20.0,
        # 16/s: this test proves the budget is shared (unshared, the two would send 32/s);
        # the default 5 % headroom absorbs ~50 ms of delay between one process's grant and
        # its request's arrival, and on a loaded shared 2-CPU host one process is sometimes
        # descheduled longer while the other keeps sending (seen: 22 in a window).
        "headroom": 0.2,
    }
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(config).encode() + b"\n")
            await proc.stdin.drain()
            ready = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert ready.strip() == b"ready"
        sim.state.reset_counters()
        started = time.monotonic()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outs = await asyncio.wait_for(asyncio.gather(*(proc.communicate() for proc in procs)), 60)
        elapsed = time.monotonic() - started
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    reports = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outs]
    assert all(p.returncode == 0 for p in procs)
    assert [r["errors"] for r in reports] == [[], []]
    arrivals = sim.state.arrivals()
    print(
        f"two processes: 120 calls in {elapsed:.2f} s (limit 20/s, budget 16/s); per process "
        f"{[round(r['elapsed'], 2) for r in reports]} s; at the simulator "
        f"{119 / (arrivals[-1] - arrivals[0]):.2f}/s, max {sim.state.max_in_window(1.0)} in 1 s"
    )
    assert sim.state.requests[TOKEN_INFO] == 120
    assert sim.state.rate_limited == 0
    assert sim.state.max_in_window(1.0) <= 20
    assert elapsed >= 119 / 16  # together, never faster than the shared budget


async def test_limiter_burst_then_spacing_and_bad_arguments(limiter: RedisRateLimiter) -> None:
    started = time.monotonic()
    for _ in range(5):
        await limiter.acquire("burst-test-key", 10.0, burst=5)
    assert time.monotonic() - started < 0.08  # five tokens were in the bucket
    await limiter.acquire("burst-test-key", 10.0, burst=5)
    await limiter.acquire("burst-test-key", 10.0, burst=5)
    assert time.monotonic() - started >= 0.18  # then one every 100 ms
    with pytest.raises(ValueError, match="rate_per_second"):
        await limiter.acquire("k", 0)
    with pytest.raises(ValueError, match="burst"):
        await limiter.acquire("k", 1.0, burst=0)


async def test_admin_endpoints_drive_the_same_state(sim: Sim) -> None:
    base = sim.router.rsplit("/openapi/router", 1)[0]
    async with httpx.AsyncClient(base_url=base) as http:
        knobs = (await http.post("/_admin/knobs", json={"qps": 5, "reject_skus": [1]})).json()
        assert knobs["qps"] == 5.0 and knobs["reject_skus"] == [1] and sim.state.qps == 5.0
        assert (await http.post("/_admin/knobs", json={"nope": 1})).status_code == 400
        skus = await http.post("/_admin/seed_stock", json={"n_goods": 2, "skus_per_goods": 2})
        assert len(skus.json()["skuIds"]) == 4
        body = {"n": 7, "start_ts": T0, "end_ts": T1, "seed": 1}
        assert (
            len((await http.post("/_admin/seed_orders", json=body)).json()["parentOrderSns"]) == 7
        )
        moved = (await http.post("/_admin/advance", json={"n_new": 2, "now": T1 + 5})).json()
        assert len(moved["new"]) == 2 and len(sim.state.order_sns()) == 9
        token = {"token": "admin-token", "app_key": SIM_APP_KEY, "scopes": [TOKEN_INFO]}
        assert (await http.post("/_admin/tokens", json=token)).status_code == 204
        assert sim.state.tokens["admin-token"]["scopes"] == {TOKEN_INFO}
        router = await http.post("/openapi/router", content=b"not json")
        assert router.status_code == 200 and router.json()["errorCode"] == 3000000
        stats = (await http.get("/_admin/stats")).json()
        assert stats["orders"] == 9 and stats["skus"] == 4 and stats["total_requests"] == 1
        assert SIM_APP_SECRET not in json.dumps(stats) and SIM_ACCESS_TOKEN not in json.dumps(stats)
        assert len((await http.get("/_admin/request_times")).json()["times"]) == 1
        assert len((await http.get("/_admin/stock")).json()["skus"]) == 4
        assert (await http.post("/_admin/reset_counters")).status_code == 204
        assert sim.state.arrivals() == []
