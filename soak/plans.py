"""Which sources can be soaked, and the presets of a soak run.

A source plugs in with one line in ``PLANS`` (its ``SourcePlan`` subclass). The TEMU plan
places, pays, ships and cancels orders; the TEMU knobs of issue 10 plug into its
``faults`` and ``mutations`` lists.
"""

from __future__ import annotations

from soak.advoware_plan import AdvowarePlan
from soak.plan import Profile, SourcePlan
from soak.temu_plan import TemuOrdersPlan
from soak.wiw_plan import WiwPlan

PLANS: dict[str, type[SourcePlan]] = {
    "wiw": WiwPlan,
    "advoware": AdvowarePlan,
    "temu-orders": TemuOrdersPlan,
}
"""Source name -> its soak plan."""

PROFILES: dict[str, Profile] = {
    # make soak: a simulated month per source, the huge partition at 40,000 records; one
    # tick per simulated day keeps both sources under 10 minutes on 2 cores
    "month": Profile(
        days=30,
        tick_hours=24,
        records_per_day=200,
        big_partition=40_000,
        kills=2,
    ),
    # the default test suite: a simulated day and a half (past one midnight, so records age
    # out of the window), small data, one worker kill
    "short": Profile(
        days=1.5,
        tick_hours=6,
        records_per_day=60,
        big_partition=2_000,
        mass_move_every_days=1.0,
        mass_move_size=120,
        overlap_probability=0.3,
        kills=1,
        run_bound_seconds=90,
    ),
}
"""Presets by name (``python -m soak --profile``)."""
