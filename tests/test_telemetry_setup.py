"""Where telemetry goes: OTLP over real HTTP, the metrics port, and the settings that say so."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from pydantic import ValidationError

from infra.metrics import MetricsAddressError, parse_address, serve
from infra.telemetry import build_tracer_provider
from settings import TelemetrySettings


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps each POSTed export request."""

    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_spans_go_to_the_otlp_endpoint_when_set(collector: str, tmp_path) -> None:
    spans_file = tmp_path / "traces.jsonl"
    provider = build_tracer_provider("synchub-test", spans_file=spans_file, otlp_endpoint=collector)
    with provider.get_tracer("test").start_as_current_span("sync.page"):
        pass
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert [path for path, _ in Collector.received] == ["/v1/traces"]
    request = ExportTraceServiceRequest.FromString(Collector.received[0][1])
    names = [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert names == ["sync.page"]
    assert not spans_file.exists()  # not both


def test_a_taken_metrics_port_warns_and_leaves_the_endpoint_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    address = f"127.0.0.1:{taken.getsockname()[1]}"
    try:
        with caplog.at_level(logging.WARNING):
            server, url, problem = serve(address)
    finally:
        taken.close()
    assert server is None and url is None
    assert problem is not None and "SYNCHUB_METRICS_ADDRESS" in problem and address in problem
    assert any(problem in r.getMessage() for r in caplog.records)


def test_metrics_address_is_checked() -> None:
    assert parse_address("0.0.0.0:9464") == ("0.0.0.0", 9464)
    with pytest.raises(MetricsAddressError, match="SYNCHUB_METRICS_ADDRESS"):
        parse_address("9464")
    with pytest.raises(ValidationError, match="host:port"):
        TelemetrySettings(metrics_address="localhost")
    assert TelemetrySettings(metrics_address="").metrics_address == ""
