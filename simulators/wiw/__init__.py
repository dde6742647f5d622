"""When I Work API v2 simulator, served over real HTTP by ``simulators.server.ThreadedServer``.

The real API cannot be reached from tests or the dev stack, so this package serves the parts
synchub reads with the same wire format (RFC 1123 dates with offsets, sideloaded lists,
``deleted_ids``, ``W-Token``/Bearer auth, both login shapes, ``W-Limit-Remaining`` and 429 or
403 throttling) and adds fault knobs for what production will eventually see: latency, 5xx,
throttling, revoked tokens and malformed shifts.

Typical use::

    state, app = make_sim_app(timezone="America/Denver", static_token="t")
    server = ThreadedServer(app).start()
    state.seed(50, start=date(2026, 11, 24), end=date(2026, 11, 26), seed=7)
    state.move(shift_id, new_start)   # or change(...), delete(...), revoke_tokens(), knobs
"""

from simulators.wiw.app import create_app, make_sim_app
from simulators.wiw.dev import DEV
from simulators.wiw.state import DATE_FIELDS, FIRST_ID, WiwState, parse_when, rfc1123

__all__ = [
    "DATE_FIELDS",
    "DEV",
    "FIRST_ID",
    "WiwState",
    "create_app",
    "make_sim_app",
    "parse_when",
    "rfc1123",
]
