"""TEMU settings: shops (with their secrets), rate limit, topics and schedules."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

from models.settings_section import Section, env


class TemuShop(BaseModel):
    """One TEMU shop (region + app + seller token). Only ``id`` ever leaves the worker."""

    id: str
    """Shop id used in workflow ids, inputs and Redis keys, e.g. ``us-main``."""
    region: str = "us"
    """``us``, ``eu`` or ``global``: picks the router host; app, token and host must match."""
    app_key: str
    """App key of the TEMU app (not secret, but kept in the worker)."""
    app_secret: SecretStr
    """App secret that signs every request."""
    access_token: SecretStr
    """Seller access token of the shop."""
    api_url: str | None = None
    """Router URL override (the simulator's address in the dev stack and tests)."""

    model_config = {"extra": "forbid"}


TEMU_HOSTS = {
    "us": "https://openapi-b-us.temu.com/openapi/router",
    "eu": "https://openapi-b-eu.temu.com/openapi/router",
    "global": "https://openapi-b-global.temu.com/openapi/router",
}
"""Router host per region (TEMU Open Platform, partner API)."""


class TemuSettings(Section):
    """TEMU shops, rate limit and topics of the order and inventory workflows."""

    shops: list[TemuShop] = Field(default_factory=list, validation_alias=env("shops", "TEMU_SHOPS"))
    """JSON list of shops: ``[{"id", "region", "app_key", "app_secret", "access_token"}]``."""
    rate_limit_qps: float = Field(
        default=20.0, gt=0, validation_alias=env("rate_limit_qps", "TEMU_RATE_LIMIT_QPS")
    )
    """Requests per second per app key, shared by every worker process through Redis."""
    timeout_seconds: float = Field(
        default=30.0, gt=0, validation_alias=env("timeout_seconds", "TEMU_TIMEOUT_SECONDS")
    )
    """HTTP timeout per request."""
    orders_topic: str = Field(
        default="temu.orders", validation_alias=env("orders_topic", "KAFKA_TEMU_ORDERS_TOPIC")
    )
    """Changed parent orders."""
    inventory_topic: str = Field(
        default="temu.inventory.changes",
        validation_alias=env("inventory_topic", "KAFKA_TEMU_INVENTORY_TOPIC"),
    )
    """Audit events of applied stock changes."""
    shipments_topic: str = Field(
        default="erp.shipments",
        validation_alias=env("shipments_topic", "KAFKA_ERP_SHIPMENTS_TOPIC"),
    )
    """Shipment confirmations the ERP publishes (order, carrier, tracking number)."""
    stock_topic: str = Field(
        default="erp.stock", validation_alias=env("stock_topic", "KAFKA_ERP_STOCK_TOPIC")
    )
    """Desired stock per seller SKU (compacted, key = SKU) published by the ERP."""
    orders_interval_minutes: int = Field(
        default=5,
        ge=1,
        validation_alias=env("orders_interval_minutes", "TEMU_ORDERS_INTERVAL_MINUTES"),
    )
    """Schedule interval of the orders workflow."""
    orders_overlap_seconds: int = Field(
        default=600,
        ge=0,
        validation_alias=env("orders_overlap_seconds", "TEMU_ORDERS_OVERLAP_SECONDS"),
    )
    """Seconds before the checkpoint every orders pass reads again: TEMU's clock may be up
    to 300 s off the worker's and its list shows changes late (index lag); fingerprints
    keep the re-read from publishing twice. Values below 300 risk losing changes."""
    inventory_interval_minutes: int = Field(
        default=5,
        ge=1,
        validation_alias=env("inventory_interval_minutes", "TEMU_INVENTORY_INTERVAL_MINUTES"),
    )
    """Schedule interval of the quick inventory run (the full one runs nightly)."""
    inventory_full_cron: str = Field(
        default="0 2 * * *",
        validation_alias=env("inventory_full_cron", "TEMU_INVENTORY_FULL_CRON"),
    )
    """Cron expression (UTC) of the full inventory run: nightly at 02:00 by default."""

    @field_validator("shops")
    @classmethod
    def _unique_ids(cls, shops: list[TemuShop]) -> list[TemuShop]:
        ids = [s.id for s in shops]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"shop ids must be unique, repeated: {', '.join(dupes)}")
        for shop in shops:
            if shop.region not in TEMU_HOSTS and shop.api_url is None:
                raise ValueError(
                    f"shop {shop.id}: region must be one of {', '.join(TEMU_HOSTS)} "
                    "(or give api_url)"
                )
        return shops

    def shop(self, shop_id: str) -> TemuShop | None:
        """The shop with this id, if configured."""
        return next((s for s in self.shops if s.id == shop_id), None)
