"""Wire model of an Advoware appointment (``Termin``) and of an employee.

Keys are matched case-insensitively and normalised to camelCase before validation
(``connectors.advoware.values``).

Times are local wall-clock times of the Kanzlei; Advoware sends no zone. The start is the
date of ``datum`` plus ``uhrzeitVon`` (falling back to the time inside ``datum``, then 09:00,
or 00:00 for an all-day absence), the end is the date of ``datumBis`` plus ``uhrzeitBis``.
For a series (``dauertermin=1``) ``datumBis`` is the series end, so the end is the first
occurrence's (start date + ``uhrzeitBis``) and ``datumBis`` becomes ``until``. A missing
``uhrzeitBis`` gives the start time (23:59 for an all-day absence, which Advoware stores as
"end minus one minute").
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator

from connectors.advoware.values import (
    flag,
    normalise_keys,
    parse_employee,
    parse_time,
    raw_owner,
    raw_private,
    split_datetime,
    start_day,
    whole,
    without_content,
)

TIMEZONE = "Europe/Berlin"
"""Zone of Advoware's wall-clock times (published beside them; Advoware itself sends none)."""
DEFAULT_START = time(9, 0)
"""Start time when neither ``uhrzeitVon`` nor ``datum`` carries one (bitbylaw's fallback)."""
ALL_DAY_END = time(23, 59)
"""End time of an all-day absence without ``uhrzeitBis``."""


class Termin(BaseModel):
    """An appointment as ``GET api/v1/advonet/Termine`` returns it, keys normalised."""

    model_config = ConfigDict(extra="allow")

    frNr: int
    """Record id, unique per database; negative = a system entry clients skip."""
    datum: str
    """Start date (ISO datetime); its date part, plus ``uhrzeitVon``, is the start."""
    uhrzeitVon: str | None = None
    """Start time ``HH:MM:SS``."""
    datumBis: str | None = None
    """End date (ISO datetime, date part used); for a series the series end."""
    uhrzeitBis: str | None = None
    """End time ``HH:MM:SS``."""
    text: str | None = None
    """Subject."""
    notiz: str | None = None
    """Notes."""
    ort: str | None = None
    """Location."""
    anwalt: str | None = None
    """Owner Kürzel (``ALLE``/``Allgemein``/empty = everyone)."""
    privat: bool = False
    """Private appointment: its content is never published."""
    abwesenheit: bool = False
    """All-day absence."""
    dauertermin: bool = False
    """Part of a recurring series."""
    turnus: int = 0
    """Series interval (every n-th period)."""
    turnusArt: int = 0
    """Series period: 1 daily, 2 weekly, 3 monthly, 4 yearly."""
    nr: int | None = None
    """Linked case (Akte) number; 0 = none."""
    azRubrum: str | None = None
    """Case name text (Rubrum)."""
    zuletztGeaendertAm: str | None = None
    """Last change (UTC ISO, as sent); the upstream's change marker."""

    _start: datetime = PrivateAttr()
    _end: datetime = PrivateAttr()
    _until: date | None = PrivateAttr(default=None)

    @field_validator("frNr", mode="before")
    @classmethod
    def _fr_nr(cls, value: Any) -> int:
        number = whole(value, nullable=True)
        if number is None:
            raise ValueError("frNr is missing")
        return number

    @field_validator("turnus", "turnusArt", mode="before")
    @classmethod
    def _count(cls, value: Any) -> int:
        return int(whole(value, nullable=False) or 0)

    @field_validator("nr", mode="before")
    @classmethod
    def _case_nr(cls, value: Any) -> int | None:
        return whole(value, nullable=True) or None

    @field_validator("privat", "abwesenheit", "dauertermin", mode="before")
    @classmethod
    def _flags(cls, value: Any) -> bool:
        return flag(value)

    @field_validator(
        "uhrzeitVon", "datumBis", "uhrzeitBis", "text", "notiz", "ort", "azRubrum", mode="before"
    )
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("datum", "datumBis")
    @classmethod
    def _date_text(cls, value: str | None) -> str | None:
        if value is not None:
            split_datetime(value)
        return value

    @field_validator("uhrzeitVon", "uhrzeitBis")
    @classmethod
    def _time_text(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time(value)
        return value

    @field_validator("zuletztGeaendertAm", mode="before")
    @classmethod
    def _as_given(cls, value: Any) -> str | None:
        return None if value is None or value == "" else str(value)

    def model_post_init(self, context: Any, /) -> None:
        """Compute start, end and series end; a ``ValueError`` here makes it malformed."""
        day, stamp = split_datetime(self.datum)
        if self.uhrzeitVon is not None:
            begin = parse_time(self.uhrzeitVon)
        elif stamp is not None and stamp != time(0, 0):
            begin = stamp
        else:
            begin = time(0, 0) if self.abwesenheit else DEFAULT_START
        start = datetime.combine(day, begin.replace(tzinfo=None))
        last_day = split_datetime(self.datumBis)[0] if self.datumBis is not None else None
        if self.uhrzeitBis is not None:
            finish = parse_time(self.uhrzeitBis).replace(tzinfo=None)
        else:
            finish = ALL_DAY_END if self.abwesenheit else start.time()
        if self.dauertermin:
            end = datetime.combine(day, finish)
            if end < start:  # an occurrence running past midnight
                end += timedelta(days=1)
            self._until = last_day
        else:
            end = datetime.combine(last_day or day, finish)
            if end < start:
                raise ValueError(f"ends ({end.isoformat()}) before it starts ({start.isoformat()})")
        self._start, self._end = start, end

    @property
    def start(self) -> datetime:
        """Local start (naive: Advoware has no zones)."""
        return self._start

    @property
    def end(self) -> datetime:
        """Local end (of the first occurrence for a series)."""
        return self._end

    @property
    def until(self) -> date | None:
        """Last day of a series; ``None`` for single appointments."""
        return self._until

    @property
    def owner(self) -> str:
        """Owner Kürzel, upper-cased (partitions are upper-case Kürzel)."""
        return (self.anwalt or "").strip().upper()

    def published(self, *, full_content: bool) -> dict[str, Any]:
        """The appointment as synchub publishes it (see ``connectors.advoware.connector``).

        Args:
            full_content: publish subject, notes, location and case. Private appointments
                never carry them, whatever this says.
        """
        redacted = not full_content or self.privat
        data: dict[str, Any] = {
            "frNr": self.frNr,
            "kuerzel": self.owner,
            "start": self.start.isoformat(timespec="seconds"),
            "end": self.end.isoformat(timespec="seconds"),
            "timezone": TIMEZONE,
            "all_day": self.abwesenheit,
            "recurrence": {
                "dauertermin": self.dauertermin,
                "turnus": self.turnus,
                "turnusArt": self.turnusArt,
                "until": self.until.isoformat() if self.until else None,
            },
            "private": self.privat,
            "last_modified": self.zuletztGeaendertAm,
            "content_redacted": redacted,
        }
        if not redacted:
            data["subject"] = self.text
            data["notes"] = self.notiz
            data["location"] = self.ort
            data["case"] = {"nr": self.nr, "rubrum": self.azRubrum}
        return data


class MalformedTerminError(ValueError):
    """An appointment that cannot be read; carries its ``frNr`` (if readable) and the reason."""

    def __init__(self, key: str | None, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def termin_key(raw: Any) -> str | None:
    """The record key (``frNr`` as text) of a raw appointment, when it is readable."""
    if not isinstance(raw, dict):
        return None
    return _key_of(normalise_keys(raw))


def _key_of(data: dict[str, Any]) -> str | None:
    """``termin_key`` of an appointment whose keys are normalised already."""
    try:
        number = whole(data.get("frNr"), nullable=True)
    except ValueError:
        return None
    return None if number is None else str(number)


def parse_termin(raw: Any) -> Termin | None:
    """Validate one raw appointment.

    Returns:
        The appointment, or ``None`` for a system entry (negative ``frNr``) to be skipped.

    Raises:
        MalformedTerminError: naming each bad field and what is wrong (for the dead-letter
            topic).
    """
    if not isinstance(raw, dict):
        raise MalformedTerminError(None, f"appointment is a {type(raw).__name__}, not an object")
    data = normalise_keys(raw)
    key = _key_of(data)
    if key is not None and int(key) < 0:
        return None
    try:
        return Termin.model_validate(data)
    except ValidationError as exc:
        reason = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'appointment'}: {err['msg']}"
            for err in exc.errors()
        )
    except ValueError as exc:  # from the start/end computation after the fields passed
        reason = f"appointment: {exc}"
    raise MalformedTerminError(key, reason)


__all__ = [
    "TIMEZONE",
    "MalformedTerminError",
    "Termin",
    "normalise_keys",
    "parse_employee",
    "parse_termin",
    "raw_owner",
    "raw_private",
    "start_day",
    "termin_key",
    "without_content",
]
