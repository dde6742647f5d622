"""The ``Connector`` protocol is what every source has; pages are a capability of their own.

TEMU inventory lists shops but has no pages or lookups: it must not carry methods that
could only raise, and a page activity started for it by mistake must fail at once with a
non-retryable error that says why, not an ``AttributeError`` retried for ever.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from connectors.base import Connector, PagedConnector, paged
from connectors.temu.inventory import TemuInventoryConnector
from connectors.wiw import build_wiw
from models.errors import NotConfiguredError, PermanentError
from settings import Settings, WiwSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_inventory_lists_shops_but_has_no_pages() -> None:
    inventory: Connector = TemuInventoryConnector({}, topic="temu.inventory.changes")
    assert not hasattr(inventory, "fetch_page")
    assert not hasattr(inventory, "lookup")
    assert not isinstance(inventory, PagedConnector)
    assert await inventory.list_partitions({}) == []
    with pytest.raises(NotConfiguredError) as caught:
        paged(inventory)
    assert isinstance(caught.value, PermanentError)
    assert "temu-inventory has no pages" in str(caught.value)
    assert "SyncPartitionWorkflow" in str(caught.value)


async def test_a_paged_source_is_a_paged_connector() -> None:
    wiw = build_wiw(Settings(wiw=WiwSettings(token=SecretStr("t"))))
    try:
        assert isinstance(wiw, PagedConnector)
        assert paged(wiw) is wiw
    finally:
        await wiw.aclose()
