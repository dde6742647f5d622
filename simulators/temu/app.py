"""HTTP face of the TEMU simulator: ``POST /openapi/router`` plus ``/_admin``.

The router answers HTTP 200 with TEMU's envelope for everything, errors included, as the
real gateway does (``reference/upstream-apis.md`` §3.4). Admin routes let the dev stack and
out-of-process tests drive the same ``TemuState`` that in-process tests change directly;
they are not counted and need no credentials:

* ``GET|POST /_admin/knobs``: read or change knobs.
* ``POST /_admin/seed_orders`` ``{n, start_ts, end_ts, seed?, replace?}``.
* ``POST /_admin/seed_stock`` ``{n_goods, skus_per_goods, seed?}``.
* ``POST /_admin/advance`` ``{n_new?, n_status_changes?, n_cancellations?, now?}``.
* ``POST /_admin/change_address`` ``{parent_order_sn, now?}``: new address, ``updateTime``
  bumped. ``POST /_admin/touch`` ``{parent_order_sns, now?}``: bulk ``updateTime`` bump.

Knobs a soak run may flip at random while syncs run (``POST /_admin/knobs``, or keywords of
``TemuState``/``make_sim_app``): ``clock_offset_seconds`` (TEMU's clock vs. the worker's,
keep within ±300), ``list_lag_seconds`` (index lag of the order list),
``unstable_ties`` (random order among equal ``updateTime`` per request),
``duplicate_key_code`` (code for a repeated ``requestUniqueKey``; 0 = accepted silently),
``repeat_shipment`` (``duplicate``/``success``/``reject``), ``reject_goods`` (product ids
refused as a whole), ``fail_goods`` (product ids whose edits answer 4000000), next to the
older ``latency_ms``, ``error_rate``, ``fail_next``, ``qps``, ``burst``,
``reject_shipments``, ``reject_skus``, ``visibility_delay_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.admin import admin
from simulators.counters import Handler
from simulators.temu.state import TemuState


def router(temu: TemuState) -> Handler:
    """``POST /openapi/router``: HTTP 429 when the proxy knob says so, else TEMU's envelope."""

    async def answer(request: Request) -> Response:
        arrived = time.monotonic()
        raw = await request.body()
        if temu.take_http_429():
            refusal = {"error": "Too Many Requests (simulated)"}
            return JSONResponse(refusal, status_code=429, headers={"Retry-After": "1"})
        try:
            # dicts keep the received key order: the signature is checked over it
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        envelope = temu.handle(body, arrived)
        if temu.latency_ms:
            await asyncio.sleep(temu.latency_ms / 1000)
        return JSONResponse(envelope)

    return answer


def data_routes(temu: TemuState) -> list[Route]:
    """Admin routes that seed and change the shop's orders, stock and credentials."""

    def seed_orders(_: Request, body: dict[str, Any]) -> Any:
        body = dict(body)
        return {"parentOrderSns": temu.seed_orders(int(body.pop("n")), **body)}

    def add_token(_: Request, body: dict[str, Any]) -> Any:
        body = dict(body)
        temu.add_token(body.pop("token"), body.pop("app_key"), **body)

    return [
        Route("/_admin/seed_orders", admin(seed_orders), methods=["POST"]),
        Route(
            "/_admin/seed_stock",
            admin(lambda _r, b: {"skuIds": temu.seed_stock(**b)}),
            methods=["POST"],
        ),
        Route("/_admin/advance", admin(lambda _r, b: temu.advance(**b)), methods=["POST"]),
        Route(
            "/_admin/change_address",
            admin(lambda _r, b: temu.change_address(b["parent_order_sn"], now=b.get("now"))),
            methods=["POST"],
        ),
        Route(
            "/_admin/touch",
            admin(lambda _r, b: temu.touch(b["parent_order_sns"], now=b.get("now"))),
            methods=["POST"],
        ),
        Route(
            "/_admin/apps",
            admin(lambda _r, b: temu.add_app(b["app_key"], b["app_secret"])),
            methods=["POST"],
        ),
        Route("/_admin/tokens", admin(add_token), methods=["POST"]),
    ]


def observation_routes(temu: TemuState) -> list[Route]:
    """Admin routes that read or reset knobs, counters and what the shop recorded."""

    def knobs(request: Request, body: dict[str, Any]) -> Any:
        return temu.set_knobs(**body) if request.method == "POST" else temu.knobs()

    return [
        Route("/_admin/knobs", admin(knobs), methods=["GET", "POST"]),
        Route("/_admin/stats", admin(lambda _r, _b: temu.stats()), methods=["GET"]),
        Route(
            "/_admin/request_times",
            admin(lambda _r, _b: {"times": temu.arrivals()}),
            methods=["GET"],
        ),
        Route(
            "/_admin/shipments",
            admin(lambda _r, _b: {"shipments": temu.shipment_log()}),
            methods=["GET"],
        ),
        Route("/_admin/stock", admin(lambda _r, _b: {"skus": temu.skus()}), methods=["GET"]),
        Route(
            "/_admin/reset_counters",
            admin(lambda _r, _b: temu.reset_counters()),
            methods=["POST"],
        ),
        Route("/_admin/reset", admin(lambda _r, _b: temu.reset()), methods=["POST"]),
    ]


def create_app(state: TemuState | None = None) -> Starlette:
    """The simulator as a Starlette app; the state is also reachable as ``app.state.temu``."""
    temu = state or TemuState()
    routes = [
        Route("/openapi/router", router(temu), methods=["POST"]),
        *data_routes(temu),
        *observation_routes(temu),
    ]
    app = Starlette(routes=routes)
    app.state.temu = temu
    return app


def make_sim_app(**state_kwargs: Any) -> tuple[TemuState, Starlette]:
    """Build a state (credentials, clock, knobs as keywords) and its app in one call."""
    state = TemuState(**state_kwargs)
    return state, create_app(state)
