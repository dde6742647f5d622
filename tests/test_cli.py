"""starter.py's commands end to end: ``watch``, ``status`` of failed runs, ``run --dry-run``.

Like ``tests/test_starter.py``: the starter is a subprocess with settings in its environment,
an in-process worker runs the syncs against a When I Work simulator over real HTTP, publishing
to the session's tansu and keeping state in valkey.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import uuid

import pytest
import redis.asyncio as aioredis
from confluent_kafka import Producer

from infra.kafka_reach import topic_names
from infra.publisher import ensure_topics
from models.sync import RunState, SyncAllResult
from simulators.wiw import WiwState
from tests.helpers import SIM_TOKEN, Engine, days, read
from tests.starter_env import ROOT, started_id, starter

pytestmark = pytest.mark.asyncio(loop_scope="session")
pytest_plugins = ("tests.starter_fixtures",)

REDIS_DB = 4


def produce(brokers: str, topic: str, messages: list[tuple[str, bytes | None, str]]) -> None:
    """(key, value, op) messages with synchub's headers, on a topic created for them."""
    ensure_topics(brokers, [topic], 1)
    producer = Producer({"bootstrap.servers": brokers, "acks": "all"})
    for i, (key, value, op) in enumerate(messages):
        headers: list[tuple[str, str | bytes | None]] = [
            ("event_id", f"ev-{i}".encode()),
            ("op", op.encode()),
            ("source", b"wiw"),
        ]
        producer.produce(topic, key=key.encode(), value=value, headers=headers)
    producer.flush(10)


def envelope_of(i: int) -> dict[str, object]:
    """An envelope long enough that a cut-off display would hide ``data``."""
    return {
        "event_id": f"ev-{i}",
        "source": "wiw",
        "partition": "2026-11-24",
        "key": str(i),
        "op": "upsert",
        "fingerprint": "f" * 64,
        "observed_at": "2026-11-24T10:00:00Z",
        "data": {"id": i, "notes": "ü" * 40, "start_time": "Mon, 24 Nov 2026 09:00:00 +0000"},
    }


async def watch_lines(env: dict[str, str], *args: str, count: int) -> list[str]:
    """The first ``count`` lines ``watch`` prints; then it is stopped (it follows forever)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "starter.py",
        "watch",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while len(lines) < count:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, f"watch ended after {lines}: {(await proc.stderr.read()).decode()}"  # type: ignore[union-attr]
            lines.append(line.decode().rstrip("\n"))
    finally:
        proc.terminate()
        await proc.wait()
    return lines


async def test_watch_prints_key_op_event_id_and_the_whole_decoded_value(
    engine: Engine, env: dict[str, str]
) -> None:
    topic = f"watch.{uuid.uuid4().hex[:8]}"
    values = [envelope_of(i) for i in range(3)]
    messages: list[tuple[str, bytes | None, str]] = [
        (str(i), json.dumps(v).encode(), "upsert") for i, v in enumerate(values)
    ]
    messages.append(("2", None, "delete"))  # a Kafka tombstone
    await asyncio.to_thread(produce, engine.settings.kafka.brokers, topic, messages)

    lines = await watch_lines(env, topic, count=4)
    for i, line in enumerate(lines[:3]):
        key, op, event_id, value = line.split("\t")
        assert (key, op, event_id) == (str(i), "upsert", f"ev-{i}"), line
        assert json.loads(value) == values[i], line
    assert lines[3].split("\t") == ["2", "delete", "ev-3", "null"]

    raw = await watch_lines(env, topic, "--raw", count=1)
    assert raw[0].split("\t")[3] == repr(messages[0][1]), raw


async def test_watch_says_when_the_topic_does_not_exist(
    engine: Engine, env: dict[str, str]
) -> None:
    topic = f"watch.missing.{uuid.uuid4().hex[:8]}"
    ran = await starter(env, "watch", topic, limit=30)
    assert ran.code == 1, str(ran)
    assert f"Kafka topic {topic!r} does not exist" in ran.err, str(ran)
    assert engine.settings.kafka.wiw_topic in ran.err, str(ran)  # lists those that do
    assert "Traceback" not in ran.err, str(ran)
    # asking did not create it
    assert topic not in await asyncio.to_thread(topic_names, engine.settings.kafka.brokers)


async def test_watch_into_a_closed_pipe_ends_quietly(engine: Engine, env: dict[str, str]) -> None:
    # More than a pipe buffer of output, so watch is still writing when the reader goes away.
    topic = f"watch.pipe.{uuid.uuid4().hex[:8]}"
    body = json.dumps(envelope_of(0)).encode()
    await asyncio.to_thread(
        produce,
        engine.settings.kafka.brokers,
        topic,
        [(str(i), body, "upsert") for i in range(600)],
    )

    def head_one() -> tuple[int, str, str]:
        proc = subprocess.Popen(
            [sys.executable, "starter.py", "watch", topic],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline().decode()
        proc.stdout.close()  # what `| head -n 1` does after its line
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        return code, first, proc.stderr.read().decode()

    code, first, err = await asyncio.to_thread(head_one)
    assert first.startswith("0\tupsert\tev-0\t"), first
    assert code == 0, err
    assert err == "", err


async def test_status_of_a_failed_run_exits_1_with_the_reasons(
    engine: Engine, env: dict[str, str], state: WiwState
) -> None:
    state.seed(6, days=days(2), seed=8)
    state.set_knobs(reject_tokens=True)  # permanent: the partitions fail at once
    ran = await starter(env, "run", "wiw")
    assert ran.code == 0, str(ran)
    wid = started_id(ran)
    handle = engine.client.get_workflow_handle(wid, result_type=SyncAllResult)
    assert (await asyncio.wait_for(handle.result(), 30)).state == RunState.FAILED

    status = await starter(env, "status", wid)
    assert status.code == 1, str(status)
    assert "wiw FAILED: partitions 0/2 done" in status.out, str(status)
    for day in days(2):
        line = next(
            (x for x in status.out.splitlines() if x.startswith(f"  failed {day.isoformat()}:")),
            "",
        )
        assert "HTTP 401" in line and "WIW_KEY" in line, str(status)
    assert SIM_TOKEN not in status.out + status.err


async def _redis_state(engine: Engine) -> dict[bytes, bytes | None]:
    """Every key of the test's Redis db with its serialized value (TTLs aside)."""
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    try:
        return {k: await r.dump(k) async for k in r.scan_iter(count=1000)}
    finally:
        await r.aclose()


def _would(out: str, what: str) -> tuple[int, list[str]]:
    match = re.search(rf"^  would {what} (\d+)(?:: (.*))?$", out, re.M)
    assert match, out
    keys = [k for k in (match.group(2) or "").split(", ") if k and k != "..."]
    return int(match.group(1)), keys


async def test_dry_run_publishes_and_commits_nothing_and_reports_what_a_run_would_do(
    engine: Engine, env: dict[str, str], state: WiwState
) -> None:
    r = aioredis.Redis.from_url(engine.settings.redis.url)
    await r.flushdb()
    await r.aclose()
    await read(engine.topic, idle=0.5)  # earlier tests' messages, if any
    ids = state.seed(12, days=days(2), seed=31)

    dry = await starter(env, "run", "wiw", "--dry-run", "--wait")
    assert dry.code == 0, str(dry)
    assert "dry run: nothing was published or committed" in dry.out, str(dry)
    count, keys = _would(dry.out, "upsert")
    assert count == len(ids) and set(keys) <= {str(i) for i in ids} and len(keys) == 10, dry.out
    assert _would(dry.out, "delete") == (0, [])
    assert await read(engine.topic, idle=1.0) == []
    assert await _redis_state(engine) == {}
    result = await engine.client.get_workflow_handle(
        started_id(dry), result_type=SyncAllResult
    ).result()
    assert result.dry_run and result.records.upserted == len(ids)

    first = await starter(env, "run", "wiw", "--wait")
    assert first.code == 0, str(first)
    assert len(await read(engine.topic, expect=len(ids))) == len(ids)

    # changes of every kind: two edited, one deleted, one malformed
    changed, deleted, broken = ids[:2], ids[2], ids[3]
    for i in changed:
        state.change(i, notes="dry-run edit")
    state.delete(deleted)
    state.set_knobs(malformed_ids={broken})
    before = await _redis_state(engine)

    dry = await starter(env, "run", "wiw", "--dry-run", "--wait")
    assert dry.code == 0, str(dry)
    assert await read(engine.topic, idle=1.0) == []
    assert await read(engine.deadletter, idle=0.5) == []
    assert await _redis_state(engine) == before
    would = {w: _would(dry.out, w) for w in ("upsert", "delete", "dead-letter")}
    assert would["upsert"][0] == 2 and sorted(would["upsert"][1]) == sorted(map(str, changed))
    assert would["delete"] == (1, [str(deleted)]), dry.out
    assert would["dead-letter"] == (1, [str(broken)]), dry.out

    # the real run then does exactly what the dry run said
    real = await starter(env, "run", "wiw", "--wait")
    assert real.code == 0, str(real)
    published = await read(engine.topic, idle=1.5)
    upserts = sorted({m.key for m in published if m.headers.get("op") == "upsert"})
    deletes = sorted({m.key for m in published if m.headers.get("op") == "delete"})
    assert upserts == sorted(would["upsert"][1]) and deletes == would["delete"][1]
    assert [m.key for m in await read(engine.deadletter, idle=0.5)] == [str(broken)]


def _in_terminal(env: dict[str, str], *args: str, limit: float = 90.0) -> tuple[int, str]:
    """``python starter.py ARGS`` with a pseudo-terminal as its stdout: exit code, output."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "starter.py", *args],
        cwd=ROOT,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "120"},
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


async def test_run_wait_in_a_terminal_shows_progress_bars(
    engine: Engine, env: dict[str, str], state: WiwState
) -> None:
    state.seed(8, days=days(2), seed=12)
    code, out = await asyncio.to_thread(_in_terminal, env, "run", "wiw", "--wait")
    assert code == 0, out
    assert "\x1b[" in out, out[-2000:]  # drawn with terminal control sequences
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert re.search(r"partitions ━+ 2/2 ", text), text[-2000:]  # a bar, done/total
    assert re.search(r"records +━+ 8/\? [\d,]+ records/s  upserted 8", text), text[-2000:]
    assert "wiw COMPLETED: partitions 2/2 done" in text, text[-2000:]  # the summary stays


async def test_run_wait_without_a_terminal_prints_plain_lines(
    engine: Engine, env: dict[str, str], state: WiwState
) -> None:
    state.seed(8, days=days(2), seed=12)
    ran = await starter(env, "run", "wiw", "--wait")
    assert ran.code == 0, str(ran)
    assert "\x1b[" not in ran.out and "━" not in ran.out, ran.out
    assert "wiw COMPLETED: partitions 2/2 done" in ran.out, ran.out
