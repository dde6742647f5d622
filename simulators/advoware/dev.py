"""The Advoware simulator in the dev stack (``DEV``, a ``devstack.simulator.DevSimulator``).

Generated employees and appointments around today, the simulator's own login, and a few
changed notes per churn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from starlette.applications import Starlette

from models.clock import today
from settings import AdvowareSettings
from simulators.advoware.app import create_app
from simulators.advoware.state import AdvowareState

if TYPE_CHECKING:
    from devstack.simulator import DevContext
    from settings import Settings

KEPT_SETTINGS = {
    "days_back",
    "days_ahead",
    "page_days",
    "full_content",
    "debug_kuerzel",
    "interval_minutes",
}
"""Advoware settings the dev run keeps from the user's; the rest point at the simulator."""


def local_advoware_settings(state: AdvowareState, url: str, **overrides: Any) -> AdvowareSettings:
    """Advoware settings that log in to a simulator with its own (non-secret) credentials."""
    user, password = next(iter(state.users.items()))
    values: dict[str, Any] = {
        "app_id": state.app_id,
        "api_key": SecretStr(state.api_key),
        "kanzlei": state.kanzlei,
        "database": state.database,
        "user": user,
        "password": SecretStr(password),
        "api_url": f"{url}/",
        "security_url": f"{url}/",
    }
    values.update(overrides)
    return AdvowareSettings(**values)


@dataclass
class SeededAdvoware:
    """The Advoware simulator with the dev run's calendars."""

    state: AdvowareState

    @property
    def app(self) -> Starlette:
        """The simulator serving ``state``."""
        return create_app(self.state)

    def settings_update(self, settings: Settings, url: str) -> dict[str, Any]:
        """Log in with the simulator's credentials; keep the user's window and paging."""
        kept = settings.advoware.model_dump(include=KEPT_SETTINGS)
        return {"advoware": local_advoware_settings(self.state, url, **kept)}

    def prepare(self, context: DevContext) -> None:
        """Nothing outside the simulator to seed."""

    def churn(self, context: DevContext) -> None:
        """New notes on two appointments (not the negative-``frNr`` system entries)."""
        termine = [t for t in self.state.appointments() if int(t.get("frNr", 0)) > 0]
        for termin in context.rng.sample(termine, k=min(2, len(termine))):
            self.state.change(int(termin["frNr"]), notiz=context.stamp)

    def summary(self) -> str:
        """How many employees it serves."""
        return f"({len(self.state.employees())} employees)"


class AdvowareDev:
    """Dev-stack hooks of the Advoware simulator."""

    title = "Advoware sim"
    port_setting = "SYNCHUB_ADVOWARE_SIM_PORT"
    first_runs: Mapping[str, dict[str, Any]] = {"advoware": {}}

    def port(self, settings: Settings) -> int:
        """``SYNCHUB_ADVOWARE_SIM_PORT``."""
        return settings.dev.advoware_port

    def topics(self, settings: Settings) -> list[str]:
        """The appointments topic."""
        return [settings.kafka.advoware_topic]

    def seed(self, settings: Settings) -> SeededAdvoware:
        """Employees and appointments from ``days_back`` before to (at most) 90 days after today."""
        state = AdvowareState()
        now = today(ZoneInfo("Europe/Berlin"))
        state.seed(
            settings.dev.advoware_employees,
            settings.dev.advoware_appointments,
            now - timedelta(days=settings.advoware.days_back),
            now + timedelta(days=min(settings.advoware.days_ahead, 90)),
            seed=1,
        )
        return SeededAdvoware(state)


DEV = AdvowareDev()
"""What ``starter.py dev`` uses of this simulator."""
