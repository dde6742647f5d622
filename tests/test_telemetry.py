"""Traces and metrics of a real run: the OTel SDK, Temporal, tansu, valkey and the WIW simulator.

One module-scoped engine whose client is built like the worker's (``infra.temporal.connect``
with synchub's interceptors and the metrics runtime); spans go to an in-memory exporter beside
the JSON-lines file that ``starter.py trace`` reads, metrics to a Prometheus endpoint that the
tests scrape over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from infra.metrics import MetricsEndpoint, setup_metrics
from infra.schedule_check import ScheduleGauges, check_schedules
from infra.temporal import connect
from infra.trace_view import load_spans, render_tree, trace_command
from models.sync import RunState, SyncAllInput, SyncAllResult, SyncPartitionInput
from settings import Settings
from simulators.server import ThreadedServer
from simulators.wiw import WiwState
from tests.helpers import (
    SIM_TOKEN,
    Engine,
    days,
    read,
    recorded_spans,
    running_engine,
    served_wiw,
)
from workflows.options import partition_workflow_id
from workflows.sync_all import SyncAllWorkflow
from workflows.sync_partition import SyncPartitionWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET_QUERY = "access_token="


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[WiwState, ThreadedServer]]:
    with served_wiw() as served:
        yield served


@pytest.fixture(scope="module")
def recording(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[InMemorySpanExporter, Path]]:
    # the provider is global for the process: shared with other modules, recording only
    # while this module runs (tests/helpers.recorded_spans)
    with recorded_spans(tmp_path_factory.mktemp("traces")) as recording:
        yield recording


@pytest.fixture(scope="module")
def spans_file(recording: tuple[InMemorySpanExporter, Path]) -> Path:
    return recording[1]


@pytest.fixture(scope="module")
def memory(recording: tuple[InMemorySpanExporter, Path]) -> InMemorySpanExporter:
    return recording[0]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def metrics() -> AsyncIterator[MetricsEndpoint]:
    endpoint = setup_metrics("synchub-test", "127.0.0.1:0")
    async with endpoint.exporter:
        yield endpoint


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    sim: tuple[WiwState, ThreadedServer],
    memory: InMemorySpanExporter,
    metrics: MetricsEndpoint,
    settings_for: Callable[..., Settings],
) -> AsyncIterator[Engine]:
    settings = settings_for(
        redis_db=7,
        wiw_url=sim[1].url,
        days_ahead=0,
        days_prior=0,
    )
    client = await connect(settings.temporal, runtime=metrics.runtime)
    async with running_engine(client, settings) as eng:
        yield eng


async def sync(eng: Engine) -> SyncAllResult:
    return await eng.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw"),
        id=f"syncall/wiw/test-{uuid.uuid4().hex[:8]}",
        task_queue=eng.settings.temporal.task_queue,
    )


def trace_of(spans: list[ReadableSpan], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_one_trace_from_start_to_kafka_message(
    sim, engine: Engine, memory: InMemorySpanExporter, spans_file: Path
) -> None:
    state, _ = sim
    state.seed(5, days=days(1), seed=3)
    memory.clear()
    result = await sync(engine)
    assert result.state == RunState.COMPLETED and result.records.upserted == 5
    msgs = await read(engine.topic, expect=5)
    assert len(msgs) == 5

    spans = memory.get_finished_spans()
    starts = [s for s in spans if s.name == "StartWorkflow:SyncAllWorkflow"]
    assert len(starts) == 1
    assert starts[0].context is not None
    run_trace = trace_of(list(spans), starts[0].context.trace_id)
    names = {s.name for s in run_trace}
    for expected in (
        "RunWorkflow:SyncAllWorkflow",
        "RunWorkflow:SyncPartitionWorkflow",
        "RunActivity:sync_partition_pass",  # a one-page day: pages and finish in one local pass
        "sync.page",
        "kafka.publish",
    ):
        assert expected in names, f"{expected} missing from {sorted(names)}"
    http = [s for s in run_trace if s.name.startswith("GET /")]
    assert http, f"no upstream HTTP span in {sorted(names)}"
    assert any(s.attributes and s.attributes.get("synchub.source") == "wiw" for s in http)
    for s in http:  # never a query string: signatures and tokens live there
        url = str((s.attributes or {}).get("url.full") or (s.attributes or {}).get("http.url"))
        assert "?" not in url and SIM_TOKEN not in url, url
    redis_spans = [s for s in run_trace if (s.attributes or {}).get("db.system") == "redis"]
    pages = [s for s in run_trace if s.name == "sync.page"]
    assert any(s.name == "redis pipeline" for s in redis_spans), sorted(names)
    assert {s.parent.span_id for s in redis_spans if s.parent} & {
        p.context.span_id for p in pages if p.context
    }  # the page's round trips are children of its span

    # every message continues the trace: its header is the W3C context of the publish span
    by_id = {s.context.span_id: s for s in run_trace if s.context is not None}
    publishes = {s.context.span_id for s in run_trace if s.name == "kafka.publish" and s.context}
    for m in msgs:
        version, trace_id, span_id, flags = m.headers["traceparent"].split("-")
        assert version == "00" and int(flags, 16) & 1  # sampled
        assert int(trace_id, 16) == starts[0].context.trace_id
        assert int(span_id, 16) in publishes
        chain = ancestors(by_id[int(span_id, 16)], by_id)
        assert chain[:2] == ["sync.page", "RunActivity:sync_partition_pass"], chain
        assert "StartChildWorkflow:SyncPartitionWorkflow" in chain
        assert chain[-1] == "StartWorkflow:SyncAllWorkflow"

    # the embedded default's file holds the same trace; `starter.py trace` prints it as a tree
    provider_flush()
    loaded = load_spans(spans_file, f"syncall/wiw/{result.source}")  # no such run id
    assert loaded == []
    wid = starts[0].attributes["temporalWorkflowID"] if starts[0].attributes else ""
    tree = render_tree(load_spans(spans_file, str(wid)))
    assert tree.splitlines()[0].startswith("StartWorkflow:SyncAllWorkflow")
    assert re.search(r"^\s+.*kafka\.publish\s+\d+(\.\d+)? ms", tree, re.M), tree
    assert trace_command(str(wid), spans_file) == 0
    assert trace_command("syncall/wiw/never-ran", spans_file) == 1


def provider_flush() -> None:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    provider.force_flush()  # type: ignore[attr-defined]


async def scrape(endpoint: MetricsEndpoint) -> dict[str, float]:
    """The endpoint's samples, read over HTTP like Prometheus does."""
    assert endpoint.url is not None
    async with httpx.AsyncClient() as http:
        text = (await http.get(endpoint.url)).text
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def scrape_until(
    endpoint: MetricsEndpoint, name: str, at_least: float, **labels: str
) -> dict[str, float]:
    """Scrape until ``name`` reaches ``at_least``: Temporal's metrics arrive through a buffer
    drained every second (synchub's own are recorded before the activity returns)."""
    for _ in range(60):
        samples = await scrape(endpoint)
        if total(samples, name, **labels) >= at_least:
            return samples
        await asyncio.sleep(0.25)
    return samples


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        v for k, v in samples.items() if k.startswith(name + "{") and all(w in k for w in want)
    )


async def test_prometheus_endpoint_shows_counters_moving(
    sim, engine: Engine, metrics: MetricsEndpoint
) -> None:
    state, _ = sim
    before = await scrape(metrics)
    state.seed(4, days=days(1), seed=5)
    result = await sync(engine)
    assert result.state == RunState.COMPLETED
    after = await scrape(metrics)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("synchub_records_total", source="wiw", outcome="fetched") == 4
    assert moved("synchub_records_total", source="wiw", outcome="upserted") >= 1
    assert moved("synchub_upstream_requests_total", source="wiw", status_class="2xx") >= 1
    assert moved("synchub_redis_round_trips_total", source="wiw") >= 2
    assert moved("synchub_pages_total", source="wiw") >= 1
    assert moved("synchub_page_seconds_count", source="wiw") >= 1
    assert moved("synchub_publish_seconds_count", source="wiw") >= 1
    fresh = total(
        after, "synchub_freshness_seconds", source="wiw", partition=days(1)[0].isoformat()
    )
    assert 0 <= fresh < 60
    # Temporal's SDK metrics come out of the same endpoint
    for _ in range(60):
        sdk = [k for k in await scrape(metrics) if "workflow_completed" in k]
        if sdk:
            break
        await asyncio.sleep(0.25)
    assert sdk, "no Temporal SDK metric (workflow_completed) on the endpoint"


async def test_429s_dead_letters_and_point_lookups_are_counted(
    sim, engine: Engine, metrics: MetricsEndpoint
) -> None:
    state, _ = sim
    ids = state.seed(4, days=days(1), seed=21)
    assert (await sync(engine)).state == RunState.COMPLETED
    before = await scrape(metrics)
    # one 429 (retried), one malformed record, one shift moved out of the window
    state.set_knobs(throttle_next=1, malformed_ids={ids[0]})
    state.move(ids[1], datetime.now(UTC) + timedelta(days=5))
    try:
        result = await sync(engine)
    finally:
        state.reset_knobs()
    assert result.state == RunState.COMPLETED and result.records.dead_lettered == 1
    after = await scrape(metrics)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("synchub_upstream_429_total", source="wiw") == 1
    assert moved("synchub_upstream_requests_total", source="wiw", status_class="4xx") == 1
    assert moved("synchub_records_total", source="wiw", outcome="dead_lettered") == 1
    # the moved shift and the malformed one are both missing from the pass: looked up
    assert moved("synchub_point_lookups_total", source="wiw") == 2


async def test_forced_overlap_counts_a_skipped_run(
    engine: Engine, metrics: MetricsEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    day = days(1)[0].isoformat()
    # an earlier run still holds the partition: its workflow id runs on a queue nobody polls
    holder = await engine.client.start_workflow(
        SyncPartitionWorkflow.run,
        SyncPartitionInput(source="wiw", partition=day),
        id=partition_workflow_id("wiw", day),
        task_queue=f"nobody-{uuid.uuid4().hex[:6]}",
    )
    assert await (await holder.describe()).static_summary() == f"wiw / {day}"
    try:
        before = await scrape(metrics)
        with caplog.at_level(logging.WARNING):
            result = await sync(engine)
        assert result.skipped == [day]
        labels = {"source": "wiw", "reason": "already_running"}
        was = total(before, "synchub_skipped_runs_total", **labels)
        after = await scrape_until(metrics, "synchub_skipped_runs_total", was + 1, **labels)
        await asyncio.sleep(1.5)  # one more drain: nothing else may arrive
        after = await scrape(metrics)
        assert total(after, "synchub_skipped_runs_total", **labels) - was == 1
        warned = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert any("skipped run" in r.getMessage() and day in r.getMessage() for r in warned)
    finally:
        await holder.terminate("test over")


async def test_run_page_says_what_the_run_did(sim, engine: Engine) -> None:
    state, _ = sim
    state.seed(3, days=days(1), seed=9)
    wid = f"syncall/wiw/test-{uuid.uuid4().hex[:8]}"
    await engine.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw"),
        id=wid,
        task_queue=engine.settings.temporal.task_queue,
    )
    handle = engine.client.get_workflow_handle(wid)
    desc = await handle.describe()
    assert await desc.static_summary() == "wiw: sync of all"
    details = await handle.query("__temporal_workflow_metadata")
    text = details.current_details
    assert re.fullmatch(
        r"wiw: 1 day · 3 fetched · \d+ upserted( · \d+ deleted)? · 0 failed \(COMPLETED\)", text
    ), text
    child = engine.client.get_workflow_handle(partition_workflow_id("wiw", days(1)[0].isoformat()))
    assert await (await child.describe()).static_summary() == f"wiw / {days(1)[0].isoformat()}"


_ = Client  # the engine's client is built by infra.temporal.connect


async def test_schedule_overlap_is_reported_and_counted(
    engine: Engine, metrics: MetricsEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"synchub-test-{uuid.uuid4().hex[:6]}"
    handle = await engine.client.create_schedule(
        prefix,
        Schedule(
            action=ScheduleActionStartWorkflow(
                SyncAllWorkflow.run,
                SyncAllInput(source="wiw"),
                id=f"syncall/wiw/{prefix}",
                task_queue=f"nobody-{prefix}",  # the first run stays running
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        ),
    )
    gauges = ScheduleGauges()
    try:
        for _ in range(50):  # the schedule list is eventually consistent (visibility)
            gauges.update(await check_schedules(engine.client, prefix))
            if gauges.reports:
                break
            await asyncio.sleep(0.2)
        assert prefix in gauges.reports
        await handle.trigger(overlap=ScheduleOverlapPolicy.SKIP)
        for _ in range(50):
            if (await handle.describe()).info.running_actions:
                break
            await asyncio.sleep(0.2)
        await handle.trigger(overlap=ScheduleOverlapPolicy.SKIP)  # the first still runs
        for _ in range(50):
            if (await handle.describe()).info.num_actions_skipped_overlap:
                break
            await asyncio.sleep(0.2)
        with caplog.at_level(logging.WARNING):
            (found,) = await check_schedules(engine.client, prefix)
            assert gauges.update([found]) == [found]
        assert found.skipped_overlap == 1 and found.missed == [] and not found.paused
        assert "1 skipped for overlap" in found.line()
        assert any("skipped or missed scheduled runs" in r.getMessage() for r in caplog.records)
        after = await scrape(metrics)
        assert total(after, "synchub_schedule_skipped_overlap", schedule=prefix) == 1
        action = (await handle.describe()).schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        summary = action.static_summary  # as stored: a JSON payload
        assert not isinstance(summary, str) and summary is not None
        assert json.loads(summary.data) == "wiw: scheduled sync of all"
    finally:
        for run in (await handle.describe()).info.running_actions:
            wid = getattr(run, "workflow_id", None)
            if wid:
                await engine.client.get_workflow_handle(wid).terminate("test over")
        await handle.delete()


async def test_freshness_survives_a_worker_restart(
    sim, engine: Engine, metrics: MetricsEndpoint
) -> None:
    """A restarted worker exports the last success it did not see (stored in Redis)."""
    from infra.telemetry import METRICS
    from worker import build_worker

    state, _ = sim
    state.seed(2, days=days(1), seed=9)
    assert (await sync(engine)).state == RunState.COMPLETED
    day = days(1)[0].isoformat()
    name = "synchub_last_success_timestamp_seconds"
    synced = total(await scrape(metrics), name, source="wiw", partition=day)
    assert synced > 0

    METRICS.freshness.last.clear()  # what a worker process knows after its restart
    assert total(await scrape(metrics), name, source="wiw", partition=day) == 0
    queue = engine.settings.temporal.model_copy(
        update={"task_queue": f"restart-{uuid.uuid4().hex}"}
    )
    restarted = engine.settings.model_copy(update={"temporal": queue})
    bundle = await build_worker(engine.client, restarted)  # the new worker's start
    try:
        after = await scrape(metrics)
    finally:
        await bundle.aclose()
    assert total(after, name, source="wiw", partition=day) == synced
    age = total(after, "synchub_freshness_seconds", source="wiw", partition=day)
    assert 0 <= age < 60
