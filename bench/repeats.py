"""Repetitions of a benchmark phase and their median.

One 10,000-shift engine phase takes 0.1-0.6 s of wall time on a shared 2-core machine, so
its records/s, and the ratio to the per-record loop, moved by about 20 % from one run to the
next: a single run could not say whether a ratio goal was met. The cheap sizes therefore run
each phase several times, for the engine and the loop alike, and the report shows the median
of the repetitions; every repetition's raw numbers stay in the results (``runs``).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

SMALL_SIZE_REPEATS = 3
"""Repetitions of every phase by default at sizes up to ``SMALL_SIZE_MAX``."""
SMALL_SIZE_MAX = 20_000
"""Largest size repeated by default; above it a phase runs once (minutes, not seconds)."""
MEDIANS = {
    "wall_seconds": 3,
    "records_per_second": 1,
    "cpu_seconds": 3,
    "cpu_us_per_record": 1,
}
"""Fields reported as the median over the repetitions, with their rounding."""


def repeats_for(size: int, requested: int | None) -> int:
    """How many times each phase runs at ``size`` shifts.

    Args:
        size: Shifts of the runs.
        requested: ``--repeats`` (applies to every size), or None for the default rule:
            ``SMALL_SIZE_REPEATS`` up to ``SMALL_SIZE_MAX`` shifts, 1 above.

    """
    if requested is not None:
        return requested
    return SMALL_SIZE_REPEATS if size <= SMALL_SIZE_MAX else 1


def changed_ids(ids: Sequence[int], count: int, repetition: int) -> list[int]:
    """The shifts to change before repetition ``repetition`` of the 1 % phase.

    Every ``len(ids) // count``-th shift, starting one further along at each repetition, so
    that each repetition changes shifts the previous one did not (as long as the stride
    allows; the caller also gives every repetition a note of its own, so a reused shift
    still really changes).

    Args:
        ids: Every shift id, in creation order.
        count: How many to change (at least 1, at most ``len(ids)``).
        repetition: 0 for the first repetition.

    """
    stride = max(1, len(ids) // count)
    # start < stride and len(ids) >= count * stride: at least ``count`` ids from any start
    return list(ids[repetition % stride :: stride][:count])


def median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One phase's result from its repetitions: the median run, with medians of the rates.

    The returned dict is a copy of the run whose wall time is the median (the lower middle
    one for an even count), so every field the report and readers of the JSON know stays
    where it was; the ``MEDIANS`` fields are then replaced by the median over all runs (for
    an odd count that is the same run's wall and records/s), ``peak_rss_mib`` by the highest
    peak of any run (a peak), and ``repeats`` and ``runs`` (every run as measured) added.

    Raises:
        ValueError: no runs.

    """
    if not runs:
        raise ValueError("median_run needs at least one run")
    middle = sorted(runs, key=lambda r: r["wall_seconds"])[(len(runs) - 1) // 2]
    out = dict(middle)
    for name, digits in MEDIANS.items():
        values = [r[name] for r in runs if r.get(name) is not None]
        if len(values) == len(runs):
            out[name] = round(statistics.median(values), digits)
    peaks = [r["peak_rss_mib"] for r in runs if r.get("peak_rss_mib") is not None]
    if "peak_rss_mib" in middle:
        out["peak_rss_mib"] = max(peaks) if peaks else None
    out["repeats"] = len(runs)
    out["runs"] = [dict(r) for r in runs]
    return out
