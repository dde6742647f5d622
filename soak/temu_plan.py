"""The TEMU orders soak plan: one shop whose orders are placed, paid, shipped and cancelled.

``temu-orders`` is incremental: a pass reads the orders whose ``updateTime`` lies after the
shop's checkpoint, so there is no window to slide and nothing is looked up. The simulator's
clock and the worker's signed timestamps both follow the simulated "now"
(``models.clock.unix``). Each tick places new orders, moves some a status step on and
cancels a few; the fault knobs are ``error_rate`` and ``fail_next`` today: the knobs of the
TEMU issue (10) plug in as more entries of ``faults`` (and mutations of ``mutations``).
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

from connectors.temu.connector import FIRST_PASS_DAYS
from simulators import temu as temu_sim
from simulators.server import ThreadedServer
from soak.plan import Profile, SourcePlan, Truth, WeightedMutation

SHOP = "soak-us"


class TemuOrdersPlan(SourcePlan):
    """Soak plan of the ``temu-orders`` source (see the module docstring)."""

    source = "temu-orders"
    topic_env = "KAFKA_TEMU_ORDERS_TOPIC"
    lookup_route = "lookups"  # an incremental source makes none; the counter stays 0
    relocations = ()

    def __init__(self, profile: Profile, start: datetime) -> None:
        super().__init__(profile, start)
        self.state, self._app = temu_sim.make_sim_app()
        self._server: ThreadedServer | None = None
        per_tick = profile.tick_hours / 24
        n = profile.records_per_day
        self.mutations = [
            WeightedMutation("placed", 0.5 * n * per_tick, self._advance("n_new")),
            WeightedMutation("status", 0.5 * n * per_tick, self._advance("n_status_changes")),
            WeightedMutation("cancelled", 0.05 * n * per_tick, self._advance("n_cancellations")),
        ]
        self.faults = [self._faults]

    def serve(self) -> str:
        """See ``SourcePlan.serve``."""
        self._server = ThreadedServer(self._app).start()
        return self._server.url

    def stop(self) -> None:
        """See ``SourcePlan.stop``."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def worker_env(self, url: str) -> dict[str, str]:
        """See ``SourcePlan.worker_env``."""
        shop = {
            "id": SHOP,
            "region": "us",
            "app_key": temu_sim.SIM_APP_KEY,
            "app_secret": temu_sim.SIM_APP_SECRET,
            "access_token": temu_sim.SIM_ACCESS_TOKEN,
            "api_url": f"{url}/openapi/router",
        }
        return {"TEMU_SHOPS": json.dumps([shop])}

    def requests(self) -> dict[str, int]:
        """See ``SourcePlan.requests``."""
        return {str(k): int(v) for k, v in self.state.stats()["requests"].items()}

    def healthy(self) -> None:
        """See ``SourcePlan.healthy``."""
        self.state.set_knobs(error_rate=0.0, fail_next=0)

    def _faults(self, rng: random.Random) -> None:
        self.state.set_knobs(
            error_rate=self.profile.error_rate, fail_next=1 if rng.random() < 0.2 else 0
        )

    def seed(self, rng: random.Random) -> None:
        """See ``SourcePlan.seed``: a few days of orders before the start."""
        end = int(self.start.timestamp())
        start = end - 3 * 86_400
        n = max(10, self.profile.records_per_day * 3)
        self.state.seed_orders(n, start_ts=start, end_ts=end, seed=rng.randrange(1 << 30))

    def _advance(self, what: str) -> Any:
        def apply(rng: random.Random, now: datetime) -> int:
            changed = self.state.advance(**{what: 1}, now=int(now.timestamp()))
            return sum(len(v) for v in changed.values())

        return apply

    def truth(self, now: datetime) -> Truth:
        """See ``SourcePlan.truth``: every order updated since the first pass's reach."""
        since = int((self.start - timedelta(days=FIRST_PASS_DAYS)).timestamp())
        expected: dict[str, tuple[Any, ...]] = {}
        for sn in self.state.order_sns():
            order = self.state.order(sn)
            if order is None:
                continue
            head = order["parentOrderMap"]
            if int(head["updateTime"]) >= since:
                expected[sn] = (int(head["updateTime"]), int(head["parentOrderStatus"]))
        return Truth(expected, {}, deleted=set(), live=len(expected))

    def marker(self, data: dict[str, Any]) -> tuple[Any, ...]:
        """See ``SourcePlan.marker``."""
        head = data.get("parentOrderMap") or {}
        return (int(head.get("updateTime", -1)), int(head.get("parentOrderStatus", -1)))
