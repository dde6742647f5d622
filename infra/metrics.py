"""The Prometheus endpoint of a process: synchub's instruments and Temporal's SDK metrics.

Temporal's Rust core records its metrics (and ``workflow.metric_meter()`` counters such as
``synchub_skipped_runs``) into a ``MetricBuffer``; ``MetricsExporter`` drains that into the same
OpenTelemetry ``MeterProvider`` as synchub's own instruments, whose Prometheus reader is served
on one HTTP address. One scrape target per worker, one set of metric names.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from wsgiref.simple_server import WSGIServer

from opentelemetry import metrics as otel_metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from temporalio.common import MetricAttributes
from temporalio.contrib.opentelemetry import MetricsExporter
from temporalio.runtime import BufferedMetric, MetricBuffer, Runtime, TelemetryConfig

log = logging.getLogger("synchub.metrics")

BUFFER_SIZE = 10_000
"""Temporal metric updates held between drains (core drops and logs beyond that)."""


class MetricsAddressError(RuntimeError):
    """The metrics address cannot be served; names SYNCHUB_METRICS_ADDRESS."""


@dataclass
class MetricsEndpoint:
    """What a process exposes: the runtime to connect Temporal with, and the drain to run."""

    runtime: Runtime
    exporter: MetricsExporter
    provider: MeterProvider
    url: str | None
    server: WSGIServer | None = None
    problem: str | None = None
    """Why ``url`` is ``None`` although an address was given (the port was taken)."""

    def close(self) -> None:
        """Stop serving (the runtime lives as long as the process)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


_endpoint: MetricsEndpoint | None = None


class ExactMetricsExporter(MetricsExporter):
    """Temporal's ``MetricsExporter``, keyed by what a metric is instead of where it lives.

    The SDK's exporter (temporalio 1.35) caches each instrument under ``id()`` of the
    metric object its buffer hands over, and each converted attribute set under ``id()`` of
    that set. Core reuses those objects only while it holds them: a counter created by a
    workflow (``synchub_skipped_runs``, created where a run is skipped) and its attributes
    are freed after use, and a later metric or attribute set born at the same address was
    exported under the old name or labels (``tests/test_metric_export.py``: 59 of 60 counts
    of seven counters landed under one name and label; the likely cause of a skipped run not
    counted in one fresh-clone CI). Here an instrument is found by name and kind, and
    attributes are converted per update.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._by_name: dict[tuple[str, int], Any] = {}

    def _get_or_create_instrument(self, metric: BufferedMetric) -> Any:
        key = (metric.name, metric.kind)
        instrument = self._by_name.get(key)
        if instrument is None:
            self._instruments.pop(id(metric), None)  # another metric's, at a reused address
            instrument = super()._get_or_create_instrument(metric)
            self._by_name[key] = instrument
        return instrument

    def _get_or_create_attributes(self, attributes: MetricAttributes) -> Mapping[str, Any]:
        return dict(attributes)


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` of SYNCHUB_METRICS_ADDRESS, or an error saying what to fix."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise MetricsAddressError(
            f"SYNCHUB_METRICS_ADDRESS={address!r}: expected host:port, e.g. 127.0.0.1:9464 "
            f"(empty turns the endpoint off)"
        )
    return host, int(port)


def serve(address: str) -> tuple[WSGIServer | None, str | None, str | None]:
    """Serve the Prometheus registry at ``host:port``: (server, url, why not served).

    A port already in use is logged at WARNING and leaves the endpoint off: a worker that
    syncs matters more than its metrics (say, a second worker on one host with the default).

    Raises:
        MetricsAddressError: a malformed address.
    """
    from prometheus_client import start_http_server

    host, port = parse_address(address)
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:
        problem = f"metrics not served: {address} (SYNCHUB_METRICS_ADDRESS): {exc}"
        log.warning("%s", problem)
        return None, None, problem
    return server, f"http://{host}:{server.server_port}/metrics", None


def setup_metrics(service: str, address: str | None) -> MetricsEndpoint:
    """Install the process's meter provider and serve it at ``address`` (once per process).

    Args:
        service: ``service.name`` resource attribute.
        address: ``host:port`` to serve ``/metrics`` on (port 0: any free port); ``None``
            records metrics without serving them.

    A port already in use is logged at WARNING and leaves the endpoint off (``problem``).

    Raises:
        MetricsAddressError: a malformed address.
    """
    global _endpoint
    if _endpoint is not None:
        return _endpoint
    reader = PrometheusMetricReader()
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": service})
    )
    otel_metrics.set_meter_provider(provider)
    server, url, problem = serve(address) if address else (None, None, None)
    buffer = MetricBuffer(BUFFER_SIZE)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    exporter = ExactMetricsExporter(buffer, provider, poll_interval=timedelta(seconds=1))
    _endpoint = MetricsEndpoint(runtime, exporter, provider, url, server, problem)
    return _endpoint
