"""TEMU inventory reconciliation as a registry entry: the shops to fan out over.

Inventory is not "pages of records": each shop's child (``TemuInventoryWorkflow``) runs the
activities of ``activities.temu_inventory`` (desired stock from the ERP's Kafka topic ->
current TEMU stock -> diff -> stock edits). The generic engine only needs this connector to
list the shops and to validate the run's parameters: it is a ``Connector`` but not a
``PagedConnector`` (it has no pages, no lookups).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import ConnectorSpec, check_shop
from connectors.temu.client import TemuClient, shop_clients
from connectors.temu.schedules import temu_inventory_schedules
from models.errors import InvalidParamsError

if TYPE_CHECKING:
    from settings import Settings

SOURCE = "temu-inventory"
CHILD_WORKFLOW = "TemuInventoryWorkflow"


class TemuInventoryParams(BaseModel):
    """Run parameters of ``temu-inventory`` (the seed's ``mode="quick"|"full"``)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["quick", "full"] = "quick"
    """``quick``: SKUs whose desired stock changed since the last run, plus the ones TEMU
    rejected last time; ``full``: every SKU the ERP ever published (nightly)."""
    shops: list[str] | None = None
    """Only these shops (ids from TEMU_SHOPS)."""
    batch_size: int = Field(default=100, ge=1, le=100)
    """SKUs per batch: one stock query (TEMU takes at most 100 codes) and its edits."""


def inventory_params(params: dict[str, Any]) -> TemuInventoryParams:
    """Validate ``params``.

    Raises:
        InvalidParamsError: naming the first bad parameter.
    """
    try:
        return TemuInventoryParams.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "params"
        raise InvalidParamsError(f"invalid {SOURCE} parameters: {where}: {err['msg']}") from None


class TemuInventoryConnector:
    """The shops of ``temu-inventory``; the work itself is done by the inventory activities.

    Args:
        clients: one ``TemuClient`` per shop id (owned: closed by ``aclose``); the inventory
            activities share them.
        topic: Kafka topic of the audit events (``temu.inventory.changes``).
        redis: the rate limiter's Redis client (owned: closed by ``aclose``).
    """

    source = SOURCE
    partition_noun = "shop"

    def __init__(
        self,
        clients: Mapping[str, TemuClient],
        *,
        topic: str,
        redis: aioredis.Redis | None = None,
    ) -> None:
        self.clients = dict(clients)
        self.topic = topic
        self._redis = redis

    async def list_partitions(self, params: dict[str, Any]) -> list[str]:
        """The configured shops, or those named in ``shops``."""
        wanted = inventory_params(params).shops
        if wanted is None:
            return list(self.clients)
        unknown = sorted(set(wanted) - set(self.clients))
        if unknown:
            raise InvalidParamsError(
                f"unknown TEMU shops {', '.join(unknown)}; configured in TEMU_SHOPS: "
                f"{', '.join(self.clients) or 'none'}"
            )
        return [s for s in self.clients if s in set(wanted)]

    async def aclose(self) -> None:
        """Close every shop's HTTP client and the rate limiter's Redis pool."""
        for client in self.clients.values():
            await client.aclose()
        if self._redis is not None:
            await self._redis.aclose()


def build_temu_inventory(settings: Settings) -> TemuInventoryConnector:
    """One client per configured shop, sharing one Redis rate limiter per app key.

    The limiter's state lives in Redis under the app key, so these clients and the order
    connector's clients of the same shops stay under TEMU's limit together.
    """
    clients, redis = shop_clients(settings)
    return TemuInventoryConnector(clients, topic=settings.temu.inventory_topic, redis=redis)


SPEC = ConnectorSpec(
    source=SOURCE,
    build=build_temu_inventory,
    schedules=temu_inventory_schedules,
    params=TemuInventoryParams,
    description="TEMU stock per shop reconciled with the ERP's erp.stock topic (quick|full)",
    child_workflow=CHILD_WORKFLOW,
    check_partition=check_shop,
    simulator="simulators.temu",
    topics=lambda settings: [settings.temu.stock_topic],
    activities="activities.temu_inventory:worker_activities",
)

__all__ = [
    "SPEC",
    "TemuInventoryConnector",
    "TemuInventoryParams",
    "build_temu_inventory",
    "inventory_params",
]
