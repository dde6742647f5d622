"""HTTP face of the Kaufland simulator: ``GET /v2/order-units``, ``/v2/orders`` plus ``/_admin``.

Every ``/v2`` request is checked first (keys, ``Shop-Timestamp``, ``Shop-Signature`` over the
full URL as received, rate limit, injected faults) and answered with Kaufland's envelopes
(``{"data": ..., "pagination": {offset, limit, total}}``; errors ``{"message": ...}``).
Admin routes drive the same ``KauflandState`` from other processes; they need no keys:

* ``GET|POST /_admin/knobs``: read or change knobs.
* ``POST /_admin/units`` ``{n, storefront?, status?, at?, per_order?, seed?}`` -> ``{ids}``.
* ``POST /_admin/change`` ``{ids, status?, at?}``: bump ``ts_updated_iso`` (ties: one ``at``).
* ``POST /_admin/malformed`` ``{storefront?}`` -> ``{id}``.
* ``POST /_admin/keys`` ``{client_key, secret_key}``: accept only this pair from now on.
* ``GET /_admin/stats``, ``POST /_admin/reset``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.admin import admin
from simulators.counters import Handler
from simulators.kaufland.state import Answer, KauflandState


def create_app(state: KauflandState | None = None) -> Starlette:
    """The simulator as a Starlette app; the state is also ``app.state.kaufland``."""
    sim = state or KauflandState()

    def api(answer: Callable[[Request, dict[str, list[str]]], Answer]) -> Handler:
        async def handler(request: Request) -> Response:
            body = (await request.body()).decode("utf-8", "replace")
            headers = {k.lower(): v for k, v in request.headers.items()}
            refused = sim.check(request.method, str(request.url), headers, body)
            query: dict[str, list[str]] = {}
            for key, value in request.query_params.multi_items():
                query.setdefault(key, []).append(value)
            result = refused or answer(request, query)
            latency = int(sim.knobs()["latency_ms"])
            if latency:
                await asyncio.sleep(latency / 1000)
            return JSONResponse(result.body, status_code=result.status, headers=result.headers)

        return handler

    def knobs(request: Request, body: dict[str, Any]) -> Any:
        return sim.set_knobs(**body) if request.method == "POST" else sim.knobs()

    def units(_: Request, body: dict[str, Any]) -> Any:
        body = dict(body)
        return {"ids": sim.add_units(int(body.pop("n")), **body)}

    def change(_: Request, body: dict[str, Any]) -> Any:
        sim.change([int(i) for i in body["ids"]], status=body.get("status"), at=body.get("at"))

    routes = [
        Route("/v2/order-units", api(lambda _r, q: sim.list_units(q)), methods=["GET"]),
        Route(
            "/v2/order-units/{id}",
            api(lambda r, _q: sim.get_unit(r.path_params["id"])),
            methods=["GET"],
        ),
        Route("/v2/orders", api(lambda _r, q: sim.list_orders(q)), methods=["GET"]),
        Route(
            "/v2/orders/{id}",
            api(lambda r, q: sim.get_order(r.path_params["id"])),
            methods=["GET"],
        ),
        Route("/_admin/knobs", admin(knobs), methods=["GET", "POST"]),
        Route("/_admin/units", admin(units), methods=["POST"]),
        Route("/_admin/change", admin(change), methods=["POST"]),
        Route(
            "/_admin/malformed",
            admin(lambda _r, b: {"id": sim.add_malformed(b.get("storefront", "de"))}),
            methods=["POST"],
        ),
        Route(
            "/_admin/keys",
            admin(lambda _r, b: sim.rotate_keys(b["client_key"], b["secret_key"])),
            methods=["POST"],
        ),
        Route("/_admin/stats", admin(lambda _r, _b: sim.stats()), methods=["GET"]),
        Route("/_admin/reset", admin(lambda _r, _b: sim.reset()), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.kaufland = sim
    return app


def make_sim_app(**state_kwargs: Any) -> tuple[KauflandState, Starlette]:
    """Build a state (keys, storefronts, clock, knobs as keywords) and its app in one call."""
    state = KauflandState(**state_kwargs)
    return state, create_app(state)
