"""A worker process killed in the middle of a run: a new worker finishes it, nothing is lost.

The worker runs as a real ``python worker.py`` subprocess configured by environment, exactly
as an operator runs it, and is killed with SIGKILL (no cleanup, no graceful shutdown).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from temporalio.client import Client

from infra.change_store import ChangeStore
from infra.consumer import TopicReader
from infra.publisher import ensure_topics
from models.sync import RunState, SyncAllInput
from simulators.server import ThreadedServer
from simulators.wiw import WiwState, make_sim_app
from tests.helpers import SIM_TOKEN, days, make_settings
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[WiwState, ThreadedServer]]:
    state, app = make_sim_app(timezone="UTC", static_token=SIM_TOKEN)
    server = ThreadedServer(app).start()
    yield state, server
    server.stop()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def test_killed_worker_resumes_without_loss(
    sim,
    temporal_client: Client,
    temporal_address: str,
    kafka_brokers: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    state, server = sim
    window = days(8)
    state.seed(800, days=window, seed=77)
    state.set_knobs(latency_ms=600)
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=3,
        wiw_url=server.url,
        days_ahead=7,
    )
    r = aioredis.Redis.from_url(settings.redis.url)
    await r.flushdb()
    await r.aclose()
    ensure_topics(kafka_brokers, [settings.kafka.wiw_topic, settings.kafka.deadletter_topic], 2)
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_TASK_QUEUE": settings.temporal.task_queue,
        "KAFKA_BROKERS": kafka_brokers,
        "KAFKA_TOPIC_NAME": settings.kafka.wiw_topic,
        "KAFKA_DEADLETTER_TOPIC": settings.kafka.deadletter_topic,
        "REDIS_HOST": settings.redis.url,
        "WIW_API_URL": server.url,
        "WIW_KEY": SIM_TOKEN,
        "SYNC_DAYS_AHEAD": "7",
        "SYNC_DAYS_PRIOR": "0",
    }
    log = tmp_path / "worker.log"
    first = start_worker(env, log)
    try:
        handle = await temporal_client.start_workflow(
            SyncAllWorkflow.run,
            SyncAllInput(source="wiw", max_concurrent=2),
            id=f"syncall/wiw/crash-{uuid.uuid4().hex[:6]}",
            task_queue=settings.temporal.task_queue,
        )
        # kill once some partitions are done and others are mid-page
        for _ in range(600):
            p = await handle.query(SyncAllWorkflow.progress)
            if p.partitions.done >= 2 and p.partitions.running > 0:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"run never got going: {p}; log: {log.read_text()[-2000:]}")
        before_kill = p.partitions.done
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        assert before_kill < 8

        second = start_worker(env, log)
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
    assert result.partitions.done == 8 and result.partitions.failed == 0

    reader = TopicReader(kafka_brokers, settings.kafka.wiw_topic)
    try:
        msgs = await asyncio.to_thread(reader.read, 2.0, 60.0, None)
    finally:
        reader.close()
    live = state.all_shifts()
    assert {m.key for m in msgs} == {str(s["id"]) for s in live}  # every change at least once
    events: dict[str, set[str]] = defaultdict(set)
    for m in msgs:
        events[m.key].add(m.headers["event_id"])
    assert all(len(e) == 1 for e in events.values())  # duplicates carry the same event_id
    assert {m.headers["op"] for m in msgs} == {"upsert"}

    store = ChangeStore.from_url(settings.redis.url, settings.redis.expire_cache)
    try:
        for day in window:
            cached = await store.cached("wiw", day.isoformat())
            upstream = {
                str(s["id"])
                for s in live
                if parsedate_to_datetime(s["start_time"]).astimezone(UTC).date() == day
            }
            assert set(cached) == upstream, day
    finally:
        await store.aclose()
