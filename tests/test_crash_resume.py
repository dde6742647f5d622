"""A worker killed in the middle of a multi-page ``sync_page`` activity resumes, not restarts.

``sync_page`` commits page after page within one activity and heartbeats the committed cursor;
a retry starts at the first page the dead attempt had not committed. Here a real
``python worker.py`` subprocess syncs two Advoware calendars of 13 pages each (300 ms per
simulated request, so one activity runs for seconds) and is killed with SIGKILL while every
employee's activity waits for a page. A second worker finishes the run. Nothing may be lost,
a key may only be repeated with its one ``event_id``, and the simulator must have served no
more than every page once plus the one page per employee that was in flight at the kill.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from temporalio.client import Client

from infra.change_store import ChangeStore
from infra.consumer import TopicReader
from infra.publisher import ensure_topics
from models.sync import RunState, SyncAllInput
from settings import AdvowareSettings
from simulators.advoware import AdvowareState, make_sim_app
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from tests.helpers import make_settings
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
ROOT = Path(__file__).resolve().parents[1]
BERLIN = ZoneInfo("Europe/Berlin")
TERMINE = "GET /api/v1/advonet/Termine"

DAYS_BACK, DAYS_AHEAD, PAGE_DAYS = 5, 120, 10
PAGES = -(-(DAYS_BACK + DAYS_AHEAD + 1) // PAGE_DAYS)  # pages of one employee's window
LATENCY_MS = 300
KILL_AFTER_PAGES = 4
"""Kill once every employee's activity has asked for at least this many pages (so at least
three are committed and a restart from page 1 would visibly re-read them)."""
REDIS_DB = 13  # 12 is test_temu_inventory's

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class TermineLog:
    """When each employee's range requests (``GET Termine?kuerzel=..&from=..``) arrived.

    Recorded by an ASGI wrapper on arrival, before the simulator's latency, from the
    server's thread; read from the test's thread.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    arrivals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def wrap(self, app: Asgi) -> Asgi:
        async def logged(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"] == "/api/v1/advonet/Termine":
                query = {
                    k.lower(): v[0] for k, v in parse_qs(scope["query_string"].decode()).items()
                }
                if "kuerzel" in query and "frnr" not in query:
                    with self.lock:
                        self.arrivals[query["kuerzel"].upper()].append(time.monotonic())
            await app(scope, receive, send)

        return logged

    def snapshot(self) -> dict[str, list[float]]:
        with self.lock:
            return {k: list(v) for k, v in self.arrivals.items()}

    def clear(self) -> None:
        with self.lock:
            self.arrivals.clear()


@dataclass
class Sim:
    state: AdvowareState
    server: ThreadedServer
    log: TermineLog


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    state, app = make_sim_app()
    log = TermineLog()
    server = ThreadedServer(log.wrap(app)).start()
    yield Sim(state, server, log)
    server.stop()


def worker_env(
    *,
    temporal_address: str,
    task_queue: str,
    kafka_brokers: str,
    topic: str,
    deadletter: str,
    redis: str,
    adv: AdvowareSettings,
) -> dict[str, str]:
    """The environment an operator would give ``python worker.py`` (nothing inherited that
    could point it at another service or enable another source)."""
    prefixes = ("TEMPORAL_", "KAFKA_", "REDIS_", "ADVOWARE_", "WIW_", "TEMU_", "SYNC_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    assert adv.api_key is not None and adv.password is not None
    assert adv.app_id and adv.kanzlei and adv.database and adv.user and adv.api_url
    return {
        **base,
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "KAFKA_BROKERS": kafka_brokers,
        "KAFKA_ADVOWARE_TOPIC": topic,
        "KAFKA_DEADLETTER_TOPIC": deadletter,
        "KAFKA_TOPIC_PARTITIONS": "2",
        "REDIS_HOST": redis,
        "ADVOWARE_APP_ID": adv.app_id,
        "ADVOWARE_API_KEY": adv.api_key.get_secret_value(),
        "ADVOWARE_KANZLEI": adv.kanzlei,
        "ADVOWARE_DATABASE": adv.database,
        "ADVOWARE_USER": adv.user,
        "ADVOWARE_PASSWORD": adv.password.get_secret_value(),
        "ADVOWARE_API_URL": adv.api_url,
        "ADVOWARE_SECURITY_URL": adv.security_url,
        "ADVOWARE_DAYS_BACK": str(DAYS_BACK),
        "ADVOWARE_DAYS_AHEAD": str(DAYS_AHEAD),
        "ADVOWARE_PAGE_DAYS": str(PAGE_DAYS),
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def mid_fetch(arrivals: dict[str, list[float]], active: list[str], now: float) -> bool:
    """Every employee has asked for ``KILL_AFTER_PAGES`` pages, fewer than all, and is now
    waiting for an answer: its last request arrived 50-250 ms ago (the simulator answers after
    300 ms). The page before it was committed before that request was sent."""
    for kuerzel in active:
        seen = arrivals.get(kuerzel, [])
        if not KILL_AFTER_PAGES <= len(seen) < PAGES:
            return False
        if not 0.05 <= now - seen[-1] <= 0.25:
            return False
    return True


async def test_killed_mid_activity_resumes_at_first_uncommitted_page(
    sim: Sim,
    temporal_client: Client,
    temporal_address: str,
    kafka_brokers: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    assert PAGES == 13
    state = sim.state
    today = datetime.now(BERLIN).date()
    state.seed(
        3,
        40,
        today - timedelta(days=DAYS_BACK - 1),
        today + timedelta(days=DAYS_AHEAD - 1),
        seed=21,
    )
    active = [e["kuerzel"] for e in state.employees() if e["aktiv"]]
    assert len(active) == 2  # SB and AI; RO is inactive
    expected: dict[str, set[str]] = {k: set() for k in active}
    for t in state.appointments():
        if int(t["frNr"]) > 0 and t["anwalt"] in expected:
            expected[t["anwalt"]].add(str(t["frNr"]))
    assert all(len(keys) == 40 for keys in expected.values())

    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=REDIS_DB,
        advoware=local_advoware_settings(
            state,
            sim.server.url,
            days_back=DAYS_BACK,
            days_ahead=DAYS_AHEAD,
            page_days=PAGE_DAYS,
        ),
    )
    topic, deadletter = settings.kafka.advoware_topic, settings.kafka.deadletter_topic
    r = aioredis.Redis.from_url(settings.redis.url)
    await r.flushdb()
    await r.aclose()
    await asyncio.to_thread(ensure_topics, kafka_brokers, [topic, deadletter], 2)
    env = worker_env(
        temporal_address=temporal_address,
        task_queue=settings.temporal.task_queue,
        kafka_brokers=kafka_brokers,
        topic=topic,
        deadletter=deadletter,
        redis=settings.redis.url,
        adv=settings.advoware,
    )
    log = tmp_path / "worker.log"

    state.reset_counters()
    sim.log.clear()
    state.set_knobs(latency_ms=LATENCY_MS)
    first = start_worker(env, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        handle = await temporal_client.start_workflow(
            SyncAllWorkflow.run,
            SyncAllInput(source="advoware"),
            id=f"syncall/advoware/crash-resume-{uuid.uuid4().hex[:6]}",
            task_queue=settings.temporal.task_queue,
        )
        deadline = time.monotonic() + 45
        while True:
            arrivals = sim.log.snapshot()
            if mid_fetch(arrivals, active, time.monotonic()):
                break
            if first.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"never caught every employee mid-fetch: {sim.log.snapshot()}; "
                    f"worker log: {log.read_text()[-3000:]}"
                )
            await asyncio.sleep(0.01)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        before_kill = state.requests[TERMINE]
        asked = {k: len(v) for k, v in arrivals.items()}
        assert sum(asked.values()) == before_kill, (asked, before_kill)
        in_flight = len(active)  # every employee was waiting for a page at the kill

        second = start_worker(env, log)
        result = await asyncio.wait_for(handle.result(), 120)
    finally:
        stop_worker(first, signal.SIGKILL)
        if second is not None:
            stop_worker(second, signal.SIGINT)
        state.set_knobs(latency_ms=0)

    assert result.state == RunState.COMPLETED, (result, log.read_text()[-3000:])
    assert result.partitions.done == len(active) and result.partitions.failed == 0

    # resumed, not restarted: every page served once, plus the page in flight at the kill
    total = state.requests[TERMINE]
    per_employee = {k: len(v) for k, v in sim.log.snapshot().items()}
    resume_bound = PAGES * len(active) + in_flight
    restart_total = before_kill + PAGES * len(active)  # attempt 2 re-reading from page 1
    print(
        f"Termine requests: {before_kill} before the kill {asked}, {total} in all "
        f"{per_employee}; resume bound {resume_bound}, from-scratch restart {restart_total}"
    )
    assert total == sum(per_employee.values())
    assert total <= resume_bound, (
        f"{total} Termine requests > {resume_bound}: the retry re-read pages committed before "
        f"the kill (asked before the kill {asked}, in all {per_employee}); did the heartbeated "
        "cursor reach the Temporal server before the kill?"
    )
    assert all(n <= PAGES + 1 for n in per_employee.values()), per_employee
    assert total < restart_total
    # the pages committed before the kill, which a restart would have read again
    assert restart_total - resume_bound == before_kill - in_flight >= 3 * len(active)

    # nothing lost, and a key repeated (the page in flight) only with its one event id
    reader = TopicReader(kafka_brokers, topic)
    try:
        msgs = await asyncio.to_thread(reader.read, 2.0, 60.0, None)
    finally:
        reader.close()
    published = {m.key for m in msgs}
    assert published == set().union(*expected.values())
    events: dict[str, set[str]] = defaultdict(set)
    for m in msgs:
        events[m.key].add(m.headers["event_id"])
    assert all(len(e) == 1 for e in events.values()), {
        k: e for k, e in events.items() if len(e) > 1
    }
    assert {m.headers["op"] for m in msgs} == {"upsert"}
    dlq = TopicReader(kafka_brokers, deadletter)
    try:
        assert await asyncio.to_thread(dlq.read, 0.5, 10.0, None) == []
    finally:
        dlq.close()

    store = ChangeStore.from_url(settings.redis.url, settings.redis.expire_cache)
    try:
        for kuerzel in active:
            cached = await store.cached("advoware", kuerzel)
            assert set(cached) == expected[kuerzel], kuerzel
    finally:
        await store.aclose()
