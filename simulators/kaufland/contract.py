"""The Kaufland simulator as the connector contract suite drives it (``simulators.contract``).

One seller account with distinctive client and secret keys and two storefronts; records are
order units created ten minutes ago, alternating between the storefronts, so each partition
has some and every first pass ends with a checkpoint. The rate-limit answer is HTTP 429 with
``Retry-After`` (the header is inferred; the client survives it missing too, see
``tests/test_kaufland_orders.py``).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from connectors.kaufland.settings import KauflandSettings
from simulators.contract import Served
from simulators.kaufland.app import make_sim_app

if TYPE_CHECKING:
    from settings import Settings

CLIENT_KEY = "contract-kl-client-Z4m8Rq2Wx6Tb"
SECRET_KEY = "contract-kl-secret-H3j7Np5Vc9Ls" + "0" * 34
STOREFRONTS = ["de", "cz"]


class KauflandContract(Served):
    """``ContractSimulator`` of ``kaufland-orders``."""

    secrets = (CLIENT_KEY, SECRET_KEY)
    auth_setting = "KAUFLAND_SECRET_KEY"
    rate_limits = ("429",)
    """Kaufland documents HTTP 429 past 111 requests per second per seller."""

    def __init__(self) -> None:
        self.state, app = make_sim_app(client_key=CLIENT_KEY, secret_key=SECRET_KEY)
        super().__init__(app)
        self._seeds = itertools.count(1)

    def reset(self) -> None:
        """No units, healthy knobs, the account's keys accepted again."""
        self.state.reset()

    def configure(self, settings: Settings) -> Settings:
        """The account's keys and storefronts at this simulator; topic as the tree has it."""
        section = settings.section(KauflandSettings).model_copy(
            update={
                "client_key": SecretStr(CLIENT_KEY),
                "secret_key": SecretStr(SECRET_KEY),
                "storefronts": STOREFRONTS,
                "api_url": f"{self.url}/v2",
            }
        )
        return settings.with_sections(section)

    def params(self) -> dict[str, Any]:
        """A storefront's first pass reads the last days: nothing to add."""
        return {}

    def seed(self, n: int) -> list[str]:
        """``n`` order units created ten minutes ago, alternating between the storefronts."""
        at = self.state.now() - 600
        keys: list[str] = []
        for i in range(n):
            storefront = STOREFRONTS[i % len(STOREFRONTS)]
            (uid,) = self.state.add_units(1, storefront=storefront, at=at, seed=next(self._seeds))
            keys.append(str(uid))
        return keys

    def change(self, key: str) -> None:
        """The unit is sent (``ts_updated_iso`` becomes now)."""
        self.state.change([int(key)], status="sent")

    def add_malformed(self) -> tuple[str, str]:
        """A unit listed without ``id_order`` and with an unreadable ``ts_created_iso``."""
        uid = self.state.add_malformed(STOREFRONTS[0], at=self.state.now() - 300)
        return str(uid), "ts_created_iso"

    def throttle(self, k: int, answer: str) -> None:
        """HTTP 429 with ``Retry-After: 1`` for the next ``k`` requests."""
        self.state.set_knobs(fail_next=[429] * k, retry_after=1)

    def throttled(self) -> int:
        """429 answers served (injected or from the rate limit)."""
        return self.state.stats()["rate_limited"]

    def reject_credentials(self) -> None:
        """The seller generated new API keys: the configured pair is refused (401)."""
        self.state.rotate_keys("rotated-kl-client-" + "9" * 14, "rotated-kl-secret-" + "9" * 46)

    def missing_key(self) -> str:
        """An order unit id below every one the simulator hands out."""
        return "1"


def contract_simulator(source: str) -> KauflandContract:
    """The contract simulator of ``kaufland-orders``."""
    return KauflandContract()
