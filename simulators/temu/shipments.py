"""Shipment confirmation of the TEMU router (``bg.logistics.shipment.confirm``).

Refused shipments, repeated confirmations (the ``repeat_shipment`` knob) and lines marked shipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulators.temu.order_api import OrderApiMixin
from simulators.temu.orders import OrdersMixin
from simulators.temu.wire import BAD_PARAMS, SHIPMENT_REJECTED, Reject


@dataclass(frozen=True)
class _Package:
    """One checked package of a confirmation, applied once every package passed."""

    sn: str
    order_sns: list[str]
    carrier: str
    tracking: str
    duplicate: bool


class ShipmentsMixin(OrderApiMixin, OrdersMixin):
    """Confirms packages of one parent order each; records them in ``shipments``."""

    def _confirm_shipment(self, body: dict[str, Any], grant: dict[str, Any]) -> dict[str, Any]:
        if body.get("sendType") != 0:
            raise Reject(BAD_PARAMS, "The simulator supports sendType 0 (single package) only")
        requests = body.get("sendRequestList")
        if not isinstance(requests, list) or not requests:
            raise Reject(BAD_PARAMS, "sendRequestList is required")
        now = int(self.now())
        with self._lock:
            # every package is checked before any is applied: one bad package refuses all
            plans = [self._plan_package(request) for request in requests]
            results = [self._apply_package(plan, now) for plan in plans]
        return {
            "warningMessage": [],
            "duplicate": all(r["duplicate"] for r in results),
            "packageList": results,
        }

    def _plan_package(self, request: Any) -> _Package:
        """Check one package of ``sendRequestList`` against its order (lock held).

        Raises:
            Reject: a malformed package, or a shipment TEMU refuses.

        """
        if not isinstance(request, dict):
            raise Reject(BAD_PARAMS, "sendRequestList entries must be objects")
        infos = request.get("orderSendInfoList")
        carrier, tracking = request.get("carrierId"), request.get("trackingNumber")
        if not infos or not isinstance(infos, list) or not carrier or not tracking:
            raise Reject(BAD_PARAMS, "orderSendInfoList, carrierId and trackingNumber are required")
        parents = {i.get("parentOrderSn") for i in infos if isinstance(i, dict)}
        if len(parents) != 1 or len(infos) != sum(isinstance(i, dict) for i in infos):
            raise Reject(BAD_PARAMS, "A package of sendType 0 holds one parent order")
        sn = self._known_order({"parentOrderSn": parents.pop()})
        order = self._orders[sn]
        lines = {line["orderSn"]: line for line in order["orderList"]}
        for info in infos:
            line = lines.get(info.get("orderSn"))
            if line is None:
                raise Reject(BAD_PARAMS, f"orderSn {info.get('orderSn')} not in {sn}")
            if (info.get("goodsId"), info.get("skuId")) != (line["goodsId"], line["skuId"]):
                raise Reject(BAD_PARAMS, f"goodsId/skuId do not match {line['orderSn']}")
        duplicate = any(
            s["parentOrderSn"] == sn and s["trackingNumber"] == tracking for s in self.shipments
        )
        if duplicate and self.repeat_shipment == "reject":
            raise Reject(SHIPMENT_REJECTED, "The order has already been shipped")
        if not duplicate:
            status = order["parentOrderMap"]["parentOrderStatus"]
            if sn in self.reject_shipments or status not in (2, 41):
                raise Reject(
                    SHIPMENT_REJECTED, "The order status does not allow shipment confirmation"
                )
        return _Package(sn, [i["orderSn"] for i in infos], str(carrier), str(tracking), duplicate)

    def _apply_package(self, plan: _Package, now: int) -> dict[str, Any]:
        """Record a checked package (a repeat keeps its first package number); lock held."""
        package = next(
            (
                s["packageSn"]
                for s in self.shipments
                if s["parentOrderSn"] == plan.sn and s["trackingNumber"] == plan.tracking
            ),
            None,
        )
        if package is None:
            package = f"PK-{len(self.shipments) + 1:010d}"
            self._ship(plan.sn, plan.order_sns, now)
            self.shipments.append(
                {
                    "parentOrderSn": plan.sn,
                    "orderSns": plan.order_sns,
                    "carrierId": plan.carrier,
                    "trackingNumber": plan.tracking,
                    "packageSn": package,
                    "at": now,
                }
            )
        return {
            "parentOrderSn": plan.sn,
            "trackingNumber": plan.tracking,
            "packageSn": package,
            "duplicate": plan.duplicate and self.repeat_shipment == "duplicate",
        }

    def _ship(self, sn: str, order_sns: list[str], now: int) -> None:
        """Mark lines shipped; the parent is shipped once every live line is (lock held)."""
        self._hide_change(sn)
        order = self._orders[sn]
        for line in order["orderList"]:
            if line["orderSn"] in order_sns:
                line["orderStatus"] = 4
        live = [line for line in order["orderList"] if line["quantity"] > 0]
        head = order["parentOrderMap"]
        head["parentOrderStatus"] = 4 if all(line["orderStatus"] == 4 for line in live) else 41
        head["parentShippingTime"] = now
        head["updateTime"] = max(now, head["updateTime"] + 1)
