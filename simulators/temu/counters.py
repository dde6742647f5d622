"""Credentials the simulated gateway knows and the counters it keeps of what it answered."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from simulators.temu.knobs import KnobsMixin
from simulators.temu.wire import RATE_LIMITED, SIM_MALL_ID


class CountersMixin(KnobsMixin):
    """Apps and tokens of ``TemuState``; request counters and the stats of ``/_admin/stats``."""

    def add_app(self, app_key: str, app_secret: str) -> None:
        """Register an app (``app_key`` -> secret)."""
        with self._lock:
            self.apps[app_key] = app_secret

    def add_token(
        self,
        token: str,
        app_key: str,
        *,
        mall_id: int = SIM_MALL_ID,
        expires_at: float | None = None,
        scopes: Iterable[str] | None = None,
    ) -> None:
        """Register a seller token of ``app_key``.

        Args:
            token: the access token.
            app_key: the app it was issued to.
            mall_id: the shop it grants access to.
            expires_at: unix seconds after which it answers 3000034 (``None`` = never).
            scopes: the methods it may call (``None`` = every method served).
        """
        with self._lock:
            self.tokens[token] = {
                "app_key": app_key,
                "mall": mall_id,
                "expires_at": expires_at,
                "scopes": None if scopes is None else set(scopes),
            }

    def reset_counters(self) -> None:
        """Zero ``requests``, ``error_codes`` and ``request_times``; refill the buckets."""
        with self._lock:
            self.requests.clear()
            self.error_codes.clear()
            self.request_times.clear()
            self._buckets.clear()
            self.http_429_served = 0

    def reset(self) -> None:
        """No orders, stock, shipments or edits; healthy knobs; zero counters.

        Apps and tokens are kept.
        """
        with self._lock:
            for pool in (self._orders, self._shipping, self._skus, self._goods, self._unlisted):
                pool.clear()
            self._edit_keys.clear()
            self.shipments.clear()
            self.stock_edits.clear()
        self.reset_knobs()
        self.reset_counters()

    def take_http_429(self) -> bool:
        """Whether this router request is answered HTTP 429 (``http_429_next``); counts it."""
        with self._lock:
            if self.http_429_next <= 0:
                return False
            self.http_429_next -= 1
            self.http_429_served += 1
            return True

    @property
    def rate_limited(self) -> int:
        """How many requests were answered 4000004."""
        with self._lock:
            return self.error_codes[RATE_LIMITED]

    def max_in_window(self, seconds: float = 1.0) -> int:
        """Most router requests that arrived within any ``seconds``-long window [t, t+s)."""
        with self._lock:
            times = sorted(self.request_times)
        best, first = 0, 0
        for last, arrived in enumerate(times):
            while arrived - times[first] >= seconds:
                first += 1
            best = max(best, last - first + 1)
        return best

    def arrivals(self) -> list[float]:
        """Monotonic arrival times of every router request since the last counter reset."""
        with self._lock:
            return list(self.request_times)

    def shipment_log(self) -> list[dict[str, Any]]:
        """Recorded shipments (copies), oldest first."""
        with self._lock:
            return copy.deepcopy(self.shipments)

    def stats(self) -> dict[str, Any]:
        """Sizes, counters and knobs for ``GET /_admin/stats`` (no secrets or tokens)."""
        window = self.max_in_window(1.0)
        with self._lock:
            stats = {
                "orders": len(self._orders),
                "skus": len(self._skus),
                "shipments": len(self.shipments),
                "stock_edits": len(self.stock_edits),
                "requests": dict(self.requests),
                "error_codes": {str(k): v for k, v in self.error_codes.items()},
                "rate_limited": self.error_codes[RATE_LIMITED],
                "max_requests_per_second": window,
                "total_requests": sum(self.requests.values()),
            }
        return {**stats, "knobs": self.knobs()}
