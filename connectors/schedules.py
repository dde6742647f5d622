"""The default schedules of the registered sources, as their registry entries declare them.

``infra.schedules`` turns them into Temporal Schedules; the freshness gauges read their
intervals (``source_intervals``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors import REGISTRY
from models.schedules import ScheduleDef

if TYPE_CHECKING:
    from settings import Settings


def schedule_definitions(settings: Settings, sources: list[str]) -> list[ScheduleDef]:
    """The default schedules of ``sources``, as their registry entries declare them.

    In registry order, whatever the order of ``sources``, so ``schedules apply`` lists them
    the same way every time.
    """
    wanted = set(sources)
    return [
        d
        for source, spec in REGISTRY.items()
        if source in wanted and spec.schedules is not None
        for d in spec.schedules(settings)
    ]


def source_intervals(settings: Settings, sources: list[str]) -> dict[str, float]:
    """Seconds between scheduled runs per source (the shortest, if it has two schedules)."""
    out: dict[str, float] = {}
    for d in schedule_definitions(settings, sources):
        if d.every is not None:
            secs = d.every.total_seconds()
            out[d.source] = min(secs, out.get(d.source, secs))
    return out
