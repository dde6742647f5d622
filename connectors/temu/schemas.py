"""Wire models of TEMU parent orders and SKU stock (``reference/upstream-apis.md`` §3.5-3.8).

Only the fields synchub decides on are declared (keys, ``updateTime``, status, the line ids
a shipment confirmation needs); everything else is kept as received (``extra="allow"``), so
a field TEMU adds reaches Kafka consumers without a code change and ``model_dump`` gives
the order back as TEMU sent it.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class ParentOrderStatus(IntEnum):
    """``parentOrderStatus`` values (41 and 51 exist for local shops only)."""

    ALL = 0
    """Only as a filter: every status."""
    PENDING = 1
    UN_SHIPPING = 2
    CANCELED = 3
    SHIPPED = 4
    RECEIPTED = 5
    PARTIALLY_SHIPPED = 41
    PARTIALLY_RECEIPTED = 51


class ParentOrderMap(BaseModel):
    """``parentOrderMap``: the parent order's own fields."""

    model_config = ConfigDict(extra="allow")

    parentOrderSn: StrictStr
    """``PO-<region>-<digits>``; the record key."""
    parentOrderStatus: StrictInt
    """See ``ParentOrderStatus``; a cancellation is a change to 3."""
    updateTime: StrictInt
    """Unix seconds of the last change: the incremental-sync cursor (no version field)."""


class OrderLine(BaseModel):
    """One entry of ``orderList``: a line (child order) of the parent order."""

    model_config = ConfigDict(extra="allow")

    orderSn: StrictStr
    """Line id, e.g. ``211-00822209413752890``."""
    orderStatus: int | None = None
    """Status of this line (same codes as the parent)."""
    goodsId: int | None = None
    """Product id; needed to confirm a shipment."""
    skuId: int | None = None
    """SKU id; needed to confirm a shipment."""
    quantity: int | None = None
    """Quantity still ordered (0 once cancelled; see ``canceledQuantityBeforeShipment``)."""


class ParentOrder(BaseModel):
    """A parent order as one ``pageItems`` entry of the list or the detail result."""

    model_config = ConfigDict(extra="allow")

    parentOrderMap: ParentOrderMap
    """The parent order's fields."""
    orderList: list[OrderLine] = Field(default_factory=list)
    """Its lines."""

    @property
    def key(self) -> str:
        """Record key: ``parentOrderSn``."""
        return self.parentOrderMap.parentOrderSn

    @property
    def update_time(self) -> int:
        """``parentOrderMap.updateTime`` (unix seconds)."""
        return self.parentOrderMap.updateTime

    @property
    def status(self) -> int:
        """``parentOrderMap.parentOrderStatus``."""
        return self.parentOrderMap.parentOrderStatus

    def line(self, order_sn: str) -> OrderLine | None:
        """The line with this ``orderSn``, if the order has it."""
        return next((o for o in self.orderList if o.orderSn == order_sn), None)

    def wire(self) -> dict[str, Any]:
        """The order as TEMU sent it (extra fields included)."""
        return self.model_dump(mode="json")


class SkuStock(BaseModel):
    """Ordinary stock of one SKU, flattened from the stock query's nested answer."""

    goodsId: StrictInt
    """Product id."""
    skuId: StrictInt
    """SKU id (what ``bg.local.goods.stock.edit`` takes)."""
    outSkuSn: str | None = None
    """The seller's own SKU code, the key the ERP uses."""
    stock: StrictInt
    """``selfOrdinaryStock.stock``: sellable ordinary stock."""
