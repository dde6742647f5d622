"""Wire model of a When I Work shift and the date conversion slot_sync applied before publishing.

WIW sends dates as RFC 1123 with the account's offset (``"Mon, 08 May 2023 08:30:00 -0600"``).
slot_sync re-emitted every date as UTC ISO 8601 (``"2018-10-01T14:27:30Z"``) and consumers
of its topic expect that, so synchub publishes the same. Only ``id``, ``start_time`` and
``end_time`` are required: the rest of the shift is kept as received (extra fields included),
so a new upstream field reaches consumers without a code change.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
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


_MONTHS = {
    name: f"{number:02d}"
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_RFC1123 = re.compile(
    r"(?:[A-Za-z]{3}, )?(\d{1,2}) ([A-Z][a-z]{2}) ([1-9]\d{3}) (\d{2}:\d{2}:\d{2}) "
    r"([+-]\d{2})(\d{2})"
)
"""WIW's usual date shape, ``Mon, 08 May 2023 08:30:00 -0600``; others go to ``email.utils``."""


def _fast_parts(value: str) -> tuple[datetime, bool] | None:
    """``(the date with its offset, whether the offset is zero)`` of the usual RFC 1123 shape.

    Rewritten as ISO 8601 for ``datetime.fromisoformat`` (C, and it rejects impossible
    dates and times exactly like ``datetime()`` does for ``email.utils``). None otherwise.
    """
    m = _RFC1123.fullmatch(value)
    if m is None:
        return None
    day, month_name, year, hms, off_h, off_m = m.groups()
    month = _MONTHS.get(month_name)
    if month is None:
        return None
    try:
        parsed = datetime.fromisoformat(f"{year}-{month}-{day:0>2}T{hms}{off_h}:{off_m}")
    except ValueError:
        return None
    return parsed, off_h[1:] == "00" and off_m == "00"


def fast_rfc1123(value: str) -> datetime | None:
    """Parse the usual RFC 1123 shape without ``email.utils``; None for anything else.

    ``email.utils.parsedate_to_datetime`` costs about 10 µs per date and a shift has up to
    seven. This gives the same answer (same instant and offset) for every string it
    accepts (unit-tested); ``-0000`` (RFC 2822's "UTC, origin unknown") is read as UTC, as
    ``parse_wiw_datetime`` does after ``email.utils``. Anything unusual (named zones,
    two-digit years, missing seconds, impossible values) returns None so the caller takes
    the general path.
    """
    parts = _fast_parts(value)
    return None if parts is None else parts[0]


def _fast_utc(value: str) -> datetime | None:
    """The instant of ``value`` as a naive UTC datetime (usual shape only), else None."""
    parts = _fast_parts(value)
    if parts is None:
        return None
    parsed, zero = parts
    try:
        return parsed.replace(tzinfo=None) if zero else parsed.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        return None


@lru_cache(maxsize=16_384)
def _utc_hour(day: str, month_name: str, year: str, hour: str, off_h: str) -> str | None:
    """``"YYYY-MM-DDTHH"`` in UTC of a whole-hour-offset local hour; None if no such hour."""
    utc = _fast_utc(f"{day} {month_name} {year} {hour}:00:00 {off_h}00")
    return None if utc is None else utc.isoformat()[:13]


_HOURS: dict[str, str | None] = {}
"""UTC hour (``"YYYY-MM-DDTHH:"``, None: no such hour) by date text without ``:MM:SS``."""
_HOURS_KEPT = 65_536
"""Entries of ``_HOURS`` before it starts again (a day's page has a few thousand)."""
_UNSEEN = ""
_MINSEC = frozenset(f"{m:02d}:{s:02d}" for m in range(60) for s in range(60))


def fast_utc_iso(value: str) -> str | None:
    """``utc_iso(parse_wiw_datetime(value))`` for the usual shape; None otherwise.

    With a whole-hour offset (nearly every WIW account) minutes and seconds pass through
    unchanged, so the UTC hour of (day, hour, offset) is computed once and kept: a page of
    a day has a few thousand of them, against up to seven dates per shift. The full form
    (``Mon, 08 May 2023 08:30:00 -0600``, 31 characters) is sliced, not matched: the text
    without ``:MM:SS`` is the key of its hour, proven by ``_fast_utc_iso`` on first sight
    (a date conversion was a third of a new record's CPU, issue 11). Other forms and
    offsets take ``_fast_utc_iso``.
    """
    if len(value) == 31 and value[19] == ":" and value[29:] == "00":
        minsec = value[20:25]
        if minsec in _MINSEC:  # "MM:SS" of a real minute and second (a leap second: email.utils')
            key = value[:19] + value[25:]
            hour = _HOURS.get(key, _UNSEEN)
            if hour == _UNSEEN:
                whole = _fast_utc_iso(f"{value[:19]}:00:00{value[25:]}")
                hour = None if whole is None else whole[:14]
                if len(_HOURS) >= _HOURS_KEPT:
                    _HOURS.clear()
                _HOURS[key] = hour
            return None if hour is None else hour + minsec + "Z"
    return _fast_utc_iso(value)


def _fast_utc_iso(value: str) -> str | None:
    """``fast_utc_iso`` of any form ``_RFC1123`` accepts (the regular expression path)."""
    m = _RFC1123.fullmatch(value)
    if m is None:
        return None
    day, month_name, year, hms, off_h, off_m = m.groups()
    if off_m != "00":
        utc = _fast_utc(value)
        return None if utc is None else utc.isoformat() + "Z"
    if hms[3] > "5" or hms[6] > "5":
        return None  # no such minute or second (a leap second is email.utils' business)
    hour = _utc_hour(day, month_name, year, hms[:2], off_h)
    return None if hour is None else f"{hour}{hms[2:]}Z"


def parse_wiw_datetime(value: Any) -> datetime:
    """Read a WIW date: RFC 1123 with offset, or ISO 8601 with offset (some objects use it).

    Raises:
        ValueError: not a string date, or an ISO date without offset (its zone is unknowable).
    """
    if isinstance(value, str) and (fast := fast_rfc1123(value)) is not None:
        return fast
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
    """The record key of a raw shift, when its id is readable (a number, or a non-blank string).

    A string id is still the best identifier a dead letter can carry, so it is kept.
    """
    return id_key(raw.get("id") if isinstance(raw, dict) else None)


def id_key(value: Any) -> str | None:
    """The record key of a shift whose ``id`` is ``value`` (see ``shift_key``)."""
    if isinstance(value, str):
        return value.strip() or None
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


_OPTIONAL_DATES = tuple(name for name in DATE_FIELDS if name not in ("start_time", "end_time"))


def fast_published(raw: Any) -> tuple[dict[str, Any], datetime] | None:
    """``(parse_shift(raw).published(), its start)`` without pydantic, for ordinary shifts.

    Validating every shift through pydantic cost about a quarter of the worker's CPU per
    record. A shift whose ``id`` is an int and whose dates are all RFC 1123 strings in the
    usual shape (or null / blank where optional) is converted here; anything else returns
    None and the caller takes ``parse_shift``, which gives the same result or the precise
    error. Key order may differ from ``published()`` (the wire order is kept); content and
    therefore the canonical JSON and fingerprint are identical (unit-tested).
    """
    if type(raw) is not dict or type(raw.get("id")) is not int:
        return None
    begin, end = raw.get("start_time"), raw.get("end_time")
    if type(begin) is not str or type(end) is not str:
        return None
    begin, end = fast_utc_iso(begin), fast_utc_iso(end)
    if begin is None or end is None:
        return None
    data = dict(raw)
    data["start_time"], data["end_time"] = begin, end
    get = data.get
    for name in _OPTIONAL_DATES:
        value = get(name)
        if value is None:  # null, or absent (and left absent)
            continue
        if type(value) is not str:
            return None
        iso = fast_utc_iso(value)
        if iso is None:
            if value.strip():
                return None
            data[name] = None
            continue
        data[name] = iso
    return data, datetime.fromisoformat(begin)  # "...Z": UTC (Python 3.11 reads the Z)


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
