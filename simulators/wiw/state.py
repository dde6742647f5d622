"""State of the When I Work simulator: shifts, credentials, tokens, fault knobs, counters.

The HTTP layer (``simulators.wiw.app``) only translates requests into calls on ``WiwState``;
tests call the same methods in-process. The app runs in a uvicorn thread while tests mutate
the state from the main thread, so every read and write holds one ``threading.Lock`` and
nothing awaits while holding it.
"""

from __future__ import annotations

import bisect
import math
import random
import secrets
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as dtime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from models import clock
from simulators.counters import RequestCounters
from simulators.wire_cache import WireCache

DATE_FIELDS = (
    "start_time",
    "end_time",
    "published_date",
    "created_at",
    "updated_at",
    "notified_at",
    "acknowledged_at",
)
"""Shift fields holding RFC 1123 dates on the wire (the last two may be null)."""
FIRST_ID = 2_076_300_000
"""Generated ids start here: real ids sit near the int32 limit (2 076 303 948 in slot_sync)."""
BODIES_KEPT = 16
"""Encoded ``GET /2/shifts`` answers kept at once (a few days of a window, per knob set)."""
MALFORMED_STYLES = ("bad_date", "missing_start_time", "string_id")
"""How a shift listed in ``malformed_ids`` is broken on the wire (``string_id``: the id
as a JSON string and an unreadable start)."""

_KNOB_DEFAULTS: dict[str, Any] = {
    "latency_ms": 0,
    "error_rate": 0.0,
    "fail_next": 0,
    "malformed_ids": set(),
    "malformed_style": "bad_date",
    "rate_limit_per_minute": 600,
    "rate_limit_window_seconds": 60.0,
    "rate_limit_status": 429,
    "throttle_next": 0,
    "throttle_retry_after": 1,
    "reject_tokens": False,
}
_NAMES = [
    "Jane Smith",
    "Ali Khan",
    "Maria Garcia",
    "Tom Becker",
    "Yuki Sato",
    "Lena Novak",
    "Omar Haddad",
    "Chloe Martin",
    "Sam Okafor",
    "Eva Lind",
    "Raj Patel",
    "Nora Berg",
]
_PLACES = ["London Central", "London East", "Camden", "Croydon"]
_ROLES = ["Rider", "Driver", "Dispatcher", "Picker"]


def rfc1123(value: datetime) -> str:
    """Format as the API does, e.g. ``Mon, 08 May 2023 08:30:00 -0600`` (locale-independent)."""
    return format_datetime(value if value.tzinfo else value.replace(tzinfo=UTC))


def parse_when(value: Any, tz: tzinfo) -> datetime:
    """Read a date the way the API accepts it: ISO date, ISO datetime (offset optional), RFC 1123.

    Naive values are taken in ``tz`` (the simulated account's timezone).

    Raises:
        ValueError: the value is none of those.
    """
    if isinstance(value, datetime):
        parsed = value
    elif not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a date: {value!r}")
    elif len(value.strip()) == 10:
        parsed = datetime.combine(date.fromisoformat(value.strip()), dtime())
    else:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            try:
                parsed = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                raise ValueError(f"not a date: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _span(shift: dict[str, Any]) -> tuple[float, float]:
    """Start and end of a shift in epoch seconds."""
    return shift["start_time"].timestamp(), shift["end_time"].timestamp()


def _zone(tz: tzinfo | str | None, default: tzinfo) -> tzinfo:
    if tz is None:
        return default
    return ZoneInfo(tz) if isinstance(tz, str) else tz


class WiwState(RequestCounters):
    """Shifts, credentials, tokens, knobs and counters of one simulated account.

    Knobs are plain attributes (see ``_KNOB_DEFAULTS``); set them directly or through
    ``set_knobs`` / ``POST /_admin/knobs``. ``requests`` counts API calls per route
    (``"GET /2/shifts"``, ``"GET /2/shifts/{id}"``, ``"POST /2/login"``, ``"POST /login"``) and
    ``statuses`` counts the status codes answered, so tests can assert call counts and faults.
    """

    latency_ms: int
    error_rate: float
    fail_next: int
    malformed_ids: set[int]
    malformed_style: str
    rate_limit_per_minute: int
    rate_limit_window_seconds: float
    rate_limit_status: int
    throttle_next: int
    throttle_retry_after: int
    reject_tokens: bool

    def __init__(
        self,
        *,
        developer_key: str = "sim-developer-key",
        email: str = "api@example.com",
        password: str = "sim-password",
        static_token: str | None = None,
        timezone: tzinfo | str = "UTC",
        account_id: int = 77967,
        **knobs: Any,
    ) -> None:
        super().__init__()
        self.developer_key = developer_key
        self.email = email
        self.password = password
        self.static_token = static_token
        self.tz = _zone(timezone, UTC)
        self.account_id = account_id
        self._rng = random.Random(0)
        self._shifts: dict[int, dict[str, Any]] = {}
        self._deleted: dict[int, tuple[datetime, datetime]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.locations: dict[int, dict[str, Any]] = {}
        self.positions: dict[int, dict[str, Any]] = {}
        self.sites: dict[int, dict[str, Any]] = {}
        self._tokens: set[str] = set()
        self._hits: dict[str, deque[float]] = {}
        self._wire = WireCache()
        self._generation = 0
        """Raised by every change of shifts or sideloads (``_changed``, seed, reset)."""
        self._bodies: dict[tuple[Any, ...], bytes] = {}
        """Encoded ``GET /2/shifts`` answers by query, generation and rendering knobs."""
        self._dirty: set[int] | None = None
        """Shifts changed since the start index was last brought up to date (None: all)."""
        self._spans: dict[int, tuple[float, float]] = {}
        self._by_start: list[tuple[float, int, float]] = []
        """``(start, id, end)`` in epoch seconds of every shift, sorted."""
        self._longest = 0.0
        self.reset_knobs()
        self.set_knobs(**knobs)

    # -- knobs, tokens, counters --------------------------------------------------------

    def reset_knobs(self) -> None:
        """Back to a healthy API (no latency, faults or throttling; default 600 req/min)."""
        with self._lock:
            for name, value in _KNOB_DEFAULTS.items():
                setattr(self, name, set(value) if isinstance(value, set) else value)
            self._hits.clear()

    def set_knobs(self, **knobs: Any) -> dict[str, Any]:
        """Change fault knobs by name; returns all knobs.

        Raises:
            ValueError: an unknown knob or a value of the wrong kind.
        """
        for name, value in knobs.items():
            if name not in _KNOB_DEFAULTS:
                raise ValueError(f"unknown knob {name!r}; known: {', '.join(_KNOB_DEFAULTS)}")
            if name == "malformed_ids":
                value = {int(v) for v in value}
            elif name == "malformed_style" and value not in MALFORMED_STYLES:
                raise ValueError(f"malformed_style must be one of {MALFORMED_STYLES}")
            elif name == "rate_limit_status" and int(value) not in (403, 429):
                raise ValueError("rate_limit_status must be 429 or 403")
            else:
                value = type(_KNOB_DEFAULTS[name])(value)
            with self._lock:
                setattr(self, name, value)
        return self.knobs()

    def knobs(self) -> dict[str, Any]:
        """Current knob values (JSON-friendly)."""
        out = {name: getattr(self, name) for name in _KNOB_DEFAULTS}
        out["malformed_ids"] = sorted(self.malformed_ids)
        return out

    def issue_token(self) -> str:
        """Mint a random token, as a successful login does."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return token

    def revoke_tokens(self) -> None:
        """Invalidate every issued token and the static one: the next API call answers 401."""
        with self._lock:
            self._tokens.clear()
            self.static_token = None

    def token_valid(self, token: str | None) -> bool:
        """Whether ``token`` would be accepted right now."""
        with self._lock:
            if not token or self.reject_tokens:
                return False
            return token in self._tokens or (
                self.static_token is not None and secrets.compare_digest(token, self.static_token)
            )

    def reset(self) -> None:
        """Empty account, healthy knobs, zero counters; credentials and tokens are kept."""
        with self._lock:
            self._shifts.clear()
            self._deleted.clear()
            for pool in (self.users, self.locations, self.positions, self.sites):
                pool.clear()
            self._wire.clear()
            self._dirty = None
            self._generation += 1
        self.reset_knobs()
        self.reset_counters()

    # -- data generation and mutation ---------------------------------------------------

    def seed(
        self,
        n_shifts: int,
        *,
        days: Iterable[date] | None = None,
        start: date | None = None,
        end: date | None = None,
        seed: int = 0,
        tz: tzinfo | str | None = None,
        replace: bool = True,
    ) -> list[int]:
        """Generate ``n_shifts`` deterministic shifts spread round-robin over the days.

        The same arguments on an empty state give the same shifts (``random.Random(seed)``;
        no wall clock is used). Start times fall between 05:00 and 22:45 local time and
        last 2-10 hours, so late shifts cross midnight. About one in ten is an open shift
        (``user_id`` 0).

        Args:
            n_shifts: how many shifts to create.
            days: the calendar days to use; else ``start``..``end`` (default: today only).
            start: first day when ``days`` is not given.
            end: last day (inclusive) when ``days`` is not given; defaults to ``start``.
            seed: seed of the generator.
            tz: timezone of the generated times (default: the state's), so offsets vary.
            replace: drop existing shifts, deletions and sideloaded pools first.

        Returns:
            The new shift ids, in creation order.
        """
        zone = _zone(tz, self.tz)
        if days is None:
            first = start or clock.now().astimezone(zone).date()
            last = end or first
            days = [first + timedelta(days=d) for d in range((last - first).days + 1)]
        day_list = list(days)
        if not day_list:
            raise ValueError("seed needs at least one day")
        rng = random.Random(seed)
        with self._lock:
            self._dirty = None
            self._generation += 1
            if replace:
                self._shifts.clear()
                self._deleted.clear()
                for pool in (self.users, self.locations, self.positions, self.sites):
                    pool.clear()
            if not self.users:
                self._make_pools(rng)
            next_id = max([FIRST_ID, *self._shifts, *self._deleted])
            ids = []
            for i in range(n_shifts):
                next_id += rng.randint(1, 5000)
                shift = self._generate(rng, next_id, day_list[i % len(day_list)], zone)
                self._shifts[next_id] = shift
                ids.append(next_id)
        return ids

    def _make_pools(self, rng: random.Random) -> None:
        for i, place in enumerate(_PLACES[:3]):
            loc_id = 3_999_871 + i * rng.randint(10, 99)
            self.locations[loc_id] = {
                "id": loc_id,
                "account_id": self.account_id,
                "name": place,
                "address": f"{i + 1} High Street",
                "is_deleted": False,
            }
            site_id = 3_530_221 + i * rng.randint(10, 99)
            self.sites[site_id] = {"id": site_id, "location_id": loc_id, "name": f"Zone {i + 1}"}
        for i, role in enumerate(_ROLES):
            pos_id = 709_909 + i * rng.randint(10, 99)
            color = f"{rng.randrange(0x1000000):06x}"
            self.positions[pos_id] = {"id": pos_id, "name": role, "color": color}
        for i, name in enumerate(_NAMES):
            user_id = 29_205_212 + i * rng.randint(100, 999)
            first, last = name.split()
            self.users[user_id] = {
                "id": user_id,
                "account_id": self.account_id,
                "first_name": first,
                "last_name": last,
                "email": f"{first.lower()}@example.com",
                "role": 3,
                "locations": [rng.choice(list(self.locations))],
                "positions": [rng.choice(list(self.positions))],
                "is_deleted": False,
            }

    def _generate(self, rng: random.Random, shift_id: int, day: date, zone: tzinfo) -> dict:
        quarter = rng.randrange(5 * 4, 23 * 4)
        start = datetime.combine(day, dtime(quarter // 4, quarter % 4 * 15), tzinfo=zone)
        end = (start.astimezone(UTC) + timedelta(minutes=15 * rng.randint(8, 40))).astimezone(zone)
        created = start - timedelta(days=rng.randint(3, 20), seconds=rng.randrange(86_400))
        published = created + timedelta(seconds=rng.randrange(1, 86_400))
        updated = published + timedelta(seconds=rng.randrange(1, 86_400))
        notified = updated + timedelta(minutes=rng.randint(1, 600)) if rng.random() < 0.7 else None
        acknowledged = 1 if notified is not None and rng.random() < 0.6 else 0
        loc_id = rng.choice(list(self.locations))
        site_id = next(s["id"] for s in self.sites.values() if s["location_id"] == loc_id)
        is_open = rng.random() < 0.1
        return self._shift_dict(
            shift_id,
            start,
            end,
            user_id=0 if is_open else rng.choice(list(self.users)),
            location_id=loc_id,
            position_id=rng.choice(list(self.positions)),
            site_id=site_id,
            break_time=rng.choice([0, 0, 0.5, 1]),
            color=f"{rng.randrange(0x1000000):06x}",
            published_date=published,
            notified_at=notified,
            created_at=created,
            updated_at=updated,
            acknowledged=acknowledged,
            acknowledged_at=updated + timedelta(hours=1) if acknowledged else None,
            creator_id=next(iter(self.users)),
            is_open=is_open,
        )

    def _shift_dict(self, shift_id: int, start: datetime, end: datetime, **fields: Any) -> dict:
        now = clock.now().astimezone(self.tz).replace(microsecond=0)
        shift: dict[str, Any] = {
            "id": shift_id,
            "account_id": self.account_id,
            "user_id": next(iter(self.users), 0),
            "location_id": next(iter(self.locations), 0),
            "position_id": next(iter(self.positions), 0),
            "site_id": next(iter(self.sites), 0),
            "start_time": start,
            "end_time": end,
            "break_time": 0,
            "color": "74a611",
            "notes": "",
            "alerted": False,
            "linked_users": None,
            "shiftchain_key": "",
            "published": True,
            "published_date": now,
            "notified_at": None,
            "instances": 0,
            "created_at": now,
            "updated_at": now,
            "acknowledged": 0,
            "acknowledged_at": None,
            "creator_id": 0,
            "is_open": False,
            "actionable": False,
            "block_id": 0,
        }
        shift.update(fields)
        return shift

    def add(
        self,
        start_time: datetime | str,
        end_time: datetime | str,
        *,
        shift_id: int | None = None,
        **fields: Any,
    ) -> int:
        """Create (or replace, when ``shift_id`` exists) a shift; returns its id.

        Dates may be datetimes or strings (RFC 1123 / ISO); naive ones are in the state's
        timezone. Unset fields get defaults referencing the first sideloaded entities (a
        default set is created when the account has none, so sideloads are never empty).
        """
        parsed = self._parse_dates({"start_time": start_time, "end_time": end_time, **fields})
        with self._lock:
            if not self.users:
                self._make_pools(random.Random(0))
            if shift_id is None:
                shift_id = max([FIRST_ID, *self._shifts, *self._deleted]) + 1
            self._deleted.pop(shift_id, None)
            self._changed(shift_id)
            start, end = parsed.pop("start_time"), parsed.pop("end_time")
            self._shifts[shift_id] = self._shift_dict(shift_id, start, end, **parsed)
        return shift_id

    def upsert(self, shift: dict[str, Any]) -> int:
        """Add or replace a shift given in wire shape (admin ``POST /_admin/shifts``)."""
        fields = dict(shift)
        shift_id = fields.pop("id", None)
        return self.add(
            fields.pop("start_time"),
            fields.pop("end_time"),
            shift_id=None if shift_id is None else int(shift_id),
            **fields,
        )

    def change(self, shift_id: int, **fields: Any) -> dict[str, Any]:
        """Change fields of a shift and bump ``updated_at`` (unless given); returns it rendered.

        Raises:
            KeyError: no such shift.
        """
        if "id" in fields:
            raise ValueError("the id of a shift cannot change")
        parsed = self._parse_dates(fields)
        with self._lock:
            shift = self._shifts[shift_id]
            if "updated_at" not in parsed:
                now = clock.now().astimezone(self.tz).replace(microsecond=0)
                parsed["updated_at"] = max(now, shift["updated_at"] + timedelta(seconds=1))
            shift.update(parsed)
            self._changed(shift_id)
            return self._render(shift)

    def move(self, shift_id: int, new_start: datetime | str) -> dict[str, Any]:
        """Start the shift at ``new_start`` keeping its duration (bumps ``updated_at``)."""
        with self._lock:
            shift = self._shifts[shift_id]
            # in UTC: same-tzinfo subtraction is wall-clock and would be off across DST
            duration = shift["end_time"].astimezone(UTC) - shift["start_time"].astimezone(UTC)
        start = parse_when(new_start, self.tz)
        end = (start.astimezone(UTC) + duration).astimezone(start.tzinfo)
        return self.change(shift_id, start_time=start, end_time=end)

    def delete(self, shift_id: int) -> None:
        """Remove a shift; later windows overlapping it report it in ``deleted_ids``.

        Raises:
            KeyError: no such shift.
        """
        with self._lock:
            shift = self._shifts.pop(shift_id)
            self._deleted[shift_id] = (shift["start_time"], shift["end_time"])
            self._changed(shift_id)

    def shift(self, shift_id: int) -> dict[str, Any] | None:
        """A shift as the API would serve it (``None`` when unknown or deleted)."""
        with self._lock:
            shift = self._shifts.get(shift_id)
            return None if shift is None else self._render(shift)

    def all_shifts(self) -> list[dict[str, Any]]:
        """Every live shift, rendered, sorted by start and id."""
        with self._lock:
            ordered = sorted(self._shifts.values(), key=lambda s: (s["start_time"], s["id"]))
            return [self._render(s) for s in ordered]

    def _parse_dates(self, fields: dict[str, Any]) -> dict[str, Any]:
        out = dict(fields)
        for name in DATE_FIELDS:
            if out.get(name) is not None:
                out[name] = parse_when(out[name], self.tz)
        return out

    def _render(self, shift: dict[str, Any]) -> dict[str, Any]:
        """The shift as the API serves it (dates as RFC 1123 text), knobs applied.

        Not cached: ``GET /2/shifts`` keeps each shift's encoded JSON (``WireCache``) and each
        answered body (``list_shifts_wire``); single shifts and admin reads are few.
        """
        out = {k: rfc1123(v) if isinstance(v, datetime) else v for k, v in shift.items()}
        return self._break(shift, out)

    def _break(self, shift: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        """Apply the ``malformed_ids`` knob to a rendered shift."""
        if shift["id"] in self.malformed_ids:
            if self.malformed_style == "missing_start_time":
                del out["start_time"]
            else:
                out["start_time"] = "not a date"
            if self.malformed_style == "string_id":
                out["id"] = str(out["id"])
        return out

    # -- request handling ---------------------------------------------------------------

    def admit(self, token: str | None) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        """Auth, rate limit and injected faults for one API request, in that order.

        Returns:
            ``(200, None, headers)`` to go on, else ``(status, error body, headers)``.
            Throttled requests do not count towards the rolling window, so a client that
            waits ``Retry-After`` gets through.
        """
        if not self.token_valid(token):
            return 401, {"error": "User not authenticated", "code": 1000}, {}
        assert token is not None
        with self._lock:
            now = time.monotonic()
            window = self.rate_limit_window_seconds
            hits = self._hits.setdefault(token, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            wait: int | None = None
            if self.throttle_next > 0:
                self.throttle_next -= 1
                wait = self.throttle_retry_after
            elif len(hits) >= self.rate_limit_per_minute:
                wait = max(1, math.ceil(hits[0] + window - now)) if hits else math.ceil(window)
            if wait is not None:
                message = f"Rate limit exceeded. Please wait {wait} seconds before trying again."
                headers = {"Retry-After": str(wait), "W-Limit-Remaining": "0"}
                return self.rate_limit_status, {"error": message, "code": 1003}, headers
            hits.append(now)
            headers = {"W-Limit-Remaining": str(max(0, self.rate_limit_per_minute - len(hits)))}
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503, {"error": "Service unavailable (simulated)", "code": 503}, headers
            if self.error_rate and self._rng.random() < self.error_rate:
                return 500, {"error": "Internal error (simulated)", "code": 500}, headers
        return 200, None, headers

    def list_shifts(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer ``GET /2/shifts`` for the given query parameters: ``(status, body)``.

        Shifts overlapping ``[start, end]`` (both inclusive, as the real API seems to be), with
        the sideloaded entities they reference and, when ``deleted=true``, the ids of deleted
        shifts whose time overlapped the window.
        """
        try:
            now = clock.now().astimezone(self.tz)
            start = parse_when(query["start"], self.tz) if query.get("start") else now
            end = parse_when(query["end"], self.tz) if query.get("end") else start + timedelta(3)
            users = {int(u) for u in query.get("user_id", "").split(",") if u.strip()}
            places = {int(p) for p in query.get("location_id", "").split(",") if p.strip()}
            limit = int(query["limit"]) if query.get("limit") else None
        except ValueError as exc:
            return 400, {"error": f"Invalid parameter: {exc}", "code": 400}
        with self._lock:
            picked = [
                s
                for s in self._overlapping(start, end)
                if (not users or s["user_id"] in users)
                and (not places or s["location_id"] in places)
            ][:limit]
            shape = (self.malformed_style, frozenset(self.malformed_ids))
            body: dict[str, Any] = {
                "start": rfc1123(start.astimezone(self.tz)),
                "end": rfc1123(end.astimezone(self.tz)),
                "shifts": [self._wire.get(s["id"], s, shape, self._render) for s in picked],
            }
            for name, pool, field in (
                ("users", self.users, "user_id"),
                ("locations", self.locations, "location_id"),
                ("positions", self.positions, "position_id"),
                ("sites", self.sites, "site_id"),
            ):
                refs = sorted({s[field] for s in picked if s[field] in pool})
                body[name] = [dict(pool[i]) for i in refs]
            body["repeating_shifts"], body["shiftchains"] = [], []
            if query.get("deleted", "").lower() in ("1", "true"):
                body["deleted_ids"] = sorted(
                    i for i, (s, e) in self._deleted.items() if s <= end and e >= start
                )
        return 200, body

    def list_shifts_wire(self, query: dict[str, str]) -> tuple[int, bytes]:
        """``list_shifts`` encoded as the app sends it; kept while the state is unchanged.

        The benchmark fetches its day partitions at once from one simulator process: built
        one after another, three 21 MB days of a 100,000-shift run kept the engine waiting
        on the fake (issue 11). A repeated query (with its window given) is answered with
        the bytes built before, as long as no shift or sideload changed through this state
        (every change raises ``_generation``) and the knobs that shape the rendering are
        the same.
        """
        kept_key: tuple[Any, ...] | None = None
        if query.get("start") and query.get("end"):  # else "now" decides the window
            with self._lock:
                shape = (self.malformed_style, frozenset(self.malformed_ids))
                kept_key = (tuple(sorted(query.items())), self._generation, shape)
                kept = self._bodies.get(kept_key)
            if kept is not None:
                return 200, kept
        status, body = self.list_shifts(query)
        wire = orjson.dumps(body)
        if status == 200 and kept_key is not None:
            with self._lock:
                if kept_key[1] == self._generation:  # nothing changed while it was built
                    if len(self._bodies) >= BODIES_KEPT:
                        self._bodies.clear()
                    self._bodies[kept_key] = wire
        return status, wire

    def _changed(self, shift_id: int) -> None:
        """Note a shift added, changed or deleted, for the index and kept bodies (lock held)."""
        self._generation += 1
        if self._dirty is not None:
            self._dirty.add(shift_id)

    def _overlapping(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Shifts with ``start_time <= end`` and ``end_time >= start``, by start and id.

        From an index of start instants (brought up to date after changes, under the
        lock: a few moved entries, or all of it after a seed), so a request reads the
        shifts near its window, not all of them: a soak's simulator holds ~50,000 shifts
        and answers a dozen requests per run.
        """
        self._refresh_index()  # first: it may widen ``_longest``
        low, high = start.timestamp(), end.timestamp()
        near = self._starting(low - self._longest, math.nextafter(high, math.inf))
        return [self._shifts[sid] for sid in near if self._spans[sid][1] >= low]

    def _starting(self, low: float, high: float) -> list[int]:
        """Ids of shifts starting in ``[low, high)`` (epoch seconds), by start (lock held)."""
        self._refresh_index()
        index = self._by_start
        first = bisect.bisect_left(index, (low,))
        last = bisect.bisect_left(index, (high,))
        return [sid for _, sid, _ in index[first:last]]

    def _refresh_index(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if dirty is None or len(dirty) > len(self._by_start) // 4:
            self._spans = {sid: _span(s) for sid, s in self._shifts.items()}
            self._by_start = sorted((b, sid, e) for sid, (b, e) in self._spans.items())
            self._longest = max((e - b for b, e in self._spans.values()), default=0.0)
            return
        for sid in dirty:
            old = self._spans.pop(sid, None)
            if old is not None:
                del self._by_start[bisect.bisect_left(self._by_start, (old[0], sid))]
            shift = self._shifts.get(sid)
            if shift is not None:
                b, e = self._spans[sid] = _span(shift)
                bisect.insort(self._by_start, (b, sid, e))
                self._longest = max(self._longest, e - b)  # never less: a wider search is safe

    def check_login(self, key: str | None, email: str | None, password: str | None) -> str | None:
        """The error message of a failed login, or ``None`` when the credentials match."""
        if not key or not secrets.compare_digest(key, self.developer_key):
            return "Invalid or missing developer key"
        if email != self.email or not secrets.compare_digest(password or "", self.password):
            return "Incorrect email or password"
        return None

    def stats(self) -> dict[str, Any]:
        """Sizes, counters and knobs for ``GET /_admin/stats`` (no token values)."""
        with self._lock:
            stats = {
                "shifts": len(self._shifts),
                "deleted": len(self._deleted),
                "tokens": len(self._tokens),
                "requests": dict(self.requests),
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "peak_in_flight": self.peak_in_flight,
            }
        return {**stats, "knobs": self.knobs()}

    def person(self, token: str) -> dict[str, Any]:
        """The logged-in person object (the current login host returns it with a token)."""
        return {
            "id": 5_526_232,
            "first_name": "Api",
            "last_name": "User",
            "email": self.email,
            "token": token,
        }
