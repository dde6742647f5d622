"""When I Work (WIW) shifts: the registry entry of the ``wiw`` source.

Replaces slot_sync: every run fetches the day partitions of ``[today - SYNC_DAYS_PRIOR,
today + SYNC_DAYS_AHEAD]`` and publishes changed shifts to ``KAFKA_TOPIC_NAME``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import ConnectorSpec, iso_day
from connectors.wiw.client import WiwAuth, WiwClient
from connectors.wiw.connector import WiwConnector
from models.errors import NotConfiguredError

if TYPE_CHECKING:
    from settings import Settings


class WiwParams(BaseModel):
    """Per-run parameters of a WIW sync (defaults come from the worker's settings)."""

    model_config = ConfigDict(extra="forbid")

    days_ahead: int | None = Field(None, ge=0, le=366)
    """Days after today to sync this run instead of ``SYNC_DAYS_AHEAD``."""
    days_prior: int | None = Field(None, ge=0, le=366)
    """Days before today to sync this run instead of ``SYNC_DAYS_PRIOR``."""


def build_wiw(settings: Settings) -> WiwConnector:
    """Build the connector from the worker's settings.

    Raises:
        NotConfiguredError: neither a token nor a complete login is set; names the settings.
    """
    if not settings.wiw.configured:
        raise NotConfiguredError(
            "When I Work is not configured: set WIW_KEY (a pre-issued token), or "
            "WIW_DEVELOPER_KEY, WIW_EMAIL and WIW_PASSWORD to log in",
            setting="WIW_KEY",
        )
    return WiwConnector(
        WiwClient(settings.wiw),
        topic=settings.kafka.wiw_topic,
        timezone=settings.sync.timezone,
        days_ahead=settings.sync.days_ahead,
        days_prior=settings.sync.days_prior,
    )


SPEC = ConnectorSpec(
    source="wiw",
    build=build_wiw,
    params=WiwParams,
    description="When I Work shifts, one partition per day of the sync window",
    check_partition=lambda partition, _: iso_day(partition, "a WIW partition"),
    simulator="simulators.wiw",
)

__all__ = ["SPEC", "WiwAuth", "WiwClient", "WiwConnector", "WiwParams", "build_wiw"]
