"""State of the Advoware simulator: employees, Termine, credentials, tokens, knobs, counters.

The HTTP layer (``simulators.advoware.app``) only translates requests into calls on
``AdvowareState``; tests call the same methods in-process. The app runs in a uvicorn thread
while tests mutate the state from the main thread, so every read and write holds one
``threading.Lock`` and nothing awaits while holding it.

Appointments are kept with Python types (naive local datetimes: Advoware has no time zones)
and rendered to the wire shape of ``reference/upstream-apis.md`` §1.5 on the way out, in
camelCase or, with the ``pascal_case`` knob, PascalCase (the older endpoint's casing), so
clients are forced to read field names case-insensitively.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import secrets
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from models import clock
from simulators.counters import RequestCounters
from simulators.wire_cache import WireCache

DEFAULT_API_KEY = base64.b64encode(b"sim-advoware-secret-key").decode()
"""The simulator's API key (base64, as Advoware issues them)."""
FIRST_FRNR = 48_000
"""Generated appointment numbers start above this."""
MALFORMED_STYLES = ("bad_date", "missing_datum")
"""How an appointment listed in ``malformed_frnr`` is broken on the wire."""
TOKEN_FIELDS = (
    "AppID",
    "Kanzlei",
    "Database",
    "User",
    "Role",
    "Product",
    "Password",
    "Nonce",
    "HMAC512Signature",
    "RequestTimeStamp",
)
"""Body fields of ``POST /api/v1/Token``, PascalCase exactly as the gateway expects them."""

_KNOB_DEFAULTS: dict[str, Any] = {
    "latency_ms": 0,
    "error_rate": 0.0,
    "fail_next": 0,
    "connector_offline": False,
    "fail_kuerzel": set(),
    "fail_kuerzel_status": 403,
    "malformed_frnr": set(),
    "malformed_style": "bad_date",
    "token_ttl_seconds": 3300.0,
    "max_clock_skew_seconds": 300.0,
    "pascal_case": False,
    "to_exclusive": False,
    "match_by": "overlap",
    "employees_shape": "list",
    "throttle_next": 0,
    "throttle_retry_after": 1,
}
"""``to_exclusive`` and ``match_by`` are the two readings of the Termine range the reference
leaves open (§1, [I]): ``to`` inclusive or exclusive, and appointments matched by overlap
with ``[from, to]`` or by their start day alone. Clients must lose nothing under any of them.
``throttle_next`` answers the next N admitted API requests 429 with ``Retry-After:
throttle_retry_after`` (the gateway's rate limit; the number is not documented)."""

MATCH_BY = ("overlap", "start")
EMPLOYEES_SHAPES = ("list", "object", "renamed")
"""``employees_shape``: the documented bare array; an object wrapping it under a key no
client knows (``Mitarbeiter``); or an array whose items name the Kürzel ``code``."""

_EMPLOYEES = [
    ("SB", "Siggel", "Bernd", True),
    ("AI", "Illner", "Anna", True),
    ("RO", "Roth", "Oliver", False),
]
_LAST_NAMES = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Werner",
]
_FIRST_NAMES = [
    "Anna",
    "Bernd",
    "Claudia",
    "Dieter",
    "Eva",
    "Frank",
    "Gabriele",
    "Heinz",
    "Ingrid",
    "Jürgen",
    "Katrin",
    "Lukas",
    "Monika",
    "Norbert",
    "Petra",
    "Ralf",
    "Sabine",
    "Thomas",
    "Ute",
    "Wolfgang",
]
_SUBJECTS = [
    "Mandantengespräch {name}",
    "Besprechung Akte {name}",
    "Telefonat mit {name}",
    "Hauptverhandlung {name} ./. {other}",
    "Güteverhandlung {name}",
    "Frist: Berufungsbegründung {name}",
    "Akteneinsicht {name}",
    "Vergleichsgespräch {name} ./. {other}",
    "Notartermin {name}",
    "Beweisaufnahme {name}",
]
_NOTES = [
    "",
    "Unterlagen mitbringen.",
    "Mandant bringt Kaufvertrag und Grundbuchauszug mit.",
    "Vorher Schriftsatz der Gegenseite lesen.",
    "Rückruf erbeten unter 0221 123456.",
    "Dolmetscher ist bestellt.",
    "Bitte Vollmacht unterschreiben lassen.",
]
_PLACES = [
    "Besprechungsraum 1",
    "Besprechungsraum 2",
    "Landgericht Köln, Saal 112",
    "Amtsgericht Bonn, Saal 3",
    "Oberlandesgericht Düsseldorf",
    "Kanzlei",
    "Telefon",
    "Videokonferenz",
]
_ABSENCES = ["Urlaub", "Fortbildung", "Krank", "Gleittag"]
_PRIVATE = ["Arzttermin", "Privat", "Elternabend", "Zahnarzt"]
_SYSTEM = ["Feiertag", "Betriebsausflug", "Kanzlei geschlossen"]
_LETTERS = "ABCDEFGHIJKLMNOPRSTUVWZ"
_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(value: str) -> datetime:
    """Read a ``RequestTimeStamp`` the way .NET does: ISO 8601, up to 7 fractional digits.

    Accepts ``...Z``, ``+00:00`` and ``+0000`` offsets; a missing offset means UTC.

    Raises:
        ValueError: not a timestamp.
    """
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.strip(), count=1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def expected_signature(api_key_b64: str, product: Any, app_id: Any, nonce: Any, ts: Any) -> str:
    """The ``HMAC512Signature`` the gateway expects (independent of the connector's code)."""
    message = f"{product}:{app_id}:{nonce}:{ts}".encode()
    digest = hmac.new(base64.b64decode(api_key_b64), message, hashlib.sha512).digest()
    return base64.b64encode(digest).decode()


def _wire_time(value: datetime) -> str:
    return value.strftime("%H:%M:%S")


def _modified(value: datetime) -> str:
    """``zuletztGeaendertAm`` as Advoware writes it: UTC, milliseconds, no zone letter."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def _pascal(key: str) -> str:
    return key[:1].upper() + key[1:]


class AdvowareState(RequestCounters):
    """Employees, Termine, credentials, tokens, knobs and counters of one simulated Kanzlei.

    Knobs are plain attributes (see ``_KNOB_DEFAULTS``); set them directly or through
    ``set_knobs`` / ``POST /_admin/knobs``. ``requests`` counts API calls per route
    (``"GET /AdvonetConfigurator/api/Url"``, ``"POST /api/v1/Token"``,
    ``"GET /api/v1/advonet/Employees"``, ``"GET /api/v1/advonet/Termine"`` for a range and
    ``"GET /api/v1/advonet/Termine?frnr"`` for one appointment) and ``statuses`` counts the
    status codes answered, so tests can assert call counts and faults.

    Args:
        app_id: the AppID Advoware issued.
        api_key: the base64 API key that keys the token signature.
        kanzlei: the Kanzleikennung.
        database: the Kanzlei's database name.
        users: login Kürzel -> password of employees allowed to request tokens.
        product: the product id the AppID is enabled for (64 = third party).
        knobs: initial knob values.
    """

    latency_ms: int
    error_rate: float
    fail_next: int
    connector_offline: bool
    fail_kuerzel: set[str]
    fail_kuerzel_status: int
    malformed_frnr: set[int]
    malformed_style: str
    token_ttl_seconds: float
    max_clock_skew_seconds: float
    pascal_case: bool
    to_exclusive: bool
    match_by: str
    employees_shape: str
    throttle_next: int
    throttle_retry_after: int

    def __init__(
        self,
        *,
        app_id: str = "SIM-APP",
        api_key: str = DEFAULT_API_KEY,
        kanzlei: str = "SIMKANZLEI",
        database: str = "ADVOWARE",
        users: dict[str, str] | None = None,
        product: int = 64,
        **knobs: Any,
    ) -> None:
        super().__init__()
        self.app_id = app_id
        self.api_key = api_key
        self.kanzlei = kanzlei
        self.database = database
        self.users = dict(users) if users is not None else {"SB": "sim-password"}
        self.product = product
        self._rng = random.Random(0)
        self._employees: dict[str, dict[str, Any]] = {}
        self._termine: dict[int, dict[str, Any]] = {}
        self._wire = WireCache()
        self._revision = 0
        """Raised by every change of ``_termine``: the owner index is rebuilt after one."""
        self._indexed = -1
        self._by_owner: dict[str, list[dict[str, Any]]] = {}
        self._tokens: dict[str, float] = {}
        self._nonces: dict[str, float] = {}
        self.reset_knobs()
        self.set_knobs(**knobs)

    # -- knobs, tokens, counters --------------------------------------------------------

    def reset_knobs(self) -> None:
        """Back to a healthy API: no latency or faults, camelCase, 55-minute tokens."""
        with self._lock:
            for name, value in _KNOB_DEFAULTS.items():
                setattr(self, name, set(value) if isinstance(value, set) else value)

    def set_knobs(self, **knobs: Any) -> dict[str, Any]:
        """Change fault knobs by name; returns all knobs.

        Raises:
            ValueError: an unknown knob or a value of the wrong kind.
        """
        for name, value in knobs.items():
            if name not in _KNOB_DEFAULTS:
                raise ValueError(f"unknown knob {name!r}; known: {', '.join(_KNOB_DEFAULTS)}")
            if name == "malformed_frnr":
                value = {int(v) for v in value}
            elif name == "fail_kuerzel":
                value = {str(v).upper() for v in value}
            elif name == "malformed_style" and value not in MALFORMED_STYLES:
                raise ValueError(f"malformed_style must be one of {MALFORMED_STYLES}")
            elif name == "match_by" and value not in MATCH_BY:
                raise ValueError(f"match_by must be one of {MATCH_BY}")
            elif name == "employees_shape" and value not in EMPLOYEES_SHAPES:
                raise ValueError(f"employees_shape must be one of {EMPLOYEES_SHAPES}")
            elif isinstance(_KNOB_DEFAULTS[name], bool):
                value = value if isinstance(value, bool) else str(value).lower() == "true"
            else:
                value = type(_KNOB_DEFAULTS[name])(value)
            with self._lock:
                setattr(self, name, value)
        return self.knobs()

    def knobs(self) -> dict[str, Any]:
        """Current knob values (JSON-friendly)."""
        out = {name: getattr(self, name) for name in _KNOB_DEFAULTS}
        out["malformed_frnr"] = sorted(self.malformed_frnr)
        out["fail_kuerzel"] = sorted(self.fail_kuerzel)
        return out

    def issue_token(self) -> tuple[str, float]:
        """Mint a random token valid for ``token_ttl_seconds``; returns it and its lifetime."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            ttl = self.token_ttl_seconds
            self._tokens[token] = time.monotonic() + ttl
        return token, ttl

    def revoke_tokens(self) -> None:
        """Invalidate every issued token: the next API call answers 401."""
        with self._lock:
            self._tokens.clear()

    def token_valid(self, token: str | None) -> bool:
        """Whether ``token`` is known and not expired right now."""
        with self._lock:
            expires = self._tokens.get(token or "")
            return expires is not None and time.monotonic() < expires

    def reset(self) -> None:
        """Empty Kanzlei, healthy knobs, zero counters, no tokens; credentials are kept."""
        with self._lock:
            self._employees.clear()
            self._termine.clear()
            self._wire.clear()
            self._revision += 1
            self._tokens.clear()
            self._nonces.clear()
        self.reset_knobs()
        self.reset_counters()

    def stats(self) -> dict[str, Any]:
        """Sizes, counters and knobs for ``GET /_admin/stats`` (no token values)."""
        with self._lock:
            now = time.monotonic()
            stats = {
                "employees": len(self._employees),
                "termine": len(self._termine),
                "tokens": sum(1 for t in self._tokens.values() if t > now),
                "requests": dict(self.requests),
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "peak_in_flight": self.peak_in_flight,
            }
        return {**stats, "knobs": self.knobs()}

    # -- token gateway ------------------------------------------------------------------

    def check_token_request(self, body: dict[str, Any]) -> tuple[int, str] | None:
        """Validate a token request body; ``None`` when a token may be issued.

        Checks run in the order a gateway would: shape, clock, nonce replay, AppID,
        signature, product, Kanzlei/database, then the employee's login. A nonce is burnt
        by any request that gets as far as the replay check, so a retry must use a new one.

        Returns:
            ``(status, German message)`` of the refusal.
        """
        missing = [f for f in TOKEN_FIELDS if body.get(f) in (None, "")]
        if missing:
            return 400, f"Ungültige Anfrage: Feld(er) {', '.join(missing)} fehlen"
        try:
            stamp = parse_timestamp(str(body["RequestTimeStamp"]))
        except ValueError:
            return 400, "Ungültige Anfrage: RequestTimeStamp ist kein Zeitstempel"
        now = datetime.now(UTC)  # auth: the wall clock the client signs with
        if abs((now - stamp).total_seconds()) > self.max_clock_skew_seconds:
            return 401, "RequestTimeStamp liegt außerhalb des erlaubten Zeitfensters"
        nonce = str(body["Nonce"])
        with self._lock:
            horizon = time.monotonic() - 2 * self.max_clock_skew_seconds - 60
            for old in [n for n, t in self._nonces.items() if t < horizon]:
                del self._nonces[old]
            if nonce in self._nonces:
                return 401, "Nonce wurde bereits verwendet (Replay)"
            self._nonces[nonce] = time.monotonic()
        if str(body["AppID"]) != self.app_id:
            return 401, f"AppID {body['AppID']} ist nicht registriert"
        want = expected_signature(
            self.api_key, body["Product"], body["AppID"], nonce, body["RequestTimeStamp"]
        )
        if not hmac.compare_digest(want, str(body["HMAC512Signature"])):
            return 401, "Ungültige Signatur (HMAC512Signature)"
        if str(body["Product"]) != str(self.product):
            return 403, f"Produkt {body['Product']} ist für diese AppID nicht freigeschaltet"
        if str(body["Kanzlei"]).upper() != self.kanzlei.upper():
            return 401, f"Kanzlei {body['Kanzlei']} ist nicht registriert"
        if str(body["Database"]).upper() != self.database.upper():
            return 401, f"Datenbank {body['Database']} ist nicht registriert"
        password = self.users.get(str(body["User"]).upper())
        if password is None or not hmac.compare_digest(password, str(body["Password"])):
            return 401, "Falscher Name oder falsches Kennwort"
        return None

    # -- employees ----------------------------------------------------------------------

    def add_employee(
        self,
        kuerzel: str,
        *,
        name: str = "",
        vorname: str = "",
        anwalt: bool = True,
        aktiv: bool = True,
    ) -> dict[str, Any]:
        """Add or replace an employee; returns it as stored."""
        employee: dict[str, Any] = {
            "kuerzel": kuerzel.upper(),
            "name": name or kuerzel,
            "vorname": vorname,
            "anwalt": bool(anwalt),
            "aktiv": bool(aktiv),
        }
        with self._lock:
            self._employees[employee["kuerzel"]] = employee
        return dict(employee)

    def set_active(self, kuerzel: str, aktiv: bool) -> None:
        """Activate or deactivate an employee.

        Raises:
            KeyError: no such employee.
        """
        with self._lock:
            self._employees[kuerzel.upper()]["aktiv"] = bool(aktiv)

    def employees(self) -> list[dict[str, Any]]:
        """Every employee as ``GET /api/v1/advonet/Employees`` serves them."""
        with self._lock:
            return [self._cased(dict(e)) for e in self._employees.values()]

    def employees_body(self) -> Any:
        """The body of ``GET /api/v1/advonet/Employees`` in the shape ``employees_shape`` sets."""
        listed = self.employees()
        if self.employees_shape == "object":
            return {"Mitarbeiter": listed}
        if self.employees_shape == "renamed":
            return [{("code" if k == "kuerzel" else k): v for k, v in e.items()} for e in listed]
        return listed

    # -- data generation ----------------------------------------------------------------

    def seed(
        self,
        n_employees: int,
        appointments_per_employee: int,
        start: date,
        end: date,
        seed: int = 0,
        *,
        system_entries: bool = True,
        replace: bool = True,
    ) -> list[int]:
        """Generate deterministic employees and appointments.

        The same arguments on an empty state give the same data (``random.Random(seed)``; no
        wall clock is used). Employees are ``SB``, ``AI``, ``RO`` and then generated unique
        2-3 letter codes; ``RO`` and about one in eight of the rest are inactive. Each
        employee gets ``appointments_per_employee`` appointments starting in
        ``[start, end]``: about one in ten private, one in twelve all-day absences (some
        several days long) and one in twenty recurring series; with ``system_entries`` one
        more negative-``frNr`` system entry (a holiday) that clients must skip.

        Args:
            n_employees: how many employees.
            appointments_per_employee: appointments per employee (system entries extra).
            start: first day appointments may start on.
            end: last day (inclusive) appointments may start on.
            seed: seed of the generator.
            system_entries: add one negative-``frNr`` entry per employee.
            replace: drop existing employees and appointments first.

        Returns:
            The new (positive) appointment numbers, in creation order.
        """
        if end < start:
            raise ValueError("seed needs end >= start")
        rng = random.Random(seed)
        span = (end - start).days + 1
        with self._lock:
            self._revision += 1
            if replace:
                self._employees.clear()
                self._termine.clear()
            codes = self._make_employees(rng, n_employees)
            next_frnr = max([FIRST_FRNR, *self._termine])
            next_system = min([-1000, *self._termine]) - 1
            created: list[int] = []
            for kuerzel in codes:
                for _ in range(appointments_per_employee):
                    next_frnr += rng.randint(1, 40)
                    day = start + timedelta(days=rng.randrange(span))
                    self._termine[next_frnr] = self._generate(rng, next_frnr, kuerzel, day)
                    created.append(next_frnr)
                if system_entries:
                    day = start + timedelta(days=rng.randrange(span))
                    self._termine[next_system] = self._termin(
                        next_system,
                        kuerzel,
                        datetime.combine(day, dtime()),
                        datetime.combine(day, dtime(23, 59)),
                        text=rng.choice(_SYSTEM),
                        abwesenheit=1,
                        zuletztGeaendertAm=datetime.combine(start, dtime()) - timedelta(days=90),
                    )
                    next_system -= 1
        return created

    def _make_employees(self, rng: random.Random, n: int) -> list[str]:
        codes: list[str] = []
        for i in range(n):
            if i < len(_EMPLOYEES):
                code, last, first, active = _EMPLOYEES[i]
            else:
                last, first = rng.choice(_LAST_NAMES), rng.choice(_FIRST_NAMES)
                code = (first[0] + last[0]).upper().replace("Ü", "U").replace("Ö", "O")
                while code in self._employees or code in codes:
                    code = "".join(rng.choice(_LETTERS) for _ in range(rng.choice((2, 3))))
                active = rng.random() >= 0.125
            self._employees[code] = {
                "kuerzel": code,
                "name": last,
                "vorname": first,
                "anwalt": i % 3 != 2,
                "aktiv": active,
            }
            codes.append(code)
        return codes

    def _generate(self, rng: random.Random, frnr: int, kuerzel: str, day: date) -> dict[str, Any]:
        roll = rng.random()
        changed = datetime.combine(day, dtime(8)) - timedelta(
            days=rng.randint(1, 60), minutes=rng.randint(0, 600), milliseconds=rng.randint(0, 999)
        )
        name, other = rng.choice(_LAST_NAMES), rng.choice(_LAST_NAMES)
        fields: dict[str, Any] = {
            "zuletztGeaendertAm": changed,
            "sb": kuerzel,
            "nr": rng.randint(100, 4999),
            "azRubrum": f"{rng.randint(1, 999)}/{day.year % 100:02d} {name} ./. {other}",
        }
        if roll < 0.08:  # all-day absence, stored as end minus one minute
            length = rng.choice((1, 1, 2, 5))
            begin = datetime.combine(day, dtime())
            finish = datetime.combine(day + timedelta(days=length - 1), dtime(23, 59))
            fields.update(text=rng.choice(_ABSENCES), abwesenheit=1, nr=0, azRubrum="")
            return self._termin(frnr, kuerzel, begin, finish, **fields)
        begin = datetime.combine(day, dtime(rng.randint(7, 18), rng.choice((0, 15, 30, 45))))
        finish = begin + timedelta(minutes=rng.choice((15, 30, 45, 60, 90, 120, 180)))
        if roll < 0.18:
            fields.update(text=rng.choice(_PRIVATE), privat=1, nr=0, azRubrum="")
            fields.update(notiz="Privat, nicht verschieben.", ort="")
            return self._termin(frnr, kuerzel, begin, finish, **fields)
        fields.update(
            text=rng.choice(_SUBJECTS).format(name=name, other=other),
            notiz=rng.choice(_NOTES),
            ort=rng.choice(_PLACES),
            erinnerung=int(rng.random() < 0.3),
        )
        if roll < 0.23:  # weekly/monthly series; the series end lives in datumBis
            fields.update(
                text=f"Jour fixe {name}",
                dauertermin=1,
                turnus=1,
                turnusArt=rng.choice((1, 2, 2, 3, 4)),
                until=day + timedelta(weeks=rng.randint(4, 26)),
            )
        return self._termin(frnr, kuerzel, begin, finish, **fields)

    @staticmethod
    def _termin(
        frnr: int, kuerzel: str, start: datetime, end: datetime, **fields: Any
    ) -> dict[str, Any]:
        termin: dict[str, Any] = {
            "frNr": frnr,
            "start": start,
            "end": end,
            "until": None,
            "text": "",
            "notiz": "",
            "ort": "",
            "anwalt": kuerzel.upper(),
            "sb": kuerzel.upper(),
            "privat": 0,
            "abwesenheit": 0,
            "dauertermin": 0,
            "turnus": 0,
            "turnusArt": 0,
            "erinnerung": 0,
            "nr": 0,
            "azRubrum": "",
            "zuletztGeaendertAm": datetime(2026, 1, 1, 8, 0),
        }
        termin.update(fields)
        return termin

    # -- mutation -----------------------------------------------------------------------

    def add(
        self,
        kuerzel: str,
        start: datetime,
        end: datetime,
        *,
        frnr: int | None = None,
        **fields: Any,
    ) -> int:
        """Add an appointment owned by ``kuerzel``; returns its ``frNr``.

        Args:
            kuerzel: owner (``anwalt``).
            start: local start.
            end: local end (for a series: the end of the first occurrence).
            frnr: number to use (negative for a system entry); default: the next free one.
            fields: any wire field in camelCase (``text``, ``privat`` ...) and ``until``
                (series end date, with ``dauertermin=1``).
        """
        if end < start:
            raise ValueError("an appointment cannot end before it starts")
        with self._lock:
            if frnr is None:
                frnr = max([FIRST_FRNR, *self._termine]) + 1
            fields.setdefault("zuletztGeaendertAm", clock.now().replace(tzinfo=None))
            self._termine[frnr] = self._termin(frnr, kuerzel, start, end, **fields)
            self._revision += 1
        return frnr

    def change(self, frnr: int, **fields: Any) -> dict[str, Any]:
        """Change fields of an appointment and bump ``zuletztGeaendertAm`` (unless given).

        Returns:
            The appointment as the API would serve it now.

        Raises:
            KeyError: no such appointment.
            ValueError: an attempt to change ``frNr`` or an unknown field.
        """
        if "frNr" in fields or "frnr" in fields:
            raise ValueError("the frNr of an appointment cannot change")
        with self._lock:
            termin = self._termine[frnr]
            unknown = set(fields) - set(termin)
            if unknown:
                raise ValueError(f"unknown appointment fields: {', '.join(sorted(unknown))}")
            if "anwalt" in fields:
                fields["anwalt"] = str(fields["anwalt"]).upper()
            if "zuletztGeaendertAm" not in fields:
                now = clock.now().replace(tzinfo=None)
                last = termin["zuletztGeaendertAm"]
                fields["zuletztGeaendertAm"] = max(now, last + timedelta(milliseconds=1))
            termin.update(fields)
            self._revision += 1
            return self._render(termin)

    def move(self, frnr: int, new_start: datetime) -> dict[str, Any]:
        """Start the appointment at ``new_start`` keeping its duration (and series length)."""
        with self._lock:
            termin = self._termine[frnr]
            shift = new_start - termin["start"]
            until = termin["until"]
            end = termin["end"] + shift
        moved_until = None if until is None else until + timedelta(days=shift.days)
        return self.change(frnr, start=new_start, end=end, until=moved_until)

    def reassign(self, frnr: int, kuerzel: str) -> dict[str, Any]:
        """Give the appointment to another employee (bumps ``zuletztGeaendertAm``)."""
        return self.change(frnr, anwalt=kuerzel)

    def delete(self, frnr: int) -> None:
        """Remove an appointment; from now on the API answers 404 for it.

        Raises:
            KeyError: no such appointment.
        """
        with self._lock:
            del self._termine[frnr]
            self._revision += 1

    def appointment(self, frnr: int) -> dict[str, Any] | None:
        """An appointment as the API would serve it (``None`` when unknown or deleted)."""
        with self._lock:
            termin = self._termine.get(frnr)
            return None if termin is None else self._render(termin)

    def appointments(self, kuerzel: str | None = None) -> list[dict[str, Any]]:
        """Appointments (of ``kuerzel``, else all), rendered, sorted by start and ``frNr``."""
        with self._lock:
            picked = [
                t
                for t in self._termine.values()
                if kuerzel is None or t["anwalt"] == kuerzel.upper()
            ]
            picked.sort(key=lambda t: (t["start"], t["frNr"]))
            return [self._render(t) for t in picked]

    # -- request handling ---------------------------------------------------------------

    def admit(self, token: str | None) -> tuple[int, Any]:
        """Auth, connector state and injected faults for one API request, in that order.

        Returns:
            ``(200, None)`` to go on, else ``(status, error text)``.
        """
        if not self.token_valid(token):
            return 401, "Authorization has been denied for this request."
        with self._lock:
            if self.connector_offline:
                return (
                    503,
                    f"Datenbank {self.database} der Kanzlei {self.kanzlei} ist nicht angemeldet",
                )
            if self.throttle_next > 0:  # the gateway's rate limit (IIS/Azure answer 429)
                self.throttle_next -= 1
                return 429, "Too Many Requests (simuliert)"
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503, "Service Unavailable (simuliert)"
            if self.error_rate and self._rng.random() < self.error_rate:
                return 500, "Interner Serverfehler (simuliert)"
        return 200, None

    def owner_refused(self, kuerzel: str) -> tuple[int, str] | None:
        """The refusal for Termine of an employee listed in ``fail_kuerzel``, else ``None``."""
        if kuerzel.upper() in self.fail_kuerzel:
            return (
                self.fail_kuerzel_status,
                f"Der Kalender von {kuerzel.upper()} ist für diesen Benutzer nicht freigeschaltet",
            )
        return None

    def _select(self, kuerzel: str, start: date, end: date) -> list[dict[str, Any]]:
        """Appointments of ``kuerzel`` overlapping ``[start, end]`` (whole days, inclusive).

        A series overlaps from its first day to its end (``until``). ``kuerzel=Allgemein``
        returns the firm-wide entries (owner ``ALLE``, ``Allgemein`` or empty). Knob
        ``to_exclusive`` drops the day ``end`` from the range; ``match_by="start"`` keeps only
        appointments that start in the range (a running one that began earlier is left out).
        """
        wanted = kuerzel.upper()
        general = wanted in ("ALLGEMEIN", "ALLE")
        last = end - timedelta(days=1) if self.to_exclusive else end
        by_start = self.match_by == "start"

        def in_range(t: dict[str, Any]) -> bool:
            first_day = t["start"].date()
            if by_start:
                return start <= first_day <= last
            return first_day <= last and (t["until"] or t["end"].date()) >= start

        with self._lock:
            owners = ("ALLE", "ALLGEMEIN", "") if general else (wanted,)
            index = self._owner_index()
            picked = [t for o in owners for t in index.get(o, ()) if in_range(t)]
            if general:
                picked.sort(key=lambda t: (t["start"], t["frNr"]))
            return picked

    def list_termine(self, kuerzel: str, start: date, end: date) -> list[dict[str, Any]]:
        """Appointments of ``kuerzel`` overlapping ``[start, end]``, rendered (``_select``)."""
        picked = self._select(kuerzel, start, end)
        with self._lock:
            return [self._render(t) for t in picked]

    def termine_wire(self, kuerzel: str, start: date, end: date) -> list[Any]:
        """``list_termine`` as encoded JSON pieces for ``JsonResponse`` (rendered once each)."""
        picked = self._select(kuerzel, start, end)
        with self._lock:
            shape = (self.malformed_style, frozenset(self.malformed_frnr), self.pascal_case)
            return [self._wire.get(t["frNr"], t, shape, self._render) for t in picked]

    def _owner_index(self) -> dict[str, list[dict[str, Any]]]:
        """Appointments per owner by start and ``frNr`` (rebuilt after a change; hold the lock).

        A soak's simulator holds ~55,000 appointments and answers a few requests per
        employee and run: each reads its owner's, not all of them.
        """
        if self._indexed != self._revision:
            index: dict[str, list[dict[str, Any]]] = {}
            for t in sorted(self._termine.values(), key=lambda t: (t["start"], t["frNr"])):
                index.setdefault(t["anwalt"], []).append(t)
            self._by_owner, self._indexed = index, self._revision
        return self._by_owner

    def owner_of(self, frnr: int) -> str | None:
        """Current owner Kürzel of an appointment (``None`` when unknown)."""
        with self._lock:
            termin = self._termine.get(frnr)
            return None if termin is None else str(termin["anwalt"])

    # -- rendering ----------------------------------------------------------------------

    def _render(self, t: dict[str, Any]) -> dict[str, Any]:
        start, end, until = t["start"], t["end"], t["until"]
        last_day = until if until is not None else end.date()
        bis = datetime.combine(end, dtime())
        ticks = (end - bis).seconds * 10_000_000
        out: dict[str, Any] = {
            "frNr": t["frNr"],
            "datum": start.strftime("%Y-%m-%dT%H:%M:%S"),
            "uhrzeitVon": _wire_time(start),
            "datumBis": f"{last_day.isoformat()}T00:00:00",
            "uhrzeitBis": _wire_time(end),
            "uhrzeitBisTicks": ticks,
            "text": t["text"],
            "notiz": t["notiz"],
            "ort": t["ort"],
            "anwalt": t["anwalt"],
            "sb": t["sb"],
            "privat": t["privat"],
            "abwesenheit": t["abwesenheit"],
            "dauertermin": t["dauertermin"],
            "turnus": t["turnus"],
            "turnusArt": t["turnusArt"],
            "erinnerung": t["erinnerung"],
            "nr": t["nr"],
            "azRubrum": t["azRubrum"],
            "zuletztGeaendertAm": _modified(t["zuletztGeaendertAm"]),
        }
        if t["frNr"] in self.malformed_frnr:
            if self.malformed_style == "missing_datum":
                del out["datum"]
            else:
                out["datum"] = "morgen früh"
        return self._cased(out)

    def _cased(self, record: dict[str, Any]) -> dict[str, Any]:
        return {_pascal(k): v for k, v in record.items()} if self.pascal_case else record
