"""Advoware's wire values: key spellings, times, flags, numbers; raw records read leniently.

Advoware's older endpoint answers in PascalCase (``FrNr``, ``AzRubrum``) and ASP.NET Core
defaults to camelCase (``frNr``, ``azRubrum``); which one the public endpoint uses is not
verified, so keys are matched case-insensitively and normalised to the camelCase names of
``reference/upstream-apis.md`` §1.5 before validation. Unknown keys keep their name with a
lower-case first letter.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any

TERMIN_FIELDS = (
    "frNr",
    "text",
    "notiz",
    "ort",
    "datum",
    "uhrzeitVon",
    "datumBis",
    "uhrzeitBis",
    "uhrzeitBisTicks",
    "abwesenheit",
    "anwalt",
    "sb",
    "privat",
    "dauertermin",
    "turnus",
    "turnusArt",
    "erinnerung",
    "erinnerungsDatum",
    "nr",
    "azRubrum",
    "optionalAttendees",
    "zuletztGeaendertAm",
)
"""Known Termin fields in their canonical (camelCase) spelling."""
CONTENT_FIELDS = ("text", "notiz", "ort", "azRubrum", "optionalAttendees")
"""Fields that carry what an appointment is about; withheld when content is not published."""
EMPLOYEE_FIELDS = ("kuerzel", "name", "vorname", "anwalt", "aktiv")
"""Known employee fields in their canonical spelling."""

_CANONICAL = {name.lower(): name for name in (*TERMIN_FIELDS, *EMPLOYEE_FIELDS)}
_CONTENT = {name.lower() for name in CONTENT_FIELDS}
_FRACTION = re.compile(r"\.(\d+)")
_ZONE = re.compile(r"(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


_SEEN_KEYS: dict[str, str] = {}
"""Raw key -> canonical key, for the few spellings an API sends (bounded by ``_MAX_SEEN``):
a first sync normalises every key of every appointment, about half its parse time."""
_MAX_SEEN = 1024


def _canonical_key(key: Any) -> str:
    name = str(key)
    found = _CANONICAL.get(name.lower(), name[:1].lower() + name[1:])
    if len(_SEEN_KEYS) < _MAX_SEEN:
        _SEEN_KEYS[name] = found
    return found


def normalise_keys(raw: dict[str, Any]) -> dict[str, Any]:
    """Keys in canonical camelCase: known names case-insensitively, others lower-first."""
    seen = _SEEN_KEYS
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = seen.get(key)
        out[_canonical_key(key) if name is None else name] = value
    return out


def without_content(raw: Any) -> Any:
    """A raw appointment without subject, notes, location and case (any casing).

    Used for dead-lettered records whose content may not be published.
    """
    if not isinstance(raw, dict):
        return None
    return {k: v for k, v in raw.items() if str(k).lower() not in _CONTENT}


def parse_time(value: Any) -> time:
    """``"HH:MM:SS"``, ``"HH:MM"`` or with fractions/zone suffix (ignored).

    Raises:
        ValueError: not a time of day.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a time string, got {value!r}"[:80])
    if len(value) == 8 and value[2] == ":" and value[5] == ":":  # "HH:MM:SS", most of them
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass  # the full parse below says what is wrong
    text = _ZONE.sub("", _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.strip()))
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time of day: {value[:40]!r}") from None


def split_datetime(value: Any) -> tuple[date, time | None]:
    """The date and (if present) the time of an ISO date or datetime string.

    Raises:
        ValueError: not an ISO date.
    """
    if isinstance(value, datetime):
        return value.date(), value.time()
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a date string, got {value!r}"[:80])
    text = value.strip()
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"not a date: {text[:40]!r}") from None
    rest = text[10:]
    if not rest:
        return day, None
    if rest[0] not in "Tt ":
        raise ValueError(f"not a date: {text[:40]!r}")
    return day, parse_time(rest[1:])


def flag(value: Any) -> bool:
    """Advoware's 0/1 flags (also ``true``/``false`` and strings of either); null = 0."""
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    raise ValueError(f"expected 0 or 1, got {value!r}"[:80])


def whole(value: Any, *, nullable: bool) -> int | None:
    """A whole number sent as a number or a string; null is ``None`` (or 0 if not nullable).

    Raises:
        ValueError: not a whole number.
    """
    if value is None or value == "":
        return None if nullable else 0
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value.strip())
    raise ValueError(f"expected a whole number, got {value!r}"[:80])


def start_day(raw: Any) -> date | None:
    """The start date of a raw (possibly malformed) appointment, when ``datum`` is readable."""
    if not isinstance(raw, dict):
        return None
    try:
        return split_datetime(normalise_keys(raw).get("datum"))[0]
    except ValueError:
        return None


def raw_owner(raw: Any) -> str | None:
    """The owner Kürzel of a raw appointment, upper-cased, when readable."""
    if not isinstance(raw, dict):
        return None
    owner = normalise_keys(raw).get("anwalt")
    return owner.strip().upper() if isinstance(owner, str) else None


def raw_private(raw: Any) -> bool:
    """Whether a raw appointment is private; unreadable counts as private (err on secrecy)."""
    if not isinstance(raw, dict):
        return True
    try:
        return flag(normalise_keys(raw).get("privat"))
    except ValueError:
        return True


def parse_employee(raw: Any) -> tuple[str, bool] | None:
    """``(Kürzel upper-cased, active)`` of an employee object; ``None`` without a Kürzel.

    A missing ``aktiv`` counts as active (only ``kuerzel`` is verified on the wire).
    """
    if not isinstance(raw, dict):
        return None
    data = normalise_keys(raw)
    code = data.get("kuerzel")
    if not isinstance(code, str) or not code.strip():
        return None
    try:
        active = flag(data.get("aktiv")) if data.get("aktiv") is not None else True
    except ValueError:
        active = True
    return code.strip().upper(), active
