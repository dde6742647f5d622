"""Traces and metrics: one place that wires OpenTelemetry for the worker, the starter and tests.

The parts live in ``infra.tracing`` (provider, exporters, synchub's own spans),
``infra.client_spans`` (httpx and Redis) and ``infra.instruments`` (instruments, freshness);
this module installs them (``setup_tracing``) and re-exports them, so
``from infra.telemetry import ...`` keeps working.

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

from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler

from infra.client_spans import instrument_clients
from infra.instruments import FRESHNESS_RETENTION_SECONDS, METRICS, SOURCE, TRACER_NAME, Metrics
from infra.tracing import (
    MAX_SPANS_FILE_BYTES,
    JsonLinesSpanExporter,
    SwitchSampler,
    build_tracer_provider,
    current_traceparent,
    publishing,
    rotated,
    span_record,
    traced_page,
    tracer,
)


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


__all__ = [
    "FRESHNESS_RETENTION_SECONDS",
    "MAX_SPANS_FILE_BYTES",
    "METRICS",
    "SOURCE",
    "TRACER_NAME",
    "JsonLinesSpanExporter",
    "Metrics",
    "SwitchSampler",
    "build_tracer_provider",
    "current_traceparent",
    "instrument_clients",
    "publishing",
    "rotated",
    "setup_tracing",
    "span_record",
    "traced_page",
    "tracer",
]
