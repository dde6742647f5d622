"""The When I Work simulator's API routes: both login hosts and the shift reads.

Shapes as in ``reference/upstream-apis.md`` §2. Every answer is counted in ``WiwState``
by route and status.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.admin import body_of
from simulators.counters import CountedApi
from simulators.wire_cache import JsonResponse
from simulators.wiw.state import WiwState


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


class WiwApi(CountedApi):
    """Handlers of the API routes synchub uses, answering from one ``WiwState``."""

    sim: WiwState

    def __init__(self, wiw: WiwState) -> None:
        self.wiw = self.sim = wiw

    def routes(self) -> list[Route]:
        """The API routes; the shift reads are counted as in flight while they are handled."""
        return [
            Route("/2/login", self.login_legacy, methods=["POST"]),
            Route("/login", self.login_current, methods=["POST"]),
            Route("/2/shifts", self.tracked(self.list_shifts), methods=["GET"]),
            Route("/2/shifts/{shift_id}", self.tracked(self.get_shift), methods=["GET"]),
        ]

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        """A counted JSON answer."""
        self.wiw.count(status=status)
        return JsonResponse(body, status_code=status, headers=headers)

    async def login(self, request: Request, route: str) -> str | Response:
        """A new token for valid credentials, else the 401 answer."""
        await self.enter(route)
        body = await body_of(request)
        key = request.headers.get("w-key") or body.get("key")
        email = body.get("email") or body.get("username")
        error = self.wiw.check_login(key, email, body.get("password"))
        if error:
            return self.reply(401, {"error": error, "code": 1010 if "key" in error else 1020})
        return self.wiw.issue_token()

    async def login_legacy(self, request: Request) -> Response:
        """``POST /2/login``: token, person, users and accounts."""
        token = await self.login(request, "POST /2/login")
        if isinstance(token, Response):
            return token
        wiw = self.wiw
        person = wiw.person(token)
        user = {**person, "account_id": wiw.account_id, "role": 1}
        account = {"id": wiw.account_id, "company": "Simulated Co", "timezone_name": str(wiw.tz)}
        body = {"login": person, "token": token, "users": [user], "accounts": [account]}
        return self.reply(200, body)

    async def login_current(self, request: Request) -> Response:
        """``POST /login``: a person object carrying ``token``."""
        token = await self.login(request, "POST /login")
        return token if isinstance(token, Response) else self.reply(200, self.wiw.person(token))

    async def list_shifts(self, request: Request) -> Response:
        """``GET /2/shifts``: the wire body is built (or taken from the day cache) in a thread."""
        await self.enter("GET /2/shifts")
        status, error, headers = self.wiw.admit(_token_of(request))
        if error is not None:
            return self.reply(status, error, headers)
        # in a thread: a day built after a change does not hold up the kept days' answers
        query = dict(request.query_params)
        status, wire = await asyncio.to_thread(self.wiw.list_shifts_wire, query)
        self.wiw.count(status=status)
        return Response(wire, status_code=status, headers=headers, media_type="application/json")

    async def get_shift(self, request: Request) -> Response:
        """``GET /2/shifts/{id}``."""
        await self.enter("GET /2/shifts/{id}")
        status, error, headers = self.wiw.admit(_token_of(request))
        if error is not None:
            return self.reply(status, error, headers)
        raw_id = request.path_params["shift_id"]
        shift = self.wiw.shift(int(raw_id)) if raw_id.isdigit() else None
        if shift is None:
            return self.reply(404, {"error": "Shift not found", "code": 2004}, headers)
        return self.reply(200, {"shift": shift, "repeating_shifts": []}, headers)
