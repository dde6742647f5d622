"""How far a sync run is: its state, counters, errors and dry-run keys (the ``progress`` query).

Added up from pages to partitions to runs; ``models.sync`` re-exports every name, so
``from models.sync import RecordCounts`` keeps working.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

MAX_ERRORS = 20
"""Errors kept in progress and summaries: enough to diagnose, bounded for history."""


class RunState(StrEnum):
    """Lifecycle of a sync run, also upserted as the ``SynchubState`` search attribute."""

    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class RecordCounts(BaseModel):
    """Record counters; added up from pages to partitions to runs."""

    fetched: int = 0
    """Records read from the upstream (malformed included)."""
    unchanged: int = 0
    """Records whose fingerprint matched the change store."""
    upserted: int = 0
    """Upsert events published."""
    deleted: int = 0
    """Tombstones published."""
    dead_lettered: int = 0
    """Malformed records sent to the dead-letter topic."""
    requests: int = 0
    """Upstream list requests made to read the pages (connectors that count them)."""
    republished: int = 0
    """Unchanged records published again, under their earlier event ids, because the cache
    was void (the topic was recreated or truncated, or an operator asked for a resync)."""

    def add(self, other: RecordCounts) -> RecordCounts:
        """Return the field-wise sum (models are treated as values)."""
        return RecordCounts(
            **{
                name: getattr(self, name) + getattr(other, name)
                for name in RecordCounts.model_fields
            }
        )


class PartitionCounts(BaseModel):
    """Partition counters of a sync-all run."""

    total: int = 0
    pending: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0


class PartitionError(BaseModel):
    """Why one partition failed or was skipped."""

    partition: str
    """Partition id (e.g. a day, an employee code)."""
    error: str
    """Message safe for history and logs (no secrets, no record data)."""


MAX_DRY_RUN_KEYS = 10
"""Keys a dry run names per kind of change: enough to check a setting, bounded for history."""


class DryRunKeys(BaseModel):
    """The first keys a dry run would have upserted, deleted and dead-lettered.

    Keys only (never records), at most ``MAX_DRY_RUN_KEYS`` of each: the counts are in the
    run's ``RecordCounts``.
    """

    upserted: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    dead_lettered: list[str] = Field(default_factory=list)

    def add(self, other: DryRunKeys | None) -> DryRunKeys:
        """Both, in order, each list cut at ``MAX_DRY_RUN_KEYS``."""
        if other is None:
            return self
        return DryRunKeys(
            upserted=(self.upserted + other.upserted)[:MAX_DRY_RUN_KEYS],
            deleted=(self.deleted + other.deleted)[:MAX_DRY_RUN_KEYS],
            dead_lettered=(self.dead_lettered + other.dead_lettered)[:MAX_DRY_RUN_KEYS],
        )


class Progress(BaseModel):
    """Answer of the ``progress`` query of a sync-all or partition workflow."""

    source: str
    state: RunState
    partitions: PartitionCounts = Field(default_factory=PartitionCounts)
    records: RecordCounts = Field(default_factory=RecordCounts)
    pages: int = 0
    """Pages committed so far (partition workflows) or by finished children (sync-all)."""
    unchanged_pages: int = 0
    """Of those, pages proven unchanged by their digest without parsing a record."""
    steps: dict[str, int] = Field(default_factory=dict)
    """Step counts of finished partitions, as ``<step>.<count>``."""
    errors: list[PartitionError] = Field(default_factory=list)
    """Last errors, newest last, at most ``MAX_ERRORS``."""
    skipped: list[str] = Field(default_factory=list)
    """Partitions skipped because another run was syncing them (last ``MAX_ERRORS``)."""
    warnings: list[str] = Field(default_factory=list)
    """Things an operator should look at although nothing failed (e.g. 0 partitions listed
    where the last listing had some)."""
    notices: list[str] = Field(default_factory=list)
    """What the run noticed and acted on, e.g. a recreated topic that voided the cache."""
    would: DryRunKeys | None = None
    """Dry runs: first keys finished partitions would have changed (carried across
    continue-as-new)."""
