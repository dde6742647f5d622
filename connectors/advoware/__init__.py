"""Advoware calendar appointments: the registry entry of the ``advoware`` source.

Replaces bitbylaw's calendar sync steps: every run lists the active employees (optionally
only ``CALENDAR_SYNC_DEBUG_KUERZEL``), and for each one fetches the appointments of
``[today - ADVOWARE_DAYS_BACK, today + ADVOWARE_DAYS_AHEAD]`` in pages of
``ADVOWARE_PAGE_DAYS`` days and publishes changed ones to ``KAFKA_ADVOWARE_TOPIC``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from connectors.advoware.client import AdvowareAuth, AdvowareClient, sign
from connectors.advoware.connector import AdvowareConnector, kuerzel_partition
from connectors.base import ConnectorSpec
from models.errors import NotConfiguredError

if TYPE_CHECKING:
    from settings import Settings

_REQUIRED = (
    ("app_id", "ADVOWARE_APP_ID"),
    ("api_key", "ADVOWARE_API_KEY"),
    ("kanzlei", "ADVOWARE_KANZLEI"),
    ("database", "ADVOWARE_DATABASE"),
    ("user", "ADVOWARE_USER"),
    ("password", "ADVOWARE_PASSWORD"),
)


class AdvowareParams(BaseModel):
    """Per-run parameters of an Advoware sync (defaults come from the worker's settings)."""

    model_config = ConfigDict(extra="forbid")

    days_back: int | None = Field(None, ge=0, le=3660)
    """Days before today to sync this run instead of ``ADVOWARE_DAYS_BACK``."""
    days_ahead: int | None = Field(None, ge=0, le=3660)
    """Days after today to sync this run instead of ``ADVOWARE_DAYS_AHEAD``."""
    full_content: bool | None = None
    """Publish subject, notes, location and case this run instead of ``ADVOWARE_FULL_CONTENT``."""
    full_content_kuerzel: dict[str, bool] | None = None
    """Per-employee override of ``full_content`` (Kürzel -> bool), e.g. ``{"SB": false}``."""


def build_advoware(settings: Settings) -> AdvowareConnector:
    """Build the connector from the worker's settings.

    Raises:
        NotConfiguredError: a credential or the API address is missing; names the settings.
    """
    adv = settings.advoware
    missing = [env for field, env in _REQUIRED if getattr(adv, field) is None]
    if not adv.api_url and not adv.discovery_url:
        missing.append("ADVOWARE_API_URL (or ADVOWARE_DISCOVERY_URL)")
    if missing:
        raise NotConfiguredError(
            f"Advoware is not configured: set {', '.join(missing)}",
            setting=missing[0].split(" ")[0],
        )
    return AdvowareConnector(
        AdvowareClient(adv),
        topic=settings.kafka.advoware_topic,
        days_back=adv.days_back,
        days_ahead=adv.days_ahead,
        page_days=adv.page_days,
        full_content=adv.full_content,
        debug_kuerzel=adv.debug_list,
        lookup_concurrency=adv.lookup_concurrency,
    )


SPEC = ConnectorSpec(
    source="advoware",
    build=build_advoware,
    params=AdvowareParams,
    description="Advoware calendar appointments, one partition per employee (Kürzel)",
    check_partition=lambda partition, _: kuerzel_partition(partition),
    simulator="simulators.advoware",
)

__all__ = [
    "SPEC",
    "AdvowareAuth",
    "AdvowareClient",
    "AdvowareConnector",
    "AdvowareParams",
    "build_advoware",
    "sign",
]
