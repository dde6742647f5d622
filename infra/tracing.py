"""Traces: the tracer, its provider and exporters, and the spans synchub opens itself.

The tracer provider exports over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else
appends spans as JSON lines to a file under ``.synchub/`` (read back by ``starter.py trace``).
A page and a Kafka publish batch get a span and a latency sample (``traced_page``,
``publishing``); upstream HTTP and Redis spans come from ``infra.client_spans``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult

from infra.instruments import METRICS, TRACER_NAME

R = TypeVar("R")


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
