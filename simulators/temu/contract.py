"""The TEMU simulator as the connector contract suite drives it (``simulators.contract``).

Serves both TEMU sources (``temu-orders``, ``temu-inventory``): one shop whose app secret
and access token are distinctive; records are parent orders updated in the last hour; the
rate-limit answer is TEMU's ``4000004`` (HTTP 200, ``success: false``).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from models import clock
from settings import TemuShop
from simulators.contract import Served
from simulators.temu.app import make_sim_app
from simulators.temu.state import SIM_APP_KEY, SIM_MALL_ID

if TYPE_CHECKING:
    from settings import Settings

APP_SECRET = "contract-temu-secret-V5c1Hs"
ACCESS_TOKEN = "contract-temu-token-N8d4Gy"
SHOP = "contract-shop"


class TemuContract(Served):
    """``ContractSimulator`` of ``temu-orders`` and ``temu-inventory``."""

    secrets = (APP_SECRET, ACCESS_TOKEN)
    auth_setting = "TEMU_SHOPS"
    rate_limits = ("4000004", "http-429")
    """The documented envelope code, and an HTTP 429 from the gateway in front ([I], §3.10)."""

    def __init__(self) -> None:
        self.state, app = make_sim_app(app_secret=APP_SECRET, access_token=ACCESS_TOKEN)
        super().__init__(app)
        self._seeds = itertools.count(1)

    def reset(self) -> None:
        """No orders or stock, healthy knobs, the shop's token accepted."""
        self.state.reset()
        self.state.add_token(ACCESS_TOKEN, SIM_APP_KEY, mall_id=SIM_MALL_ID)

    def configure(self, settings: Settings) -> Settings:
        """One shop at this simulator with the secret and token."""
        shop = TemuShop(
            id=SHOP,
            region="us",
            app_key=SIM_APP_KEY,
            app_secret=SecretStr(APP_SECRET),
            access_token=SecretStr(ACCESS_TOKEN),
            api_url=f"{self.url}/openapi/router",
        )
        temu = settings.temu.model_copy(update={"shops": [shop]})
        return settings.model_copy(update={"temu": temu})

    def params(self) -> dict[str, Any]:
        """A shop's first pass reads the last days: nothing to add."""
        return {}

    def seed(self, n: int) -> list[str]:
        """``n`` parent orders created and updated in the last hour."""
        now = int(clock.unix())
        return self.state.seed_orders(
            n, start_ts=now - 3600, end_ts=now - 60, seed=next(self._seeds), replace=False
        )

    def change(self, key: str) -> None:
        """A bulk edit: ``updateTime`` moves to now."""
        self.state.touch([key])

    def add_malformed(self) -> tuple[str, str]:
        """An order listed with an unreadable ``parentOrderStatus``."""
        (key,) = self.seed(1)
        self.state.set_knobs(malformed_orders={key})
        return key, "parentOrderStatus"

    def throttle(self, k: int, answer: str) -> None:
        """``4000004`` or HTTP 429 for the next ``k`` requests.

        The client waits one second after each ``4000004``; the 429 says ``Retry-After: 1``.
        """
        if answer == "http-429":
            self.state.set_knobs(http_429_next=k)
        else:
            self.state.set_knobs(rate_limit_next=k)

    def throttled(self) -> int:
        """``4000004`` and HTTP 429 answers served."""
        return self.state.rate_limited + self.state.http_429_served

    def reject_credentials(self) -> None:
        """The shop's access token was revoked in the seller center."""
        self.state.tokens.pop(ACCESS_TOKEN, None)

    def missing_key(self) -> str:
        """A parent order number no order has."""
        return "PO-000-00000000000000000"


def contract_simulator(source: str) -> TemuContract:
    """The contract simulator of ``temu-orders`` and ``temu-inventory``."""
    return TemuContract()
