"""The simulators' admin routes: JSON in, JSON out, bad input -> 400, unknown id -> 404.

Each simulator answers admin errors in its upstream's error shape (``error_body``), so a
test reading them sees what the real API would send; the wrapping is the same for all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from simulators.counters import Handler

AdminAction = Callable[[Request, dict[str, Any]], Any]
"""An admin action: the request and its JSON object; returns JSON, or ``None`` for 204."""
ErrorBody = Callable[[int, str], dict[str, Any]]
"""The error body of a status and its message, in the simulated upstream's shape."""


async def body_of(request: Request) -> dict[str, Any]:
    """The JSON object of the request, or ``{}`` when the body is not one."""
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def plain_error(_status: int, message: str) -> dict[str, Any]:
    """``{"error": message}``."""
    return {"error": message}


def admin(action: AdminAction, error_body: ErrorBody = plain_error) -> Handler:
    """Wrap an admin action: body of POST/PATCH, ``KeyError`` -> 404, bad values -> 400."""

    async def handler(request: Request) -> Response:
        body = await body_of(request) if request.method in ("POST", "PATCH") else {}
        try:
            result = action(request, body)
        except KeyError as exc:
            return JSONResponse(error_body(404, f"not found: {exc}"), status_code=404)
        except (TypeError, ValueError) as exc:
            return JSONResponse(error_body(400, str(exc)), status_code=400)
        return Response(status_code=204) if result is None else JSONResponse(result)

    return handler
