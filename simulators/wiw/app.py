"""HTTP face of the When I Work simulator: the API routes synchub uses plus ``/_admin``.

API routes (as in ``reference/upstream-apis.md`` §2): ``POST /2/login`` (legacy shape),
``POST /login`` (current login host: a person object with ``token``), ``GET /2/shifts`` and
``GET /2/shifts/{id}``. Admin routes let the dev stack and out-of-process tests drive the
same state that in-process tests change through ``WiwState`` methods; they are not counted
in ``WiwState.requests`` and need no token. The API handlers live in ``simulators.wiw.api``;
this module adds the admin routes (``data_routes`` seed and change, ``observation_routes``
read) and builds the app.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from simulators.admin import AdminAction
from simulators.admin import admin as shared_admin
from simulators.counters import Handler
from simulators.wiw.api import WiwApi
from simulators.wiw.state import WiwState


def _error(status: int, message: str) -> dict[str, Any]:
    """When I Work's error shape, as the API answers."""
    return {"error": message, "code": status}


def admin(action: AdminAction) -> Handler:
    """An admin route answering errors in When I Work's shape (unknown shift -> 404)."""
    return shared_admin(action, _error)


def _shift_id(request: Request) -> int:
    return int(request.path_params["shift_id"])


def data_routes(wiw: WiwState) -> list[Route]:
    """Admin routes that seed, add, change, move and delete shifts, or revoke tokens."""

    def seed(_: Request, body: dict[str, Any]) -> Any:
        body = dict(body)
        days = [date.fromisoformat(d) for d in body.pop("days", None) or []] or None
        for name in ("start", "end"):
            if body.get(name):
                body[name] = date.fromisoformat(body[name])
        return {"ids": wiw.seed(int(body.pop("n_shifts", 0)), days=days, **body)}

    def change_or_delete(request: Request, body: dict[str, Any]) -> Any:
        if request.method == "DELETE":
            return wiw.delete(_shift_id(request))
        return {"shift": wiw.change(_shift_id(request), **body)}

    return [
        Route("/_admin/seed", admin(seed), methods=["POST"]),
        Route("/_admin/revoke", admin(lambda _r, _b: wiw.revoke_tokens()), methods=["POST"]),
        Route(
            "/_admin/shifts",
            admin(lambda _r, body: {"shift": wiw.shift(wiw.upsert(body))}),
            methods=["POST"],
        ),
        Route(
            "/_admin/shifts/{shift_id:int}/move",
            admin(lambda r, body: {"shift": wiw.move(_shift_id(r), body["start"])}),
            methods=["POST"],
        ),
        Route(
            "/_admin/shifts/{shift_id:int}", admin(change_or_delete), methods=["PATCH", "DELETE"]
        ),
    ]


def observation_routes(wiw: WiwState) -> list[Route]:
    """Admin routes that read or change knobs and read the counters."""

    def knobs(request: Request, body: dict[str, Any]) -> Any:
        return wiw.set_knobs(**body) if request.method == "POST" else wiw.knobs()

    return [
        Route("/_admin/knobs", admin(knobs), methods=["GET", "POST"]),
        Route("/_admin/stats", admin(lambda _r, _b: wiw.stats()), methods=["GET"]),
    ]


def create_app(state: WiwState | None = None) -> Starlette:
    """The simulator as a Starlette app; the state is also reachable as ``app.state.wiw``."""
    wiw = state or WiwState()
    routes = [*WiwApi(wiw).routes(), *observation_routes(wiw), *data_routes(wiw)]
    app = Starlette(routes=routes)
    app.state.wiw = wiw
    return app


def make_sim_app(**state_kwargs: Any) -> tuple[WiwState, Starlette]:
    """Build a state (credentials, timezone, knobs as keywords) and its app in one call."""
    state = WiwState(**state_kwargs)
    return state, create_app(state)
