"""The fields every part of the TEMU simulator's state shares, and its clock.

``TemuState`` is assembled from mixins named for what they hold (``knobs``, ``counters``,
``orders``, ``order_api``, ``shipments``, ``stock``); each reads and writes these fields
while holding ``_lock`` (the HTTP app runs in a uvicorn thread while tests change the
state from the main thread).
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from collections.abc import Callable
from typing import Any


class StateCore:
    """Field declarations (set in ``TemuState.__init__``) and TEMU's clock."""

    clock: Callable[[], float]
    region_id: int
    _lock: threading.Lock
    _rng: random.Random
    apps: dict[str, str]
    tokens: dict[str, dict[str, Any]]
    _buckets: dict[str, tuple[float, float]]
    _orders: dict[str, dict[str, Any]]
    _shipping: dict[str, dict[str, Any]]
    _skus: dict[int, dict[str, Any]]
    _goods: dict[int, list[int]]
    _edit_keys: set[tuple[int, str]]
    _unlisted: dict[str, tuple[float, dict[str, Any] | None]]
    shipments: list[dict[str, Any]]
    stock_edits: list[dict[str, Any]]
    requests: Counter[str]
    error_codes: Counter[int]
    request_times: deque[float]
    http_429_served: int

    latency_ms: int
    error_rate: float
    fail_next: int
    qps: float
    burst: int
    reject_shipments: set[str]
    reject_skus: set[int]
    visibility_delay_seconds: float
    clock_offset_seconds: float
    list_lag_seconds: float
    unstable_ties: bool
    duplicate_key_code: int
    repeat_shipment: str
    reject_goods: set[int]
    fail_goods: set[int]
    rate_limit_next: int
    http_429_next: int
    malformed_orders: set[str]

    def now(self) -> float:
        """TEMU's clock: the injected ``clock`` plus ``clock_offset_seconds``."""
        return self.clock() + self.clock_offset_seconds
