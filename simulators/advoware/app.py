"""HTTP face of the Advoware simulator: the three hosts synchub talks to, plus ``/_admin``.

One app plays all three hosts of ``reference/upstream-apis.md`` §1.2: URL discovery
(``GET /AdvonetConfigurator/api/Url``, answering with its own address), the security
gateway (``POST /api/v1/Token``) and the API (``GET /api/v1/advonet/Employees`` and
``GET /api/v1/advonet/Termine``). Errors come as the real services send them: ASP.NET's
``{"Message": ...}`` JSON from the gateway and for auth, German plain text from the relay
(``... ist nicht angemeldet``, ``... nicht freigeschaltet``). Admin routes let the dev stack
and out-of-process tests drive the same state that in-process tests change through
``AdvowareState`` methods; they are not counted in ``AdvowareState.requests`` and need no
token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from simulators.advoware.state import AdvowareState
from simulators.wire_cache import JsonResponse

_Handler = Callable[[Request], Awaitable[Response]]

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


async def _body_of(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _expiration(seconds: float) -> str:
    """``expiration_utc`` as .NET writes it: seven fractional digits and ``Z``."""
    when = datetime.now(UTC) + timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def create_app(state: AdvowareState | None = None) -> Starlette:
    """The simulator as a Starlette app; the state is also reachable as ``app.state.advoware``."""
    sim = state or AdvowareState()

    def reply(status: int, body: Any) -> Response:
        sim.count(status=status)
        return JsonResponse(body, status_code=status)

    def text(status: int, message: str) -> Response:
        sim.count(status=status)
        return PlainTextResponse(message, status_code=status)

    def message(status: int, message: str) -> Response:
        return reply(status, {"Message": message})

    async def enter(route: str) -> None:
        sim.count(route=route)
        if sim.latency_ms:
            await asyncio.sleep(sim.latency_ms / 1000)

    def tracked(handler: _Handler) -> _Handler:
        """Count the request as in flight while it is handled (latency included)."""

        async def wrapper(request: Request) -> Response:
            sim.track(+1)
            try:
                return await handler(request)
            finally:
                sim.track(-1)

        return wrapper

    async def discovery(request: Request) -> Response:
        await enter(DISCOVERY)
        kanzlei = _query(request).get("kanzlei", "")
        if kanzlei.upper() != sim.kanzlei.upper():
            return message(404, f"Kanzlei {kanzlei} ist nicht registriert")
        base = str(request.base_url)
        return reply(200, {"relayUrl": base, "connectorUrl": None, "securityGateway": base})

    async def token(request: Request) -> Response:
        await enter(TOKEN)
        refused = sim.check_token_request(await _body_of(request))
        if refused is not None:
            return message(*refused)
        value, ttl = sim.issue_token()
        return reply(
            200,
            {
                "access_token": value,
                "token_type": "bearer",
                "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
                "expiration_utc": _expiration(ttl),
            },
        )

    async def admitted(request: Request, route: str) -> Response | None:
        await enter(route)
        status, error = sim.admit(_bearer(request))
        if status == 401:
            return message(401, error)
        if status == 429:
            sim.count(status=status)
            headers = {"Retry-After": str(sim.throttle_retry_after)}
            return PlainTextResponse(error, status_code=status, headers=headers)
        if error is not None:
            return text(status, error)
        return None

    async def employees(request: Request) -> Response:
        refused = await admitted(request, EMPLOYEES)
        return refused or reply(200, sim.employees_body())

    async def termine(request: Request) -> Response:
        query = _query(request)
        if "frnr" in query:
            return await termin(request, query["frnr"])
        refused = await admitted(request, TERMINE)
        if refused is not None:
            return refused
        kuerzel = query.get("kuerzel", "")
        if not kuerzel:
            return message(400, "Parameter kuerzel oder frnr fehlt")
        try:
            start = date.fromisoformat(query.get("from", ""))
            end = date.fromisoformat(query.get("to", ""))
        except ValueError:
            return message(400, "Parameter from/to müssen Datumswerte (yyyy-MM-dd) sein")
        denied = sim.owner_refused(kuerzel)
        if denied is not None:
            return text(*denied)
        return reply(200, sim.termine_wire(kuerzel, start, end))

    async def termin(request: Request, raw: str) -> Response:
        refused = await admitted(request, TERMIN)
        if refused is not None:
            return refused
        try:
            frnr = int(raw)
        except ValueError:
            return message(400, f"frnr {raw!r} ist keine Zahl")
        owner = sim.owner_of(frnr)
        if owner is None:
            return message(404, f"Termin {frnr} wurde nicht gefunden")
        denied = sim.owner_refused(owner)
        if denied is not None:
            return text(*denied)
        found = sim.appointment(frnr)
        if found is None:  # deleted between the two reads
            return message(404, f"Termin {frnr} wurde nicht gefunden")
        return reply(200, found)

    def admin(action: Callable[[Request, dict[str, Any]], Any]) -> _Handler:
        """Wrap an admin action: JSON in, JSON out, bad input -> 400, unknown frNr -> 404."""

        async def handler(request: Request) -> Response:
            body = await _body_of(request) if request.method in ("POST", "PATCH") else {}
            try:
                result = action(request, body)
            except KeyError as exc:
                return JSONResponse({"Message": f"not found: {exc}"}, status_code=404)
            except (TypeError, ValueError) as exc:
                return JSONResponse({"Message": str(exc)}, status_code=400)
            return Response(status_code=204) if result is None else JSONResponse(result)

        return handler

    def seed(_: Request, body: dict[str, Any]) -> Any:
        body = dict(body)
        for name in ("start", "end"):
            body[name] = date.fromisoformat(body[name])
        return {"frnrs": sim.seed(**body)}

    def knobs(request: Request, body: dict[str, Any]) -> Any:
        return sim.set_knobs(**body) if request.method == "POST" else sim.knobs()

    def frnr_of(request: Request) -> int:
        return int(request.path_params["frnr"])

    def wire_fields(body: dict[str, Any]) -> dict[str, Any]:
        fields = dict(body)
        for name in ("start", "end"):
            if name in fields:
                fields[name] = datetime.fromisoformat(fields[name])
        if fields.get("until"):
            fields["until"] = date.fromisoformat(fields["until"])
        return fields

    def add(_: Request, body: dict[str, Any]) -> Any:
        fields = wire_fields(body)
        frnr = sim.add(fields.pop("kuerzel"), fields.pop("start"), fields.pop("end"), **fields)
        return {"termin": sim.appointment(frnr)}

    def change_or_delete(request: Request, body: dict[str, Any]) -> Any:
        if request.method == "DELETE":
            return sim.delete(frnr_of(request))
        return {"termin": sim.change(frnr_of(request), **wire_fields(body))}

    def list_all(request: Request, _: dict[str, Any]) -> Any:
        return {"termine": sim.appointments(request.query_params.get("kuerzel"))}

    def add_employee(_: Request, body: dict[str, Any]) -> Any:
        return {"employee": sim.add_employee(**body)}

    routes = [
        Route("/AdvonetConfigurator/api/Url", discovery, methods=["GET"]),
        Route("/api/v1/Token", token, methods=["POST"]),
        Route("/api/v1/advonet/Employees", tracked(employees), methods=["GET"]),
        Route("/api/v1/advonet/Termine", tracked(termine), methods=["GET"]),
        Route("/_admin/knobs", admin(knobs), methods=["GET", "POST"]),
        Route("/_admin/seed", admin(seed), methods=["POST"]),
        Route("/_admin/revoke", admin(lambda _r, _b: sim.revoke_tokens()), methods=["POST"]),
        Route("/_admin/stats", admin(lambda _r, _b: sim.stats()), methods=["GET"]),
        Route("/_admin/employees", admin(add_employee), methods=["POST"]),
        Route("/_admin/termine", admin(list_all), methods=["GET"]),
        Route("/_admin/termine", admin(add), methods=["POST"]),
        Route(
            "/_admin/termine/{frnr:int}/move",
            admin(
                lambda r, b: {"termin": sim.move(frnr_of(r), datetime.fromisoformat(b["start"]))}
            ),
            methods=["POST"],
        ),
        Route(
            "/_admin/termine/{frnr:int}/reassign",
            admin(lambda r, b: {"termin": sim.reassign(frnr_of(r), b["kuerzel"])}),
            methods=["POST"],
        ),
        Route("/_admin/termine/{frnr:int}", admin(change_or_delete), methods=["PATCH", "DELETE"]),
    ]
    app = Starlette(routes=routes)
    app.state.advoware = sim
    return app


def make_sim_app(**state_kwargs: Any) -> tuple[AdvowareState, Starlette]:
    """Build a state (credentials, knobs as keywords) and its app in one call."""
    state = AdvowareState(**state_kwargs)
    return state, create_app(state)
