"""Spans and metrics for every upstream HTTP request and Redis round trip of a process.

Upstream calls get a span without their query string (TEMU signs requests there, some APIs
pass tokens there) and a count by status class; every Redis round trip (a command, a
pipeline, a Lua call) gets a span and a count. Installed once per process by
``infra.tracing.setup_tracing``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from infra.instruments import METRICS, SOURCE
from infra.tracing import tracer

_instrumented = False


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
