"""The Advoware calls synchub makes: employees, appointments in a window, one appointment.

Hosts, tokens and error classification are ``connectors.advoware.transport``'s; this
module holds the paths and how each answer is read.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from connectors.advoware.auth import AdvowareAuth, request_timestamp, sign
from connectors.advoware.transport import AdvowareTransport
from connectors.shapes import shape_of
from models.errors import PermanentError, RetryableError

EMPLOYEES_PATH = "api/v1/advonet/Employees"
"""Path of the employee list on the API host [I: reference §1.4]."""
TERMINE_PATH = "api/v1/advonet/Termine"
"""Path of the appointments on the API host [I: reference §1.5]."""


class AdvowareClient(AdvowareTransport):
    """The calls synchub makes to Advoware (arguments: see ``AdvowareTransport``)."""

    async def employees(self) -> list[dict[str, Any]]:
        """``GET api/v1/advonet/Employees``: every employee object, as received."""
        body = await self.get(EMPLOYEES_PATH, None, "GET Employees")
        items = list_of(body)
        if items is None:  # a changed API, not a hiccup: retrying the same request cannot help
            raise PermanentError(
                f"Advoware answered GET Employees with {shape_of(body)}, not a list of employees"
            )
        return [e for e in items if isinstance(e, dict)]

    async def appointments(self, kuerzel: str, start: date, end: date) -> list[dict[str, Any]]:
        """``GET api/v1/advonet/Termine?kuerzel=&from=&to=``: appointments overlapping the days.

        Returns the raw objects (any casing); entries that are not objects are kept so the
        connector can dead-letter them.
        """
        params = {"kuerzel": kuerzel, "from": start.isoformat(), "to": end.isoformat()}
        what = f"GET Termine of {kuerzel} {start.isoformat()}..{end.isoformat()}"
        body = await self.get(TERMINE_PATH, params, what, kuerzel=kuerzel)
        items = list_of(body)
        if items is None:
            raise RetryableError(f"Advoware answered {what} without a list of appointments")
        return items

    async def appointment(self, frnr: int) -> dict[str, Any] | None:
        """``GET api/v1/advonet/Termine?frnr=``: the appointment, or ``None`` on 404."""
        what = f"GET Termine frnr={int(frnr)}"
        body = await self.get(TERMINE_PATH, {"frnr": str(int(frnr))}, what, missing_ok=True)
        if body is None:
            return None
        if isinstance(body, list) and len(body) == 1:  # tolerate a one-element list
            body = body[0]
        if not isinstance(body, dict):
            raise RetryableError(f"Advoware answered {what} without an appointment object")
        return body


def list_of(body: Any) -> list[Any] | None:
    """A bare JSON array, or the one list inside a wrapper object (``items``/``value``)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for name, value in ((str(k).lower(), v) for k, v in body.items()):
            if name in ("items", "value", "data", "result") and isinstance(value, list):
                return value
    return None


__all__ = ["AdvowareAuth", "AdvowareClient", "request_timestamp", "sign"]
