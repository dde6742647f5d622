"""Secrets never leave the worker: not into history, logs, Kafka or exception texts.

Every source runs end to end against its simulator, each configured with distinctive secret
values (passwords, API keys, app secrets, tokens), plus one run whose credentials the upstream
rejects, so the error path is covered too. Then the raw bytes of every workflow history of the
test's task queue (read without a codec: plaintext payloads, the strictest case), every log
record the process wrote, and every message (key, headers, value) of every topic are searched.
The positive control: the same search finds a value that does travel (a shift id).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from temporalio.client import Client

from infra.consumer import TopicReader
from infra.publisher import ensure_topics
from models.sync import RunState, SyncAllInput, SyncAllResult
from settings import TemuShop, WiwSettings
from simulators import advoware as advoware_sim
from simulators import temu as temu_sim
from simulators import wiw as wiw_sim
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from simulators.temu.dev import erp_stock_levels, publish_desired_stock
from tests.helpers import days, make_settings, running_engine
from workflows.sync_all import SyncAllWorkflow

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

ADV_API_KEY = base64.b64encode(b"adv-api-key-Q7Z3-0123456789abcdef").decode()
SECRETS = {
    "wiw developer key": "wiwdev-K3Y-X9Q2",
    "wiw password": "wiwpass-P4SS-T7M1",
    "advoware api key": ADV_API_KEY,
    "advoware password": "advpass-P4SS-R2V8",
    "temu app secret": "temusecret-S3C-L5N4",
    "temu access token": "temutoken-T0K-H6J9",
}


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, tuple[object, ThreadedServer]]]:
    wiw_state, wiw_app = wiw_sim.make_sim_app(
        developer_key=SECRETS["wiw developer key"],
        email="api@example.com",
        password=SECRETS["wiw password"],
    )
    adv_state, adv_app = advoware_sim.make_sim_app(
        api_key=ADV_API_KEY, users={"SYNC": SECRETS["advoware password"]}
    )
    temu_state, temu_app = temu_sim.make_sim_app(
        app_secret=SECRETS["temu app secret"], access_token=SECRETS["temu access token"]
    )
    servers = {
        "wiw": (wiw_state, ThreadedServer(wiw_app).start()),
        "advoware": (adv_state, ThreadedServer(adv_app).start()),
        "temu": (temu_state, ThreadedServer(temu_app).start()),
    }
    yield servers
    for _, server in servers.values():
        server.stop()


async def test_no_secret_in_history_logs_or_topics(
    sims, temporal_client: Client, temporal_address, kafka_brokers, redis_url, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    wiw_state, wiw_server = sims["wiw"]
    adv_state, adv_server = sims["advoware"]
    temu_state, temu_server = sims["temu"]
    wiw_state.seed(30, days=days(2))
    today = days(1)[0]
    adv_state.seed(3, 5, today, days(10)[-1], seed=2)
    now = int(time.time())
    temu_state.seed_orders(20, start_ts=now - 86_400, end_ts=now - 60, seed=2)
    temu_state.seed_stock(5, 2, seed=2)
    shop = TemuShop(
        id="secret-shop",
        region="us",
        app_key=temu_sim.SIM_APP_KEY,
        app_secret=SecretStr(SECRETS["temu app secret"]),
        access_token=SecretStr(SECRETS["temu access token"]),
        api_url=f"{temu_server.url}/openapi/router",
    )
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=7,
        days_ahead=1,
        advoware=local_advoware_settings(adv_state, adv_server.url, days_back=0, days_ahead=10),
        temu_shops=[shop],
    )
    settings.wiw = WiwSettings(
        api_url=wiw_server.url,
        developer_key=SecretStr(SECRETS["wiw developer key"]),
        email="api@example.com",
        password=SecretStr(SECRETS["wiw password"]),
    )
    topics = [
        settings.kafka.wiw_topic,
        settings.kafka.advoware_topic,
        settings.kafka.deadletter_topic,
        settings.temu.orders_topic,
        settings.temu.inventory_topic,
        settings.temu.shipments_topic,
        settings.temu.stock_topic,
    ]
    ensure_topics(kafka_brokers, topics, 1)
    publish_desired_stock(
        kafka_brokers, settings.temu.stock_topic, erp_stock_levels(temu_state, random.Random(2), 1)
    )

    async def run(source: str, **params) -> SyncAllResult:
        return await temporal_client.execute_workflow(
            SyncAllWorkflow.run,
            SyncAllInput(source=source, params=params),
            id=f"syncall/{source}/secrets-{uuid.uuid4().hex[:8]}",
            task_queue=settings.temporal.task_queue,
        )

    async with running_engine(temporal_client, settings):
        for source, params in (
            ("wiw", {}),
            ("advoware", {}),
            ("temu-orders", {}),
            ("temu-inventory", {"mode": "full"}),
        ):
            result = await run(source, **params)
            assert result.state == RunState.COMPLETED, (source, result)
            assert result.records.upserted > 0 or source == "temu-inventory", (source, result)
        # the error path: the upstream rejects every token, the run fails and says why
        wiw_state.set_knobs(reject_tokens=True)
        refused = await run("wiw")
        assert refused.state == RunState.FAILED and refused.failed, refused

    histories = b""
    async for wf in temporal_client.list_workflows(f"TaskQueue = '{settings.temporal.task_queue}'"):
        history = await temporal_client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        histories += b"".join(e.SerializeToString() for e in history.events)
    logs = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records
    ).encode()

    def dump(topic: str) -> bytes:
        reader = TopicReader(kafka_brokers, topic)
        try:
            msgs = reader.read(1.0, 30.0)
        finally:
            reader.close()
        return b"".join(f"{m.key}{m.headers}".encode() + (m.value or b"") for m in msgs)

    kafka = b"".join(await asyncio.gather(*(asyncio.to_thread(dump, t) for t in topics)))
    issued = {f"wiw token {i}": t for i, t in enumerate(wiw_state._tokens)}
    assert issued  # the worker logged in with the password and got tokens
    shift_id = str(wiw_state.all_shifts()[0]["id"]).encode()
    for where, blob in (("history", histories), ("logs", logs), ("kafka", kafka)):
        assert len(blob) > 1000, where
        # positive controls: what does travel is found, so the searches below can fail
        assert (shift_id if where == "kafka" else b"secret-shop") in blob, where
        for name, secret in {**SECRETS, **issued}.items():
            assert secret.encode() not in blob, f"{name} found in {where}"
    assert b"401" in histories or b"token" in histories.lower()  # the refusal is in history
