"""The TEMU calls synchub makes for one shop: orders, shipments, stock, token info.

Signing, rate limit and error mapping are ``connectors.temu.transport``'s; this module holds
what each call sends and how its answer is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from pydantic import ValidationError

from connectors.temu.errors import TemuLocalRefusal, TemuRetryableError
from connectors.temu.schemas import ParentOrder
from connectors.temu.signing import encode_body, sign
from connectors.temu.stock_answers import edit_statuses, flatten_stock
from connectors.temu.transport import DEFAULT_HEADROOM, TemuTransport
from infra.rate_limit import RedisRateLimiter
from models.errors import NotConfiguredError

if TYPE_CHECKING:
    from settings import Settings

ORDER_LIST = "bg.order.list.v2.get"
ORDER_DETAIL = "bg.order.detail.v2.get"
SHIPPING_INFO = "bg.order.shippinginfo.v2.get"
SHIPMENT_CONFIRM = "bg.logistics.shipment.confirm"
STOCK_QUERY = "temu.local.goods.sku.stock.query"
STOCK_EDIT = "bg.local.goods.stock.edit"
TOKEN_INFO = "bg.open.accesstoken.info.get"

MAX_PAGE_SIZE = 100
"""``pageSize`` limit of the order list."""
STOCK_QUERY_BATCH = 100
"""SKU ids (or codes) per stock query [I: TEMU documents no limit; 100 like its pages]."""


class TemuClient(TemuTransport):
    """The TEMU calls synchub makes for one shop (arguments: see ``TemuTransport``).

    One per shop and worker; share the instance between activities.
    """

    # -- orders ---------------------------------------------------------------------------

    async def list_orders(
        self,
        *,
        update_start: int,
        update_end: int,
        page_number: int,
        page_size: int = MAX_PAGE_SIZE,
        parent_order_status: int | None = None,
    ) -> dict[str, Any]:
        """One page of parent orders changed in ``[update_start, update_end]`` (inclusive).

        Sorted by ``updateTime``, newest first (TEMU sorts descending). Loop ``page_number``
        from 1 until ``page_number * page_size >= totalItemNum`` or a page is empty.

        Returns:
            ``{"totalItemNum": int, "pageItems": [parent order, ...]}`` as TEMU sends it.
        """
        params: dict[str, Any] = {
            "version": "V1",
            "pageNumber": page_number,
            "pageSize": max(1, min(page_size, MAX_PAGE_SIZE)),
            "updateAtStart": update_start,
            "updateAtEnd": update_end,
            "sortby": "updateTime",
        }
        if parent_order_status is not None:
            params["parentOrderStatus"] = parent_order_status
        return await self.call(ORDER_LIST, **params)

    async def order_detail(self, parent_order_sn: str) -> dict[str, Any]:
        """``{"parentOrderMap", "orderList", ...}`` of one parent order.

        Raises:
            TemuBusinessError: with ``code == 140020002`` when the order does not exist.
        """
        return await self.call(ORDER_DETAIL, version="V1", parentOrderSn=parent_order_sn)

    async def shipping_info(self, parent_order_sn: str) -> dict[str, Any]:
        """The shipping address of one parent order (personal data: keep out of logs)."""
        return await self.call(SHIPPING_INFO, version="V1", parentOrderSn=parent_order_sn)

    async def confirm_shipment(
        self,
        *,
        parent_order_sn: str,
        order_sns: list[str],
        carrier_id: str,
        tracking_number: str,
        order: ParentOrder | None = None,
    ) -> dict[str, Any]:
        """Tell TEMU that lines of a parent order left in one package (``sendType`` 0).

        Each line needs ``goodsId``, ``skuId`` and ``quantity`` next to its ``orderSn``;
        they are taken from ``order`` when given, else from one ``order_detail`` call. An
        empty ``order_sns`` ships every line not cancelled (quantity > 0).

        Returns:
            TEMU's ``result``.

        Raises:
            TemuLocalRefusal: nothing left to ship, or a line is not in the order (not sent).
            TemuBusinessError: TEMU refused the shipment.
        """
        if order is None:
            detail = await self.order_detail(parent_order_sn)
            try:
                order = ParentOrder.model_validate(detail)
            except ValidationError:
                # the error text would quote the order (personal data): say only where
                order = None
            if order is None:
                raise self._tag(
                    TemuRetryableError(
                        f"TEMU {ORDER_DETAIL} for shop {self.shop.id} answered parent order "
                        f"{parent_order_sn} without parentOrderMap/orderList in the known shape"
                    ),
                    ORDER_DETAIL,
                )
        if order.key != parent_order_sn:
            raise ValueError(f"order {order.key} given for parent order {parent_order_sn}")
        if not order_sns:
            order_sns = [line.orderSn for line in order.orderList if (line.quantity or 0) > 0]
            if not order_sns:
                raise TemuLocalRefusal(
                    f"shop {self.shop.id}: parent order {parent_order_sn} has no line left "
                    "to ship (cancelled?)"
                )._tag(None, SHIPMENT_CONFIRM, self.shop.id, None)
        infos = []
        for sn in order_sns:
            line = order.line(sn)
            if line is None:
                raise TemuLocalRefusal(
                    f"shop {self.shop.id}: line {sn} is not part of parent order {parent_order_sn}"
                )._tag(None, SHIPMENT_CONFIRM, self.shop.id, None)
            infos.append(
                {
                    "quantity": line.quantity,
                    "orderSn": sn,
                    "parentOrderSn": parent_order_sn,
                    "goodsId": line.goodsId,
                    "skuId": line.skuId,
                }
            )
        send = {
            "orderSendInfoList": infos,
            "carrierId": carrier_id,
            "trackingNumber": tracking_number,
        }
        return await self.call(SHIPMENT_CONFIRM, sendRequestList=[send], sendType=0)

    # -- stock ----------------------------------------------------------------------------

    async def stock_query(
        self, *, sku_ids: list[int] | None = None, out_sku_sns: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Current ordinary stock per SKU, by TEMU SKU ids and/or the seller's SKU codes.

        Asks in batches of ``STOCK_QUERY_BATCH``. Unknown SKUs are simply absent. Reads are
        eventually consistent: an edit may take ~5 s to show.

        Returns:
            ``[{"goodsId", "skuId", "outSkuSn", "stock"}, ...]`` (see ``SkuStock``).
        """
        if sku_ids is None and out_sku_sns is None:
            raise ValueError("stock_query needs sku_ids or out_sku_sns")
        out: list[dict[str, Any]] = []
        for name, values in (("skuIdList", sku_ids or []), ("outSkuSnList", out_sku_sns or [])):
            for start in range(0, len(values), STOCK_QUERY_BATCH):
                batch = list(values[start : start + STOCK_QUERY_BATCH])
                result = await self.call(STOCK_QUERY, **{name: batch})
                out.extend(flatten_stock(result))
        return out

    async def stock_edit(
        self, *, goods_id: int, targets: Mapping[int, int], request_unique_key: str
    ) -> dict[int, tuple[bool, str | None]]:
        """Set absolute ordinary stock of SKUs of one product.

        A SKU counts as applied only when the call succeeded, ``operateResult`` is true and
        its own ``stockEditStatus`` is true (§3.8), so a partly failed edit is reported per
        SKU instead of raised.

        Args:
            goods_id: the product.
            targets: ``{skuId: stockTarget}``.
            request_unique_key: TEMU rejects a second edit with the same key; derive it from
                the desired state (not the attempt) so a retried activity cannot apply twice.

        Returns:
            ``{skuId: (applied, error message or None)}`` for every SKU in ``targets``.

        Raises:
            TemuBusinessError: the whole edit was refused (e.g. a duplicate key).
        """
        if not targets:
            return {}
        result = await self.call(
            STOCK_EDIT,
            goodsId=goods_id,
            skuStockTargetList=[
                {"skuId": sku, "stockTarget": target} for sku, target in targets.items()
            ],
            requestUniqueKey=request_unique_key,
        )
        return edit_statuses(result, targets)

    async def token_info(self) -> dict[str, Any]:
        """``{mallId, regionId, expiredTime, apiScopeList, ...}`` of the shop's token."""
        return await self.call(TOKEN_INFO)

    async def __aenter__(self) -> TemuClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def shop_clients(settings: Settings) -> tuple[dict[str, TemuClient], aioredis.Redis]:
    """One client per configured shop, all pacing through one Redis rate limiter.

    The limiter's state lives in Redis under the app key, so every connector's clients of
    the same app (orders, inventory, other workers) stay under TEMU's limit together. The
    caller owns the returned Redis client and closes it with the clients.

    Raises:
        NotConfiguredError: no shops in ``TEMU_SHOPS``.
    """
    temu = settings.temu
    if not temu.shops:
        raise NotConfiguredError("no TEMU shops configured", setting="TEMU_SHOPS")
    redis = aioredis.Redis.from_url(settings.redis.url)
    limiter = RedisRateLimiter(redis)
    clients = {
        shop.id: TemuClient(
            shop, limiter, rate_per_second=temu.rate_limit_qps, timeout=temu.timeout_seconds
        )
        for shop in temu.shops
    }
    return clients, redis


__all__ = [
    "DEFAULT_HEADROOM",
    "MAX_PAGE_SIZE",
    "TemuClient",
    "encode_body",
    "shop_clients",
    "sign",
]
