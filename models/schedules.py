"""A source's default schedules, declared in its registry entry (``ConnectorSpec.schedules``).

A plain description: ``infra.schedules`` turns it into a Temporal Schedule. It lives in
``models`` so connectors can declare their schedules without importing the Temporal client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

Overlap = Literal[
    "skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other", "allow_all"
]
"""What Temporal does with a run that is due while the previous one still runs
(``ScheduleOverlapPolicy``, lower case)."""


@dataclass(frozen=True)
class ScheduleDef:
    """One schedule synchub manages.

    ``schedule_id`` and ``id_suffix`` are what a deployment's schedule is found and updated
    by: changing either creates a second schedule instead of updating the first.
    """

    schedule_id: str
    source: str
    every: timedelta | None
    """Interval; ``None`` when ``cron`` says when."""
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    cron: str | None = None
    """Cron expression (UTC), for runs at a time of day (the nightly full inventory)."""
    offset: timedelta = timedelta(0)
    """Shift of the interval's firing times (intervals fire at multiples of ``every`` since
    the epoch): keeps a frequent schedule off the times a cron schedule of the same source
    fires, whose children it would otherwise hold (they would be skipped)."""
    id_suffix: str = "scheduled"
    """Workflow id of its runs: ``syncall/<source>/<id_suffix>-<time>``; sources with two
    schedules need two suffixes."""
    overlap: Overlap = "skip"
    """SKIP is what ``max_instances=1, coalesce=True`` meant under APScheduler: a run that is
    due while the previous one still runs is dropped, not queued."""
