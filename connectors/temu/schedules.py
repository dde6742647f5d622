"""The default schedules of the two TEMU sources (their registry entries name them).

Orders every few minutes; inventory in quick runs between nightly full ones, offset so the two
inventory schedules never fire together.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from models.schedules import ScheduleDef

if TYPE_CHECKING:
    from settings import Settings


def temu_orders_schedules(settings: Settings) -> list[ScheduleDef]:
    """Every ``TEMU_ORDERS_INTERVAL_MINUTES``."""
    return [
        ScheduleDef(
            "synchub-temu-orders",
            "temu-orders",
            timedelta(minutes=settings.temu.orders_interval_minutes),
            note="TEMU orders per shop + shipment confirmations (TEMU_ORDERS_INTERVAL_MINUTES)",
        )
    ]


def temu_inventory_schedules(settings: Settings) -> list[ScheduleDef]:
    """Quick runs every ``TEMU_INVENTORY_INTERVAL_MINUTES``, a full one by cron (nightly).

    The quick schedule fires half an interval off the multiples of its interval, so it does
    not fire at the full run's time of day and hold the shops' children the full run needs.
    """
    every = timedelta(minutes=settings.temu.inventory_interval_minutes)
    return [
        ScheduleDef(
            "synchub-temu-inventory-quick",
            "temu-inventory",
            every,
            params={"mode": "quick"},
            note="TEMU stock, SKUs changed in the ERP + last failures "
            "(TEMU_INVENTORY_INTERVAL_MINUTES)",
            offset=every / 2,
            id_suffix="scheduled-quick",
        ),
        ScheduleDef(
            "synchub-temu-inventory-full",
            "temu-inventory",
            None,
            params={"mode": "full"},
            note="TEMU stock, every SKU re-checked (TEMU_INVENTORY_FULL_CRON)",
            cron=settings.temu.inventory_full_cron,
            id_suffix="scheduled-full",
        ),
    ]
