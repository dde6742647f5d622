"""The TEMU orders soak plan: one shop whose orders are placed, paid, shipped and cancelled.

``temu-orders`` is incremental: a pass reads the orders whose ``updateTime`` lies after the
shop's checkpoint, so there is no window to slide and nothing is looked up. The simulator's
clock and the worker's signed timestamps both follow the simulated "now"
(``models.clock.unix``). Each tick places new orders, moves some a status step on, cancels
a few, changes some buyers' addresses (``change_address``) and now and then touches more
orders than fit a page in one second (a bulk edit: a tie). The faults are drawn per tick:
``error_rate``/``fail_next`` (system exceptions) and the knobs of the TEMU issue (10):
``clock_offset_seconds`` (TEMU's clock within ±300 s of the worker's; changes are stamped
by TEMU's clock), ``list_lag_seconds`` and ``unstable_ties``. (``repeat_shipment`` only
matters to shipment confirmations, which this plan does not send yet.)

The truth is what TEMU's list can show the worker at the tick's "now": an order whose last
change is still hidden by the index lag, or stamped after the worker's now by a TEMU clock
ahead of it, is judged at a later tick (the next pass's overlap reads it). A shippable
order's marker includes its current address, so an address change that never reached the
topic is a loss.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

from connectors.temu.connector import FIRST_PASS_DAYS, SHIPPABLE
from simulators import temu as temu_sim
from soak.plan import Profile, SourcePlan, Truth, WeightedMutation

SHOP = "soak-us"
MAX_CLOCK_OFFSET = 300
"""TEMU's clock may run this many seconds ahead of or behind the worker's (its gateway's
timestamp tolerance)."""
TIE_SIZE = 150
"""Orders a bulk edit touches in one second: more than a list page (100) holds."""


class TemuOrdersPlan(SourcePlan):
    """Soak plan of the ``temu-orders`` source (see the module docstring)."""

    source = "temu-orders"
    topic_env = "KAFKA_TEMU_ORDERS_TOPIC"
    lookup_route = "lookups"  # an incremental source makes none; the counter stays 0
    relocations = ()

    def __init__(self, profile: Profile, start: datetime) -> None:
        super().__init__(profile, start)
        self.state, self._app = temu_sim.make_sim_app()
        per_tick = profile.tick_hours / 24
        n = profile.records_per_day
        self.mutations = [
            WeightedMutation("placed", 0.5 * n * per_tick, self._advance("n_new")),
            WeightedMutation("status", 0.5 * n * per_tick, self._advance("n_status_changes")),
            WeightedMutation("cancelled", 0.05 * n * per_tick, self._advance("n_cancellations")),
            WeightedMutation("address", 0.05 * n * per_tick, self._change_address),
            WeightedMutation("tie", 0.3, self._tie),
        ]
        self.faults = [self._faults, self._issue10_knobs]

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

    def _issue10_knobs(self, rng: random.Random) -> None:
        """TEMU's clock skew, index lag and unstable ties at random.

        They stay on until the next tick's draw (``healthy`` only stops the errors): the
        clock of TEMU does not jump back when a run ends.
        """
        self.state.set_knobs(
            clock_offset_seconds=rng.choice((0, rng.randint(-MAX_CLOCK_OFFSET, MAX_CLOCK_OFFSET))),
            list_lag_seconds=rng.choice((0, 0, 5, 60, 240)),
            unstable_ties=rng.random() < 0.5,
        )

    def _change_address(self, rng: random.Random, now: datetime) -> int:
        """A buyer of a shippable order changes the address (TEMU stamps it by its clock)."""
        with self.state._lock:  # read in place: a copy of every order per change grew per tick
            open_ = sorted(
                sn
                for sn, order in self.state._orders.items()
                if order["parentOrderMap"]["parentOrderStatus"] in SHIPPABLE
            )
        if not open_:
            return 0
        self.state.change_address(rng.choice(open_))
        return 1

    def _tie(self, rng: random.Random, now: datetime) -> int:
        """A bulk edit: ``TIE_SIZE`` orders updated in the same second."""
        sns = self.state.order_sns()
        touched = rng.sample(sns, min(TIE_SIZE, len(sns)))
        self.state.touch(touched)
        return len(touched)

    def _shippable(self, sn: str) -> bool:
        order = self.state.order(sn)
        return order is not None and order["parentOrderMap"]["parentOrderStatus"] in SHIPPABLE

    def seed(self, rng: random.Random) -> None:
        """See ``SourcePlan.seed``: a few days of orders before the start."""
        end = int(self.start.timestamp())
        start = end - 3 * 86_400
        n = max(10, self.profile.records_per_day * 3)
        self.state.seed_orders(n, start_ts=start, end_ts=end, seed=rng.randrange(1 << 30))

    def _advance(self, what: str) -> Any:
        def apply(rng: random.Random, now: datetime) -> int:
            changed = self.state.advance(**{what: 1})  # stamped by TEMU's (skewed) clock
            return sum(len(v) for v in changed.values())

        return apply

    def truth(self, now: datetime) -> Truth:
        """See ``SourcePlan.truth``: every order updated since the first pass's reach.

        Orders TEMU's list cannot show the worker yet (see the module docstring) are left
        out of this tick's judgement.
        """
        since = int((self.start - timedelta(days=FIRST_PASS_DAYS)).timestamp())
        worker_now = int(now.timestamp())
        hidden = self.state.unlisted()
        expected: dict[str, tuple[Any, ...]] = {}
        live = 0
        with self.state._lock:  # read in place, as the other plans do (no copy per order)
            for sn, order in sorted(self.state._orders.items()):
                head = order["parentOrderMap"]
                if int(head["updateTime"]) < since:
                    continue
                live += 1
                if sn in hidden or int(head["updateTime"]) > worker_now:
                    continue
                if head["parentOrderStatus"] in SHIPPABLE:
                    order = {**order, "shipping": self.state._shipping[sn]}
                expected[sn] = self.marker(order)
        return Truth(expected, {}, deleted=set(), live=live)

    def marker(self, data: dict[str, Any]) -> tuple[Any, ...]:
        """See ``SourcePlan.marker``: time, status, lines and (if shippable) the address."""
        head = data.get("parentOrderMap") or {}
        status = int(head.get("parentOrderStatus", -1))
        lines = tuple(
            (str(line.get("orderSn")), line.get("orderStatus"), line.get("quantity"))
            for line in data.get("orderList") or []
        )
        shipping = data.get("shipping") if status in SHIPPABLE else None
        address = json.dumps(shipping, sort_keys=True) if shipping is not None else None
        return (int(head.get("updateTime", -1)), status, lines, address)
