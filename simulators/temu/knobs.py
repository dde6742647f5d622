"""The TEMU simulator's fault knobs: their healthy values and how they are set and read.

What each knob does is listed on ``TemuState``.
"""

from __future__ import annotations

from typing import Any

from simulators.temu.core import StateCore
from simulators.temu.wire import DUPLICATE_REQUEST

KNOB_DEFAULTS: dict[str, Any] = {
    "latency_ms": 0,
    "error_rate": 0.0,
    "fail_next": 0,
    "qps": 20.0,
    "burst": 0,
    "reject_shipments": set(),
    "reject_skus": set(),
    "visibility_delay_seconds": 0.0,
    "clock_offset_seconds": 0.0,
    "list_lag_seconds": 0.0,
    "unstable_ties": False,
    "duplicate_key_code": DUPLICATE_REQUEST,
    "repeat_shipment": "duplicate",
    "reject_goods": set(),
    "fail_goods": set(),
    "rate_limit_next": 0,
    "http_429_next": 0,
    "malformed_orders": set(),
}
"""Knobs and their healthy values. ``burst`` 0 means "``qps`` tokens" (one second)."""
REPEAT_SHIPMENT_ANSWERS = ("duplicate", "success", "reject")
"""Values of the ``repeat_shipment`` knob."""


def flag(value: Any) -> bool:
    """A boolean knob from JSON or a form (``true``/``false``, ``1``/``0``)."""
    if isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"expected true or false, got {value!r}")
        return value.lower() in ("true", "1")
    return bool(value)


class KnobsMixin(StateCore):
    """Knobs of ``TemuState`` (plain attributes declared on ``StateCore``)."""

    def reset_knobs(self) -> None:
        """Back to a healthy gateway: no latency or faults, 20 QPS, nothing rejected."""
        with self._lock:
            for name, value in KNOB_DEFAULTS.items():
                setattr(self, name, set(value) if isinstance(value, set) else value)
            self._buckets.clear()

    def set_knobs(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs by name; returns all knobs.

        Raises:
            ValueError: an unknown knob or a value of the wrong kind.
        """
        for name, value in knobs.items():
            if name not in KNOB_DEFAULTS:
                raise ValueError(f"unknown knob {name!r}; known: {', '.join(KNOB_DEFAULTS)}")
            if name in ("reject_shipments", "malformed_orders"):
                value = {str(v) for v in value}
            elif name in ("reject_skus", "reject_goods", "fail_goods"):
                value = {int(v) for v in value}
            elif name == "repeat_shipment":
                if value not in REPEAT_SHIPMENT_ANSWERS:
                    raise ValueError(
                        f"repeat_shipment must be one of {', '.join(REPEAT_SHIPMENT_ANSWERS)}"
                    )
            elif name == "unstable_ties":
                value = flag(value)
            else:
                value = type(KNOB_DEFAULTS[name])(value)
            if name == "qps" and value <= 0:
                raise ValueError("qps must be positive")
            with self._lock:
                setattr(self, name, value)
                if name in ("qps", "burst"):
                    self._buckets.clear()
        return self.knobs()

    def knobs(self) -> dict[str, Any]:
        """Current knob values (JSON-friendly)."""
        with self._lock:
            out = {name: getattr(self, name) for name in KNOB_DEFAULTS}
        out["reject_shipments"] = sorted(out["reject_shipments"])
        out["reject_skus"] = sorted(out["reject_skus"])
        out["reject_goods"] = sorted(out["reject_goods"])
        out["fail_goods"] = sorted(out["fail_goods"])
        out["malformed_orders"] = sorted(out["malformed_orders"])
        return out
