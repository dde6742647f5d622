"""Settings of the Kaufland source (``KAUFLAND_*``), its own section of the settings tree.

The registry entry declares it (``ConnectorSpec.settings``), so ``load_settings`` collects it
and the builder reads it with ``settings.section(KauflandSettings)``; its variables are
documented in ``connectors/kaufland/README.md``.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from models.settings_section import Section, env

KAUFLAND_API_URL = "https://sellerapi.kaufland.com/v2"
"""Base URL of the Marketplace Seller API v2 (all storefronts share it)."""

_STOREFRONT = re.compile(r"^[a-z]{2}$")


class KauflandSettings(Section):
    """Kaufland Marketplace Seller API keys, storefronts and the order sync's topic and timing."""

    client_key: SecretStr | None = Field(
        default=None, validation_alias=env("client_key", "KAUFLAND_CLIENT_KEY")
    )
    """Client key of the seller account (32 characters, API settings page): sent as
    ``Shop-Client-Key``; kept out of logs like a secret."""
    secret_key: SecretStr | None = Field(
        default=None, validation_alias=env("secret_key", "KAUFLAND_SECRET_KEY")
    )
    """Secret key (64 characters) that signs every request; never sent."""
    storefronts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=env("storefronts", "KAUFLAND_STOREFRONTS")
    )
    """Storefronts to sync, comma-separated two-letter codes (``de,cz,sk``); one partition
    (child workflow) each."""
    api_url: str = Field(
        default=KAUFLAND_API_URL, validation_alias=env("api_url", "KAUFLAND_API_URL")
    )
    """Base URL (the simulator's ``.../v2`` in the dev stack and tests)."""
    user_agent: str = Field(
        default="synchub", validation_alias=env("user_agent", "KAUFLAND_USER_AGENT")
    )
    """``User-Agent`` header: Kaufland asks for the name of the partner solution."""
    timeout_seconds: float = Field(
        default=30.0, gt=0, validation_alias=env("timeout_seconds", "KAUFLAND_TIMEOUT_SECONDS")
    )
    """HTTP timeout per request."""
    orders_topic: str = Field(
        default="kaufland.orders",
        validation_alias=env("orders_topic", "KAFKA_KAUFLAND_ORDERS_TOPIC"),
    )
    """Changed order units."""
    orders_interval_minutes: int = Field(
        default=5,
        ge=1,
        validation_alias=env("orders_interval_minutes", "KAUFLAND_ORDERS_INTERVAL_MINUTES"),
    )
    """Schedule interval of the order sync."""
    orders_overlap_seconds: int = Field(
        default=600,
        ge=0,
        validation_alias=env("orders_overlap_seconds", "KAUFLAND_ORDERS_OVERLAP_SECONDS"),
    )
    """Seconds before the checkpoint every pass reads again, for the order-unit list's index
    lag (the checkpoint is in Kaufland's own time, so clock skew needs no extra room)."""

    @field_validator("storefronts", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("storefronts")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        codes = [v.lower() for v in value]
        bad = [v for v in codes if not _STOREFRONT.match(v)]
        if bad:
            raise ValueError(
                f"KAUFLAND_STOREFRONTS: storefronts are two-letter codes such as de or cz, "
                f"got {', '.join(repr(b) for b in bad)}"
            )
        if len(set(codes)) != len(codes):
            raise ValueError("KAUFLAND_STOREFRONTS: each storefront may be named once")
        return codes

    @property
    def configured(self) -> bool:
        """Both keys and at least one storefront are set."""
        return bool(self.client_key and self.secret_key and self.storefronts)

    def missing(self) -> list[str]:
        """Names of the variables still to set, for ``NotConfiguredError``."""
        return [
            name
            for name, value in (
                ("KAUFLAND_CLIENT_KEY", self.client_key),
                ("KAUFLAND_SECRET_KEY", self.secret_key),
                ("KAUFLAND_STOREFRONTS", self.storefronts),
            )
            if not value
        ]


__all__ = ["KAUFLAND_API_URL", "KauflandSettings"]
