"""Wire model of a Kaufland order unit: only what synchub relies on is checked.

Everything else Kaufland sends (prices, product, fulfilment) is published as received, so
a field Kaufland adds reaches consumers without a release here.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, field_validator


def iso_seconds(value: object) -> int | None:
    """``ts_*_iso`` (``2024-05-31T13:59:23Z`` or with an offset) as unix seconds, else ``None``."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(parsed.timestamp()) if parsed.tzinfo is not None else None


class OrderUnit(BaseModel):
    """One order unit (one item of an order) as ``GET /order-units`` lists it."""

    model_config = ConfigDict(extra="allow")

    id_order_unit: int
    """Unique across all order units: the record key."""
    id_order: str
    """The order (checkout part of one seller) the unit belongs to."""
    status: str
    """``open``, ``need_to_be_sent``, ``sent``, ``received``, ``cancelled``, ``returned``,
    ``returned_paid``, ``sent_and_autopaid``; kept as text so a new status is published,
    not dead-lettered."""
    storefront: str
    """Storefront (country) of the order."""
    ts_created_iso: str
    """When the unit was ordered."""
    ts_updated_iso: str
    """Last change, in Kaufland's clock: the incremental marker."""

    @field_validator("ts_created_iso", "ts_updated_iso")
    @classmethod
    def _readable(cls, value: str) -> str:
        if iso_seconds(value) is None:
            raise ValueError("must be an ISO 8601 timestamp with a zone (YYYY-MM-DDTHH:MM:SSZ)")
        return value

    @field_validator("status", "id_order")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


__all__ = ["OrderUnit", "iso_seconds"]
