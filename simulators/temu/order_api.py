"""The order methods of the TEMU router.

The list (with the ``list_lag_seconds``, ``unstable_ties`` and ``malformed_orders`` knobs),
an order's detail and its shipping info.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from simulators.temu.core import StateCore
from simulators.temu.wire import BAD_PARAMS, ORDER_NOT_FOUND, Reject, int_field


class OrderApiMixin(StateCore):
    """``bg.order.list.v2.get``, ``bg.order.detail.v2.get``, ``bg.order.shippinginfo.v2.get``."""

    def _list_orders(self, body: dict[str, Any], grant: dict[str, Any]) -> dict[str, Any]:
        page = int_field(body, "pageNumber", 1) or 0
        size = int_field(body, "pageSize", 10) or 0
        if page < 1 or not 1 <= size <= 100:
            raise Reject(BAD_PARAMS, "pageNumber must be >= 1 and pageSize between 1 and 100")
        windows = []
        for low, high in (("updateAtStart", "updateAtEnd"), ("createAfter", "createBefore")):
            lo, hi = int_field(body, low), int_field(body, high)
            if (lo is None) != (hi is None):
                raise Reject(BAD_PARAMS, f"{low} and {high} must be given together")
            windows.append((lo, hi))
        (upd_lo, upd_hi), (crt_lo, crt_hi) = windows
        status = int_field(body, "parentOrderStatus", 0) or 0
        wanted = body.get("parentOrderSnList")
        if wanted is not None and (not isinstance(wanted, list) or len(wanted) > 20):
            raise Reject(BAD_PARAMS, "parentOrderSnList must be a list of at most 20")
        sortby = body.get("sortby", "createTime")  # [I] default
        if sortby not in ("updateTime", "createTime"):
            raise Reject(BAD_PARAMS, "sortby must be updateTime or createTime")
        sort_key = "updateTime" if sortby == "updateTime" else "parentOrderTime"
        now = self.now()
        with self._lock:
            picked: list[dict[str, Any]] = []
            for sn, live in self._orders.items():
                order = live
                hidden = self._unlisted.get(sn)
                if hidden is not None and hidden[0] > now:
                    if hidden[1] is None:  # new, not in the index yet
                        continue
                    order = hidden[1]  # the index has not caught up with the last change
                head = order["parentOrderMap"]
                if upd_lo is not None and not upd_lo <= head["updateTime"] <= (upd_hi or 0):
                    continue
                if crt_lo is not None and not crt_lo <= head["parentOrderTime"] <= (crt_hi or 0):
                    continue
                if status and head["parentOrderStatus"] != status:
                    continue
                if wanted is not None and head["parentOrderSn"] not in wanted:
                    continue
                picked.append(order)
            for sn in [sn for sn, (shown, _) in self._unlisted.items() if shown <= now]:
                del self._unlisted[sn]  # caught up
            if self.unstable_ties:  # equal sort keys in a new order on every request
                rank = {id(o): self._rng.random() for o in picked}
                picked.sort(
                    key=lambda o: (o["parentOrderMap"][sort_key], rank[id(o)]), reverse=True
                )
            else:
                picked.sort(
                    key=lambda o: (
                        o["parentOrderMap"][sort_key],
                        o["parentOrderMap"]["parentOrderSn"],
                    ),
                    reverse=True,
                )
            items = copy.deepcopy(picked[(page - 1) * size : page * size])
            for item in items:
                if item["parentOrderMap"]["parentOrderSn"] in self.malformed_orders:
                    item["parentOrderMap"]["parentOrderStatus"] = "unreadable"
        return {"totalItemNum": len(picked), "pageItems": items}

    def _known_order(self, body: Mapping[str, Any]) -> str:
        sn = body.get("parentOrderSn")
        if not isinstance(sn, str) or not sn:
            raise Reject(BAD_PARAMS, "parentOrderSn is required")
        if sn not in self._orders:
            raise Reject(ORDER_NOT_FOUND, "Order not found")
        return sn

    def _order_detail(self, body: dict[str, Any], grant: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            sn = self._known_order(body)
            order = copy.deepcopy(self._orders[sn])
            head = order["parentOrderMap"]
            for line in order["orderList"]:
                line["orderCreateTime"] = head["parentOrderTime"]
                line["orderShippingTime"] = head.get("parentShippingTime")
            order["packageSnInfo"] = [
                {"packageSn": s["packageSn"], "packageDeliveryType": 1, "callSuccess": True}
                for s in self.shipments
                if s["parentOrderSn"] == sn
            ]
        return order

    def _shipping_info(self, body: dict[str, Any], grant: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return dict(self._shipping[self._known_order(body)])
