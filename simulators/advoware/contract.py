"""The Advoware simulator as the connector contract suite drives it (``simulators.contract``).

Records are appointments of one employee in a window of today - 1 .. today + 6 days (a day
of margin: the connector's "today" is Advoware's local day), read in pages of two days, so a
partition has several pages. Credentials are a distinctive API key and employee password;
the rate-limit answer is a 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from models import clock
from simulators.advoware.app import make_sim_app
from simulators.contract import Served

if TYPE_CHECKING:
    from settings import Settings

API_KEY = base64.b64encode(b"contract-advoware-key-R4m8Wq").decode()
PASSWORD = "contract-advoware-pass-J3n6Tz"
USER = "CTR"
EMPLOYEE = "SB"
WINDOW_DAYS = 6
PAGE_DAYS = 2


class AdvowareContract(Served):
    """``ContractSimulator`` of the ``advoware`` source."""

    secrets = (API_KEY, PASSWORD)
    auth_setting = "ADVOWARE_PASSWORD"
    rate_limits = ("429",)
    """Nothing is documented (reference §1): the gateway's usual 429."""

    def __init__(self) -> None:
        self.state, app = make_sim_app(api_key=API_KEY, users={USER: PASSWORD})
        super().__init__(app)
        self.reset()

    def reset(self) -> None:
        """One active employee without appointments, healthy knobs, the login accepted."""
        self.state.reset()
        self.state.users = {USER: PASSWORD}
        self.state.add_employee(EMPLOYEE)

    def configure(self, settings: Settings) -> Settings:
        """Advoware at this simulator with the credentials, an 8-day window in 2-day pages."""
        advoware = settings.advoware.model_copy(
            update={
                "app_id": self.state.app_id,
                "api_key": SecretStr(API_KEY),
                "kanzlei": self.state.kanzlei,
                "database": self.state.database,
                "user": USER,
                "password": SecretStr(PASSWORD),
                "api_url": f"{self.url}/",
                "security_url": f"{self.url}/",
                "days_back": 1,
                "days_ahead": WINDOW_DAYS,
                "page_days": PAGE_DAYS,
            }
        )
        return settings.model_copy(update={"advoware": advoware})

    def params(self) -> dict[str, Any]:
        """The configured window."""
        return {}

    def seed(self, n: int) -> list[str]:
        """``n`` one-hour appointments of the employee spread over the window's days."""
        today = clock.now().date()
        keys = []
        for i in range(n):
            start = datetime.combine(today + timedelta(days=i % WINDOW_DAYS), time(9))
            start += timedelta(minutes=10 * i)
            frnr = self.state.add(EMPLOYEE, start, start + timedelta(hours=1), text=f"Termin {i}")
            keys.append(str(frnr))
        return keys

    def change(self, key: str) -> None:
        """A new subject (and ``zuletztGeaendertAm``)."""
        self.state.change(int(key), text=f"Verlegt {clock.now().isoformat()}")

    def add_malformed(self) -> tuple[str, str]:
        """An appointment served with an unreadable ``datum``."""
        (key,) = self.seed(1)
        self.state.set_knobs(malformed_frnr={int(key)}, malformed_style="bad_date")
        return key, "datum"

    def throttle(self, k: int, answer: str) -> None:
        """429 with ``Retry-After: 1`` for the next ``k`` API requests."""
        self.state.set_knobs(throttle_next=k, throttle_retry_after=1)

    def throttled(self) -> int:
        """429 answers served."""
        return self.state.statuses[429]

    def reject_credentials(self) -> None:
        """The password changed in Advoware: token requests are refused, tokens revoked."""
        self.state.users = {USER: PASSWORD + "-changed"}
        self.state.revoke_tokens()

    def missing_key(self) -> str:
        """A ``frNr`` above every appointment's."""
        return str(max((t["frNr"] for t in self.state.appointments()), default=0) + 1_000_000)


def contract_simulator(source: str) -> AdvowareContract:
    """The contract simulator of ``advoware``."""
    return AdvowareContract()
