"""HTTP client of the TEMU Open Platform (partner API): signing, rate limit, error mapping.

Every method is a ``POST`` of a flat JSON body to one router URL; the method name travels in
``type``, the common params (``app_key``, ``access_token``, ``timestamp``, ``data_type``) sit
next to the business params, and ``sign`` is an MD5 over all of them keyed by the app secret
(``reference/upstream-apis.md`` §3.3). The body is serialized from exactly the dict that was
signed, because nested objects are signed in the order they are sent.

Every request first takes a token from the ``RedisRateLimiter`` under the shop's app key, so
all worker processes together stay below TEMU's per-app-key limit. Failures leave this module
as the typed errors of ``connectors.temu.errors``; no message built here contains the app
secret or the access token, and none has an httpx exception (which holds the request body,
secret and token included) in its chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import httpx
import redis.asyncio as aioredis
from pydantic import ValidationError

from connectors.http import redact, retry_after
from connectors.temu.errors import (
    RATE_LIMITED,
    SHOPS_SETTING,
    SUCCESS,
    TemuError,
    TemuLocalRefusal,
    TemuRateLimitError,
    TemuRejectedError,
    TemuRetryableError,
    error_for,
)
from connectors.temu.schemas import ParentOrder
from connectors.temu.settings import TEMU_HOSTS, TemuShop
from infra.rate_limit import RedisRateLimiter
from models.clock import unix as unix_now
from models.errors import NotConfiguredError

if TYPE_CHECKING:
    from settings import Settings

log = logging.getLogger(__name__)

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
COMMON_PARAMS = frozenset({"type", "app_key", "access_token", "timestamp", "data_type", "sign"})
"""Set by the client; business params must not use these names."""
DEFAULT_HEADROOM = 0.05
"""Fraction of the rate kept unused (19/s at TEMU's 20 QPS); see ``TemuClient``."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sign(app_secret: str, params: Mapping[str, Any]) -> str:
    """TEMU's request signature (official algorithm, reproduces the documented test vector).

    Keys are sorted by ASCII; each pair contributes ``key + value`` where the value is its
    compact JSON with surrounding quotes stripped (strings raw, numbers as digits, lists and
    objects as compact JSON in the order given); the concatenation is wrapped in the secret
    and hashed with MD5, upper-case hex. ``sign`` itself is skipped.

    Args:
        app_secret: the app secret.
        params: every parameter of the request (common and business).
    """
    parts = [k + _dumps(v).strip('"') for k, v in sorted(params.items()) if k != "sign"]
    raw = app_secret + "".join(parts) + app_secret
    return hashlib.md5(raw.encode("utf-8")).hexdigest().upper()


def encode_body(app_secret: str, params: Mapping[str, Any]) -> bytes:
    """The request body: ``params`` plus their ``sign``, serialized from that same dict."""
    body = dict(params)
    body["sign"] = sign(app_secret, body)
    return _dumps(body).encode("utf-8")


class TemuClient:
    """The TEMU calls synchub makes for one shop.

    One ``httpx.AsyncClient`` per shop and worker; share the instance between activities.

    Args:
        shop: the shop (region, app key, secret, token, optional router URL).
        limiter: the Redis rate limiter shared by every worker process.
        rate_per_second: TEMU's limit for the app key (``TEMU_RATE_LIMIT_QPS``).
        timeout: HTTP timeout per request, seconds.
        transport: injected httpx transport (tests, proxies).
        clock: source of the ``timestamp`` param (unix seconds); tests skew it.
        headroom: fraction of ``rate_per_second`` left unused. The limiter spaces requests
            in Redis time, but each reaches TEMU after its own network and scheduling
            delay. At exactly 20/s any request delayed more than the one 20 slots later
            puts 21 requests into a one-second window, which a windowed limiter upstream
            (TEMU does not say which kind it runs) answers with ``4000004``; measured here,
            that happens within seconds. 5 % (19/s at 20 QPS) absorbs ~50 ms of relative
            delay; with the limiter's grant-at-send it kept every window at <= 20 even on
            an overloaded host, at ~18.3/s achieved.
        rate_limit_retries: ``4000004`` answers waited out inside a call (1 s each) before
            raising ``TemuRateLimitError``. The gateway answers it before the business
            service sees the request, so resending is safe for every method.
        sleep: how to wait after ``4000004`` (tests may replace it).
    """

    def __init__(
        self,
        shop: TemuShop,
        limiter: RedisRateLimiter,
        *,
        rate_per_second: float = 20.0,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = unix_now,
        headroom: float = DEFAULT_HEADROOM,
        rate_limit_retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 <= headroom < 1:
            raise ValueError("headroom must be in [0, 1)")
        self.shop = shop
        self.url = shop.api_url or TEMU_HOSTS[shop.region]
        self._limiter = limiter
        self._rate = rate_per_second * (1 - headroom)
        self._timeout = timeout
        self._clock = clock
        self._retries = rate_limit_retries
        self._sleep = sleep
        self._secret = shop.app_secret.get_secret_value()
        self._token = shop.access_token.get_secret_value()
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"Content-Type": "application/json", "User-Agent": "synchub-temu/0.1"},
        )

    @property
    def shop_id(self) -> str:
        """Id of the shop this client calls for (safe to log)."""
        return self.shop.id

    @property
    def effective_rate(self) -> float:
        """Requests per second this client (with all others on the app key) stays under."""
        return self._rate

    # -- generic call ---------------------------------------------------------------------

    async def call(self, api_type: str, /, **params: Any) -> dict[str, Any]:
        """Call ``api_type`` with business ``params`` (flat, next to the common params).

        Returns:
            ``result`` of the envelope (``{}`` when TEMU sends none).

        Raises:
            TemuRejectedError: credentials, clock, scope or parameters refused (permanent).
            TemuRateLimitError: ``4000004`` persisted after ``rate_limit_retries`` waits.
            TemuRetryableError: system exception, HTTP 429/5xx, timeout, connection error.
            TemuBusinessError: any other TEMU error code (``code`` says which).
        """
        clash = COMMON_PARAMS & params.keys()
        if clash:
            raise ValueError(f"business params may not be named {', '.join(sorted(clash))}")
        for attempt in range(self._retries + 1):
            try:
                return await self._post(api_type, params)
            except TemuRateLimitError as exc:
                if attempt >= self._retries:
                    raise
                log.warning(
                    "TEMU rate limit on %s for shop %s; waiting %.0f s",
                    api_type,
                    self.shop.id,
                    exc.retry_after or 1.0,
                )
                await self._sleep(exc.retry_after or 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

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
                out.extend(_flatten_stock(result))
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
        return _edit_statuses(result, targets)

    async def token_info(self) -> dict[str, Any]:
        """``{mallId, regionId, expiredTime, apiScopeList, ...}`` of the shop's token."""
        return await self.call(TOKEN_INFO)

    # -- lifecycle ------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> TemuClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- transport and envelope -----------------------------------------------------------

    async def _post(self, api_type: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One rate-limited, signed POST; the envelope's ``result`` or a typed error."""
        await self._limiter.acquire(self.shop.app_key, self._rate)
        body = {
            "type": api_type,
            "app_key": self.shop.app_key,
            "access_token": self._token,
            "timestamp": int(self._clock()),
            "data_type": "JSON",
            **params,
        }
        content = encode_body(self._secret, body)
        response = await self._send(api_type, content)
        status = response.status_code
        if status == 429 or status >= 500:
            raise self._tag(
                TemuRetryableError(
                    f"TEMU {api_type} for shop {self.shop.id}: HTTP {status}",
                    retry_after=retry_after(response),
                ),
                api_type,
            )
        if status != 200:
            raise self._tag(
                TemuRejectedError(
                    f"TEMU {api_type} for shop {self.shop.id}: HTTP {status} from the router "
                    f"URL: check region/api_url of shop {self.shop.id} ({SHOPS_SETTING})",
                    setting=SHOPS_SETTING,
                ),
                api_type,
            )
        envelope = self._json(api_type, response)
        code = envelope.get("errorCode")
        request_id = envelope.get("requestId")
        request_id = self._redact(str(request_id)) if request_id is not None else None
        if envelope.get("success") is True and code in (SUCCESS, None):
            result = envelope.get("result")
            return result if isinstance(result, dict) else {}
        try:
            number = int(code) if code is not None else 0
        except (TypeError, ValueError):
            number = 0
        message = self._redact(str(envelope.get("errorMsg") or "")[:300])
        if number == 0 or number == SUCCESS:
            raise self._tag(
                TemuRetryableError(
                    f"TEMU {api_type} for shop {self.shop.id}: unsuccessful answer without an "
                    f"error code ({message or 'no message'})"
                ),
                api_type,
            )
        if number == RATE_LIMITED:
            log.debug("TEMU 4000004 on %s for shop %s", api_type, self.shop.id)
        raise error_for(
            number, message, api_type=api_type, shop_id=self.shop.id, request_id=request_id
        )

    async def _send(self, api_type: str, content: bytes) -> httpx.Response:
        """POST the body; transport failures become ``TemuRetryableError``.

        The error is raised outside the ``except`` block so it has no ``__context__``: httpx
        exceptions hold the request, whose body carries the token and the signature.
        """
        try:
            return await self._http.post(self.url, content=content)
        except httpx.TimeoutException:
            failure = f"timed out after {self._timeout:g} s"
        except httpx.TransportError as exc:
            failure = f"failed: {type(exc).__name__}: {self._redact(str(exc))[:200]}"
        raise self._tag(
            TemuRetryableError(f"TEMU {api_type} for shop {self.shop.id} {failure}"), api_type
        )

    def _json(self, api_type: str, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self._tag(
                TemuRetryableError(
                    f"TEMU {api_type} for shop {self.shop.id} answered HTTP "
                    f"{response.status_code} with a body that is not a JSON object"
                ),
                api_type,
            )
        return data

    def _tag(self, error: TemuError, api_type: str) -> TemuError:
        return error._tag(None, api_type, self.shop.id, None)

    def _redact(self, text: str) -> str:
        return redact(text, (self._secret, self._token))


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


def _flatten_stock(result: Mapping[str, Any]) -> list[dict[str, Any]]:
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


def _edit_statuses(
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
