"""Traces and metrics: one place that wires OpenTelemetry for the worker, the starter and tests.

Traces: the tracer provider exports over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set,
else appends spans as JSON lines to a file under ``.synchub/`` (read back by
``starter.py trace``). httpx and Redis are instrumented once per process: upstream calls get a
span without their query string (TEMU signs requests there, some APIs pass tokens there), and
every Redis round trip (a command, a pipeline, a Lua call) gets a span.

Metrics: synchub's instruments (``Metrics``) and Temporal's SDK metrics (drained from the
runtime's ``MetricBuffer``) go through one OpenTelemetry ``MeterProvider`` to one Prometheus
endpoint, so an operator scrapes one address per worker.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult

from models import clock

if TYPE_CHECKING:
    from infra.last_success import LastSuccess

log = logging.getLogger("synchub.telemetry")
R = TypeVar("R")

TRACER_NAME = "synchub"
SOURCE = contextvars.ContextVar[str]("synchub_source", default="")
"""The source whose activity runs in this task; labels HTTP and Redis metrics."""

FRESHNESS_RETENTION_SECONDS = 7 * 86400.0
"""Partitions not synced for this long leave the freshness gauge (a WIW day that left the
window); far above any alert threshold (three sync intervals)."""


def tracer() -> trace.Tracer:
    """The synchub tracer (a no-op one until ``setup_tracing`` installs a provider)."""
    return trace.get_tracer(TRACER_NAME)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or ``None`` outside any recorded span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


MAX_SPANS_FILE_BYTES = 64 * 1024 * 1024
"""Size at which the spans file is rotated (one previous file is kept)."""


def rotated(path: Path) -> Path:
    """The previous spans file beside ``path``."""
    return path.with_name(path.name + ".1")


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON line: the embedded default's trace store."""

    def __init__(self, path: Path, max_bytes: int = 0) -> None:
        self._path = path
        self._max_bytes = max_bytes or MAX_SPANS_FILE_BYTES
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the batch; called from the batch processor's thread.

        Past ``max_bytes`` (default ``MAX_SPANS_FILE_BYTES``) the file becomes ``<name>.1``
        (replacing the previous one), so the embedded default's trace store stays bounded.
        """
        lines = [json.dumps(span_record(s), default=str) + "\n" for s in spans]
        with self._lock:
            with contextlib.suppress(OSError):
                if self._path.stat().st_size > self._max_bytes:
                    self._path.replace(rotated(self._path))
            with self._path.open("a", encoding="utf-8") as fh:
                fh.writelines(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing held open between batches."""


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """The fields ``starter.py trace`` needs, in plain JSON types."""
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}" if ctx else "",
        "span_id": f"{ctx.span_id:016x}" if ctx else "",
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }


_instrumented = False


class SwitchSampler(Sampler):
    """Records every trace while ``on``, none otherwise (a bench's A/B runs, a test module)."""

    def __init__(self, on: bool = True) -> None:
        self.on = on

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        """The decision of ALWAYS_ON or ALWAYS_OFF, by the switch."""
        return (ALWAYS_ON if self.on else ALWAYS_OFF).should_sample(*args, **kwargs)

    def get_description(self) -> str:
        """Shown by the SDK's debug output."""
        return f"SwitchSampler(on={self.on})"


def build_tracer_provider(
    service: str,
    *,
    spans_file: Path | None,
    otlp_endpoint: str | None = None,
    sampler: Sampler | None = None,
) -> TracerProvider:
    """A tracer provider exporting over OTLP/HTTP, or else to the spans file.

    Args:
        service: ``service.name`` of the spans (``synchub-worker``, ``synchub-starter``).
        spans_file: where the embedded default appends spans; ignored with ``otlp_endpoint``.
        otlp_endpoint: base URL of an OTLP/HTTP collector (``OTEL_EXPORTER_OTLP_ENDPOINT``).
        sampler: which traces to record (default: the SDK's, every trace).
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service}), sampler=sampler)
    exporter: SpanExporter | None = None
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces")
    elif spans_file is not None:
        exporter = JsonLinesSpanExporter(spans_file)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def setup_tracing(
    service: str,
    *,
    spans_file: Path | None,
    otlp_endpoint: str | None = None,
    sampler: Sampler | None = None,
) -> TracerProvider:
    """Install the global tracer provider and instrument httpx and Redis (once per process).

    Arguments as ``build_tracer_provider``.
    """
    provider = build_tracer_provider(
        service, spans_file=spans_file, otlp_endpoint=otlp_endpoint, sampler=sampler
    )
    trace.set_tracer_provider(provider)
    instrument_clients()
    return provider


def instrument_clients() -> None:
    """Spans and metrics for every httpx request and Redis round trip of this process."""
    global _instrumented
    if _instrumented:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(
        request_hook=_http_request, async_request_hook=_async_http_request,
        response_hook=_http_response, async_response_hook=_async_http_response,
    )  # fmt: skip
    _instrument_redis()
    _instrumented = True


def _instrument_redis() -> None:
    """A span and a count per Redis round trip: a command, a Lua call or a whole pipeline.

    Not ``opentelemetry-instrumentation-redis``: it formats every queued command of a
    pipeline into the span's name and statement, even for a span nobody records, and synchub's
    pipelines hold a thousand commands (``STORE_CHUNK``): that cost 10-20 % of a first
    sync's CPU. Here a pipeline costs one span, its length and its distinct command names.
    """
    from redis.asyncio.client import Pipeline, Redis

    command = Redis.execute_command
    execute = Pipeline.execute

    async def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        name = _command_name(args[0]) if args else "?"
        with tracer().start_as_current_span(
            f"redis {name}", kind=trace.SpanKind.CLIENT, attributes=_REDIS_ATTRS
        ):
            try:
                return await command(self, *args, **options)
            finally:
                METRICS.redis_round_trips.add(1, {"source": SOURCE.get()})

    async def execute_pipeline(self: Any, raise_on_error: bool = True) -> Any:
        with tracer().start_as_current_span(
            "redis pipeline", kind=trace.SpanKind.CLIENT, attributes=_REDIS_ATTRS
        ) as span:
            if span.is_recording():
                stack = self.command_stack
                names = sorted({_command_name(args[0]) for args, _ in stack if args})
                span.set_attribute("db.redis.pipeline_length", len(stack))
                span.set_attribute("db.operation.name", " ".join(names))
            try:
                return await execute(self, raise_on_error)
            finally:
                METRICS.redis_round_trips.add(1, {"source": SOURCE.get()})

    Redis.execute_command = execute_command  # type: ignore[method-assign]
    Pipeline.execute = execute_pipeline  # type: ignore[method-assign]


_REDIS_ATTRS = {"db.system": "redis"}


def _command_name(name: Any) -> str:
    return name.decode() if isinstance(name, bytes) else str(name).split(" ", 1)[0]


def _no_query(url: Any) -> str:
    """The URL without query string or credentials: both may hold secrets."""
    text = str(url)
    text = text.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def _http_request(span: trace.Span, request: Any) -> None:
    if not span.is_recording():
        return
    url = _no_query(request.url)
    span.set_attribute("url.full", url)
    span.set_attribute("http.url", url)
    path = url.split("://", 1)[-1].partition("/")[2]
    method = request.method.decode() if isinstance(request.method, bytes) else request.method
    span.update_name(f"{method} /{path}")
    if SOURCE.get():
        span.set_attribute("synchub.source", SOURCE.get())


async def _async_http_request(span: trace.Span, request: Any) -> None:
    _http_request(span, request)


def _http_response(span: trace.Span, request: Any, response: Any) -> None:
    status = response.status_code if hasattr(response, "status_code") else response[0]
    METRICS.upstream_request(SOURCE.get(), int(status))


async def _async_http_response(span: trace.Span, request: Any, response: Any) -> None:
    _http_response(span, request, response)


@contextlib.contextmanager
def publishing(source: str, partition: str, messages: int | None = None) -> Iterator[trace.Span]:
    """The span of one Kafka publish batch; its context goes into each message's header."""
    started = time.perf_counter()
    with tracer().start_as_current_span(
        "kafka.publish",
        kind=trace.SpanKind.PRODUCER,
        attributes={"synchub.source": source, "synchub.partition": partition},
    ) as span:
        yield span
    METRICS.publish_seconds.record(time.perf_counter() - started, {"source": source})


def traced_page(fn: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """A span and a latency sample per page of ``SyncActivities._sync_page(input, cursor)``."""

    @functools.wraps(fn)
    async def wrapper(self: Any, input: Any, cursor: str | None, *args: Any, **kw: Any) -> R:
        source, partition = input.source, input.partition
        started = time.perf_counter()
        with tracer().start_as_current_span(
            "sync.page",
            attributes={
                "synchub.source": source,
                "synchub.partition": partition,
                "synchub.cursor": cursor or "start",
            },
        ):
            result = await fn(self, input, cursor, *args, **kw)
        METRICS.page_seconds.record(time.perf_counter() - started, {"source": source})
        return result

    return wrapper


@dataclass
class _Freshness:
    """Last successful sync per (source, partition), read by the gauges at scrape time."""

    last: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    store: LastSuccess | None = None
    """Where successes are also kept, so a restarted worker knows them (``restore``)."""

    def mark(self, source: str, partition: str) -> float:
        """Record a success now; returns its unix time (for ``persist``)."""
        now = clock.unix()
        with self.lock:
            self.last[(source, partition)] = now
            for key, when in list(self.last.items()):
                if now - when > FRESHNESS_RETENTION_SECONDS:
                    del self.last[key]
        return now

    async def restore(self, store: LastSuccess, sources: Iterable[str]) -> None:
        """At a worker's start: load the stored successes of ``sources``, then keep writing.

        The newer stamp wins, so the gauges have no blind spot after a restart.
        """
        loaded = await store.load(sources)
        now = clock.unix()
        with self.lock:
            for key, when in loaded.items():
                if now - when <= FRESHNESS_RETENTION_SECONDS:
                    self.last[key] = max(when, self.last.get(key, 0.0))
            self.store = store

    def detach(self, store: LastSuccess) -> None:
        """A closing worker's store is no longer written (another worker may have attached)."""
        with self.lock:
            if self.store is store:
                self.store = None

    async def persist(self, source: str, partition: str, when: float) -> None:
        """Write a success to the store; a failure is logged, never fails the activity."""
        if self.store is None:
            return
        try:
            await self.store.save(source, partition, when)
        except Exception as exc:  # the sync succeeded: the gauge in memory is still right
            log.warning("%s/%s: last success not stored in Redis: %s", source, partition, exc)

    def ages(self, _options: CallbackOptions) -> list[Observation]:
        now = clock.unix()
        with self.lock:
            return [
                Observation(max(0.0, now - when), {"source": s, "partition": p})
                for (s, p), when in self.last.items()
            ]

    def stamps(self, _options: CallbackOptions) -> list[Observation]:
        with self.lock:
            return [
                Observation(when, {"source": s, "partition": p})
                for (s, p), when in self.last.items()
            ]


class Metrics:
    """synchub's own instruments, labelled by source; created on the global meter provider.

    Built lazily (``METRICS``) so a meter provider installed later (the worker's Prometheus
    reader, a test's in-memory reader) receives them: the API's proxy meter forwards.
    """

    def __init__(self) -> None:
        m = otel_metrics.get_meter(TRACER_NAME)
        self.records = m.create_counter(
            "synchub_records", unit="1", description="records by outcome (fetched, unchanged, "
            "upserted, deleted, dead_lettered, republished)",
        )  # fmt: skip
        self.point_lookups = m.create_counter(
            "synchub_point_lookups", description="keys missing from a pass looked up upstream"
        )
        self.upstream_requests = m.create_counter(
            "synchub_upstream_requests", description="upstream HTTP requests by status class"
        )
        self.upstream_429 = m.create_counter(
            "synchub_upstream_429", description="upstream answers 429 Too Many Requests"
        )
        self.rate_limit_waits = m.create_counter(
            "synchub_rate_limit_waits", description="waits for a rate-limit token"
        )
        self.rate_limit_wait_seconds = m.create_counter(
            "synchub_rate_limit_wait_seconds", unit="s", description="time spent waiting"
        )
        self.pages = m.create_counter("synchub_pages", description="pages synced")
        self.page_seconds = m.create_histogram(
            "synchub_page_seconds", unit="s", description="fetch+diff+publish+commit of a page"
        )
        self.publish_seconds = m.create_histogram(
            "synchub_publish_seconds", unit="s", description="one Kafka publish batch (acks=all)"
        )
        self.redis_round_trips = m.create_counter(
            "synchub_redis_round_trips", description="Redis commands and pipelines sent"
        )
        self.skipped_runs = m.create_counter(
            "synchub_skipped_runs",
            description="runs skipped: schedule overlap or partition already running",
        )
        self.freshness = _Freshness()
        m.create_observable_gauge(
            "synchub_freshness_seconds",
            callbacks=[self.freshness.ages],
            unit="s",
            description="seconds since the last successful sync of a partition",
        )
        m.create_observable_gauge(
            "synchub_last_success_timestamp_seconds",
            callbacks=[self.freshness.stamps],
            unit="s",
            description="unix time of the last successful sync of a partition",
        )
        self.intervals: dict[str, float] = {}
        m.create_observable_gauge(
            "synchub_sync_interval_seconds",
            callbacks=[self._intervals],
            unit="s",
            description="the schedule interval of a source (the alert's yardstick)",
        )

    def _intervals(self, _options: CallbackOptions) -> list[Observation]:
        return [Observation(v, {"source": s}) for s, v in self.intervals.items()]

    def upstream_request(self, source: str, status: int) -> None:
        """Count one upstream answer by status class (``2xx``, ``4xx``, ...)."""
        self.upstream_requests.add(1, {"source": source, "status_class": f"{status // 100}xx"})
        if status == 429:
            self.upstream_429.add(1, {"source": source})

    def rate_limit_wait(self, seconds: float) -> None:
        """Count one wait for a rate-limit token."""
        attrs = {"source": SOURCE.get()}
        self.rate_limit_waits.add(1, attrs)
        self.rate_limit_wait_seconds.add(seconds, attrs)


class _LazyMetrics:
    """``METRICS.x`` builds the instruments on first use."""

    _built: Metrics | None = None

    def __getattr__(self, name: str) -> Any:
        if _LazyMetrics._built is None:
            _LazyMetrics._built = Metrics()
        return getattr(_LazyMetrics._built, name)


METRICS: Any = _LazyMetrics()
"""The process's instruments (``METRICS.records.add(...)``)."""
