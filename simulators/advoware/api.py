"""The Advoware simulator's API routes: discovery, the token gateway and the relay.

Errors come as the real services send them (``reference/upstream-apis.md`` §1.2):
ASP.NET's ``{"Message": ...}`` JSON from the gateway and for auth, German plain text
from the relay. Every answer is counted in ``AdvowareState`` by route and status.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from simulators.admin import body_of
from simulators.advoware.state import AdvowareState
from simulators.counters import CountedApi
from simulators.wire_cache import JsonResponse

DISCOVERY = "GET /AdvonetConfigurator/api/Url"
TOKEN = "POST /api/v1/Token"
EMPLOYEES = "GET /api/v1/advonet/Employees"
TERMINE = "GET /api/v1/advonet/Termine"
TERMIN = "GET /api/v1/advonet/Termine?frnr"


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _query(request: Request) -> dict[str, str]:
    """Query parameters with lower-case names: ASP.NET binds them case-insensitively."""
    return {k.lower(): v for k, v in request.query_params.items()}


def _expiration(seconds: float) -> str:
    """``expiration_utc`` as .NET writes it: seven fractional digits and ``Z``."""
    when = datetime.now(UTC) + timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class AdvowareApi(CountedApi):
    """Handlers of the three hosts, answering from one ``AdvowareState``."""

    sim: AdvowareState

    def __init__(self, sim: AdvowareState) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        """The API routes; the relay's are counted as in flight while they are handled."""
        return [
            Route("/AdvonetConfigurator/api/Url", self.discovery, methods=["GET"]),
            Route("/api/v1/Token", self.token, methods=["POST"]),
            Route("/api/v1/advonet/Employees", self.tracked(self.employees), methods=["GET"]),
            Route("/api/v1/advonet/Termine", self.tracked(self.termine), methods=["GET"]),
        ]

    def reply(self, status: int, body: Any) -> Response:
        """A counted JSON answer."""
        self.sim.count(status=status)
        return JsonResponse(body, status_code=status)

    def text(self, status: int, message: str) -> Response:
        """A counted plain-text answer, as the relay sends its refusals."""
        self.sim.count(status=status)
        return PlainTextResponse(message, status_code=status)

    def message(self, status: int, message: str) -> Response:
        """A counted ASP.NET error: ``{"Message": ...}``."""
        return self.reply(status, {"Message": message})

    async def discovery(self, request: Request) -> Response:
        """``GET /AdvonetConfigurator/api/Url``: all three hosts are this app."""
        await self.enter(DISCOVERY)
        kanzlei = _query(request).get("kanzlei", "")
        if kanzlei.upper() != self.sim.kanzlei.upper():
            return self.message(404, f"Kanzlei {kanzlei} ist nicht registriert")
        base = str(request.base_url)
        return self.reply(200, {"relayUrl": base, "connectorUrl": None, "securityGateway": base})

    async def token(self, request: Request) -> Response:
        """``POST /api/v1/Token``: a bearer token for valid credentials."""
        await self.enter(TOKEN)
        refused = self.sim.check_token_request(await body_of(request))
        if refused is not None:
            return self.message(*refused)
        value, ttl = self.sim.issue_token()
        return self.reply(
            200,
            {
                "access_token": value,
                "token_type": "bearer",
                "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
                "expiration_utc": _expiration(ttl),
            },
        )

    async def admitted(self, request: Request, route: str) -> Response | None:
        """The refusal for a relay request (auth, throttle, outage), or ``None`` to go on."""
        await self.enter(route)
        status, error = self.sim.admit(_bearer(request))
        if status == 401:
            return self.message(401, error)
        if status == 429:
            self.sim.count(status=status)
            headers = {"Retry-After": str(self.sim.throttle_retry_after)}
            return PlainTextResponse(error, status_code=status, headers=headers)
        if error is not None:
            return self.text(status, error)
        return None

    async def employees(self, request: Request) -> Response:
        """``GET /api/v1/advonet/Employees``."""
        refused = await self.admitted(request, EMPLOYEES)
        return refused or self.reply(200, self.sim.employees_body())

    async def termine(self, request: Request) -> Response:
        """``GET /api/v1/advonet/Termine``: by owner and date range, or one by ``frnr``."""
        query = _query(request)
        if "frnr" in query:
            return await self.termin(request, query["frnr"])
        refused = await self.admitted(request, TERMINE)
        if refused is not None:
            return refused
        kuerzel = query.get("kuerzel", "")
        if not kuerzel:
            return self.message(400, "Parameter kuerzel oder frnr fehlt")
        try:
            start = date.fromisoformat(query.get("from", ""))
            end = date.fromisoformat(query.get("to", ""))
        except ValueError:
            return self.message(400, "Parameter from/to müssen Datumswerte (yyyy-MM-dd) sein")
        denied = self.sim.owner_refused(kuerzel)
        if denied is not None:
            return self.text(*denied)
        return self.reply(200, self.sim.termine_wire(kuerzel, start, end))

    async def termin(self, request: Request, raw: str) -> Response:
        """``GET /api/v1/advonet/Termine?frnr=``: one appointment, if its owner is open."""
        refused = await self.admitted(request, TERMIN)
        if refused is not None:
            return refused
        try:
            frnr = int(raw)
        except ValueError:
            return self.message(400, f"frnr {raw!r} ist keine Zahl")
        owner = self.sim.owner_of(frnr)
        if owner is None:
            return self.message(404, f"Termin {frnr} wurde nicht gefunden")
        denied = self.sim.owner_refused(owner)
        if denied is not None:
            return self.text(*denied)
        found = self.sim.appointment(frnr)
        if found is None:  # deleted between the two reads
            return self.message(404, f"Termin {frnr} wurde nicht gefunden")
        return self.reply(200, found)
