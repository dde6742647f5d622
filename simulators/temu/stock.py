"""Goods and stock of the TEMU simulator.

The catalogue, stock queries that lag behind
edits (``visibility_delay_seconds``), and stock edits with per-SKU and per-goods faults.
"""

from __future__ import annotations

import random
from typing import Any

from simulators.temu.core import StateCore
from simulators.temu.wire import (
    GOODS_INVALID,
    GOODS_REFUSED,
    SYSTEM_EXCEPTION,
    Reject,
    int_field,
)


class StockMixin(StateCore):
    """``temu.local.goods.sku.stock.query`` and ``bg.local.goods.stock.edit`` over the catalogue."""

    def seed_stock(self, n_goods: int, skus_per_goods: int, seed: int = 0) -> list[int]:
        """Generate a catalogue: ``n_goods`` products with ``skus_per_goods`` SKUs each.

        SKU codes run ``SKU-00001``, ``SKU-00002``... in creation order; stock is 0-100.
        Replaces the existing catalogue.

        Returns:
            The SKU ids, in creation order.
        """
        rng = random.Random(seed)
        with self._lock:
            self._skus.clear()
            self._goods.clear()
            out = []
            for _ in range(n_goods):
                goods_id = rng.randrange(6 * 10**14, 7 * 10**14)
                self._goods[goods_id] = []
                for _ in range(skus_per_goods):
                    sku_id = rng.randrange(10**13, 10**14)
                    self._skus[sku_id] = {
                        "goodsId": goods_id,
                        "skuId": sku_id,
                        "outSkuSn": f"SKU-{len(self._skus) + 1:05d}",
                        "history": [(float("-inf"), rng.randint(0, 100))],
                    }
                    self._goods[goods_id].append(sku_id)
                    out.append(sku_id)
        return out

    def stock(self, sku_id: int, *, visible: bool = False) -> int:
        """Stock of a SKU: the latest value, or (``visible``) what a query shows now.

        Raises:
            KeyError: unknown SKU.
        """
        with self._lock:
            return self._stock_of(self._skus[sku_id], visible=visible)

    def skus(self) -> list[dict[str, Any]]:
        """The catalogue: ``{goodsId, skuId, outSkuSn, stock}`` with the latest stock."""
        with self._lock:
            return [
                {
                    "goodsId": s["goodsId"],
                    "skuId": s["skuId"],
                    "outSkuSn": s["outSkuSn"],
                    "stock": self._stock_of(s, visible=False),
                }
                for s in self._skus.values()
            ]

    def _stock_of(self, sku: dict[str, Any], *, visible: bool) -> int:
        history: list[tuple[float, int]] = sku["history"]
        if not visible:
            return history[-1][1]
        now = self.now()
        # the newest edit already visible (edits may become visible out of order when the
        # delay knob changes between them)
        return next((value for when, value in reversed(history) if when <= now), history[0][1])

    def _stock_query(self, body: dict[str, Any], grant: dict[str, Any]) -> dict[str, Any]:
        goods_id = int_field(body, "goodsId")
        by_id, by_code = body.get("skuIdList"), body.get("outSkuSnList")
        if goods_id is None and not by_id and not by_code:
            raise Reject(GOODS_INVALID, "goodsId, skuIdList or outSkuSnList is required")
        for name, values in (("skuIdList", by_id), ("outSkuSnList", by_code)):
            if values is not None and (not isinstance(values, list) or len(values) > 100):
                raise Reject(GOODS_INVALID, f"{name} must be a list of at most 100")
        ids, codes = set(by_id or []), set(by_code or [])
        grouped: dict[int, list[dict[str, Any]]] = {}
        with self._lock:
            for sku in self._skus.values():
                if goods_id is not None and sku["goodsId"] != goods_id:
                    continue
                if (ids or codes) and sku["skuId"] not in ids and sku["outSkuSn"] not in codes:
                    continue
                grouped.setdefault(sku["goodsId"], []).append(
                    {
                        "skuId": sku["skuId"],
                        "outSkuSn": sku["outSkuSn"],
                        "selfOrdinaryStock": {
                            "stockType": 0,
                            "stock": self._stock_of(sku, visible=True),
                        },
                        "selfPreSaleStock": {
                            "stockType": 1,
                            "stock": 0,
                            "preSaleEndTime": None,
                            "mallPreSaleSkuNumLimit": 0,
                            "skuPreSaleStockLimit": 0,
                        },
                        "certOrdinaryStock": {"stockType": 2, "stock": 0},
                    }
                )
        return {
            "stockList": [
                {"goodsId": goods, "skuStockInfoList": infos} for goods, infos in grouped.items()
            ]
        }

    def _stock_edit(self, body: dict[str, Any], grant: dict[str, Any]) -> dict[str, Any]:
        goods_id = int_field(body, "goodsId")
        if goods_id is None:
            raise Reject(GOODS_INVALID, "goodsId is required")
        if int_field(body, "stockType", 0) != 0:
            raise Reject(GOODS_INVALID, "The simulator supports stockType 0 (ordinary) only")
        targets, changes = body.get("skuStockTargetList"), body.get("skuStockChangeList")
        if (targets is None) == (changes is None):
            raise Reject(GOODS_INVALID, "Give one of skuStockTargetList or skuStockChangeList")
        entries = targets if targets is not None else changes
        field = "stockTarget" if targets is not None else "stockDiff"
        if not isinstance(entries, list) or not entries:
            raise Reject(GOODS_INVALID, "The SKU list must not be empty")
        key = body.get("requestUniqueKey")
        visible_at = self.now() + self.visibility_delay_seconds
        with self._lock:
            if goods_id not in self._goods:
                raise Reject(GOODS_INVALID, f"goodsId {goods_id} does not exist")
            if goods_id in self.fail_goods:
                raise Reject(SYSTEM_EXCEPTION, "SYSTEM_EXCEPTION (simulated)")
            if goods_id in self.reject_goods:
                raise Reject(GOODS_REFUSED, "The product cannot be edited now (under review)")
            repeated = key is not None and (grant["mall"], str(key)) in self._edit_keys
            if repeated and self.duplicate_key_code:
                raise Reject(self.duplicate_key_code, "Duplicate requestUniqueKey")
            if key is not None:
                self._edit_keys.add((grant["mall"], str(key)))
            statuses = []
            for entry in entries:
                sku_id = entry.get("skuId") if isinstance(entry, dict) else None
                value = entry.get(field) if isinstance(entry, dict) else None
                error = None
                sku = self._skus.get(sku_id) if isinstance(sku_id, int) else None
                if sku is None or sku["goodsId"] != goods_id:
                    error = f"skuId {sku_id} does not belong to goodsId {goods_id}"
                elif not isinstance(value, int) or isinstance(value, bool):
                    error = f"{field} must be an integer"
                elif sku_id in self.reject_skus:
                    error = "Stock update failed, please try again later"
                elif repeated:  # duplicate_key_code 0: accepted, nothing applied again
                    pass
                else:
                    new = value if field == "stockTarget" else sku["history"][-1][1] + value
                    if new < 0:
                        error = "Stock must not be negative"
                    else:
                        sku["history"].append((visible_at, new))
                        self.stock_edits.append(
                            {"skuId": sku_id, "stock": new, "requestUniqueKey": key}
                        )
                statuses.append(
                    {
                        "skuId": sku_id,
                        "stockEditStatus": error is None,
                        "errorCode": None if error is None else GOODS_INVALID,
                        "errorMsg": error,
                    }
                )
        ok = all(s["stockEditStatus"] for s in statuses)
        return {
            "goodsId": goods_id,
            "operateResult": ok,
            "msg": "" if ok else "Some SKUs failed",
            "skuStockEditStatusInfoList": statuses,
        }
