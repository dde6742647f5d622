"""The TEMU simulator in the dev stack (``DEV``, a ``devstack.simulator.DevSimulator``).

One shop with three days of orders and some stock; the dev stack also plays the ERP, whose
desired stock levels it publishes on the stock topic, so inventory runs have work to do.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from starlette.applications import Starlette

from models.clock import unix
from settings import TemuSettings, TemuShop
from simulators.temu.app import create_app
from simulators.temu.state import SIM_ACCESS_TOKEN, SIM_APP_KEY, SIM_APP_SECRET, TemuState

if TYPE_CHECKING:
    from devstack.simulator import DevContext
    from settings import Settings


def local_temu_shop(url: str, shop_id: str = "dev-us") -> TemuShop:
    """A shop whose app and token are the TEMU simulator's own (non-secret) credentials."""
    return TemuShop(
        id=shop_id,
        region="us",
        app_key=SIM_APP_KEY,
        app_secret=SecretStr(SIM_APP_SECRET),
        access_token=SecretStr(SIM_ACCESS_TOKEN),
        api_url=f"{url}/openapi/router",
    )


def publish_desired_stock(brokers: str, topic: str, levels: dict[str, int]) -> None:
    """Play the ERP: desired stock per seller SKU on the compacted stock topic."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": brokers, "acks": "all"})
    for sku, stock in levels.items():
        producer.produce(topic, key=sku.encode(), value=json.dumps({"stock": stock}).encode())
    producer.flush(10)
    producer.close()


def erp_stock_levels(temu: TemuState, rng: random.Random, share: float) -> dict[str, int]:
    """Desired stock for a share of the simulator's SKUs, mostly different from TEMU's."""
    skus = temu.skus()
    picked = rng.sample(skus, k=max(1, int(len(skus) * share))) if skus else []
    return {str(s["outSkuSn"]): max(0, int(s["stock"]) + rng.randint(-5, 20)) for s in picked}


@dataclass
class SeededTemu:
    """The TEMU simulator with the dev run's orders and stock."""

    state: TemuState

    @property
    def app(self) -> Starlette:
        """The simulator serving ``state``."""
        return create_app(self.state)

    def settings_update(self, settings: Settings, url: str) -> dict[str, Any]:
        """One shop (``dev-us``) with the simulator's app key and token."""
        kept = settings.temu.model_dump(exclude={"shops"})
        return {"temu": TemuSettings(**{**kept, "shops": [local_temu_shop(url)]})}

    def prepare(self, context: DevContext) -> None:
        """The ERP's view of stock: a third of the SKUs differ from TEMU's."""
        levels = erp_stock_levels(self.state, random.Random(3), 1 / 3)
        publish_desired_stock(context.kafka_brokers, context.settings.temu.stock_topic, levels)

    def churn(self, context: DevContext) -> None:
        """New, changed and cancelled orders; new desired stock for a few SKUs."""
        self.state.advance(n_new=2, n_status_changes=2, n_cancellations=1)
        levels = erp_stock_levels(self.state, context.rng, 0.05)
        publish_desired_stock(context.kafka_brokers, context.settings.temu.stock_topic, levels)

    def summary(self) -> str:
        """Its shop and how many orders it holds."""
        return f"(shop dev-us, {len(self.state.order_sns())} orders)"


class TemuDev:
    """Dev-stack hooks of the TEMU simulator (for ``temu-orders`` and ``temu-inventory``)."""

    title = "TEMU simulator"
    port_setting = "SYNCHUB_TEMU_SIM_PORT"
    first_runs: Mapping[str, dict[str, Any]] = {
        "temu-orders": {},
        "temu-inventory": {"mode": "full"},
    }

    def port(self, settings: Settings) -> int:
        """``SYNCHUB_TEMU_SIM_PORT``."""
        return settings.dev.temu_port

    def topics(self, settings: Settings) -> list[str]:
        """Orders, shipments, the ERP's stock and the inventory changes."""
        t = settings.temu
        return [t.orders_topic, t.shipments_topic, t.stock_topic, t.inventory_topic]

    def seed(self, settings: Settings) -> SeededTemu:
        """``SYNCHUB_TEMU_SIM_ORDERS`` orders of the last three days, 40 goods of 3 SKUs."""
        state = TemuState()
        now = int(unix())
        state.seed_orders(
            settings.dev.temu_orders, start_ts=now - 3 * 86_400, end_ts=now - 60, seed=1
        )
        state.seed_stock(40, 3, seed=1)
        return SeededTemu(state)


DEV = TemuDev()
"""What ``starter.py dev`` uses of this simulator."""
