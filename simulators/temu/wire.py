"""TEMU's wire facts as the simulator serves them.

The simulated app's credentials, gateway
and business error codes, method names, its own copy of the signature, and ``Reject`` (a
request answered with an error envelope).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

SIM_APP_KEY = "sim-temu-app-key"
SIM_APP_SECRET = "sim-temu-app-secret"
SIM_ACCESS_TOKEN = "sim-temu-access-token"
SIM_MALL_ID = 634418212233

OK = 1000000
BAD_PARAMS = 3000000
SIGN_INVALID = 3000001
NO_TYPE = 3000002
TYPE_NOT_EXISTS = 3000003
NO_TIMESTAMP = 3000010
TIMESTAMP_AHEAD = 3000011
TIMESTAMP_EXPIRED = 3000012
NO_APP_KEY = 3000025
APP_KEY_UNKNOWN = 3000026
NO_TOKEN = 3000030
TOKEN_UNKNOWN = 3000031
TOKEN_SCOPE = 3000032
TOKEN_APP_MISMATCH = 3000033
TOKEN_EXPIRED = 3000034
NO_SIGN = 3000040
SYSTEM_EXCEPTION = 4000000
RATE_LIMITED = 4000004
ORDER_NOT_FOUND = 140020002
GOODS_INVALID = 150010003
SHIPMENT_REJECTED = 140030006
"""[I] code of a refused shipment confirmation."""
GOODS_REFUSED = 150010030
"""[I] code of a stock edit refused for the whole product (knob ``reject_goods``)."""
DUPLICATE_REQUEST = 150010020
"""[I] code of a stock edit whose ``requestUniqueKey`` was used before."""
MAX_SKEW_SECONDS = 300
MAX_ARRIVALS = 100_000
"""Arrival times kept (about 1.4 h at 20 QPS), so a long-running dev stack stays small."""

ORDER_LIST = "bg.order.list.v2.get"
ORDER_DETAIL = "bg.order.detail.v2.get"
SHIPPING_INFO = "bg.order.shippinginfo.v2.get"
SHIPMENT_CONFIRM = "bg.logistics.shipment.confirm"
STOCK_QUERY = "temu.local.goods.sku.stock.query"
STOCK_EDIT = "bg.local.goods.stock.edit"
TOKEN_INFO = "bg.open.accesstoken.info.get"
API_TYPES = (
    ORDER_LIST,
    ORDER_DETAIL,
    SHIPPING_INFO,
    SHIPMENT_CONFIRM,
    STOCK_QUERY,
    STOCK_EDIT,
    TOKEN_INFO,
)
"""Methods the simulator serves; any other ``type`` is answered 3000003."""


def temu_sign(app_secret: str, params: Mapping[str, Any]) -> str:
    """TEMU's signature over ``params`` (the simulator's own copy of the algorithm)."""
    joined = "".join(
        key + json.dumps(value, ensure_ascii=False, separators=(",", ":")).strip('"')
        for key, value in sorted(params.items())
        if key != "sign"
    )
    return hashlib.md5((app_secret + joined + app_secret).encode("utf-8")).hexdigest().upper()


class Reject(Exception):
    """Answer ``success: false`` with this code and message (internal to the simulator)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def int_field(body: Mapping[str, Any], name: str, default: int | None = None) -> int | None:
    """An integer request field (or ``default``); ``Reject`` with ``BAD_PARAMS`` otherwise."""
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Reject(BAD_PARAMS, f"{name} must be an integer")
    return value
