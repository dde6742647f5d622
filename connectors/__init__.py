"""The connector registry: one line per upstream source."""

from __future__ import annotations

from connectors.base import Connector, ConnectorSpec
from models.errors import InvalidParamsError

REGISTRY: dict[str, ConnectorSpec] = {}


def register(spec: ConnectorSpec) -> None:
    """Add a source (called once per line below)."""
    REGISTRY[spec.source] = spec


def get_spec(source: str) -> ConnectorSpec:
    """Registry entry of ``source``.

    Raises:
        InvalidParamsError: the source is unknown; lists the known ones.

    """
    try:
        return REGISTRY[source]
    except KeyError:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise InvalidParamsError(f"unknown source {source!r}; known sources: {known}") from None


__all__ = ["REGISTRY", "Connector", "ConnectorSpec", "get_spec", "register"]

from connectors.wiw import SPEC as _WIW  # noqa: E402

register(_WIW)
from connectors.advoware import SPEC as _ADVOWARE  # noqa: E402

register(_ADVOWARE)
from connectors.temu.connector import SPEC as _TEMU_ORDERS  # noqa: E402

register(_TEMU_ORDERS)
from connectors.temu.inventory import SPEC as _TEMU_INVENTORY  # noqa: E402

register(_TEMU_INVENTORY)
from connectors.kaufland.connector import SPEC as _KAUFLAND_ORDERS  # noqa: E402

register(_KAUFLAND_ORDERS)
