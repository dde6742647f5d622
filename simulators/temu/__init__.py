"""TEMU Open Platform simulator, served over real HTTP by ``simulators.server.ThreadedServer``.

The real gateway cannot be reached from tests or the dev stack, so this package serves the
methods synchub calls with TEMU's wire format (one signed ``POST /openapi/router``, HTTP 200
envelopes, gateway error codes) and adds what production will eventually show: the
per-app-key rate limit (4000004), system exceptions, expired tokens and missing scopes,
orders that change over time, refused shipments, failing SKUs and stock reads that lag
behind edits.

Typical use::

    state, app = make_sim_app()           # app SIM_APP_KEY/SIM_APP_SECRET, SIM_ACCESS_TOKEN
    server = ThreadedServer(app).start()  # router: f"{server.url}/openapi/router"
    state.seed_stock(20, 3, seed=1)
    state.seed_orders(250, start_ts=t0, end_ts=t1, seed=2)
    state.advance(n_new=5, n_status_changes=3, n_cancellations=1)
    state.set_knobs(qps=5, reject_skus={sku}, visibility_delay_seconds=5)
"""

from simulators.temu.app import create_app, make_sim_app
from simulators.temu.dev import DEV
from simulators.temu.state import (
    API_TYPES,
    SIM_ACCESS_TOKEN,
    SIM_APP_KEY,
    SIM_APP_SECRET,
    SIM_MALL_ID,
    TemuState,
    temu_sign,
)

__all__ = [
    "API_TYPES",
    "DEV",
    "SIM_ACCESS_TOKEN",
    "SIM_APP_KEY",
    "SIM_APP_SECRET",
    "SIM_MALL_ID",
    "TemuState",
    "create_app",
    "make_sim_app",
    "temu_sign",
]
