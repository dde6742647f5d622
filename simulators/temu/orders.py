"""Orders of the TEMU simulator: generated and changed over time.

New orders, status changes, cancellations, address changes (what tests and the dev stack's
churn drive); the list keeps showing an order's previous state for ``list_lag_seconds``
after each change.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable
from typing import Any

from simulators.temu.core import StateCore

_GOODS = [
    "Cotton T-Shirt",
    "Ceramic Mug",
    "LED Desk Lamp",
    "Yoga Mat",
    "Phone Case",
    "Bamboo Cutting Board",
    "Wireless Earbuds",
    "Garden Hose",
]
_SPECS = ["White / M", "Black / L", "Blue / S", "Red / XL", "Default"]
_NAMES = ["Jane Smith", "Ali Khan", "Maria Garcia", "Tom Becker", "Yuki Sato", "Omar Haddad"]
_STREETS = ["Main St", "Oak Ave", "Pine Rd", "Maple Dr", "Cedar Ln"]
_CITIES = [("CA", "Los Angeles"), ("NY", "New York"), ("TX", "Austin"), ("WA", "Seattle")]
_STATUS_WEIGHTS = [(2, 50), (4, 25), (1, 10), (5, 10), (3, 5)]


class OrdersMixin(StateCore):
    """Order data of ``TemuState`` and the changes a shop sees over time."""

    def seed_orders(
        self,
        n: int,
        *,
        start_ts: int,
        end_ts: int,
        seed: int = 0,
        replace: bool = True,
    ) -> list[str]:
        """Generate ``n`` deterministic parent orders created and updated in [start, end].

        Lines use SKUs of the seeded stock when there is some. The same arguments on an
        empty state give the same orders.

        Returns:
            The new ``parentOrderSn`` s.
        """
        if end_ts < start_ts:
            raise ValueError("end_ts must not be before start_ts")
        rng = random.Random(seed)
        with self._lock:
            if replace:
                self._orders.clear()
                self._shipping.clear()
            out = []
            for _ in range(n):
                created = rng.randint(start_ts, end_ts)
                updated = min(end_ts, created + rng.randint(0, 3600))
                status = rng.choices(
                    [s for s, _ in _STATUS_WEIGHTS], [w for _, w in _STATUS_WEIGHTS]
                )[0]
                out.append(self._new_order(rng, created, updated, status))
        return out

    def _new_order(self, rng: random.Random, created: int, updated: int, status: int) -> str:
        """Build and store one order (lock held by the caller)."""
        sn = f"PO-{self.region_id}-{rng.randrange(10**16, 10**17):017d}"
        while sn in self._orders:
            sn = f"PO-{self.region_id}-{rng.randrange(10**16, 10**17):017d}"
        lines = []
        for _ in range(rng.randint(1, 3)):
            if self._skus:
                sku = self._skus[rng.choice(list(self._skus))]
                goods_id, sku_id = sku["goodsId"], sku["skuId"]
            else:
                goods_id, sku_id = rng.randrange(6 * 10**14, 7 * 10**14), rng.randrange(10**13)
            quantity = rng.randint(1, 3)
            cancelled = status == 3
            lines.append(
                {
                    "orderSn": f"{self.region_id}-{rng.randrange(10**16, 10**17):017d}",
                    "orderStatus": status,
                    "goodsId": goods_id,
                    "skuId": sku_id,
                    "goodsName": rng.choice(_GOODS),
                    "spec": rng.choice(_SPECS),
                    "quantity": 0 if cancelled else quantity,
                    "originalOrderQuantity": quantity,
                    "canceledQuantityBeforeShipment": quantity if cancelled else 0,
                    "isCancelledDuringPending": cancelled,
                    "fulfillmentType": "fulfillBySeller",
                    "orderPaymentType": "PPD",
                    "thumbUrl": "https://img.kwcdn.com/product/sim.jpeg",
                    "orderLabel": [{"name": "customized_products", "value": 0}],
                }
            )
        self._orders[sn] = {
            "parentOrderMap": {
                "parentOrderSn": sn,
                "parentOrderStatus": status,
                "parentOrderTime": created,
                "updateTime": updated,
                "parentShippingTime": updated if status in (4, 5) else None,
                "expectShipLatestTime": created + 2 * 86400,
                "latestDeliveryTime": created + 10 * 86400,
                "regionId": self.region_id,
                "siteId": 100,
                "shippingMethod": 1,
                "orderPaymentType": "PPD",
                "hasShippingFee": rng.random() < 0.3,
                "fulfillmentWarning": [],
                "parentOrderLabel": [
                    {"name": "soon_to_be_overdue", "value": 0},
                    {"name": "past_due", "value": 0},
                ],
            },
            "orderList": lines,
        }
        state, city = rng.choice(_CITIES)
        self._shipping[sn] = {
            "receiptName": rng.choice(_NAMES),
            "mobile": f"+1-555-{rng.randrange(10**7):07d}",
            "mail": f"buyer{rng.randrange(10**6)}@example.com",
            "addressLine1": f"{rng.randint(1, 9999)} {rng.choice(_STREETS)}",
            "addressLine2": "",
            "addressLine3": "",
            "regionName1": "United States",
            "regionName2": state,
            "regionName3": city,
            "regionName4": "",
            "postCode": f"{rng.randrange(10**5):05d}",
        }
        return sn

    def advance(
        self,
        *,
        n_new: int = 0,
        n_status_changes: int = 0,
        n_cancellations: int = 0,
        now: int | None = None,
    ) -> dict[str, list[str]]:
        """Let time pass for the shop: new orders, status changes, cancellations.

        Every touched order gets ``updateTime = max(now, old + 1)``, as on TEMU where every
        change moves the order to the head of the ``updateTime`` list.

        Args:
            n_new: orders placed at ``now`` (status 2, paid and waiting for shipment).
            n_status_changes: orders moved one step: 1 -> 2, 2 -> 4 (shipped), 4 -> 5.
            n_cancellations: orders in status 1 or 2 cancelled (status 3, lines at 0).
            now: unix seconds (default: the state's clock).

        Returns:
            ``{"new": [...], "changed": [...], "cancelled": [...]}`` order numbers.
        """
        stamp = int(self.now()) if now is None else now
        rng = self._rng
        with self._lock:
            new = [self._new_order(rng, stamp, stamp, 2) for _ in range(n_new)]
            for sn in new:
                self._hide_change(sn, new=True)
            movable = sorted(
                sn
                for sn, o in self._orders.items()
                if o["parentOrderMap"]["parentOrderStatus"] in (1, 2, 4) and sn not in new
            )
            changed = rng.sample(movable, min(n_status_changes, len(movable)))
            step = {1: 2, 2: 4, 4: 5}
            for sn in changed:
                head = self._orders[sn]["parentOrderMap"]
                status = step[head["parentOrderStatus"]]
                self._set_status(sn, status, stamp)
                if status == 4:
                    head["parentShippingTime"] = stamp
            open_ = sorted(
                sn
                for sn, o in self._orders.items()
                if o["parentOrderMap"]["parentOrderStatus"] in (1, 2)
                and sn not in new
                and sn not in changed
            )
            cancelled = rng.sample(open_, min(n_cancellations, len(open_)))
            for sn in cancelled:
                for line in self._orders[sn]["orderList"]:
                    line["canceledQuantityBeforeShipment"] = line["quantity"]
                    line["quantity"] = 0
                    line["isCancelledDuringPending"] = True
                self._set_status(sn, 3, stamp)
        return {"new": new, "changed": changed, "cancelled": cancelled}

    def _hide_change(self, sn: str, *, new: bool = False) -> None:
        """Before changing an order: keep showing its state in the list for the lag (lock held).

        A change made while an earlier one is still hidden keeps the state from before the
        earlier one and hides both until ``list_lag_seconds`` after this one.
        """
        if self.list_lag_seconds <= 0:
            return
        now = self.now()
        earlier = self._unlisted.get(sn)
        if earlier is not None and earlier[0] > now:
            shown = earlier[1]
        else:
            shown = None if new else copy.deepcopy(self._orders[sn])
        self._unlisted[sn] = (now + self.list_lag_seconds, shown)

    def change_address(self, parent_order_sn: str, *, now: int | None = None) -> dict[str, Any]:
        """The buyer changes the shipping address: new address, ``updateTime`` bumped.

        Returns:
            The new address.

        Raises:
            KeyError: unknown order.
        """
        stamp = int(self.now()) if now is None else now
        with self._lock:
            order = self._orders[parent_order_sn]
            self._hide_change(parent_order_sn)
            address = dict(self._shipping[parent_order_sn])
            number = int(str(address["addressLine1"]).split(" ")[0]) % 9999 + 1
            address["addressLine1"] = f"{number} {self._rng.choice(_STREETS)}"
            address["postCode"] = f"{self._rng.randrange(10**5):05d}"
            self._shipping[parent_order_sn] = address
            head = order["parentOrderMap"]
            head["updateTime"] = max(stamp, head["updateTime"] + 1)
            return dict(address)

    def touch(self, parent_order_sns: Iterable[str], *, now: int | None = None) -> None:
        """Set ``updateTime`` of these orders to ``now`` (or later), as a bulk edit would.

        Raises:
            KeyError: unknown order.
        """
        stamp = int(self.now()) if now is None else now
        with self._lock:
            for sn in parent_order_sns:
                head = self._orders[sn]["parentOrderMap"]
                self._hide_change(sn)
                head["updateTime"] = max(stamp, head["updateTime"])

    def shipping(self, parent_order_sn: str) -> dict[str, Any]:
        """The current shipping address of an order (a copy).

        Raises:
            KeyError: unknown order.
        """
        with self._lock:
            return dict(self._shipping[parent_order_sn])

    def _set_status(self, sn: str, status: int, now: int) -> None:
        """Set parent and line status and bump ``updateTime`` (lock held)."""
        self._hide_change(sn)
        order = self._orders[sn]
        head = order["parentOrderMap"]
        head["parentOrderStatus"] = status
        head["updateTime"] = max(now, head["updateTime"] + 1)
        for line in order["orderList"]:
            line["orderStatus"] = status

    def order(self, parent_order_sn: str) -> dict[str, Any] | None:
        """A parent order in list shape (a copy), or ``None``."""
        with self._lock:
            found = self._orders.get(parent_order_sn)
            return copy.deepcopy(found) if found else None

    def unlisted(self) -> set[str]:
        """Orders whose last change the list does not show yet (``list_lag_seconds``)."""
        now = self.now()
        with self._lock:
            return {sn for sn, (shown, _) in self._unlisted.items() if shown > now}

    def order_sns(self) -> list[str]:
        """Every parent order number."""
        with self._lock:
            return sorted(self._orders)
