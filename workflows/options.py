"""Timeouts, retry presets, ids and search attributes: every activity call names one of these.

Activity names are in ``models/activity_names.py``: activities import them too, and they must
not import workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

SOURCE_ATTR = SearchAttributeKey.for_keyword("SynchubSource")
"""Search attribute: which upstream a workflow syncs (``temporal workflow list --query``)."""
STATE_ATTR = SearchAttributeKey.for_keyword("SynchubState")
"""Search attribute: the run state (``RunState``)."""
SEARCH_ATTRIBUTES = {SOURCE_ATTR.name: "Keyword", STATE_ATTR.name: "Keyword"}
"""Custom attributes the worker and dev stack register."""


@dataclass(frozen=True, kw_only=True)
class ActivityOptions:
    """How long an activity may take and how it is retried: one preset per kind of call.

    Frozen, so no call site can change a preset for every other; a preset's values are
    recorded in each history that scheduled the activity.
    """

    start_to_close_timeout: timedelta
    """One attempt's time limit."""
    retry_policy: RetryPolicy
    """Backoff and which error types are not retried."""
    heartbeat_timeout: timedelta | None = None
    """A silent attempt is retried elsewhere after this; ``None``: the activity does not beat."""

    def config(self) -> workflow.ActivityConfig:
        """Keyword arguments of ``workflow.execute_activity``, only those this preset sets."""
        config = workflow.ActivityConfig(
            start_to_close_timeout=self.start_to_close_timeout, retry_policy=self.retry_policy
        )
        if self.heartbeat_timeout is not None:
            config["heartbeat_timeout"] = self.heartbeat_timeout
        return config


@dataclass(frozen=True, kw_only=True)
class LocalActivityOptions:
    """A local activity's preset: it runs in the workflow's worker and cannot heartbeat."""

    start_to_close_timeout: timedelta
    """One attempt's time limit."""
    retry_policy: RetryPolicy
    """Backoff and which error types are not retried."""
    local_retry_threshold: timedelta | None = None
    """A backoff longer than this waits on a workflow timer instead of in the worker (where
    the workflow task is held open meanwhile); ``None``: the SDK's default (one minute)."""

    def config(self) -> workflow.LocalActivityConfig:
        """Keyword arguments of ``workflow.execute_local_activity``, only those this preset sets."""
        config = workflow.LocalActivityConfig(
            start_to_close_timeout=self.start_to_close_timeout, retry_policy=self.retry_policy
        )
        if self.local_retry_threshold is not None:
            config["local_retry_threshold"] = self.local_retry_threshold
        return config


UPSTREAM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
    non_retryable_error_types=["PermanentError", "NotConfiguredError", "InvalidParamsError"],
)
"""Pages and lookups: about a minute of backoff, then the partition fails and says why;
the next run resumes from the last committed cursor."""

PAGE = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=10),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=UPSTREAM_RETRY,
)
"""One page: fetch, diff, publish, commit. Activities heartbeat every few seconds in the
background, so a crashed worker's page is retried elsewhere after 20 s."""

FINISH = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=30),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=UPSTREAM_RETRY,
)
"""Resolving missing keys: point lookups in chunks, heartbeating in the background."""

STEP = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=10),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=UPSTREAM_RETRY,
)
"""A partition step (e.g. confirming shipments): like a page, retried, then reported."""

LIST_PARTITIONS = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=5),
    retry_policy=UPSTREAM_RETRY,
)
"""Listing partitions (employees, days, shops): runs before ``LIST_LOCALLY_PATCH``."""

LIST_PARTITIONS_LOCAL = LocalActivityOptions(
    start_to_close_timeout=timedelta(minutes=5),
    retry_policy=UPSTREAM_RETRY,
    local_retry_threshold=timedelta(seconds=2),
)
"""Listing partitions as a local activity in the run's first workflow task (one upstream
request for Advoware, none for WIW): the same time limit and retries as the activity. The
first backoffs (1 s, 2 s) wait in the worker; longer ones (4 s on, or a 429's
``Retry-After``) wait on a workflow timer, so the run's workflow task is not held open for
them (signals and queries are answered meanwhile, a restarted worker resumes the wait)."""

INVENTORY_BATCH = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=10),
    heartbeat_timeout=timedelta(seconds=20),
    retry_policy=UPSTREAM_RETRY,
)
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


LOCAL_PASS = LocalActivityOptions(
    start_to_close_timeout=timedelta(minutes=10),
    retry_policy=UPSTREAM_RETRY,
)
"""The local partition pass: like a page (it is bounded by its own time budget), retried
by the worker; a crashed worker's pass is re-run after the workflow task timeout and
resumes at its first uncommitted page (its progress is kept in Redis, not in heartbeats)."""
