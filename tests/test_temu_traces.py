"""TEMU messages continue the run's trace: their traceparent is a ``kafka.publish`` span's.

Real OTel SDK (in-memory exporter), Temporal dev server, tansu, valkey and the TEMU
simulator over HTTP; like the WIW trace test in ``test_telemetry.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from infra.consumer import Consumed
from infra.temporal import connect
from models.sync import RunState, SyncAllInput, SyncAllResult
from simulators.server import ThreadedServer
from simulators.temu import TemuState, make_sim_app
from tests.helpers import Engine, make_settings, read, recorded_spans, running_engine
from tests.test_temu_inventory import catalogue, publish_stock
from tests.test_temu_orders import publish_shipments, shop
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[TemuState, ThreadedServer]]:
    state, app = make_sim_app()
    server = ThreadedServer(app).start()
    yield state, server
    server.stop()


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InMemorySpanExporter]:
    with recorded_spans(tmp_path_factory.mktemp("traces")) as (exporter, _):
        yield exporter


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    sim, memory: InMemorySpanExporter, temporal_address, kafka_brokers, redis_url
) -> AsyncIterator[Engine]:
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=13,
        temu_shops=[shop(sim[1])],
    )
    client = await connect(settings.temporal)  # with synchub's tracing interceptor
    async with running_engine(client, settings, settings.temu.inventory_topic) as eng:
        yield eng


async def run(engine: Engine, source: str, **params: str) -> SyncAllResult:
    result: SyncAllResult = await engine.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source=source, params=params),
        id=f"syncall/{source}/test-{uuid.uuid4().hex[:8]}",
        task_queue=engine.settings.temporal.task_queue,
    )
    assert result.state == RunState.COMPLETED, result
    return result


def assert_published_in_the_run(
    msgs: list[Consumed], spans: list[ReadableSpan], source: str
) -> None:
    """Each message's traceparent is a publish span of ``source`` in the run's one trace."""
    starts = [s for s in spans if s.name == "StartWorkflow:SyncAllWorkflow" and s.context]
    assert len(starts) == 1 and starts[0].context is not None
    publishes = {
        s.context.span_id: s for s in spans if s.name == "kafka.publish" and s.context is not None
    }
    assert msgs
    for m in msgs:
        version, trace_id, span_id, flags = m.headers["traceparent"].split("-")
        assert version == "00" and int(flags, 16) & 1
        assert int(trace_id, 16) == starts[0].context.trace_id
        span = publishes.get(int(span_id, 16))
        assert span is not None, f"{m.key}: {m.headers['traceparent']} is no publish span"
        assert (span.attributes or {}).get("synchub.source") == source


async def test_inventory_audit_and_dead_letters_carry_their_publish_span(
    sim, engine: Engine, memory: InMemorySpanExporter
) -> None:
    state, _ = sim
    skus = catalogue(state, 3, 2, seed=5)
    names = sorted(skus)
    publish_stock(engine, {n: skus[n]["stock"] + 3 for n in names})
    state.set_knobs(reject_skus={skus[names[0]]["skuId"]})
    memory.clear()
    result = await run(engine, "temu-inventory", mode="quick")
    assert result.records.upserted == 5 and result.records.dead_lettered == 1
    audit = await read(engine.topic, idle=0.5, expect=5)
    dead = await read(engine.deadletter, idle=0.5, expect=1)
    assert len(audit) == 5 and len(dead) == 1
    assert_published_in_the_run(
        [*audit, *dead], list(memory.get_finished_spans()), "temu-inventory"
    )


async def test_a_shipment_dead_letter_carries_its_publish_span(
    sim, engine: Engine, memory: InMemorySpanExporter
) -> None:
    sim[0].reset_knobs()
    publish_shipments(
        engine.settings.kafka.brokers, engine.settings.temu.shipments_topic, [("junk", b"no")]
    )
    await read(engine.deadletter, idle=0.3)  # what an earlier test left
    memory.clear()
    result = await run(engine, "temu-orders")
    assert result.steps["confirm_shipments.invalid"] == 1
    dead = [m for m in await read(engine.deadletter, idle=0.5) if m.key == "junk"]
    assert len(dead) == 1
    assert_published_in_the_run(dead, list(memory.get_finished_spans()), "temu-orders")
