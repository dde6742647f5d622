"""The When I Work simulator as the connector contract suite drives it (``simulators.contract``).

Records are shifts on the days of a two-day window (today and tomorrow, UTC); credentials are
a static ``W-Token``; the rate-limit answer is a 429 with ``Retry-After``.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from models import clock
from simulators.contract import Served
from simulators.wiw.app import make_sim_app

if TYPE_CHECKING:
    from settings import Settings

TOKEN = "contract-wiw-token-Q7v2Lk9X"
"""A distinctive W-Token: it must show up in no error text."""


class WiwContract(Served):
    """``ContractSimulator`` of the ``wiw`` source."""

    secrets = (TOKEN,)
    auth_setting = "WIW_KEY"
    rate_limits = ("429", "403")
    """The legacy docs' 429 and the current spec's "403-level" answer (reference §2.5)."""

    def __init__(self) -> None:
        self.state, app = make_sim_app(timezone="UTC", static_token=TOKEN)
        super().__init__(app)

    def reset(self) -> None:
        """Empty account, healthy knobs, the token accepted again."""
        self.state.reset()
        self.state.static_token = TOKEN

    def configure(self, settings: Settings) -> Settings:
        """WIW at this simulator with the token; days are UTC days."""
        wiw = settings.wiw.model_copy(update={"api_url": self.url, "token": SecretStr(TOKEN)})
        sync = settings.sync.model_copy(update={"timezone": "UTC"})
        return settings.model_copy(update={"wiw": wiw, "sync": sync})

    def params(self) -> dict[str, Any]:
        """Today and tomorrow."""
        return {"days_prior": 0, "days_ahead": 1}

    def seed(self, n: int) -> list[str]:
        """``n`` shifts from 09:00 to 17:00 UTC, alternating between today and tomorrow."""
        today = clock.now().astimezone(UTC).date()
        keys = []
        for i in range(n):
            start = datetime.combine(today + timedelta(days=i % 2), time(9), UTC)
            start += timedelta(minutes=i)
            keys.append(str(self.state.add(start, start + timedelta(hours=8))))
        return keys

    def change(self, key: str) -> None:
        """New notes (and ``updated_at``)."""
        self.state.change(int(key), notes=f"changed {clock.now().isoformat()}")

    def add_malformed(self) -> tuple[str, str]:
        """A shift served with an unreadable ``start_time``."""
        (key,) = self.seed(1)
        self.state.set_knobs(malformed_ids={int(key)}, malformed_style="bad_date")
        return key, "start_time"

    def throttle(self, k: int, answer: str) -> None:
        """429 (or 403) with ``Retry-After: 1`` for the next ``k`` requests."""
        self.state.set_knobs(throttle_next=k, throttle_retry_after=1, rate_limit_status=answer)

    def throttled(self) -> int:
        """Rate-limit answers served (429 and 403; nothing else answers 403 here)."""
        return self.state.statuses[429] + self.state.statuses[403]

    def reject_credentials(self) -> None:
        """Every token is refused (401)."""
        self.state.set_knobs(reject_tokens=True)

    def missing_key(self) -> str:
        """An id above every shift's."""
        return str(max((s["id"] for s in self.state.all_shifts()), default=0) + 1_000_000)


def contract_simulator(source: str) -> WiwContract:
    """The contract simulator of ``wiw``."""
    return WiwContract()
