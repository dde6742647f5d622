"""Request counters every simulator keeps, so tests can assert call counts and faults."""

from __future__ import annotations

import threading
from collections import Counter


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
