"""Timeouts, retry presets, ids and search attributes: every activity call names one of these."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy, SearchAttributeKey

SOURCE_ATTR = SearchAttributeKey.for_keyword("SynchubSource")
"""Search attribute: which upstream a workflow syncs (``temporal workflow list --query``)."""
STATE_ATTR = SearchAttributeKey.for_keyword("SynchubState")
"""Search attribute: the run state (``RunState``)."""
SEARCH_ATTRIBUTES = {SOURCE_ATTR.name: "Keyword", STATE_ATTR.name: "Keyword"}
"""Custom attributes the worker and dev stack register."""

# Activity names: workflows call activities by name, so they never import the I/O code.
LIST_PARTITIONS_ACTIVITY = "list_partitions"
SYNC_PAGE = "sync_page"
FINISH_PARTITION = "finish_partition"
LOAD_DESIRED_STOCK = "load_desired_stock"
"""TEMU inventory step 1: ERP desired stock -> Redis, and the run's work list."""
RECONCILE_STOCK_BATCH = "reconcile_stock_batch"
"""TEMU inventory steps 2-4 for one batch: read, diff, edit, audit."""
FINISH_STOCK_RUN = "finish_stock_run"
"""TEMU inventory: forget the run's work list."""

UPSTREAM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
    non_retryable_error_types=["PermanentError", "NotConfiguredError", "InvalidParamsError"],
)
"""Pages and lookups: about a minute of backoff, then the partition fails and says why;
the next run resumes from the last committed cursor."""

PAGE: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(seconds=20),
    "retry_policy": UPSTREAM_RETRY,
}
"""One page: fetch, diff, publish, commit. Activities heartbeat every few seconds in the
background, so a crashed worker's page is retried elsewhere after 20 s."""

FINISH: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=30),
    "heartbeat_timeout": timedelta(seconds=20),
    "retry_policy": UPSTREAM_RETRY,
}
"""Resolving missing keys: point lookups in chunks, heartbeating in the background."""

STEP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(seconds=20),
    "retry_policy": UPSTREAM_RETRY,
}
"""A partition step (e.g. confirming shipments): like a page, retried, then reported."""

LIST_PARTITIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=5),
    "retry_policy": UPSTREAM_RETRY,
}
"""Listing partitions (employees, days, shops)."""

INVENTORY_BATCH: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(seconds=20),
    "retry_policy": UPSTREAM_RETRY,
}
"""One inventory batch (a stock query and up to 100 edits, ~6 s at 19 requests/s) or the
desired-stock load; heartbeating in the background like a page."""

PARTITION_HISTORY_LIMIT = 2_000
"""Continue a partition workflow as new past this many events (pages, not records)."""


def partition_workflow_id(source: str, partition: str) -> str:
    """The per-partition lock: one running sync per id."""
    return f"sync/{source}/{partition}"


def sync_all_workflow_id(source: str, suffix: str) -> str:
    """Id of a sync-all run started by hand (schedules add their own timestamp)."""
    return f"syncall/{source}/{suffix}"


SYNC_PARTITION_PASS = "sync_partition_pass"
"""Local activity: a partition's first pages (and its finish when they are all of it)."""

LOCAL_PASS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=10),
    "retry_policy": UPSTREAM_RETRY,
}
"""The local partition pass: like a page (it is bounded by its own time budget), retried
by the worker; a crashed worker's pass is re-run after the workflow task timeout and
resumes at its first uncommitted page (its progress is kept in Redis, not in heartbeats)."""
