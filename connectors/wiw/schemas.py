"""Wire model of a When I Work shift and the date conversion slot_sync applied before publishing.

WIW sends dates as RFC 1123 with the account's offset (``"Mon, 08 May 2023 08:30:00 -0600"``).
slot_sync re-emitted every date as UTC ISO 8601 (``"2018-10-01T14:27:30Z"``) and consumers
of its topic expect that, so synchub publishes the same. Only ``id``, ``start_time`` and
``end_time`` are required: the rest of the shift is kept as received (extra fields included),
so a new upstream field reaches consumers without a code change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictInt, ValidationError

DATE_FIELDS = (
    "start_time",
    "end_time",
    "published_date",
    "created_at",
    "updated_at",
    "notified_at",
    "acknowledged_at",
)
"""Shift fields that hold dates; each is published as UTC ISO 8601 (nulls stay null)."""


def parse_wiw_datetime(value: Any) -> datetime:
    """Read a WIW date: RFC 1123 with offset, or ISO 8601 with offset (some objects use it).

    Raises:
        ValueError: not a string date, or an ISO date without offset (its zone is unknowable).
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"not an RFC 1123 or ISO 8601 date: {value[:60]!r}") from None
            if parsed.tzinfo is None:
                raise ValueError(f"ISO 8601 date without offset: {value[:60]!r}") from None
    else:
        raise ValueError(f"expected a date string, got {type(value).__name__}")
    # RFC 2822 "-0000" parses naive and means UTC
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def utc_iso(value: datetime) -> str:
    """UTC ISO 8601 with a ``Z``, whole seconds: ``2018-10-01T14:27:30Z`` (slot_sync's shape)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


WiwDateTime = Annotated[datetime, BeforeValidator(parse_wiw_datetime)]
"""A required WIW date."""
OptionalWiwDateTime = Annotated[WiwDateTime | None, BeforeValidator(_blank_to_none)]
"""A nullable WIW date; an empty string counts as null."""


class WiwShift(BaseModel):
    """A shift as ``GET /2/shifts`` and ``GET /2/shifts/{id}`` return it."""

    model_config = ConfigDict(extra="allow")

    id: StrictInt
    """Shift id (int64 in practice; ids sit near the int32 limit)."""
    start_time: WiwDateTime
    """Start; decides which day partition the shift belongs to."""
    end_time: WiwDateTime
    """End; may fall on the next day."""
    published_date: OptionalWiwDateTime = None
    """When the schedule was published."""
    created_at: OptionalWiwDateTime = None
    """Creation time."""
    updated_at: OptionalWiwDateTime = None
    """Last change; WIW's only change marker (synchub also fingerprints the content)."""
    notified_at: OptionalWiwDateTime = None
    """When the worker was notified; null until then."""
    acknowledged_at: OptionalWiwDateTime = None
    """When the worker acknowledged; null until then."""

    def published(self) -> dict[str, Any]:
        """The shift as synchub publishes it: every field received, dates as UTC ISO 8601.

        Fields absent on the wire stay absent (so they cannot change the fingerprint).
        Unlike slot_sync, ``linked_users`` keeps its value instead of being forced to null.
        """
        data = self.model_dump(exclude_unset=True)
        for name in DATE_FIELDS:
            value = data.get(name)
            if isinstance(value, datetime):
                data[name] = utc_iso(value)
        return data


class MalformedShiftError(ValueError):
    """A shift that cannot be read; carries its id (if readable) and the reason."""

    def __init__(self, key: str | None, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def shift_key(raw: Any) -> str | None:
    """The record key of a raw shift, when its id is readable."""
    value = raw.get("id") if isinstance(raw, dict) else None
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def parse_shift(raw: Any) -> WiwShift:
    """Validate one raw shift.

    Raises:
        MalformedShiftError: naming each bad field and what is wrong (for the dead-letter topic).
    """
    if not isinstance(raw, dict):
        raise MalformedShiftError(None, f"shift is a {type(raw).__name__}, not an object")
    try:
        return WiwShift.model_validate(raw)
    except ValidationError as exc:
        reason = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'shift'}: {err['msg']}"
            for err in exc.errors()
        )
        raise MalformedShiftError(shift_key(raw), reason) from None
