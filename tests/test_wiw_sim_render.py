"""The WIW simulator's render cache never serves a stale shift (it exists for bench speed)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import orjson

from simulators.wiw.state import WiwState

QUERY = {"start": "2026-12-01T00:00:00+00:00", "end": "2026-12-02T00:00:00+00:00"}


def shifts_by_id(state: WiwState) -> dict[int, dict]:
    status, body = state.list_shifts(QUERY)
    assert status == 200
    body = orjson.loads(orjson.dumps(body))  # shifts come as encoded pieces (wire cache)
    return {s["id"]: s for s in body["shifts"]}


def test_changes_and_knobs_show_through_the_cache() -> None:
    state = WiwState()
    ids = state.seed(20, days=[date(2026, 12, 1)], seed=3)
    before = shifts_by_id(state)
    assert shifts_by_id(state) == before  # served from the cache: equal

    state.change(ids[0], color="ffffff", notes="moved")
    # same instant, another offset: equal datetimes, different text on the wire
    noon = datetime(2026, 12, 1, 12, tzinfo=ZoneInfo("UTC"))
    state.change(ids[1], start_time=noon, updated_at=noon)
    assert shifts_by_id(state)[ids[1]]["start_time"] == "Tue, 01 Dec 2026 12:00:00 +0000"
    berlin = noon.astimezone(ZoneInfo("Europe/Berlin"))
    state.change(ids[1], start_time=berlin, updated_at=noon)
    state.malformed_ids = {ids[2]}
    after = shifts_by_id(state)

    assert after[ids[0]]["color"] == "ffffff" and after[ids[0]]["notes"] == "moved"
    assert after[ids[1]]["start_time"] == "Tue, 01 Dec 2026 13:00:00 +0100"
    assert after[ids[2]]["start_time"] == "not a date"
    state.malformed_ids = set()
    assert shifts_by_id(state)[ids[2]] == before[ids[2]]
    untouched = set(ids[3:])
    assert {k: v for k, v in after.items() if k in untouched} == {
        k: v for k, v in before.items() if k in untouched
    }
