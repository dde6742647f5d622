"""Advoware (advo-net) simulator, served over real HTTP by ``simulators.server.ThreadedServer``.

The real API cannot be reached from tests or the dev stack, so this package serves the parts
synchub reads with the documented wire format (``reference/upstream-apis.md`` §1): URL
discovery by Kanzlei, the HMAC-SHA512-signed token request with nonce replay and clock-skew
checks, expiring bearer tokens, the employee list and Termine by date range or by ``frnr``
(camelCase or PascalCase, negative-``frNr`` system entries). Fault knobs cover what
production will eventually see: latency, 5xx, an offline Kanzlei connector, employees whose
calendar the API user may not read, and malformed appointments.

Typical use::

    state, app = make_sim_app(app_id="APP", users={"SB": "pw"})
    server = ThreadedServer(app).start()
    state.seed(5, 40, start=date(2026, 2, 1), end=date(2026, 4, 30), seed=7)
    state.move(frnr, datetime(2026, 3, 2, 10, 0))   # or change/reassign/delete, knobs
"""

from simulators.advoware.app import create_app, make_sim_app
from simulators.advoware.dev import DEV
from simulators.advoware.state import (
    DEFAULT_API_KEY,
    FIRST_FRNR,
    AdvowareState,
    expected_signature,
    parse_timestamp,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEV",
    "FIRST_FRNR",
    "AdvowareState",
    "create_app",
    "expected_signature",
    "make_sim_app",
    "parse_timestamp",
]
