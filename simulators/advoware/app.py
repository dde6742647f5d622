"""HTTP face of the Advoware simulator: the three hosts synchub talks to, plus ``/_admin``.

One app plays all three hosts of ``reference/upstream-apis.md`` §1.2: URL discovery
(``GET /AdvonetConfigurator/api/Url``, answering with its own address), the security
gateway (``POST /api/v1/Token``) and the API (``GET /api/v1/advonet/Employees`` and
``GET /api/v1/advonet/Termine``). Errors come as the real services send them: ASP.NET's
``{"Message": ...}`` JSON from the gateway and for auth, German plain text from the relay
(``... ist nicht angemeldet``, ``... nicht freigeschaltet``). Admin routes let the dev stack
and out-of-process tests drive the same state that in-process tests change through
``AdvowareState`` methods; they are not counted in ``AdvowareState.requests`` and need no
token. The API handlers live in ``simulators.advoware.api``; this module adds the admin
routes (``data_routes`` seed and change, ``observation_routes`` read) and builds the app.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from simulators.admin import AdminAction
from simulators.admin import admin as shared_admin
from simulators.advoware.api import (
    DISCOVERY,
    EMPLOYEES,
    TERMIN,
    TERMINE,
    TOKEN,
    AdvowareApi,
)
from simulators.advoware.state import AdvowareState
from simulators.counters import Handler

__all__ = ["DISCOVERY", "EMPLOYEES", "TERMIN", "TERMINE", "TOKEN", "create_app", "make_sim_app"]


def _error(_status: int, message: str) -> dict[str, Any]:
    """ASP.NET's error shape, as the API answers."""
    return {"Message": message}


def admin(action: AdminAction) -> Handler:
    """An admin route answering errors in Advoware's shape (unknown frNr -> 404)."""
    return shared_admin(action, _error)


def _frnr_of(request: Request) -> int:
    return int(request.path_params["frnr"])


def _wire_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Admin JSON fields as ``AdvowareState`` takes them: ISO strings to datetimes/dates."""
    fields = dict(body)
    for name in ("start", "end"):
        if name in fields:
            fields[name] = datetime.fromisoformat(fields[name])
    if fields.get("until"):
        fields["until"] = date.fromisoformat(fields["until"])
    return fields


def data_routes(sim: AdvowareState) -> list[Route]:
    """Admin routes that seed and change employees and appointments."""

    def seed(_: Request, body: dict[str, Any]) -> Any:
        body = dict(body)
        for name in ("start", "end"):
            body[name] = date.fromisoformat(body[name])
        return {"frnrs": sim.seed(**body)}

    def add(_: Request, body: dict[str, Any]) -> Any:
        fields = _wire_fields(body)
        frnr = sim.add(fields.pop("kuerzel"), fields.pop("start"), fields.pop("end"), **fields)
        return {"termin": sim.appointment(frnr)}

    def change_or_delete(request: Request, body: dict[str, Any]) -> Any:
        if request.method == "DELETE":
            return sim.delete(_frnr_of(request))
        return {"termin": sim.change(_frnr_of(request), **_wire_fields(body))}

    def move(request: Request, body: dict[str, Any]) -> Any:
        return {"termin": sim.move(_frnr_of(request), datetime.fromisoformat(body["start"]))}

    return [
        Route("/_admin/seed", admin(seed), methods=["POST"]),
        Route("/_admin/revoke", admin(lambda _r, _b: sim.revoke_tokens()), methods=["POST"]),
        Route(
            "/_admin/employees",
            admin(lambda _r, b: {"employee": sim.add_employee(**b)}),
            methods=["POST"],
        ),
        Route("/_admin/termine", admin(add), methods=["POST"]),
        Route("/_admin/termine/{frnr:int}/move", admin(move), methods=["POST"]),
        Route(
            "/_admin/termine/{frnr:int}/reassign",
            admin(lambda r, b: {"termin": sim.reassign(_frnr_of(r), b["kuerzel"])}),
            methods=["POST"],
        ),
        Route("/_admin/termine/{frnr:int}", admin(change_or_delete), methods=["PATCH", "DELETE"]),
    ]


def observation_routes(sim: AdvowareState) -> list[Route]:
    """Admin routes that read or change knobs, counters and the stored appointments."""

    def knobs(request: Request, body: dict[str, Any]) -> Any:
        return sim.set_knobs(**body) if request.method == "POST" else sim.knobs()

    def list_all(request: Request, _: dict[str, Any]) -> Any:
        return {"termine": sim.appointments(request.query_params.get("kuerzel"))}

    return [
        Route("/_admin/knobs", admin(knobs), methods=["GET", "POST"]),
        Route("/_admin/stats", admin(lambda _r, _b: sim.stats()), methods=["GET"]),
        Route("/_admin/termine", admin(list_all), methods=["GET"]),
    ]


def create_app(state: AdvowareState | None = None) -> Starlette:
    """The simulator as a Starlette app; the state is also reachable as ``app.state.advoware``."""
    sim = state or AdvowareState()
    routes = [*AdvowareApi(sim).routes(), *observation_routes(sim), *data_routes(sim)]
    app = Starlette(routes=routes)
    app.state.advoware = sim
    return app


def make_sim_app(**state_kwargs: Any) -> tuple[AdvowareState, Starlette]:
    """Build a state (credentials, knobs as keywords) and its app in one call."""
    state = AdvowareState(**state_kwargs)
    return state, create_app(state)
