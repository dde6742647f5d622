"""A worker stopped with SIGTERM mid-run lets its in-flight pages finish and commit.

Kubernetes sends SIGTERM and waits ``terminationGracePeriodSeconds`` (60 s) before SIGKILL.
Pages that were cancelled at once were fetched and published again by the next worker; with
``WORKER_GRACEFUL_SHUTDOWN_SECONDS`` they finish. Here a real ``python worker.py`` syncs eight
WIW days (one page each, 1.5 s simulator latency) and gets SIGTERM while pages are in flight;
a second worker finishes the run. Every day's page must have been fetched exactly once and
every shift published exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from temporalio.client import Client

from infra.consumer import TopicReader
from infra.publisher import ensure_topics
from models.sync import RunState, SyncAllInput
from simulators.server import ThreadedServer
from simulators.wiw import WiwState, make_sim_app
from tests.helpers import SIM_TOKEN, days, make_settings
from tests.test_crash import start_worker
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
DAYS = 8
REDIS_DB = 14


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[WiwState, ThreadedServer]]:
    state, app = make_sim_app(timezone="UTC", static_token=SIM_TOKEN)
    server = ThreadedServer(app).start()
    yield state, server
    server.stop()


def worker_env(settings, server_url: str, temporal_address: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_TASK_QUEUE": settings.temporal.task_queue,
        "KAFKA_BROKERS": settings.kafka.brokers,
        "KAFKA_TOPIC_NAME": settings.kafka.wiw_topic,
        "KAFKA_DEADLETTER_TOPIC": settings.kafka.deadletter_topic,
        "REDIS_HOST": settings.redis.url,
        "WIW_API_URL": server_url,
        "WIW_KEY": SIM_TOKEN,
        "SYNC_DAYS_AHEAD": str(DAYS - 1),
        "SYNC_DAYS_PRIOR": "0",
        "WORKER_GRACEFUL_SHUTDOWN_SECONDS": "45",
    }


async def test_sigterm_lets_in_flight_pages_commit(
    sim,
    temporal_client: Client,
    temporal_address: str,
    kafka_brokers: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    state, server = sim
    state.seed(1600, days=days(DAYS), seed=91)
    state.set_knobs(latency_ms=1500)
    state.reset_counters()
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=REDIS_DB,
        wiw_url=server.url,
        days_ahead=DAYS - 1,
    )
    r = aioredis.Redis.from_url(settings.redis.url)
    await r.flushdb()
    await r.aclose()
    ensure_topics(kafka_brokers, [settings.kafka.wiw_topic, settings.kafka.deadletter_topic], 2)
    env = worker_env(settings, server.url, temporal_address)
    log = tmp_path / "worker.log"
    first = start_worker(env, log)
    second = None
    try:
        handle = await temporal_client.start_workflow(
            SyncAllWorkflow.run,
            SyncAllInput(source="wiw", max_concurrent=3),
            id=f"syncall/wiw/sigterm-{uuid.uuid4().hex[:6]}",
            task_queue=settings.temporal.task_queue,
        )
        for _ in range(600):  # SIGTERM while day pages are being fetched
            p = await handle.query(SyncAllWorkflow.progress)
            if p.partitions.done >= 1 and state.in_flight >= 2:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"run never got going: {p}; log: {log.read_text()[-2000:]}")
        first.send_signal(signal.SIGTERM)
        began = time.monotonic()
        code = await asyncio.to_thread(first.wait, 60)
        stopped_after = time.monotonic() - began
        assert code == 0, log.read_text()[-3000:]
        assert stopped_after < 45, stopped_after
        second = start_worker(env, log)
        result = await asyncio.wait_for(handle.result(), 120)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(30)
        state.set_knobs(latency_ms=0)

    assert result.state == RunState.COMPLETED, result
    assert result.partitions.done == DAYS
    # each day's page was fetched once: nothing in flight at SIGTERM was redone
    assert state.requests["GET /2/shifts"] == DAYS, (state.requests, log.read_text()[-3000:])
    reader = TopicReader(kafka_brokers, settings.kafka.wiw_topic)
    try:
        msgs = await asyncio.to_thread(reader.read, 2.0, 60.0, None)
    finally:
        reader.close()
    per_key = Counter(m.key for m in msgs)
    assert set(per_key) == {str(s["id"]) for s in state.all_shifts()}
    republished = sum(n - 1 for n in per_key.values())
    assert republished == 0, f"{republished} messages re-published after SIGTERM"
