"""Inputs and results of the generic sync workflows and activities.

A run's progress (state, counters, errors) is ``models.progress``, re-exported here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# re-exported (``X as X``): workflows, activities and the CLI read a run's progress here
from models.progress import MAX_DRY_RUN_KEYS as MAX_DRY_RUN_KEYS
from models.progress import MAX_ERRORS as MAX_ERRORS
from models.progress import DryRunKeys as DryRunKeys
from models.progress import PartitionCounts as PartitionCounts
from models.progress import PartitionError as PartitionError
from models.progress import Progress as Progress
from models.progress import RecordCounts as RecordCounts
from models.progress import RunState as RunState


class ListPartitionsInput(BaseModel):
    """Input of the ``list_partitions`` activity."""

    source: str
    params: dict[str, Any] = Field(default_factory=dict)
    only: list[str] | None = None
    """Restrict to these partitions (still validated against what the upstream lists)."""
    resync: bool = False
    """Void the cache of the listed partitions first, so their current state is published
    again under the same event ids (``starter.py resync``)."""
    dry_run: bool = False
    """List only: create no topic, void no cache, remember no listing."""


class ListPartitionsResult(BaseModel):
    """Partition ids, in the order they should be synced."""

    partitions: list[str]
    noun: str = "partition"
    """What a partition is ("day", "employee"), for log lines."""
    steps: list[str] = Field(default_factory=list)
    """Step activities each partition runs after its pages (from the connector's spec)."""
    child_workflow: str = "SyncPartitionWorkflow"
    """Workflow type run per partition (from the connector's spec)."""
    warning: str | None = None
    """Set when the listing looks wrong without being an error: 0 partitions where the
    source's last listing had some."""
    cache_voided: str | None = None
    """Why the cache was voided before this run (recreated topic, resync), if it was."""


class SyncAllInput(BaseModel):
    """Input of ``SyncAllWorkflow``; everything has a default so schedules can start it bare."""

    source: str
    """Registered connector name, e.g. ``wiw``."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Connector parameters (never secrets), e.g. ``days_ahead``."""
    max_concurrent: int = 20
    """Partition workflows running at once."""
    partitions: list[str] | None = None
    """Sync only these partitions; ``None`` = all the connector lists."""
    resync: bool = False
    """Publish the current state again, ignoring the cache (same event ids)."""
    children_per_run: int = 500
    """Continue as new after starting this many children, so history stays small however
    many partitions there are (each child costs about ten events in this history)."""
    # continue-as-new carry-over
    remaining: list[str] | None = None
    """Partitions not started yet (set when continuing as new)."""
    carried: Progress | None = None
    """Progress of earlier runs of this chain (set when continuing as new)."""
    noun: str = "partition"
    """What a partition is, carried across continue-as-new for log lines."""
    steps: list[str] = Field(default_factory=list)
    """Step activities of each partition, carried across continue-as-new."""
    child_workflow: str = "SyncPartitionWorkflow"
    """Workflow type per partition, carried across continue-as-new."""
    dry_run: bool = False
    """Fetch, diff and look up as usual, but publish nothing and commit nothing; the result
    says what would have been upserted, deleted and dead-lettered (``run --dry-run``)."""


class SyncAllResult(BaseModel):
    """Summary of a sync-all run."""

    source: str
    state: RunState
    partitions: PartitionCounts
    records: RecordCounts
    pages: int = 0
    """Pages committed by all partitions."""
    unchanged_pages: int = 0
    """Pages proven unchanged by their digest (the no-change hot path)."""
    steps: dict[str, int] = Field(default_factory=dict)
    """Step counts added up over partitions, as ``<step>.<count>``
    (e.g. ``confirm_shipments.confirmed``)."""
    failed: list[PartitionError] = Field(default_factory=list)
    """Failed partitions and why (bounded)."""
    skipped: list[str] = Field(default_factory=list)
    """Partitions skipped because another run was syncing them (bounded)."""
    warnings: list[str] = Field(default_factory=list)
    """Things to look at although the run completed (see ``Progress.warnings``)."""
    notices: list[str] = Field(default_factory=list)
    """What the run noticed and acted on, e.g. a recreated topic that voided the cache."""
    dry_run: bool = False
    """Nothing was published or committed: the counts say what a run would have done."""
    would: DryRunKeys | None = None
    """Dry runs: the first keys that would have been upserted, deleted, dead-lettered."""


class SyncPartitionInput(BaseModel):
    """Input of ``SyncPartitionWorkflow``."""

    source: str
    partition: str
    params: dict[str, Any] = Field(default_factory=dict)
    steps: list[str] = Field(default_factory=list)
    """Step activities to run after the pages, in order (see ``ConnectorSpec.steps``)."""
    # continue-as-new carry-over
    cursor: str | None = None
    """Cursor to resume from; ``None`` = the connector's start."""
    run_token: str | None = None
    """Identifies this sync pass in Redis (seen keys); kept across continue-as-new."""
    carried: RecordCounts | None = None
    """Counts of earlier runs of this chain."""
    pages: int = 0
    """Pages committed by earlier runs of this chain."""
    unchanged_pages: int = 0
    """Pages of earlier runs of this chain proven unchanged by their digest."""
    checkpoint: str | None = None
    """Latest checkpoint returned by a page of this pass (carried across continue-as-new)."""
    carried_steps: dict[str, int] = Field(default_factory=dict)
    """Step counts of earlier runs of this chain (child workflows that count per step,
    e.g. TEMU inventory's ``not_listed``/``failed``/``applied``)."""
    dry_run: bool = False
    """Publish and commit nothing, run no step (see ``SyncAllInput.dry_run``)."""
    carried_would: DryRunKeys | None = None
    """Dry runs: keys named by earlier runs of this chain."""
    local_pass: bool = False
    """Start with the ``sync_partition_pass`` local activity (the first pages, and the
    finish when they are all): one workflow task and no activity task for a small partition.
    ``SyncAllWorkflow`` sets it; False (runs started before it existed) replays the
    ``sync_page`` + ``finish_partition`` activities."""


class SyncPartitionResult(BaseModel):
    """Result of one partition."""

    source: str
    partition: str
    state: RunState
    records: RecordCounts
    pages: int
    unchanged_pages: int = 0
    """Pages proven unchanged by their digest."""
    steps: list[StepResult] = Field(default_factory=list)
    """What each step did, or why it failed."""
    would: DryRunKeys | None = None
    """Dry runs: the first keys that would have been upserted, deleted, dead-lettered."""


class StepInput(BaseModel):
    """Input of a partition step activity (e.g. ``confirm_shipments``)."""

    source: str
    partition: str
    run_token: str
    params: dict[str, Any] = Field(default_factory=dict)


class StepResult(BaseModel):
    """Counts of a step (e.g. ``{"confirmed": 3, "rejected": 1}``), or why it failed."""

    name: str = ""
    counts: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


class SyncPageInput(BaseModel):
    """Input of the ``sync_page`` activity: pages from ``cursor`` on, each committed in turn."""

    source: str
    partition: str
    run_token: str
    params: dict[str, Any] = Field(default_factory=dict)
    cursor: str | None = None
    max_pages: int = 50
    """Pages one activity may do: each page as its own activity costs Temporal about seven
    history events and two round trips, which dominates when pages are small."""
    budget_seconds: float = 10.0
    """Start no further page after this long, so stop and pause act within seconds."""
    dry_run: bool = False
    """Diff as usual, publish and commit nothing (only the pass's seen keys, for the
    finish step's missing keys); the result names the first keys it would have changed."""


class SyncPageResult(BaseModel):
    """Counts and where to go next; never the records."""

    records: RecordCounts
    next_cursor: str | None
    """``None`` when the partition has no more pages."""
    pages: int = 1
    """Pages committed by this activity."""
    unchanged_pages: int = 0
    """Of those, pages proven unchanged by their digest without a per-record compare."""
    checkpoint: str | None = None
    """Checkpoint to store once the whole pass has completed (incremental connectors)."""
    would: DryRunKeys | None = None
    """Dry runs: the first keys these pages would have changed."""


class FinishPartitionInput(BaseModel):
    """Input of the ``finish_partition`` activity."""

    source: str
    partition: str
    run_token: str
    params: dict[str, Any] = Field(default_factory=dict)
    complete: bool = True
    """False when the partition was stopped early: then nothing is treated as missing."""
    checkpoint: str | None = None
    """Stored when ``complete``: where the next pass of an incremental connector starts."""
    dry_run: bool = False
    """Look up the missing keys, publish and commit nothing, store no checkpoint."""


class FinishPartitionResult(BaseModel):
    """What resolving the missing keys did."""

    records: RecordCounts
    missing: int = 0
    """Keys cached for the partition but absent from this pass."""
    would: DryRunKeys | None = None
    """Dry runs: the first keys the lookups would have changed."""


class PartitionPassInput(BaseModel):
    """Input of the ``sync_partition_pass`` local activity.

    A partition's first pages, and its finish when they are all of it.

    A small partition (an employee's calendar) then costs its workflow one workflow task and
    no activity task, where ``sync_page`` + ``finish_partition`` cost three and two: the
    Temporal round trips, not the pages, were what limited a run of many small partitions.
    """

    source: str
    partition: str
    run_token: str
    params: dict[str, Any] = Field(default_factory=dict)
    max_pages: int = 50
    """Pages this pass may do; what is left goes on in ``sync_page`` activities."""
    budget_seconds: float = 8.0
    """Start no further page after this long; a longer partition goes on in ``sync_page``
    activities. The pass holds its workflow task, which the SDK extends at 8 s (80 % of its
    10 s timeout) and warns about past 5 s (TMPRL1104): a 13-page calendar takes well under
    1 s, but on an overloaded worker a short budget sent half of them on to activities,
    which cost more than the pass saved. Stop and pause act after the pass, as after a page
    activity."""
    finish: bool = True
    """Also resolve missing keys when the pages are through (False when steps must run
    between the pages and the finish)."""


class PartitionPassResult(BaseModel):
    """What the pass did: page counts and cursor, and the finish when it ran."""

    pages: SyncPageResult
    """Counts, pages and the next cursor (``None`` when the pages are through)."""
    finished: FinishPartitionResult | None = None
    """Set when the pass also finished the partition (no missing keys to look up)."""
