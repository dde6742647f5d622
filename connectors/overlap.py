"""Where an incremental pass starts reading (TEMU orders, Kaufland orders): the overlap rule.

A pass re-reads ``overlap_seconds`` before its checkpoint, so changes an upstream lists late
(index lag) or stamps with a skewed clock are still read; fingerprints keep the re-read from
being published again. ``days_back`` (a run parameter) overrides it; a partition without a
checkpoint reads its first days.
"""

from __future__ import annotations

DAY_SECONDS = 86_400


def pass_start(
    now: int,
    since: int | None,
    *,
    days_back: int | None,
    overlap_seconds: int,
    first_pass_days: int,
) -> int:
    """The epoch second a pass reads from, given its checkpoint ``since`` (``None``: none yet)."""
    if days_back is not None:
        return now - days_back * DAY_SECONDS
    if since is not None:
        return since - overlap_seconds
    return now - first_pass_days * DAY_SECONDS
