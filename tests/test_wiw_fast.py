"""The WIW fast paths give exactly what the general paths give (no services needed).

``fast_rfc1123`` must agree with ``email.utils`` on every string it accepts and leave the
odd forms to it; ``fast_published`` must agree with ``parse_shift(...).published()`` on
every shift it accepts and leave malformed ones to pydantic's precise errors; the page
digest of the raw body must change whenever the page's content does.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import httpcore
import orjson
import pytest

from activities.messages import canonical
from connectors.http import BODY_READ_BYTES
from connectors.wiw.client import WiwClient
from connectors.wiw.connector import OUTPUT_VERSION, WiwConnector, body_digest
from connectors.wiw.schemas import (
    DATE_FIELDS,
    MalformedShiftError,
    fast_published,
    fast_rfc1123,
    fast_utc_iso,
    parse_shift,
    parse_wiw_datetime,
    utc_iso,
)
from connectors.wiw.settings import WiwSettings
from models.errors import RetryableError
from simulators.wiw import WiwState


def _slow(value: str) -> datetime:
    parsed = parsedate_to_datetime(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def test_fast_rfc1123_agrees_with_email_utils() -> None:
    rng = random.Random(11)
    offsets = [0, 60, -60, 330, -570, 345, 14 * 60, -12 * 60]
    checked = 0
    for _ in range(2_000):
        tz = timezone(timedelta(minutes=rng.choice(offsets)))
        when = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**9))
        text = format_datetime(when.astimezone(tz))
        fast = fast_rfc1123(text)
        assert fast is not None, text
        slow = _slow(text)
        assert fast == slow and fast.utcoffset() == slow.utcoffset(), text
        assert fast_utc_iso(text) == utc_iso(slow), text
        checked += 1
    for text in (
        "Mon, 08 May 2023 08:30:00 -0600",
        "Mon, 8 May 2023 08:30:00 +0530",
        "08 May 2023 08:30:00 +0000",
        "Sun, 31 Dec 2023 23:59:59 -0000",  # RFC 2822 "UTC, origin unknown": naive -> UTC
    ):
        fast = fast_rfc1123(text)
        assert fast is not None and fast == _slow(text), text
        assert fast.utcoffset() == _slow(text).utcoffset()
    assert checked == 2_000


@pytest.mark.parametrize(
    "text",
    [
        "Mon, 08 May 2023 14:30:00 GMT",  # named zone
        "Mon, 08 May 23 08:30:00 -0600",  # two-digit year
        "Mon, 08 May 2023 08:30 -0600",  # no seconds
        "Mon, 08 MAY 2023 08:30:00 -0600",  # month in capitals
        "2023-05-08T08:30:00-06:00",  # ISO 8601, which some WIW objects use
    ],
)
def test_odd_forms_fall_back_to_the_general_parser(text: str) -> None:
    assert fast_rfc1123(text) is None and fast_utc_iso(text) is None
    expected = datetime(2023, 5, 8, 14, 30, tzinfo=UTC)
    assert parse_wiw_datetime(text) == expected


@pytest.mark.parametrize(
    "text", ["Mon, 31 Feb 2023 08:30:00 -0600", "Mon, 08 May 2023 25:30:00 -0600", "not a date"]
)
def test_impossible_dates_are_left_to_the_general_parser_which_rejects_them(text: str) -> None:
    assert fast_rfc1123(text) is None
    with pytest.raises(ValueError):
        parse_wiw_datetime(text)


def _generated_shifts() -> list[dict[str, Any]]:
    state = WiwState(timezone="America/Chicago")
    state.seed(300, days=[date(2026, 3, 7), date(2026, 3, 8)], seed=5)  # a DST change
    return state.all_shifts()


def _same_content(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a == b
    assert canonical(a) == canonical(b)  # hence the same fingerprint and event id


def test_fast_published_agrees_with_pydantic_on_generated_shifts() -> None:
    shifts = _generated_shifts()
    assert len(shifts) == 300
    for raw in shifts:
        fast = fast_published(raw)
        assert fast is not None, raw
        data, start = fast
        shift = parse_shift(raw)
        _same_content(data, shift.published())
        assert start == shift.start_time == _slow(raw["start_time"])
        for name in DATE_FIELDS:  # independently of the shared date parser
            if isinstance(raw.get(name), str):
                assert data[name] == utc_iso(_slow(raw[name])), name


def test_fast_published_agrees_on_nulls_blanks_and_extra_fields() -> None:
    raw = dict(_generated_shifts()[0])
    raw.update(notified_at=None, acknowledged_at="  ", published_date="", new_field={"x": [1]})
    raw.pop("created_at", None)
    fast = fast_published(raw)
    assert fast is not None
    published = parse_shift(raw).published()
    _same_content(fast[0], published)
    assert "created_at" not in fast[0]  # absent stays absent
    assert fast[0]["acknowledged_at"] is None and fast[0]["new_field"] == {"x": [1]}


@pytest.mark.parametrize(
    "change",
    [
        {"id": "12"},
        {"id": True},
        {"start_time": None},
        {"end_time": ""},
        {"start_time": "not a date"},
        {"updated_at": 5},
        {"created_at": "2023-05-08T08:30:00-06:00"},  # valid, but not the fast shape
    ],
)
def test_anything_unusual_takes_the_pydantic_path(change: dict[str, Any]) -> None:
    raw = {**_generated_shifts()[0], **change}
    assert fast_published(raw) is None
    try:
        published = parse_shift(raw).published()
    except MalformedShiftError as exc:
        assert exc.reason  # the precise error still comes from pydantic
    else:
        assert published["created_at"] == "2023-05-08T14:30:00Z"


def test_missing_start_time_takes_the_pydantic_path() -> None:
    raw = dict(_generated_shifts()[0])
    del raw["start_time"]
    assert fast_published(raw) is None
    with pytest.raises(MalformedShiftError, match="start_time"):
        parse_shift(raw)


def test_body_digest_covers_the_bytes_and_what_shapes_the_records() -> None:
    body = orjson.dumps({"shifts": _generated_shifts()[:5], "deleted_ids": [1]})
    base = body_digest("UTC", "2026-03-07", body)
    assert base == body_digest("UTC", "2026-03-07", bytes(body))
    changed = body.replace(b'"deleted_ids":[1]', b'"deleted_ids":[2]')
    assert changed != body
    others = {
        body_digest("UTC", "2026-03-07", changed),
        body_digest("Europe/Berlin", "2026-03-07", body),
        body_digest("UTC", "2026-03-08", body),
    }
    assert base not in others and len(others) == 3
    assert OUTPUT_VERSION  # part of the digest: raising it re-publishes unchanged pages once


@pytest.mark.parametrize(
    "text",
    [
        "Tue, 29 Feb 2028 23:30:00 -0100",  # leap day, crossing into March
        "Sat, 31 Dec 2022 22:15:07 -0230",  # minutes offset, across the new year
        "Sun, 01 Jan 2023 01:15:59 +1400",  # back into the old year
        "Sun, 08 Mar 2026 01:59:59 -0600",
        "Sun, 08 Mar 2026 03:00:00 -0500",  # Chicago's DST change
        "1 Jan 2023 00:00:00 +0000",
        "Sun, 29 Feb 2026 08:00:00 +0000",  # no such day
        "Mon, 08 May 2023 24:00:00 +0000",  # no such hour
        "Mon, 08 May 2023 23:59:60 +0000",  # leap second: email.utils' business
        "Mon, 08 May 2023 08:61:00 +0000",  # no such minute
        "Mon, 08 May 2023 08:30:00 +2400",  # no such offset
        "Fri, 31 Dec 9999 23:00:00 -0200",  # beyond year 9999 in UTC
    ],
)
def test_fast_utc_iso_agrees_with_the_datetime_path_on_edges(text: str) -> None:
    parsed = fast_rfc1123(text)
    try:
        expected = None if parsed is None else utc_iso(parsed)
    except OverflowError:
        expected = None
    assert fast_utc_iso(text) == expected, text
    assert fast_utc_iso(text) == expected, text  # the cached answer too


def _raw_pages(body: bytes) -> tuple[Any, Any]:
    """``fetch_page_raw``'s page of ``body``, with no digest known and with a changed one."""
    conn = WiwConnector(WiwClient(WiwSettings(api_url="http://127.0.0.1:9")), topic="t")
    day = date(2026, 3, 7)
    pages = []
    for known in (None, "changed"):
        pages.append(conn._page([body], day.isoformat(), day, known, True))
    return conn, pages


def _shift(i: int, **extra: Any) -> dict[str, Any]:
    start = "Sat, 07 Mar 2026 08:00:00 +0000"
    return {"id": i, "start_time": start, "end_time": start, "notes": "a},{b", **extra}


@pytest.mark.parametrize(
    "body",
    [
        # the usual shape, with a string id, an id-less shift and a non-object among them
        {"shifts": [_shift(1), _shift(2), {**_shift(0), "id": " 3 "}, {"x": 1}, 7, None]},
        # shapes only the whole-body decode reads: its own reading applies
        {"shifts": [_shift(1)], "deleted_ids": "12"},
        {"shifts": [_shift(1)], "deleted_ids": {"5": 1}},
        # no shifts at all
        {"deleted_ids": [4, 5, 4]},
    ],
)
def test_raw_pages_of_odd_bodies_agree_whichever_way_they_are_read(body: dict[str, Any]) -> None:
    """Scanned (a changed day) or decoded whole (a first pass), a day gives the same keys,
    raw fingerprints, records, dead letters and deleted keys; spaces in the text, or the
    same value in another spelling, change fingerprints but never records."""
    for text in (orjson.dumps(body), orjson.dumps(body, option=orjson.OPT_INDENT_2)):
        conn, (whole, scanned) = _raw_pages(text)
        assert [(k, fp) for k, fp, _ in whole.raw] == [(k, fp) for k, fp, _ in scanned.raw]
        results = []
        for page in (whole, scanned):
            done = conn.convert("2026-03-07", [item for _, _, item in page.raw])
            results.append(
                (
                    sorted((r.key, orjson.dumps(r.data)) for r in [*page.records, *done.records]),
                    sorted(str(m.key) for m in [*page.malformed, *done.malformed]),
                    page.deleted_keys,
                )
            )
        assert results[0] == results[1]
    assert results[0][2] == list(dict.fromkeys(str(i) for i in body.get("deleted_ids") or []))


def test_raw_fingerprints_follow_the_text_of_each_shift() -> None:
    """One changed shift changes its own raw fingerprint only; a changed day is scanned,
    and a shift that is not valid JSON inside it fails the page as a retryable error, as a
    body that cannot be decoded does."""
    before = orjson.dumps({"shifts": [_shift(1), _shift(2)]})
    after = orjson.dumps({"shifts": [_shift(1), _shift(2, notes="new")]})
    _, (old, _) = _raw_pages(before)
    conn, (_, new) = _raw_pages(after)
    assert old.raw[0][1] == new.raw[0][1] and old.raw[1][1] != new.raw[1][1]
    assert type(new.raw[1][2]) is not dict  # left as text until converted
    broken = before.replace(b'"a},{b"', b'"\xff"')
    day = date(2026, 3, 7)
    scanned = conn._page([broken], day.isoformat(), day, "changed", True)
    with pytest.raises(RetryableError, match="not valid JSON"):
        conn.convert("2026-03-07", [item for _, _, item in scanned.raw])


def test_the_wiw_client_reads_bodies_a_megabyte_at_a_time() -> None:
    """A day of shifts is megabytes: httpcore's 64 KB reads cost twice the CPU."""
    httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = 64 * 1024
    WiwClient(WiwSettings(api_url="http://127.0.0.1:9"))
    assert httpcore.AsyncHTTP11Connection.READ_NUM_BYTES == BODY_READ_BYTES == 1024 * 1024
