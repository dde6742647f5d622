"""Request counters every simulator keeps, so tests can assert call counts and faults."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Awaitable[Response]]


class RequestCounters:
    """``requests`` per route, ``statuses`` answered and the in-flight gauge, under one lock.

    The app runs in a server thread while tests read and reset the counters from theirs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0

    def count(self, route: str | None = None, status: int | None = None) -> None:
        """Count one API request on ``route`` and/or one answer with ``status``."""
        with self._lock:
            if route is not None:
                self.requests[route] += 1
            if status is not None:
                self.statuses[status] += 1

    def track(self, delta: int) -> None:
        """Move the gauge of API requests in flight; ``peak_in_flight`` shows client concurrency."""
        with self._lock:
            self.in_flight += delta
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def reset_counters(self) -> None:
        """Zero ``requests``, ``statuses`` and ``peak_in_flight``."""
        with self._lock:
            self.requests.clear()
            self.statuses.clear()
            self.peak_in_flight = self.in_flight


class CountedApi:
    """What every simulator's API handlers do around an answer: count, wait, track.

    Subclasses keep their state in ``sim``; its ``latency_ms`` knob (read per request, so
    tests can change it while the server runs) delays every counted request.
    """

    sim: RequestCounters

    async def enter(self, route: str) -> None:
        """Count the request by route and wait the latency knob."""
        self.sim.count(route=route)
        latency_ms = getattr(self.sim, "latency_ms", 0)
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)

    def tracked(self, handler: Handler) -> Handler:
        """Count the request as in flight while it is handled (latency included)."""

        async def wrapper(request: Request) -> Response:
            self.sim.track(+1)
            try:
                return await handler(request)
            finally:
                self.sim.track(-1)

        return wrapper
