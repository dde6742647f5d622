"""Turning traces and metrics on for one process, from the telemetry settings section."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from opentelemetry import trace

from infra.metrics import MetricsEndpoint, setup_metrics
from infra.telemetry import METRICS, instrument_clients, setup_tracing

if TYPE_CHECKING:
    from settings import Settings


def traces_path(settings: Settings) -> Path:
    """SYNCHUB_TRACES_FILE, else ``traces.jsonl`` in the state folder (SYNCHUB_STATE_DIR)."""
    return settings.telemetry.traces_file or settings.dev.state_dir / "traces.jsonl"


def start_telemetry(service: str, settings: Settings, serve: bool = True) -> MetricsEndpoint:
    """Tracer provider (unless SYNCHUB_TRACING=false), meter provider, Prometheus endpoint.

    Connect Temporal with the returned endpoint's ``runtime`` and keep its ``exporter``
    running (``async with``) so Temporal's SDK metrics reach the endpoint too.

    Args:
        service: ``service.name`` of spans and metrics.
        settings: the telemetry section and the state folder are read.
        serve: serve ``/metrics`` (the worker); the starter only records spans.

    Raises:
        infra.metrics.MetricsAddressError: SYNCHUB_METRICS_ADDRESS is malformed or taken.
    """
    t = settings.telemetry
    endpoint = setup_metrics(service, t.metrics_address if serve else None)
    if t.tracing:
        setup_tracing(service, spans_file=traces_path(settings), otlp_endpoint=t.otlp_endpoint)
    else:
        instrument_clients()  # the HTTP and Redis counters come from the same hooks
    return endpoint


def start_tracing(service: str, settings: Settings) -> None:
    """Spans only (the starter): its start span is the root of a run's trace."""
    otlp = settings.telemetry.otlp_endpoint
    setup_tracing(service, spans_file=traces_path(settings), otlp_endpoint=otlp)


def set_intervals(intervals: dict[str, float]) -> None:
    """Export each source's schedule interval: the freshness alert's yardstick.

    The intervals come from ``connectors.schedules.source_intervals``.
    """
    METRICS.intervals.update(intervals)


def flush_traces() -> None:
    """Write out buffered spans: the starter exits with ``os._exit``, skipping atexit."""
    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush()
