"""The Kaufland simulator in the dev stack (``DEV``, a ``devstack.simulator.DevSimulator``).

Two storefronts (``de``, ``cz``) with order units created over the last day, the simulator's
own (non-secret) keys, and a few units moving on in their life cycle per churn. Its port and
size are a section of their own (``KauflandDevSettings``): dev-stack knobs stay out of the
production connector's ``KauflandSettings`` and out of the shared ``DevStackSettings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr
from starlette.applications import Starlette

from connectors.kaufland.settings import KauflandSettings
from models.settings_section import Section, env
from simulators.kaufland.app import create_app
from simulators.kaufland.state import SIM_CLIENT_KEY, SIM_SECRET_KEY, STATUSES, KauflandState

if TYPE_CHECKING:
    from devstack.simulator import DevContext
    from settings import Settings

DEV_STOREFRONTS = ["de", "cz"]
"""Storefronts of the simulated seller account: one partition each."""


class KauflandDevSettings(Section):
    """Port and size of the Kaufland simulator in ``make run``."""

    port: int = Field(default=8084, validation_alias=env("port", "SYNCHUB_KAUFLAND_SIM_PORT"))
    """Kaufland simulator port (0: a free one)."""
    units: int = Field(
        default=120, ge=0, validation_alias=env("units", "SYNCHUB_KAUFLAND_SIM_UNITS")
    )
    """Order units the simulator generates at start, split over the storefronts."""


@dataclass
class SeededKaufland:
    """The Kaufland simulator with the dev run's order units."""

    state: KauflandState

    @property
    def app(self) -> Starlette:
        """The simulator serving ``state``."""
        return create_app(self.state)

    def settings_update(self, settings: Settings, url: str) -> dict[str, Any]:
        """The simulator's keys and storefronts; topic and timing as configured."""
        kept = settings.section(KauflandSettings).model_dump(
            include={"orders_topic", "orders_interval_minutes", "orders_overlap_seconds"}
        )
        return {
            "kaufland": KauflandSettings(
                client_key=SecretStr(SIM_CLIENT_KEY),
                secret_key=SecretStr(SIM_SECRET_KEY),
                storefronts=DEV_STOREFRONTS,
                api_url=f"{url}/v2",
                **kept,
            )
        }

    def prepare(self, context: DevContext) -> None:
        """Nothing outside the simulator to seed."""

    def churn(self, context: DevContext) -> None:
        """Three units move to another status (``ts_updated_iso`` becomes now)."""
        ids = self.state.unit_ids()
        for uid in context.rng.sample(ids, k=min(3, len(ids))):
            self.state.change([uid], status=context.rng.choice(STATUSES))

    def summary(self) -> str:
        """How many order units it serves."""
        return f"({self.state.stats()['units']} order units)"


class KauflandDev:
    """Dev-stack hooks of the Kaufland simulator."""

    title = "Kaufland sim"
    port_setting = "SYNCHUB_KAUFLAND_SIM_PORT"
    first_runs: Mapping[str, dict[str, Any]] = {"kaufland-orders": {}}

    def port(self, settings: Settings) -> int:
        """``SYNCHUB_KAUFLAND_SIM_PORT``."""
        return settings.section(KauflandDevSettings).port

    def topics(self, settings: Settings) -> list[str]:
        """The order units topic."""
        return [settings.section(KauflandSettings).orders_topic]

    def seed(self, settings: Settings) -> SeededKaufland:
        """``SYNCHUB_KAUFLAND_SIM_UNITS`` units created over the last day, some moved on."""
        state = KauflandState(storefronts=tuple(DEV_STOREFRONTS))
        total = settings.section(KauflandDevSettings).units
        now = state.now()
        for i, storefront in enumerate(DEV_STOREFRONTS):
            n = total // len(DEV_STOREFRONTS) + (i < total % len(DEV_STOREFRONTS))
            for hour in range(12):
                chunk = n // 12 + (hour < n % 12)
                if chunk:
                    at = now - 86_400 + hour * 7_200
                    ids = state.add_units(chunk, storefront=storefront, at=at, seed=hour)
                    state.change(ids[: chunk // 2], status="need_to_be_sent", at=at + 600)
        return SeededKaufland(state)


DEV = KauflandDev()
"""What ``starter.py dev`` uses of this simulator."""
