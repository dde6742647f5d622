"""TEMU's answers to stock calls, read into what the inventory activities need."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def flatten_stock(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``stockList[].skuStockInfoList[]`` -> one ``{goodsId, skuId, outSkuSn, stock}`` per SKU."""
    out = []
    for goods in result.get("stockList") or []:
        for sku in goods.get("skuStockInfoList") or []:
            ordinary = sku.get("selfOrdinaryStock") or {}
            out.append(
                {
                    "goodsId": goods.get("goodsId"),
                    "skuId": sku.get("skuId"),
                    "outSkuSn": sku.get("outSkuSn"),
                    "stock": ordinary.get("stock"),
                }
            )
    return out


def edit_statuses(
    result: Mapping[str, Any], targets: Iterable[int]
) -> dict[int, tuple[bool, str | None]]:
    """Per-SKU outcome of a stock edit; a SKU without a status counts as not applied."""
    reported: dict[int, tuple[bool, str | None]] = {}
    for info in result.get("skuStockEditStatusInfoList") or []:
        try:
            sku = int(info.get("skuId"))
        except (TypeError, ValueError):
            continue
        ok = info.get("stockEditStatus") is True
        reported[sku] = (ok, None if ok else str(info.get("errorMsg") or "stock edit failed"))
    operated = result.get("operateResult") is True
    out: dict[int, tuple[bool, str | None]] = {}
    for sku in targets:
        status = reported.get(sku, (False, "TEMU reported no status for this SKU"))
        if status[0] and not operated and all(ok for ok, _ in reported.values()):
            # operateResult false with no SKU blamed: none of them can be trusted
            status = (False, str(result.get("msg") or "operateResult false"))
        out[sku] = status
    return out
