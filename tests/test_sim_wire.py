"""The simulators' cached wire bodies are byte for byte what a full scan and render gives.

The WIW and Advoware simulators index their records and keep each record's encoded JSON
(``simulators.wire_cache``) so a soak's 40,000-record pages cost the soak process little.
These tests compare every answer with the plain way (scan everything, render, Starlette's
``JSONResponse``), also after records changed in place, moved, left and came back, and
after the knobs that shape rendering changed.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.responses import JSONResponse

from simulators.advoware.state import AdvowareState
from simulators.wire_cache import JsonResponse
from simulators.wiw.state import WiwState, rfc1123

DAY = date(2031, 3, 10)


def _wiw_plain(state: WiwState, start: datetime, end: datetime) -> list[dict[str, Any]]:
    picked = sorted(
        (s for s in state._shifts.values() if s["start_time"] <= end and s["end_time"] >= start),
        key=lambda s: (s["start_time"], s["id"]),
    )
    return [state._render(s) for s in picked]


def _wiw_same(state: WiwState, rng: random.Random) -> int:
    """Compare every day of the data and a few random spans; returns shifts seen."""
    windows = [
        (datetime.combine(DAY + timedelta(days=d), datetime.min.time(), UTC), timedelta(days=1))
        for d in (1, *range(-5, 6))  # the first asks mid-data, right after a change
    ]
    for _ in range(2):
        begin = datetime.combine(DAY, datetime.min.time(), UTC)
        begin += timedelta(hours=rng.randint(-72, 72))
        windows.append((begin, timedelta(hours=rng.choice((1, 72)))))
    seen = 0
    for start, length in windows:
        end = start + length
        query = {"start": rfc1123(start), "end": rfc1123(end), "deleted": "true"}
        status, body = state.list_shifts(query)
        assert status == 200
        plain = _wiw_plain(state, start, end)
        assert JsonResponse(body).body == JSONResponse({**body, "shifts": plain}).body
        seen += len(plain)
    return seen


def test_wiw_answers_as_a_full_scan_would_before_and_after_changes() -> None:
    state = WiwState(timezone="Europe/London")
    days = [DAY + timedelta(days=d) for d in range(-4, 5)]
    ids = state.seed(450, days=days, seed=3)
    # one shift far longer than any other: the index must still find it from later days
    long_id = state.add(
        datetime(2031, 3, 7, 9, tzinfo=UTC), datetime(2031, 3, 12, 9, tzinfo=UTC), notes="long"
    )
    rng = random.Random(8)
    assert _wiw_same(state, rng) > 150
    state.change(ids[0], notes="changed")
    state.move(ids[1], datetime(2031, 3, 11, 23, tzinfo=UTC))  # crosses midnight now
    state.delete(ids[2])
    state.move(long_id, datetime(2031, 3, 13, 9, tzinfo=UTC))
    assert _wiw_same(state, rng) > 150
    state._shifts[ids[4]]["notes"] = "changed in place, behind the state's back"
    assert _wiw_same(state, rng) > 150
    state.set_knobs(malformed_ids=[ids[3]], malformed_style="missing_start_time")
    assert _wiw_same(state, rng) > 150
    state.set_knobs(malformed_style="bad_date")
    assert _wiw_same(state, rng) > 150


def _advoware_same(state: AdvowareState, who: list[str], rng: random.Random) -> int:
    """Compare pages over all the data and a few random spans; returns appointments seen."""
    spans = [(DAY + timedelta(days=d), 13) for d in range(-42, 42, 14)]
    spans += [(DAY + timedelta(days=rng.randint(-20, 20)), rng.choice((0, 7))) for _ in range(3)]
    seen = 0
    for first, days in spans:
        last = first + timedelta(days=days)
        for kuerzel in [*who, "Allgemein"]:
            plain = state.list_termine(kuerzel, first, last)
            wire = state.termine_wire(kuerzel, first, last)
            assert JsonResponse(wire).body == JSONResponse(plain).body
            seen += len(plain)
    return seen


def test_advoware_answers_as_before_and_after_changes() -> None:
    state = AdvowareState()
    frnrs = state.seed(4, 150, DAY - timedelta(days=30), DAY + timedelta(days=30), seed=5)
    who = [e["kuerzel"] for e in state.employees()]
    state.add("ALLE", datetime(2031, 3, 9, 8), datetime(2031, 3, 9, 9), text="Betriebsausflug")
    rng = random.Random(8)
    assert _advoware_same(state, who, rng) > 250
    state.change(frnrs[0], notiz="geändert")
    state.move(frnrs[1], datetime(2031, 3, 12, 10))
    state.reassign(frnrs[2], who[-1])
    state.delete(frnrs[3])
    assert _advoware_same(state, who, rng) > 250
    state._termine[frnrs[5]]["ort"] = "Köln, hinter dem Rücken des Zustands"
    assert _advoware_same(state, who, rng) > 250
    state.set_knobs(malformed_frnr=[frnrs[4]], pascal_case=True)
    assert _advoware_same(state, who, rng) > 250
    state.set_knobs(pascal_case=False, to_exclusive=True, match_by="start")
    assert _advoware_same(state, who, rng) > 250
