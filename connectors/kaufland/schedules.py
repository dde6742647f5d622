"""The default schedule of ``kaufland-orders`` (its registry entry names it)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from connectors.kaufland.reading import SOURCE
from connectors.kaufland.settings import KauflandSettings
from models.schedules import ScheduleDef

if TYPE_CHECKING:
    from settings import Settings


def kaufland_orders_schedules(settings: Settings) -> list[ScheduleDef]:
    """Every ``KAUFLAND_ORDERS_INTERVAL_MINUTES``, overlap SKIP.

    A run still going when the next is due makes that one skip, so passes of a storefront
    never overlap.
    """
    minutes = settings.section(KauflandSettings).orders_interval_minutes
    return [
        ScheduleDef(
            "synchub-kaufland-orders",
            SOURCE,
            timedelta(minutes=minutes),
            note="Kaufland order units per storefront (KAUFLAND_ORDERS_INTERVAL_MINUTES)",
            overlap="skip",
        )
    ]


__all__ = ["kaufland_orders_schedules"]
