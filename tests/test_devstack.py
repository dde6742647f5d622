"""The dev stack starts real services that answer, fails clearly, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from devstack.services import (
    REDIS,
    DevStack,
    ServiceError,
    ServiceProcess,
    ensure_topics,
    temporal_binary,
)
from simulators.server import PortInUseError, free_port


def _alive(pid: int) -> bool:
    """A process exists and is not a zombie (an orphan killed but not yet reaped by init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _group_alive(pgid: int) -> bool:
    """Any non-zombie process is left in process group ``pgid``."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---- the session stack's services answer --------------------------------------------------


async def test_temporal_has_synchub_search_attributes(
    temporal_client: Client, temporal_address: str
) -> None:
    resp = await temporal_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    for name in ("SynchubSource", "SynchubState"):
        assert resp.custom_attributes.get(name) == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD

    # What an operator types: the query is accepted because the attribute is registered.
    cli = await asyncio.create_subprocess_exec(
        temporal_binary(),
        "workflow",
        "list",
        "--address",
        temporal_address,
        "--query",
        "SynchubSource='wiw'",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(cli.communicate(), timeout=30)
    assert cli.returncode == 0, stderr.decode()


def test_kafka_round_trip(kafka_brokers: str) -> None:
    topic = _unique("devstack.roundtrip")
    assert ensure_topics(kafka_brokers, [topic], partitions=1) == [topic]

    delivered: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": kafka_brokers, "acks": "all"})
    producer.produce(
        topic,
        key=b"k1",
        value=b'{"hello": "tansu"}',
        headers=[("event_id", b"e1")],
        on_delivery=lambda err, _msg: delivered.append(err),
    )
    assert producer.flush(10) == 0
    assert delivered == [None]

    # assign() instead of subscribe(): no consumer-group join, which tansu holds for seconds.
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_brokers,
            "group.id": _unique("devstack-test"),
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        msg: Message | None = None
        deadline = time.monotonic() + 15
        while msg is None and time.monotonic() < deadline:
            polled = consumer.poll(0.5)
            if polled is not None and polled.error() is None:
                msg = polled
    finally:
        consumer.close()
    assert msg is not None, "the produced message was not consumed"
    assert msg.key() == b"k1"
    assert msg.value() == b'{"hello": "tansu"}'
    assert msg.headers() == [("event_id", b"e1")]


def test_topics_get_the_requested_partition_count(kafka_brokers: str) -> None:
    topics = [_unique("devstack.three"), _unique("devstack.three")]
    assert sorted(ensure_topics(kafka_brokers, topics, partitions=3)) == sorted(topics)
    # Idempotent: existing topics are left alone, whatever count is asked for now.
    assert ensure_topics(kafka_brokers, topics, partitions=5) == []

    metadata = AdminClient({"bootstrap.servers": kafka_brokers}).list_topics(timeout=10)
    assert {t: len(metadata.topics[t].partitions) for t in topics} == {t: 3 for t in topics}


def test_redis_set_get(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        key = _unique("devstack:test")
        assert client.set(key, "value", ex=60)
        assert client.get(key) == b"value"
    finally:
        client.close()


# ---- failures are clear, stops are complete ---------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("port_arg", "setting"),
    [
        ("temporal_port", "SYNCHUB_TEMPORAL_PORT"),
        ("ui_port", "SYNCHUB_UI_PORT"),
        ("kafka_port", "SYNCHUB_KAFKA_PORT"),
        ("redis_port", "SYNCHUB_REDIS_PORT"),
    ],
)
def test_taken_port_names_the_setting_and_starts_nothing(
    tmp_path: Path, taken_port: int, port_arg: str, setting: str
) -> None:
    ports: dict[str, Any] = {"temporal_port": 0, "ui_port": 0, "kafka_port": 0, "redis_port": 0}
    ports[port_arg] = taken_port
    dev = DevStack(state_dir=tmp_path / "state", **ports)

    with pytest.raises(PortInUseError, match=setting) as failure:
        dev.start()

    assert str(taken_port) in str(failure.value)
    assert dev.processes == {}
    assert not (tmp_path / "state").exists()
    free_ones = [p for name, p in ports.items() if name != port_arg]
    assert not any(_listening(p) for p in free_ones)


def test_full_stack_with_ui_stops_without_leftovers(tmp_path: Path) -> None:
    dev = DevStack(temporal_port=0, ui_port=0, kafka_port=0, redis_port=0, state_dir=tmp_path)
    with dev:
        assert dev.startup_seconds is not None and dev.startup_seconds < 30
        assert dev.ui_url is not None
        with urllib.request.urlopen(dev.ui_url, timeout=5) as resp:
            assert resp.status == 200
        pids = {name: proc.pid for name, proc in dev.processes.items()}
        assert set(pids) == {"temporal", "kafka", "redis"}
        assert all(pid is not None and _alive(pid) for pid in pids.values())
        ports = [dev.temporal_port, dev.ui_port, dev.kafka_port, dev.redis_port]

    assert dev.processes == {}
    for name, pid in pids.items():
        assert pid is not None
        assert not _alive(pid), f"{name} (pid {pid}) is still running"
        assert not _group_alive(pid), f"a process of {name}'s group is still running"
    assert not any(_listening(p) for p in ports)
    dev.stop()  # idempotent


async def test_temporal_history_survives_restart(tmp_path: Path) -> None:
    dev = DevStack(temporal_port=0, state_dir=tmp_path, headless=True, services=["temporal"])
    workflow_id = _unique("devstack-restart")
    source = SearchAttributeKey.for_keyword("SynchubSource")
    await asyncio.to_thread(dev.start)
    try:
        client = await Client.connect(dev.temporal_address)
        # No worker polls this queue: the workflow simply stays running in the SQLite history.
        await client.start_workflow(
            "DevstackProbe",
            id=workflow_id,
            task_queue="devstack-test-no-worker",
            search_attributes=TypedSearchAttributes([SearchAttributePair(source, workflow_id)]),
        )
    finally:
        await asyncio.to_thread(dev.stop)
    assert (tmp_path / "temporal.db").is_file()

    await asyncio.to_thread(dev.start)
    try:
        client = await Client.connect(dev.temporal_address)
        described = await client.get_workflow_handle(workflow_id).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        found = [wf.id async for wf in client.list_workflows(f"SynchubSource='{workflow_id}'")]
        assert found == [workflow_id]
    finally:
        await asyncio.to_thread(dev.stop)


# ---- ServiceProcess reports why a service did not come up -------------------------------


def test_service_that_exits_reports_code_and_log_tail(tmp_path: Path) -> None:
    proc = ServiceProcess(
        "broken service",
        [sys.executable, "-c", "print('port 1234 is cursed', flush=True); raise SystemExit(3)"],
        tmp_path / "broken.log",
        ready=lambda: False,
        startup_timeout=10,
    )
    with pytest.raises(ServiceError, match="exited with code 3") as failure:
        proc.start()
    assert "port 1234 is cursed" in str(failure.value)


def test_service_never_ready_times_out_and_is_killed_with_its_children(tmp_path: Path) -> None:
    # The leader starts a grandchild that ignores SIGTERM, so only the final SIGKILL to the
    # whole process group can stop it.
    script = "(trap '' TERM; exec sleep 60) & echo grandchild=$!; wait"

    def probe() -> bool:
        raise ConnectionRefusedError(f"nothing on port {free_port()}")

    proc = ServiceProcess(
        "sleepy service",
        ["sh", "-c", script],
        tmp_path / "sleepy.log",
        ready=probe,
        startup_timeout=0.5,
        stop_grace=2,
    )
    with pytest.raises(ServiceError, match="not ready after") as failure:
        proc.start()
    assert "ConnectionRefusedError" in str(failure.value)
    assert "grandchild=" in str(failure.value)

    grandchild = int(proc.log_tail().split("grandchild=")[1].split()[0])
    assert proc.pid is not None
    assert not _alive(proc.pid)
    assert not _alive(grandchild)


def test_redis_keeps_state_across_a_kill_with_append_only(tmp_path: Path) -> None:
    """The embedded default persists Redis (append-only file in the state dir): a SIGKILLed
    valkey comes back with its data, so a restart does not void every fingerprint."""
    with DevStack(redis_port=0, services=[REDIS], state_dir=tmp_path) as dev:
        client = redis.Redis.from_url(dev.redis_url)
        try:
            client.set("synchub:test:survives", "yes")
            client.hset("synchub:test:fp", mapping={"a": "1", "b": "2"})
            time.sleep(1.2)  # appendfsync everysec: what a crash may lose at most
            dev.kill(REDIS)
            dev.restart(REDIS)
            assert client.get("synchub:test:survives") == b"yes"
            assert client.hlen("synchub:test:fp") == 2
        finally:
            client.close()
    assert list((tmp_path / "valkey").iterdir())  # the append-only files live in the state dir


def test_redis_without_persistence_starts_empty_after_a_kill(tmp_path: Path) -> None:
    with DevStack(
        redis_port=0, services=[REDIS], state_dir=tmp_path, redis_appendonly=False
    ) as dev:
        client = redis.Redis.from_url(dev.redis_url)
        try:
            client.set("synchub:test:gone", "yes")
            dev.kill(REDIS)
            dev.restart(REDIS)
            assert client.get("synchub:test:gone") is None
        finally:
            client.close()
