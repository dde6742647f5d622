"""State of the TEMU Open Platform simulator: apps, tokens, orders, stock, knobs, counters.

``TemuState`` is assembled from mixins named for what they hold (``knobs``, ``counters``,
``gateway``, ``orders``, ``order_api``, ``shipments``, ``stock``; wire facts in ``wire``);
this module builds it and dispatches each admitted request to its method.

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

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from models.clock import unix as unix_now
from simulators.temu.counters import CountersMixin
from simulators.temu.gateway import GatewayMixin
from simulators.temu.knobs import KNOB_DEFAULTS, REPEAT_SHIPMENT_ANSWERS
from simulators.temu.shipments import ShipmentsMixin
from simulators.temu.stock import StockMixin
from simulators.temu.wire import (
    API_TYPES,
    BAD_PARAMS,
    DUPLICATE_REQUEST,
    MAX_ARRIVALS,
    OK,
    ORDER_DETAIL,
    ORDER_LIST,
    SHIPMENT_CONFIRM,
    SHIPMENT_REJECTED,
    SHIPPING_INFO,
    SIM_ACCESS_TOKEN,
    SIM_APP_KEY,
    SIM_APP_SECRET,
    SIM_MALL_ID,
    STOCK_EDIT,
    STOCK_QUERY,
    TOKEN_INFO,
    Reject,
    temu_sign,
)


class TemuState(GatewayMixin, CountersMixin, ShipmentsMixin, StockMixin):
    """Apps, tokens, orders, stock, knobs and counters of one simulated TEMU region.

    Knobs are plain attributes (see ``KNOB_DEFAULTS``); set them directly or through
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


__all__ = [  # the wire facts tests and the app read from here (defined in simulators.temu.wire)
    "API_TYPES",
    "DUPLICATE_REQUEST",
    "KNOB_DEFAULTS",
    "ORDER_LIST",
    "REPEAT_SHIPMENT_ANSWERS",
    "SHIPMENT_REJECTED",
    "SHIPPING_INFO",
    "SIM_ACCESS_TOKEN",
    "SIM_APP_KEY",
    "SIM_APP_SECRET",
    "SIM_MALL_ID",
    "STOCK_EDIT",
    "STOCK_QUERY",
    "TOKEN_INFO",
    "TemuState",
    "temu_sign",
]
