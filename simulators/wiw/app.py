"""HTTP face of the When I Work simulator: the API routes synchub uses plus ``/_admin``.

API routes (as in ``reference/upstream-apis.md`` §2): ``POST /2/login`` (legacy shape),
``POST /login`` (current login host: a person object with ``token``), ``GET /2/shifts`` and
``GET /2/shifts/{id}``. Admin routes let the dev stack and out-of-process tests drive the
same state that in-process tests change through ``WiwState`` methods; they are not counted
in ``WiwState.requests`` and need no token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.wire_cache import JsonResponse
from simulators.wiw.state import WiwState

_Handler = Callable[[Request], Awaitable[Response]]


def _token_of(request: Request) -> str | None:
    """The token as the real API accepts it: Bearer, ``W-Token`` header, cookie or query."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return (
        request.headers.get("w-token")
        or request.cookies.get("W-Token")
        or request.query_params.get("W-Token")
    )


async def _body_of(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def create_app(state: WiwState | None = None) -> Starlette:
    """The simulator as a Starlette app; the state is also reachable as ``app.state.wiw``."""
    wiw = state or WiwState()

    def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        wiw.count(status=status)
        return JsonResponse(body, status_code=status, headers=headers)

    async def enter(route: str) -> None:
        wiw.count(route=route)
        if wiw.latency_ms:
            await asyncio.sleep(wiw.latency_ms / 1000)

    async def login(request: Request, route: str) -> str | Response:
        await enter(route)
        body = await _body_of(request)
        key = request.headers.get("w-key") or body.get("key")
        email = body.get("email") or body.get("username")
        error = wiw.check_login(key, email, body.get("password"))
        if error:
            return reply(401, {"error": error, "code": 1010 if "key" in error else 1020})
        return wiw.issue_token()

    async def login_legacy(request: Request) -> Response:
        token = await login(request, "POST /2/login")
        if isinstance(token, Response):
            return token
        person = wiw.person(token)
        user = {**person, "account_id": wiw.account_id, "role": 1}
        account = {"id": wiw.account_id, "company": "Simulated Co", "timezone_name": str(wiw.tz)}
        return reply(200, {"login": person, "token": token, "users": [user], "accounts": [account]})

    async def login_current(request: Request) -> Response:
        token = await login(request, "POST /login")
        return token if isinstance(token, Response) else reply(200, wiw.person(token))

    def tracked(handler: _Handler) -> _Handler:
        """Count the request as in flight while it is handled (latency included)."""

        async def wrapper(request: Request) -> Response:
            wiw.track(+1)
            try:
                return await handler(request)
            finally:
                wiw.track(-1)

        return wrapper

    async def list_shifts(request: Request) -> Response:
        await enter("GET /2/shifts")
        status, error, headers = wiw.admit(_token_of(request))
        if error is not None:
            return reply(status, error, headers)
        # in a thread: a day built after a change does not hold up the kept days' answers
        status, wire = await asyncio.to_thread(wiw.list_shifts_wire, dict(request.query_params))
        wiw.count(status=status)
        return Response(wire, status_code=status, headers=headers, media_type="application/json")

    async def get_shift(request: Request) -> Response:
        await enter("GET /2/shifts/{id}")
        status, error, headers = wiw.admit(_token_of(request))
        if error is not None:
            return reply(status, error, headers)
        raw_id = request.path_params["shift_id"]
        shift = wiw.shift(int(raw_id)) if raw_id.isdigit() else None
        if shift is None:
            return reply(404, {"error": "Shift not found", "code": 2004}, headers)
        return reply(200, {"shift": shift, "repeating_shifts": []}, headers)

    def admin(action: Callable[[Request, dict[str, Any]], Any]) -> _Handler:
        """Wrap an admin action: JSON in, JSON out, bad input -> 400, unknown shift -> 404."""

        async def handler(request: Request) -> Response:
            body = await _body_of(request) if request.method in ("POST", "PATCH") else {}
            try:
                result = action(request, body)
            except KeyError as exc:
                return JSONResponse({"error": f"not found: {exc}", "code": 404}, status_code=404)
            except (TypeError, ValueError) as exc:
                return JSONResponse({"error": str(exc), "code": 400}, status_code=400)
            return Response(status_code=204) if result is None else JSONResponse(result)

        return handler

    def seed(_: Request, body: dict[str, Any]) -> Any:
        body = dict(body)
        days = [date.fromisoformat(d) for d in body.pop("days", None) or []] or None
        for name in ("start", "end"):
            if body.get(name):
                body[name] = date.fromisoformat(body[name])
        return {"ids": wiw.seed(int(body.pop("n_shifts", 0)), days=days, **body)}

    def knobs(request: Request, body: dict[str, Any]) -> Any:
        return wiw.set_knobs(**body) if request.method == "POST" else wiw.knobs()

    def shift_id(request: Request) -> int:
        return int(request.path_params["shift_id"])

    def change_or_delete(request: Request, body: dict[str, Any]) -> Any:
        if request.method == "DELETE":
            return wiw.delete(shift_id(request))
        return {"shift": wiw.change(shift_id(request), **body)}

    routes = [
        Route("/2/login", login_legacy, methods=["POST"]),
        Route("/login", login_current, methods=["POST"]),
        Route("/2/shifts", tracked(list_shifts), methods=["GET"]),
        Route("/2/shifts/{shift_id}", tracked(get_shift), methods=["GET"]),
        Route("/_admin/knobs", admin(knobs), methods=["GET", "POST"]),
        Route("/_admin/seed", admin(seed), methods=["POST"]),
        Route("/_admin/revoke", admin(lambda _r, _b: wiw.revoke_tokens()), methods=["POST"]),
        Route("/_admin/stats", admin(lambda _r, _b: wiw.stats()), methods=["GET"]),
        Route(
            "/_admin/shifts",
            admin(lambda _r, body: {"shift": wiw.shift(wiw.upsert(body))}),
            methods=["POST"],
        ),
        Route(
            "/_admin/shifts/{shift_id:int}/move",
            admin(lambda r, body: {"shift": wiw.move(shift_id(r), body["start"])}),
            methods=["POST"],
        ),
        Route(
            "/_admin/shifts/{shift_id:int}", admin(change_or_delete), methods=["PATCH", "DELETE"]
        ),
    ]
    app = Starlette(routes=routes)
    app.state.wiw = wiw
    return app


def make_sim_app(**state_kwargs: Any) -> tuple[WiwState, Starlette]:
    """Build a state (credentials, timezone, knobs as keywords) and its app in one call."""
    state = WiwState(**state_kwargs)
    return state, create_app(state)
