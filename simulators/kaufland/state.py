"""State of the Kaufland Seller API simulator: keys, storefronts, order units, knobs, counters.

The HTTP layer (``simulators.kaufland.app``) hands every API request to ``KauflandState``,
which checks it as Kaufland does (keys, timestamp, signature, rate limit) and answers; tests
change the same state in-process. The app runs in a uvicorn thread while tests change the
state from the main thread, so every read and write holds one ``threading.Lock``.

The signature is checked with this module's own copy of Kaufland's algorithm (not the
client's). "Now" is the injected ``models.clock.Clock`` plus ``clock_offset_seconds``;
``ts_created_iso``/``ts_updated_iso`` are stamped in that (Kaufland's) time.

Knobs for what Kaufland's documentation leaves open ([I] in the connector's docstring):

* ``timestamp_tolerance_seconds`` (300) and ``auth_error_status`` (401, or 403): how far
  ``Shop-Timestamp`` may be off and what a refused key, signature or timestamp answers.
* ``from_inclusive`` (True): whether ``ts_updated_from_iso`` keeps units updated *at* that
  second ("updated after this timestamp" reads both ways).
* ``sort_supported`` (True): whether ``sort=ts_updated_iso:asc`` is honoured; when not, lists
  come newest order unit first.
* ``retry_after`` (None): seconds sent in ``Retry-After`` with a 429 (None: no header).
* ``list_lag_seconds``: a change shows in the list only this long after it is stamped (point
  reads see it at once); ``unstable_ties``: units with equal ``ts_updated_iso`` come in a new
  random order on every request.
* Faults: ``fail_next`` (statuses answered to the next requests, e.g. ``[429, 503]``),
  ``error_rate`` (random 500s), ``latency_ms``, ``rate_limit_qps`` (111 per seller, documented).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.clock import Clock, default_clock

SIM_CLIENT_KEY = "simkauflandclientkey000000000001"
SIM_SECRET_KEY = "simkauflandsecretkey" + "0" * 43 + "1"
STOREFRONTS = ("de", "at", "cz", "sk", "pl", "fr", "it")
"""Storefronts the simulator serves unless told otherwise."""
STATUSES = (
    "open",
    "need_to_be_sent",
    "sent",
    "received",
    "cancelled",
    "returned",
    "returned_paid",
    "sent_and_autopaid",
)
"""Order unit statuses (as the SDKs list them)."""
MAX_LIMIT = 100
ISO = "%Y-%m-%dT%H:%M:%SZ"

_KNOB_DEFAULTS: dict[str, Any] = {
    "timestamp_tolerance_seconds": 300,
    "auth_error_status": 401,
    "from_inclusive": True,
    "sort_supported": True,
    "retry_after": None,
    "list_lag_seconds": 0.0,
    "unstable_ties": False,
    "fail_next": [],
    "error_rate": 0.0,
    "latency_ms": 0,
    "rate_limit_qps": 111.0,
    "clock_offset_seconds": 0.0,
}


def iso(seconds: float) -> str:
    """Unix seconds as Kaufland writes them (``2024-05-31T13:59:23Z``)."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime(ISO)


def parse_iso(text: str) -> int:
    """``YYYY-MM-DDTHH:MM:SSZ`` (or with an offset) as unix seconds.

    Raises:
        ValueError: not such a timestamp.
    """
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {text!r}")
    return int(parsed.timestamp())


def kaufland_sign(method: str, url: str, body: str, timestamp: str, secret: str) -> str:
    """The simulator's own copy of Kaufland's HMAC-SHA256 request signature."""
    text = f"{method}\n{url}\n{body}\n{timestamp}"
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


@dataclass
class Answer:
    """What the HTTP layer sends back."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Unit:
    versions: list[tuple[float, dict[str, Any]]]
    """``(listed from, snapshot)``, oldest first; the list shows the newest listed one."""

    def latest(self) -> dict[str, Any]:
        return self.versions[-1][1]

    def listed(self, now: float) -> dict[str, Any] | None:
        for since, snapshot in reversed(self.versions):
            if since <= now:
                return snapshot
        return None


class KauflandState:
    """Everything the simulator knows; thread-safe.

    Args:
        client_key: the accepted ``Shop-Client-Key``.
        secret_key: its secret key.
        storefronts: storefronts served.
        clock: "now" (before ``clock_offset_seconds``); default the process-wide clock.
        **knobs: initial knob values (see the module docstring).
    """

    def __init__(
        self,
        *,
        client_key: str = SIM_CLIENT_KEY,
        secret_key: str = SIM_SECRET_KEY,
        storefronts: tuple[str, ...] = STOREFRONTS,
        clock: Clock | None = None,
        **knobs: Any,
    ) -> None:
        self._lock = threading.Lock()
        self._keys = {client_key: secret_key}
        self._initial_keys = dict(self._keys)
        self.storefronts = tuple(storefronts)
        self._clock = clock
        self._knobs = dict(_KNOB_DEFAULTS)
        self._units: dict[int, _Unit] = {}
        self._next_id = 1000
        self._bucket: dict[str, tuple[float, float]] = {}
        self.requests = 0
        self.list_requests = 0
        self.auth_refused = 0
        self.rate_limited = 0
        self.set_knobs(**knobs)

    # -- knobs and clock ------------------------------------------------------------------

    def set_knobs(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs; unknown names raise ``ValueError`` naming them."""
        unknown = sorted(set(knobs) - set(_KNOB_DEFAULTS))
        if unknown:
            raise ValueError(
                f"unknown knobs {', '.join(unknown)}; known: {', '.join(_KNOB_DEFAULTS)}"
            )
        with self._lock:
            for name, value in knobs.items():
                self._knobs[name] = list(value) if name == "fail_next" else value
            return dict(self._knobs)

    def knobs(self) -> dict[str, Any]:
        """Current knob values."""
        with self._lock:
            return dict(self._knobs)

    def reset_knobs(self) -> None:
        """Healthy values again (tests call it between cases)."""
        with self._lock:
            self._knobs = dict(_KNOB_DEFAULTS)
            self._knobs["fail_next"] = []

    def now(self) -> float:
        """Kaufland's "now": the clock plus ``clock_offset_seconds``."""
        clock = self._clock or default_clock()
        return clock.now().timestamp() + float(self._knobs["clock_offset_seconds"])

    # -- data -----------------------------------------------------------------------------

    def add_units(
        self,
        n: int,
        *,
        storefront: str = "de",
        status: str = "open",
        at: float | None = None,
        per_order: int = 2,
        seed: int | None = None,
    ) -> list[int]:
        """Create ``n`` order units (``per_order`` per order) stamped ``at`` (default now)."""
        if storefront not in self.storefronts:
            raise ValueError(f"unknown storefront {storefront!r}")
        rng = random.Random(seed)
        with self._lock:
            stamp = self._stamp(at)
            ids = []
            order = ""
            for i in range(n):
                if i % max(1, per_order) == 0:
                    order = f"M{rng.randrange(16**6):06X}{self._next_id}"
                uid = self._next_id
                self._next_id += 1
                price = rng.randrange(500, 20000)
                snapshot = {
                    "id_order_unit": uid,
                    "id_order": order,
                    "ts_created_iso": iso(stamp),
                    "ts_updated_iso": iso(stamp),
                    "status": status,
                    "storefront": storefront,
                    "currency": "EUR",
                    "price": price,
                    "revenue_gross": price,
                    "revenue_net": int(price / 1.19),
                    "shipping_rate": 495,
                    "fulfillment_type": "fulfilled_by_merchant",
                    "id_offer": f"OF{uid}",
                    "product": {"id_product": 20000000 + uid, "title": f"Product {uid}"},
                }
                self._units[uid] = _Unit([(stamp + self._lag(), snapshot)])
                ids.append(uid)
            return ids

    def change(self, ids: list[int], *, status: str | None = None, at: float | None = None) -> None:
        """Bump ``ts_updated_iso`` of units (to ``at`` or now), setting ``status`` if given."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; known: {', '.join(STATUSES)}")
        with self._lock:
            stamp = self._stamp(at)
            for uid in ids:
                unit = self._units[uid]
                snapshot = dict(unit.latest(), ts_updated_iso=iso(stamp))
                if status is not None:
                    snapshot["status"] = status
                unit.versions = [*unit.versions[-3:], (stamp + self._lag(), snapshot)]

    def add_malformed(self, storefront: str = "de", at: float | None = None) -> int:
        """A unit without ``id_order`` and with an unreadable ``ts_created_iso``."""
        uid = self.add_units(1, storefront=storefront, at=at)[0]
        with self._lock:
            unit = self._units[uid]
            bad = {k: v for k, v in unit.latest().items() if k != "id_order"}
            bad["ts_created_iso"] = "2016-05-31T13:59:23T"
            unit.versions = [(unit.versions[-1][0], bad)]
        return uid

    def rotate_keys(self, client_key: str, secret_key: str) -> None:
        """Accept only this key pair from now on (the seller generated new API keys)."""
        with self._lock:
            self._keys = {client_key: secret_key}

    def unit(self, uid: int) -> dict[str, Any] | None:
        """Current state of one unit (what a point read returns)."""
        with self._lock:
            unit = self._units.get(uid)
            return dict(unit.latest()) if unit else None

    def unit_ids(self) -> list[int]:
        """Ids of every unit, oldest first."""
        with self._lock:
            return list(self._units)

    def stats(self) -> dict[str, int]:
        """Request counters."""
        with self._lock:
            return {
                "requests": self.requests,
                "list_requests": self.list_requests,
                "auth_refused": self.auth_refused,
                "rate_limited": self.rate_limited,
                "units": len(self._units),
            }

    def reset(self) -> None:
        """No units, healthy knobs, counters at zero, the keys it was built with accepted."""
        self.reset_knobs()
        with self._lock:
            self._units.clear()
            self._keys = dict(self._initial_keys)
            self._bucket.clear()
            self.requests = self.list_requests = self.auth_refused = self.rate_limited = 0

    # -- requests -------------------------------------------------------------------------

    def check(self, method: str, url: str, headers: dict[str, str], body: str) -> Answer | None:
        """Keys, timestamp, signature, rate limit and injected faults; ``None`` = go on."""
        with self._lock:
            self.requests += 1
            knobs = self._knobs
            refused = self._auth(method, url, headers, body)
            if refused is not None:
                self.auth_refused += 1
                return Answer(int(knobs["auth_error_status"]), {"message": refused})
            if not self._take_token(headers["shop-client-key"]):
                return self._too_many()
            if knobs["fail_next"]:
                status = int(knobs["fail_next"].pop(0))
                if status == 429:
                    return self._too_many()
                return Answer(status, {"message": f"simulated HTTP {status}"})
            if knobs["error_rate"] and random.random() < float(knobs["error_rate"]):
                return Answer(500, {"message": "simulated internal error"})
        return None

    def list_units(self, query: dict[str, list[str]]) -> Answer:
        """``GET /v2/order-units``."""
        with self._lock:
            asked = self._listing(query, "ts_updated_from_iso", "ts_created_from_iso")
            if isinstance(asked, Answer):
                return asked
            limit, offset, (since, created) = asked
            statuses = set(query.get("status", []))
            now = self.now()
            storefront = query["storefront"][0]
            rows = []
            for unit in self._units.values():
                snapshot = unit.listed(now)
                if snapshot is None or snapshot.get("storefront") != storefront:
                    continue
                if statuses and snapshot.get("status") not in statuses:
                    continue
                if since is not None and not self._after(snapshot, "ts_updated_iso", since):
                    continue
                if created is not None and not self._after(snapshot, "ts_created_iso", created):
                    continue
                rows.append(snapshot)
            rows = self._sorted(rows, (query.get("sort") or [""])[0])
            return _page_answer(
                [dict(r) for r in rows[offset : offset + limit]], offset, limit, len(rows)
            )

    def get_unit(self, uid: str) -> Answer:
        """``GET /v2/order-units/{id}``."""
        unit = self.unit(int(uid)) if uid.isdigit() else None
        if unit is None:
            return Answer(404, {"message": f"order unit {uid} not found"})
        return Answer(200, {"data": unit})

    def list_orders(self, query: dict[str, list[str]]) -> Answer:
        """``GET /v2/orders``: orders built from their listed units."""
        with self._lock:
            asked = self._listing(query, "ts_created_from_iso", "ts_units_updated_from_iso")
            if isinstance(asked, Answer):
                return asked
            limit, offset, (created, units_since) = asked
            orders = self._orders(query["storefront"][0], self.now())
        rows = [
            o
            for o in orders.values()
            if (created is None or _seconds(o["ts_created_iso"]) >= created)
            and (units_since is None or _seconds(o["ts_units_updated_iso"]) >= units_since)
        ]
        rows.sort(key=lambda o: o["ts_created_iso"], reverse=True)
        return _page_answer(rows[offset : offset + limit], offset, limit, len(rows))

    def get_order(self, id_order: str) -> Answer:
        """``GET /v2/orders/{id}`` with its ``order_units``."""
        with self._lock:
            units = [
                u.latest() for u in self._units.values() if u.latest().get("id_order") == id_order
            ]
        if not units:
            return Answer(404, {"message": f"order {id_order} not found"})
        head = _order_head(id_order, units)
        return Answer(200, {"data": {**head, "order_units": [dict(u) for u in units]}})

    # -- internals (lock held) ------------------------------------------------------------

    def _stamp(self, at: float | None) -> int:
        return int(self.now() if at is None else at)

    def _lag(self) -> float:
        return float(self._knobs["list_lag_seconds"])

    def _auth(self, method: str, url: str, headers: dict[str, str], body: str) -> str | None:
        """Why the request is refused, or ``None``."""
        for name in ("shop-client-key", "shop-timestamp", "shop-signature"):
            if not headers.get(name):
                return f"missing header {name.title()}"
        secret = self._keys.get(headers["shop-client-key"])
        if secret is None:
            return "unknown client key"
        try:
            stamp = int(headers["shop-timestamp"])
        except ValueError:
            return "Shop-Timestamp is not a unix timestamp"
        if abs(stamp - self.now()) > float(self._knobs["timestamp_tolerance_seconds"]):
            return "Shop-Timestamp is too far from the server time"
        expected = kaufland_sign(method, url, body, headers["shop-timestamp"], secret)
        if not hmac.compare_digest(expected, headers["shop-signature"]):
            return "signature does not match"
        return None

    def _take_token(self, key: str) -> bool:
        rate = float(self._knobs["rate_limit_qps"])
        now = time.monotonic()
        tokens, last = self._bucket.get(key, (rate, now))
        tokens = min(rate, tokens + (now - last) * rate)
        if tokens < 1:
            self._bucket[key] = (tokens, now)
            return False
        self._bucket[key] = (tokens - 1, now)
        return True

    def _too_many(self) -> Answer:
        self.rate_limited += 1
        wait = self._knobs["retry_after"]
        headers = {} if wait is None else {"Retry-After": str(wait)}
        return Answer(429, {"message": "429 Too Many Requests"}, headers)

    def _listing(
        self, query: dict[str, list[str]], *stamps: str
    ) -> Answer | tuple[int, int, list[int | None]]:
        """Count a list request; read its storefront, paging and ``stamps`` (from-filters).

        Returns the 400 answer that says what is wrong with them, if something is.
        """
        self.list_requests += 1
        bad = self._storefront(query)
        if bad is not None:
            return bad
        try:
            limit, offset = self._paging(query)
            return limit, offset, [self._from(query, name) for name in stamps]
        except ValueError as exc:
            return Answer(400, {"message": str(exc)})

    def _storefront(self, query: dict[str, list[str]]) -> Answer | None:
        given = query.get("storefront") or []
        if not given:
            return Answer(400, {"message": "storefront is required"})
        if given[0] not in self.storefronts:
            return Answer(400, {"message": f"unknown storefront {given[0]!r}"})
        return None

    @staticmethod
    def _paging(query: dict[str, list[str]]) -> tuple[int, int]:
        limit = int((query.get("limit") or ["30"])[0])
        offset = int((query.get("offset") or ["0"])[0])
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            raise ValueError(f"limit must be 1..{MAX_LIMIT} and offset >= 0")
        return limit, offset

    @staticmethod
    def _from(query: dict[str, list[str]], name: str) -> int | None:
        values = query.get(name)
        if not values:
            return None
        try:
            return parse_iso(values[0])
        except ValueError:
            raise ValueError(f"{name} must be YYYY-MM-DDTHH:MM:SSZ, got {values[0]!r}") from None

    def _after(self, snapshot: dict[str, Any], name: str, since: int) -> bool:
        try:
            stamp = parse_iso(str(snapshot.get(name)))
        except ValueError:
            return True  # unreadable: listed, the client must cope
        return stamp >= since if self._knobs["from_inclusive"] else stamp > since

    def _sorted(self, rows: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
        field_name, _, direction = sort.partition(":")
        if not self._knobs["sort_supported"] or field_name not in (
            "ts_updated_iso",
            "ts_created_iso",
        ):
            return sorted(rows, key=lambda r: -int(r["id_order_unit"]))
        ties = random.random if self._knobs["unstable_ties"] else None
        keyed = [
            (str(r.get(field_name)), ties() if ties else int(r["id_order_unit"]), r) for r in rows
        ]
        keyed.sort(key=lambda k: (k[0], k[1]), reverse=direction == "desc")
        return [r for _, _, r in keyed]

    def _orders(self, storefront: str, now: float) -> dict[str, dict[str, Any]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for unit in self._units.values():
            snapshot = unit.listed(now)
            if snapshot and snapshot.get("storefront") == storefront and snapshot.get("id_order"):
                grouped.setdefault(snapshot["id_order"], []).append(snapshot)
        return {oid: _order_head(oid, units) for oid, units in grouped.items()}


def _seconds(text: str) -> int:
    """``parse_iso`` that lists an unreadable timestamp (the client must cope) as newest."""
    try:
        return parse_iso(text)
    except ValueError:
        return 2**62


def _order_head(id_order: str, units: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id_order": id_order,
        "order_units_count": len(units),
        "ts_created_iso": min(str(u.get("ts_created_iso")) for u in units),
        "ts_units_updated_iso": max(str(u.get("ts_updated_iso")) for u in units),
        "storefront": units[0].get("storefront"),
        "is_marketplace_deemed_supplier": False,
    }


__all__ = [
    "SIM_CLIENT_KEY",
    "SIM_SECRET_KEY",
    "STATUSES",
    "STOREFRONTS",
    "Answer",
    "KauflandState",
    "iso",
    "kaufland_sign",
    "parse_iso",
]


def _page_answer(rows: list[dict[str, Any]], offset: int, limit: int, total: int) -> Answer:
    """A list answer: one page of rows and Kaufland's ``pagination``."""
    return Answer(
        200,
        {"data": rows, "pagination": {"offset": offset, "limit": limit, "total": total}},
    )
