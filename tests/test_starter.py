"""starter.py as an operator runs it: a subprocess with settings in its environment.

The starter talks to the session's Temporal dev server; an in-process worker (same task queue
and topics as the environment the subprocess gets) runs the syncs against a When I Work
simulator over real HTTP, publishing to the session's tansu and keeping state in valkey.
"""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import timedelta

import pytest
import redis.asyncio as aioredis
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError

from connectors import REGISTRY
from models.sync import RunState, SyncAllResult
from simulators.server import free_port
from simulators.wiw import WiwState
from tests.helpers import SIM_TOKEN, Engine, days, read
from tests.starter_env import ROOT, settings_env, started_id, starter

pytestmark = pytest.mark.asyncio(loop_scope="session")
pytest_plugins = ("tests.starter_fixtures",)

REDIS_DB = 5


async def _flush(engine: Engine) -> None:
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    try:
        await r.flushdb()
    finally:
        await r.aclose()


async def test_env_reaches_the_same_settings_as_the_worker(engine: Engine) -> None:
    # The subprocess must see the worker's queue and topics, or nothing would ever run.
    env = settings_env(engine.settings)
    code = (
        "from settings import load_settings; s = load_settings(); "
        "print(s.temporal.task_queue, s.kafka.wiw_topic, s.kafka.deadletter_topic, s.redis.url)"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    s = engine.settings
    assert out.decode().split() == [
        s.temporal.task_queue,
        s.kafka.wiw_topic,
        s.kafka.deadletter_topic,
        s.redis.url,
    ]
    assert s.redis.url.endswith(f"/{REDIS_DB}")


async def test_run_wait_prints_summary(
    engine: Engine, env: dict[str, str], state: WiwState
) -> None:
    await _flush(engine)
    await read(engine.topic, idle=0.5)  # earlier tests' messages, if any
    ids = state.seed(24, days=days(2), seed=21)

    ran = await starter(env, "run", "wiw", "--wait")

    assert ran.code == 0, str(ran)
    wid = started_id(ran)
    assert wid.startswith("syncall/wiw/")
    lines = ran.out.strip().splitlines()
    summary = next((line for line in lines if line.startswith("wiw COMPLETED")), "")
    assert summary.startswith("wiw COMPLETED: partitions 2/2 done"), str(ran)
    assert lines[-1].strip() == "pages 2 (0 proven unchanged by digest)", str(ran)
    assert f"fetched {len(ids)}," in summary and f"upserted {len(ids)}," in summary, summary
    assert "failed" not in summary.split("|")[1], summary
    msgs = await read(engine.topic, expect=len(ids))
    assert sorted(m.key for m in msgs) == sorted(str(i) for i in ids)
    result = await engine.client.get_workflow_handle(wid, result_type=SyncAllResult).result()
    assert result.state == RunState.COMPLETED and result.records.upserted == len(ids)


async def test_bad_input_exits_2_before_starting_anything(
    engine: Engine, env: dict[str, str], state: WiwState
) -> None:
    # Temporal unreachable: a starter that connected (or started a run) before validating
    # would exit 1 ("cannot reach Temporal"), not 2.
    nowhere = {**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    cases: list[tuple[list[str], dict[str, str], list[str]]] = [
        (["run", "wiw", "--param", "nope=1"], nowhere, ["nope", "invalid parameters for wiw"]),
        (["run", "wiw", "--param", "days_ahead=-1"], nowhere, ["days_ahead"]),
        (["run", "wiw", "--param", "days_ahead"], nowhere, ["days_ahead", "key=value"]),
        (["run", "wiw", "--max-concurrent", "0"], nowhere, ["--max-concurrent"]),
        (
            ["run", "unknown"],
            nowhere,
            [
                "unknown source 'unknown'",
                f"known sources: {', '.join(sorted(REGISTRY))}",
            ],
        ),
        (["run", "wiw"], {**nowhere, "SYNC_DAYS_AHEAD": "abc"}, ["SYNC_DAYS_AHEAD", "'abc'"]),
        (["schedules", "pause"], nowhere, ["needs a schedule id"]),
    ]
    before = state.requests.total()
    results = await asyncio.gather(*(starter(e, *args) for args, e, _ in cases))
    for (args, _, expected), ran in zip(cases, results, strict=True):
        assert ran.code == 2, f"{args}: {ran}"
        assert ran.out == "", f"{args}: {ran}"
        for text in expected:
            assert text in ran.err, f"{args}: {ran}"
        assert "Traceback" not in ran.err, f"{args}: {ran}"
    assert state.requests.total() == before  # nothing reached the upstream either


async def test_status_and_stop(engine: Engine, env: dict[str, str], state: WiwState) -> None:
    state.seed(30, days=days(30), seed=4)
    state.set_knobs(latency_ms=300)
    ran = await starter(env, "run", "wiw", "--param", "days_ahead=59", "--max-concurrent", "1")
    assert ran.code == 0, str(ran)
    wid = started_id(ran)
    handle = engine.client.get_workflow_handle(wid, result_type=SyncAllResult)

    status = await starter(env, "status", wid)
    assert status.code == 0, str(status)
    assert f"{wid}: RUNNING" in status.out, str(status)
    assert re.search(r"wiw RUNNING: partitions \d+/60 done", status.out), str(status)

    stop = await starter(env, "stop", wid)
    assert stop.code == 0 and f"sent stop to {wid}" in stop.out, str(stop)
    result = await asyncio.wait_for(handle.result(), 30)
    assert result.state == RunState.STOPPED
    assert 0 < result.partitions.pending and result.partitions.done < 60

    after = await starter(env, "status", wid)
    assert f"{wid}: COMPLETED" in after.out, str(after)
    assert "wiw STOPPED: partitions" in after.out, str(after)


async def test_failed_partition_exits_1_with_reason(
    engine: Engine, env: dict[str, str], state: WiwState
) -> None:
    # A revoked token is a permanent failure: no retries, so the test is fast. (Transient
    # 5xx such as error_rate=1.0 fail the same way after UPSTREAM_RETRY's ~31 s of backoff.)
    state.seed(6, days=days(2), seed=8)
    state.set_knobs(reject_tokens=True)
    ran = await starter(env, "run", "wiw", "--wait")
    assert ran.code == 1, str(ran)
    assert "wiw FAILED: partitions 0/2 done" in ran.out, str(ran)
    for day in days(2):
        line = next(
            (x for x in ran.out.splitlines() if x.startswith(f"  failed {day.isoformat()}:")), ""
        )
        assert "HTTP 401" in line and "WIW_KEY" in line, str(ran)
    assert SIM_TOKEN not in ran.out + ran.err


@pytest.mark.slow
async def test_partition_failing_after_retries_exits_1(
    engine: Engine, env: dict[str, str], state: WiwState
) -> None:
    # Every request answers 500: the page is retried with UPSTREAM_RETRY's backoff
    # (1+2+4+8+16 s), then the partition fails and says why. One partition keeps it to one
    # backoff sequence (~31 s, the slowest test here).
    day = days(1)[0].isoformat()
    state.seed(4, days=days(1), seed=2)
    state.set_knobs(error_rate=1.0)
    began = asyncio.get_running_loop().time()
    ran = await starter(env, "run", "wiw", "--partition", day, "--wait", limit=150)
    seconds = asyncio.get_running_loop().time() - began
    assert ran.code == 1, str(ran)
    assert "wiw FAILED: partitions 0/1 done" in ran.out, str(ran)
    line = next((x for x in ran.out.splitlines() if x.startswith(f"  failed {day}:")), "")
    assert "HTTP 500" in line and "Internal error (simulated)" in line, str(ran)
    assert state.statuses[500] >= 2  # it was retried, not given up on at once
    assert seconds > 10, seconds


async def test_schedules_apply_pause_list(
    engine: Engine, env: dict[str, str], temporal_client: Client
) -> None:
    sid = "synchub-wiw"
    # a day's interval, and paused right away: it must not fire into the other tests
    env = {**env, "SYNC_SLEEP_PERIOD_SECONDS": "86400"}
    try:
        applied = await starter(env, "schedules", "apply")
        assert applied.code == 0 and f"applied {sid}" in applied.out, str(applied)
        paused = await starter(env, "schedules", "pause", sid)
        assert paused.code == 0 and f"paused {sid}" in paused.out, str(paused)

        listed = await starter(env, "schedules", "list")
        assert listed.code == 0, str(listed)
        rows = [line.split("\t") for line in listed.out.splitlines()]
        assert [sid, "paused", "paused from starter.py"] in rows, str(listed)

        desc = await temporal_client.get_schedule_handle(sid).describe()
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.task_queue == engine.settings.temporal.task_queue
        assert desc.schedule.spec.intervals[0].every == timedelta(days=1)
        assert desc.schedule.state.paused

        # applying again keeps the operator's pause
        again = await starter(env, "schedules", "apply")
        assert again.code == 0, str(again)
        assert (await temporal_client.get_schedule_handle(sid).describe()).schedule.state.paused
    finally:
        try:
            await temporal_client.get_schedule_handle(sid).delete()
        except RPCError:
            pass


async def test_unknown_workflow_is_reported(env: dict[str, str]) -> None:
    ran = await starter(env, "status", "syncall/wiw/no-such-run")
    assert ran.code == 1 and "Temporal said:" in ran.err and "Traceback" not in ran.err, str(ran)
