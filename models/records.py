"""What a connector hands the engine inside an activity. Never enters workflow history."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Record(BaseModel):
    """One upstream record in its published shape."""

    key: str
    """Stable record id (Kafka message key, Redis hash field)."""
    data: dict[str, Any]
    """The value published downstream; fingerprinted for change detection."""
    partition: str | None = None
    """Partition the record belongs to now, when the connector can tell (used after lookups)."""


class Malformed(BaseModel):
    """An upstream record the connector could not read; goes to the dead-letter topic."""

    key: str | None
    """Record id if one could be read."""
    reason: str
    """Why it was rejected, for the person reading the dead-letter topic."""
    raw: Any = None
    """The record as received, so nothing is lost."""


class Page(BaseModel):
    """One page fetched from an upstream."""

    records: list[Record] = Field(default_factory=list)
    """Records in this page, in upstream order."""
    malformed: list[Malformed] = Field(default_factory=list)
    """Records that failed to parse."""
    deleted_keys: list[str] = Field(default_factory=list)
    """Keys the upstream reports deleted (e.g. WIW ``deleted_ids``)."""
    next_cursor: str | None = None
    """Cursor of the next page; ``None`` when this was the last page."""
    stable: bool = False
    """True when re-fetching the same cursor yields the same page unless something changed,
    so a digest of its fingerprints can decide "unchanged" in one GET."""


class Lookup(BaseModel):
    """Answer of a point lookup for a record missing from its window."""

    key: str
    """The record id looked up."""
    record: Record | None = None
    """Current state, or ``None`` when the upstream says it does not exist."""
