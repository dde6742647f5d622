"""Kaufland Marketplace Seller API v2 simulator, served over real HTTP by ``ThreadedServer``.

Serves the order-unit and order lists synchub reads, checks the HMAC-SHA256 signature, the
client key and ``Shop-Timestamp`` as Kaufland does, and adds the faults production shows:
429 (with or without ``Retry-After``), 5xx storms, a skewed clock, list lag and ties on
``ts_updated_iso`` in an unstable order.

Typical use::

    state, app = make_sim_app()            # keys SIM_CLIENT_KEY / SIM_SECRET_KEY
    server = ThreadedServer(app).start()   # base URL: f"{server.url}/v2"
    ids = state.add_units(150, storefront="de", at=t0)
    state.change(ids[:40], status="sent", at=t1)
    state.set_knobs(list_lag_seconds=60, unstable_ties=True, fail_next=[429, 503])
"""

from simulators.kaufland.app import create_app, make_sim_app
from simulators.kaufland.dev import DEV
from simulators.kaufland.state import (
    SIM_CLIENT_KEY,
    SIM_SECRET_KEY,
    STATUSES,
    STOREFRONTS,
    KauflandState,
    iso,
    kaufland_sign,
)

__all__ = [
    "DEV",
    "SIM_CLIENT_KEY",
    "SIM_SECRET_KEY",
    "STATUSES",
    "STOREFRONTS",
    "KauflandState",
    "create_app",
    "iso",
    "kaufland_sign",
    "make_sim_app",
]
