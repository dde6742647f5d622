"""State of the TEMU Open Platform simulator: apps, tokens, orders, stock, knobs, counters.

The HTTP layer (``simulators.temu.app``) hands every router request to ``TemuState.handle``,
which checks it in the gateway's order (``reference/upstream-apis.md`` §3.13) and answers
the envelope; tests call the same methods in-process. The app runs in a uvicorn thread while
tests change the state from the main thread, so every read and write holds one
``threading.Lock`` and nothing awaits while holding it.

The signature is checked with this module's own implementation of TEMU's algorithm (not the
client's), over the body re-serialized in the order it was received, so the client's
signing is tested against an independent copy.

Assumptions where TEMU documents nothing ([I] in the reference):

* TEMU treats a repeated shipment confirmation (same ``parentOrderSn`` and
  ``trackingNumber``) idempotently: it answers success and creates no second shipment. The
  answer carries ``"duplicate": true`` so tests can see it; the real result shape is unknown
  beyond ``warningMessage``. The knob ``repeat_shipment`` switches to the other answers a
  real gateway may give (plain success, or a rejection).
* A repeated ``requestUniqueKey`` is refused with ``DUPLICATE_REQUEST`` and applies nothing;
  the knob ``duplicate_key_code`` gives another code, or 0 to accept the repeat silently.
* An address change bumps the order's ``updateTime`` (TEMU also sends the
  ``bg_trade_logistics_address_changed`` webhook; the order itself carries no other mark).
* The gateway's limit is a token bucket per app key holding one second of requests
  (``qps`` tokens, refilled at ``qps`` per second).
* The business error codes of rejected shipments, duplicate ``requestUniqueKey`` s and bad
  goods parameters are the constants below.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from models.clock import unix as unix_now

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

_KNOB_DEFAULTS: dict[str, Any] = {
    "latency_ms": 0,
    "error_rate": 0.0,
    "fail_next": 0,
    "qps": 20.0,
    "burst": 0,
    "reject_shipments": set(),
    "reject_skus": set(),
    "visibility_delay_seconds": 0.0,
    "clock_offset_seconds": 0.0,
    "list_lag_seconds": 0.0,
    "unstable_ties": False,
    "duplicate_key_code": DUPLICATE_REQUEST,
    "repeat_shipment": "duplicate",
    "reject_goods": set(),
    "fail_goods": set(),
    "rate_limit_next": 0,
    "http_429_next": 0,
    "malformed_orders": set(),
}
"""Knobs and their healthy values. ``burst`` 0 means "``qps`` tokens" (one second)."""
REPEAT_SHIPMENT_ANSWERS = ("duplicate", "success", "reject")
"""Values of the ``repeat_shipment`` knob."""

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


def _flag(value: Any) -> bool:
    """A boolean knob from JSON or a form (``true``/``false``, ``1``/``0``)."""
    if isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"expected true or false, got {value!r}")
        return value.lower() in ("true", "1")
    return bool(value)


def _int(body: Mapping[str, Any], name: str, default: int | None = None) -> int | None:
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Reject(BAD_PARAMS, f"{name} must be an integer")
    return value


class TemuState:
    """Apps, tokens, orders, stock, knobs and counters of one simulated TEMU region.

    Knobs are plain attributes (see ``_KNOB_DEFAULTS``); set them directly or through
    ``set_knobs`` / ``POST /_admin/knobs``:

    * ``latency_ms``: delay of every router answer.
    * ``error_rate``: share of admitted requests answered ``4000000``.
    * ``fail_next``: answer the next N admitted requests ``4000000``.
    * ``qps`` / ``burst``: the per-app-key token bucket (``burst`` 0 = ``qps``).
    * ``reject_shipments``: parent order numbers whose shipment confirmation is refused.
    * ``reject_skus``: SKU ids whose stock edit fails (per SKU, the rest applies).
    * ``visibility_delay_seconds``: how long a stock edit stays invisible to queries.
    * ``clock_offset_seconds``: TEMU's clock minus the ``clock`` given (e.g. -20: TEMU runs
      20 s behind the worker). Stamps ``updateTime``, checks request timestamps (±300 s).
    * ``list_lag_seconds``: the order list shows a change this long after it was made
      (until then the order's previous state, or nothing for a new order); details,
      shipping info and stock are current.
    * ``unstable_ties``: orders with equal ``updateTime`` come in a new random order on
      every list request (pages by number then skip and repeat orders of a tie).
    * ``duplicate_key_code``: the ``errorCode`` answering a stock edit whose
      ``requestUniqueKey`` was used before; 0 = answer success and apply nothing again.
    * ``repeat_shipment``: answer to a shipment already confirmed with the same tracking
      number: ``duplicate`` (success, ``"duplicate": true``), ``success`` (plain success,
      no marker) or ``reject`` (``SHIPMENT_REJECTED``).
    * ``reject_goods``: product ids whose stock edits are refused as a whole with the
      business error ``GOODS_REFUSED`` (nothing applied).
    * ``fail_goods``: product ids whose stock edits answer ``4000000`` (system exception,
      nothing applied) for as long as the knob is set.
    * ``rate_limit_next``: answer the next N signed requests ``4000004`` (whatever the
      bucket holds), as when a neighbour on the same app key spent the budget.
    * ``http_429_next``: answer the next N router requests HTTP 429 with ``Retry-After: 1``
      before the gateway reads them (a proxy in front; TEMU documents only ``4000004``).
    * ``malformed_orders``: parent order numbers the order list serves with an unreadable
      ``parentOrderMap.parentOrderStatus`` (a string), as a changed API would.

    Counters: ``requests`` (per ``type``), ``request_times`` (monotonic arrival time of every
    router request; see ``max_in_window``), ``error_codes`` (per answered ``errorCode``,
    ``rate_limited`` = count of 4000004), plus ``shipments`` and ``stock_edits`` as recorded.

    Args:
        app_key: key of the app created at start.
        app_secret: its secret.
        access_token: a token of that app, valid for every method, never expiring.
        mall_id: the shop (mall) the token belongs to.
        region_id: ``regionId`` of generated orders (211 = US).
        clock: unix time of the simulated gateway (timestamp checks, ``updateTime``).
        knobs: initial knob values.
    """

    latency_ms: int
    error_rate: float
    fail_next: int
    qps: float
    burst: int
    reject_shipments: set[str]
    reject_skus: set[int]
    visibility_delay_seconds: float
    clock_offset_seconds: float
    list_lag_seconds: float
    unstable_ties: bool
    duplicate_key_code: int
    repeat_shipment: str
    reject_goods: set[int]
    fail_goods: set[int]
    rate_limit_next: int
    http_429_next: int
    malformed_orders: set[str]

    def __init__(
        self,
        *,
        app_key: str = SIM_APP_KEY,
        app_secret: str = SIM_APP_SECRET,
        access_token: str = SIM_ACCESS_TOKEN,
        mall_id: int = SIM_MALL_ID,
        region_id: int = 211,
        clock: Callable[[], float] = unix_now,
        **knobs: Any,
    ) -> None:
        self.clock = clock
        self.region_id = region_id
        self._lock = threading.Lock()
        self._rng = random.Random(0)
        self.apps: dict[str, str] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        self._orders: dict[str, dict[str, Any]] = {}
        self._shipping: dict[str, dict[str, Any]] = {}
        self._skus: dict[int, dict[str, Any]] = {}
        self._goods: dict[int, list[int]] = {}
        self._edit_keys: set[tuple[int, str]] = set()
        self._unlisted: dict[str, tuple[float, dict[str, Any] | None]] = {}
        """Orders whose last change the list does not show yet: sn -> (shown from, state
        shown until then, ``None`` = not listed at all). See ``list_lag_seconds``."""
        self.shipments: list[dict[str, Any]] = []
        self.stock_edits: list[dict[str, Any]] = []
        self.requests: Counter[str] = Counter()
        self.error_codes: Counter[int] = Counter()
        self.request_times: deque[float] = deque(maxlen=MAX_ARRIVALS)
        self.http_429_served = 0
        """Router requests answered HTTP 429 (``http_429_next``)."""
        self.add_app(app_key, app_secret)
        self.add_token(access_token, app_key, mall_id=mall_id)
        self.reset_knobs()
        self.set_knobs(**knobs)

    # -- knobs, credentials, counters ----------------------------------------------------

    def reset_knobs(self) -> None:
        """Back to a healthy gateway: no latency or faults, 20 QPS, nothing rejected."""
        with self._lock:
            for name, value in _KNOB_DEFAULTS.items():
                setattr(self, name, set(value) if isinstance(value, set) else value)
            self._buckets.clear()

    def set_knobs(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs by name; returns all knobs.

        Raises:
            ValueError: an unknown knob or a value of the wrong kind.
        """
        for name, value in knobs.items():
            if name not in _KNOB_DEFAULTS:
                raise ValueError(f"unknown knob {name!r}; known: {', '.join(_KNOB_DEFAULTS)}")
            if name in ("reject_shipments", "malformed_orders"):
                value = {str(v) for v in value}
            elif name in ("reject_skus", "reject_goods", "fail_goods"):
                value = {int(v) for v in value}
            elif name == "repeat_shipment":
                if value not in REPEAT_SHIPMENT_ANSWERS:
                    raise ValueError(
                        f"repeat_shipment must be one of {', '.join(REPEAT_SHIPMENT_ANSWERS)}"
                    )
            elif name == "unstable_ties":
                value = _flag(value)
            else:
                value = type(_KNOB_DEFAULTS[name])(value)
            if name == "qps" and value <= 0:
                raise ValueError("qps must be positive")
            with self._lock:
                setattr(self, name, value)
                if name in ("qps", "burst"):
                    self._buckets.clear()
        return self.knobs()

    def knobs(self) -> dict[str, Any]:
        """Current knob values (JSON-friendly)."""
        with self._lock:
            out = {name: getattr(self, name) for name in _KNOB_DEFAULTS}
        out["reject_shipments"] = sorted(out["reject_shipments"])
        out["reject_skus"] = sorted(out["reject_skus"])
        out["reject_goods"] = sorted(out["reject_goods"])
        out["fail_goods"] = sorted(out["fail_goods"])
        out["malformed_orders"] = sorted(out["malformed_orders"])
        return out

    def now(self) -> float:
        """TEMU's clock: the injected ``clock`` plus ``clock_offset_seconds``."""
        return self.clock() + self.clock_offset_seconds

    def add_app(self, app_key: str, app_secret: str) -> None:
        """Register an app (``app_key`` -> secret)."""
        with self._lock:
            self.apps[app_key] = app_secret

    def add_token(
        self,
        token: str,
        app_key: str,
        *,
        mall_id: int = SIM_MALL_ID,
        expires_at: float | None = None,
        scopes: Iterable[str] | None = None,
    ) -> None:
        """Register a seller token of ``app_key``.

        Args:
            token: the access token.
            app_key: the app it was issued to.
            mall_id: the shop it grants access to.
            expires_at: unix seconds after which it answers 3000034 (``None`` = never).
            scopes: the methods it may call (``None`` = every method served).
        """
        with self._lock:
            self.tokens[token] = {
                "app_key": app_key,
                "mall": mall_id,
                "expires_at": expires_at,
                "scopes": None if scopes is None else set(scopes),
            }

    def reset_counters(self) -> None:
        """Zero ``requests``, ``error_codes`` and ``request_times``; refill the buckets."""
        with self._lock:
            self.requests.clear()
            self.error_codes.clear()
            self.request_times.clear()
            self._buckets.clear()
            self.http_429_served = 0

    def reset(self) -> None:
        """No orders, stock, shipments or edits; healthy knobs; zero counters.

        Apps and tokens are kept.
        """
        with self._lock:
            for pool in (self._orders, self._shipping, self._skus, self._goods, self._unlisted):
                pool.clear()
            self._edit_keys.clear()
            self.shipments.clear()
            self.stock_edits.clear()
        self.reset_knobs()
        self.reset_counters()

    def take_http_429(self) -> bool:
        """Whether this router request is answered HTTP 429 (``http_429_next``); counts it."""
        with self._lock:
            if self.http_429_next <= 0:
                return False
            self.http_429_next -= 1
            self.http_429_served += 1
            return True

    @property
    def rate_limited(self) -> int:
        """How many requests were answered 4000004."""
        with self._lock:
            return self.error_codes[RATE_LIMITED]

    def max_in_window(self, seconds: float = 1.0) -> int:
        """Most router requests that arrived within any ``seconds``-long window [t, t+s)."""
        with self._lock:
            times = sorted(self.request_times)
        best, first = 0, 0
        for last, arrived in enumerate(times):
            while arrived - times[first] >= seconds:
                first += 1
            best = max(best, last - first + 1)
        return best

    def arrivals(self) -> list[float]:
        """Monotonic arrival times of every router request since the last counter reset."""
        with self._lock:
            return list(self.request_times)

    def shipment_log(self) -> list[dict[str, Any]]:
        """Recorded shipments (copies), oldest first."""
        with self._lock:
            return copy.deepcopy(self.shipments)

    def stats(self) -> dict[str, Any]:
        """Sizes, counters and knobs for ``GET /_admin/stats`` (no secrets or tokens)."""
        window = self.max_in_window(1.0)
        with self._lock:
            stats = {
                "orders": len(self._orders),
                "skus": len(self._skus),
                "shipments": len(self.shipments),
                "stock_edits": len(self.stock_edits),
                "requests": dict(self.requests),
                "error_codes": {str(k): v for k, v in self.error_codes.items()},
                "rate_limited": self.error_codes[RATE_LIMITED],
                "max_requests_per_second": window,
                "total_requests": sum(self.requests.values()),
            }
        return {**stats, "knobs": self.knobs()}

    # -- the router ----------------------------------------------------------------------

    def handle(self, body: Any, arrived: float | None = None) -> dict[str, Any]:
        """Answer one router request with TEMU's envelope (the HTTP status is always 200).

        Checks in the gateway's order: type, timestamp, app key, token, signature, scope,
        rate limit, injected faults; then dispatches on ``type``.

        Args:
            body: the JSON body as received (a dict in received key order).
            arrived: monotonic arrival time (default: now).
        """
        arrived = time.monotonic() if arrived is None else arrived
        api_type = body.get("type") if isinstance(body, dict) else None
        with self._lock:
            self.request_times.append(arrived)
            self.requests[str(api_type or "<none>")] += 1
        try:
            if not isinstance(body, dict):
                raise Reject(BAD_PARAMS, "The request body must be a JSON object")
            grant = self._admit(body, arrived)
            result = self._dispatch(body, grant)
        except Reject as reject:
            return self._envelope(reject.code, reject.message)
        return self._envelope(OK, "", result)

    def _envelope(self, code: int, message: str, result: Any = None) -> dict[str, Any]:
        with self._lock:
            self.error_codes[code] += 1
        envelope: dict[str, Any] = {
            "success": code == OK,
            "errorCode": code,
            "errorMsg": message,
            "requestId": f"us-{uuid.uuid4()}",
        }
        if code == OK:
            envelope["result"] = result
        return envelope

    def _admit(self, body: dict[str, Any], arrived: float) -> dict[str, Any]:
        """Gateway checks; the token's grant, or ``Reject`` for the first check that fails."""
        api_type = body.get("type")
        if not api_type:
            raise Reject(NO_TYPE, "The type parameter is required")
        if api_type not in API_TYPES:
            raise Reject(TYPE_NOT_EXISTS, f"The api type {api_type} does not exist")
        stamp = body.get("timestamp")
        if stamp is None:
            raise Reject(NO_TIMESTAMP, "The timestamp parameter is required")
        try:
            skew = float(stamp) - self.now()
        except (TypeError, ValueError):
            raise Reject(NO_TIMESTAMP, "The timestamp parameter is invalid") from None
        if skew > MAX_SKEW_SECONDS:
            raise Reject(TIMESTAMP_AHEAD, "Timestamp invalid: it is ahead of the server time")
        if skew < -MAX_SKEW_SECONDS:
            raise Reject(TIMESTAMP_EXPIRED, "Timestamp expired")
        app_key = body.get("app_key")
        token = body.get("access_token")
        with self._lock:
            if not app_key:
                raise Reject(NO_APP_KEY, "The app_key parameter is required")
            secret = self.apps.get(str(app_key))
            if secret is None:
                raise Reject(APP_KEY_UNKNOWN, "The app_key does not exist")
            if not token:
                raise Reject(NO_TOKEN, "The access_token parameter is required")
            grant = self.tokens.get(str(token))
            if grant is None:
                raise Reject(TOKEN_UNKNOWN, "The access_token does not exist")
            if grant["expires_at"] is not None and grant["expires_at"] <= self.clock():
                raise Reject(TOKEN_EXPIRED, "The access_token has expired or been refreshed")
            if grant["app_key"] != app_key:
                raise Reject(TOKEN_APP_MISMATCH, "The access_token does not belong to app_key")
        given = body.get("sign")
        if not given:
            raise Reject(NO_SIGN, "The sign parameter is required")
        if not secrets.compare_digest(str(given), temu_sign(secret, body)):
            raise Reject(SIGN_INVALID, "Sign invalid.")
        with self._lock:
            if grant["scopes"] is not None and api_type not in grant["scopes"]:
                raise Reject(TOKEN_SCOPE, f"The access_token has no permission for {api_type}")
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                raise Reject(RATE_LIMITED, "RATE_LIMIT_EXCEED_EXCEPTION")
            capacity = float(self.burst or self.qps)
            tokens, last = self._buckets.get(str(app_key), (capacity, arrived))
            tokens = min(capacity, tokens + (arrived - last) * self.qps)
            if tokens < 1:
                self._buckets[str(app_key)] = (tokens, arrived)
                raise Reject(RATE_LIMITED, "RATE_LIMIT_EXCEED_EXCEPTION")
            self._buckets[str(app_key)] = (tokens - 1, arrived)
            if self.fail_next > 0:
                self.fail_next -= 1
                raise Reject(SYSTEM_EXCEPTION, "SYSTEM_EXCEPTION (simulated)")
            if self.error_rate and self._rng.random() < self.error_rate:
                raise Reject(SYSTEM_EXCEPTION, "SYSTEM_EXCEPTION (simulated)")
        return dict(grant)

    def _dispatch(self, body: dict[str, Any], grant: dict[str, Any]) -> Any:
        handlers: dict[str, Callable[[dict[str, Any], dict[str, Any]], Any]] = {
            ORDER_LIST: self._list_orders,
            ORDER_DETAIL: self._order_detail,
            SHIPPING_INFO: self._shipping_info,
            SHIPMENT_CONFIRM: self._confirm_shipment,
            STOCK_QUERY: self._stock_query,
            STOCK_EDIT: self._stock_edit,
            TOKEN_INFO: self._token_info,
        }
        return handlers[body["type"]](body, grant)

    # -- orders: data --------------------------------------------------------------------

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

    # -- orders: API ---------------------------------------------------------------------

    def _list_orders(self, body: dict[str, Any], grant: dict[str, Any]) -> dict[str, Any]:
        page = _int(body, "pageNumber", 1) or 0
        size = _int(body, "pageSize", 10) or 0
        if page < 1 or not 1 <= size <= 100:
            raise Reject(BAD_PARAMS, "pageNumber must be >= 1 and pageSize between 1 and 100")
        windows = []
        for low, high in (("updateAtStart", "updateAtEnd"), ("createAfter", "createBefore")):
            lo, hi = _int(body, low), _int(body, high)
            if (lo is None) != (hi is None):
                raise Reject(BAD_PARAMS, f"{low} and {high} must be given together")
            windows.append((lo, hi))
        (upd_lo, upd_hi), (crt_lo, crt_hi) = windows
        status = _int(body, "parentOrderStatus", 0) or 0
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

    def _confirm_shipment(self, body: dict[str, Any], grant: dict[str, Any]) -> dict[str, Any]:
        if body.get("sendType") != 0:
            raise Reject(BAD_PARAMS, "The simulator supports sendType 0 (single package) only")
        requests = body.get("sendRequestList")
        if not isinstance(requests, list) or not requests:
            raise Reject(BAD_PARAMS, "sendRequestList is required")
        now = int(self.now())
        with self._lock:
            plans = []
            for request in requests:
                if not isinstance(request, dict):
                    raise Reject(BAD_PARAMS, "sendRequestList entries must be objects")
                infos = request.get("orderSendInfoList")
                carrier, tracking = request.get("carrierId"), request.get("trackingNumber")
                if not infos or not isinstance(infos, list) or not carrier or not tracking:
                    raise Reject(
                        BAD_PARAMS, "orderSendInfoList, carrierId and trackingNumber are required"
                    )
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
                    s["parentOrderSn"] == sn and s["trackingNumber"] == tracking
                    for s in self.shipments
                )
                if duplicate and self.repeat_shipment == "reject":
                    raise Reject(SHIPMENT_REJECTED, "The order has already been shipped")
                if not duplicate:
                    status = order["parentOrderMap"]["parentOrderStatus"]
                    if sn in self.reject_shipments or status not in (2, 41):
                        raise Reject(
                            SHIPMENT_REJECTED,
                            "The order status does not allow shipment confirmation",
                        )
                plans.append((sn, infos, str(carrier), str(tracking), duplicate))
            results = []
            for sn, infos, carrier, tracking, duplicate in plans:
                package = next(
                    (
                        s["packageSn"]
                        for s in self.shipments
                        if s["parentOrderSn"] == sn and s["trackingNumber"] == tracking
                    ),
                    None,
                )
                if package is None:
                    package = f"PK-{len(self.shipments) + 1:010d}"
                    self._ship(sn, [i["orderSn"] for i in infos], now)
                    self.shipments.append(
                        {
                            "parentOrderSn": sn,
                            "orderSns": [i["orderSn"] for i in infos],
                            "carrierId": carrier,
                            "trackingNumber": tracking,
                            "packageSn": package,
                            "at": now,
                        }
                    )
                results.append(
                    {
                        "parentOrderSn": sn,
                        "trackingNumber": tracking,
                        "packageSn": package,
                        "duplicate": duplicate and self.repeat_shipment == "duplicate",
                    }
                )
        return {
            "warningMessage": [],
            "duplicate": all(r["duplicate"] for r in results),
            "packageList": results,
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

    # -- stock ---------------------------------------------------------------------------

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
        goods_id = _int(body, "goodsId")
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
        goods_id = _int(body, "goodsId")
        if goods_id is None:
            raise Reject(GOODS_INVALID, "goodsId is required")
        if _int(body, "stockType", 0) != 0:
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

    # -- token ---------------------------------------------------------------------------

    def _token_info(self, body: dict[str, Any], grant: dict[str, Any]) -> dict[str, Any]:
        scopes = sorted(grant["scopes"]) if grant["scopes"] is not None else list(API_TYPES)
        expires = grant["expires_at"]
        return {
            "mallId": grant["mall"],
            "regionId": self.region_id,
            "mallType": "LOCAL",
            "expiredTime": int(expires) if expires is not None else int(self.clock()) + 365 * 86400,
            "apiScopeList": scopes,
            "appSubscribeEventCodeList": [],
            "appSubscribeStatus": 1,
            "authEventCodeList": [],
        }
