"""The When I Work simulator in the dev stack (``DEV``, a ``devstack.simulator.DevSimulator``).

Generated shifts over the sync window, a pre-issued token, and a few changed notes per churn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from starlette.applications import Starlette

from models.clock import today
from settings import WiwSettings
from simulators.wiw.app import create_app
from simulators.wiw.state import WiwState

if TYPE_CHECKING:
    from devstack.simulator import DevContext
    from settings import Settings

DEV_WIW_TOKEN = "synchub-dev-token"
"""Pre-issued token of the simulated WIW account (not a secret: the simulator is local)."""


def window_days(settings: Settings) -> list[date]:
    """The days of the WIW sync window in the configured timezone."""
    first = today(ZoneInfo(settings.sync.timezone)) - timedelta(days=settings.sync.days_prior)
    return [
        first + timedelta(days=i)
        for i in range(settings.sync.days_prior + settings.sync.days_ahead + 1)
    ]


@dataclass
class SeededWiw:
    """The WIW simulator with the dev run's shifts."""

    state: WiwState

    @property
    def app(self) -> Starlette:
        """The simulator serving ``state``."""
        return create_app(self.state)

    def settings_update(self, settings: Settings, url: str) -> dict[str, Any]:
        """Log in with the simulator's pre-issued token."""
        return {"wiw": WiwSettings(api_url=url, token=SecretStr(DEV_WIW_TOKEN))}

    def prepare(self, context: DevContext) -> None:
        """Nothing outside the simulator to seed."""

    def churn(self, context: DevContext) -> None:
        """New notes on three shifts."""
        shifts = self.state.all_shifts()
        for shift in context.rng.sample(shifts, k=min(3, len(shifts))):
            self.state.change(int(shift["id"]), notes=context.stamp)

    def summary(self) -> str:
        """How many shifts it serves."""
        return f"({len(self.state.all_shifts())} shifts)"


class WiwDev:
    """Dev-stack hooks of the WIW simulator."""

    title = "WIW simulator"
    port_setting = "SYNCHUB_WIW_SIM_PORT"
    first_runs: Mapping[str, dict[str, Any]] = {"wiw": {}}

    def port(self, settings: Settings) -> int:
        """``SYNCHUB_WIW_SIM_PORT``."""
        return settings.dev.wiw_port

    def topics(self, settings: Settings) -> list[str]:
        """The shifts topic."""
        return [settings.kafka.wiw_topic]

    def seed(self, settings: Settings) -> SeededWiw:
        """``SYNCHUB_WIW_SIM_SHIFTS`` shifts spread over the sync window."""
        state = WiwState(static_token=DEV_WIW_TOKEN, timezone=settings.sync.timezone)
        state.seed(settings.dev.wiw_shifts, days=window_days(settings), seed=1)
        return SeededWiw(state)


DEV = WiwDev()
"""What ``starter.py dev`` uses of this simulator."""
