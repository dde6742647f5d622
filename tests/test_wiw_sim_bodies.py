"""The WIW simulator keeps each answered ``GET /2/shifts`` body until the state changes.

The benchmark's day partitions are fetched concurrently from one simulator process: three
21 MB days of a 100,000-shift run were built one after another, each walking its 33,000
shifts, so the engine waited on the fake (issue 11). An unchanged state answers a repeated
query with the bytes it built before; every change through ``WiwState`` (change, move,
delete, add, seed, reset) and every knob that shapes the rendering shows through at once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from simulators.wire_cache import JsonResponse
from simulators.wiw.state import WiwState, rfc1123

DAY = date(2031, 3, 10)


def _query(day: date = DAY) -> dict[str, str]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    return {"start": rfc1123(start), "end": rfc1123(start + timedelta(days=1)), "deleted": "true"}


def _built(state: WiwState, query: dict[str, str]) -> bytes:
    """The body as the plain way builds it (``list_shifts`` encoded by the app's response)."""
    status, body = state.list_shifts(query)
    assert status == 200
    return bytes(JsonResponse(body).body)


def test_an_unchanged_state_answers_with_the_body_it_built_before() -> None:
    state = WiwState(timezone="Europe/London")
    state.seed(300, days=[DAY, DAY + timedelta(days=1)], seed=5)
    status, first = state.list_shifts_wire(_query())
    assert status == 200 and first == _built(state, _query())
    again = state.list_shifts_wire(_query())[1]
    assert again is first  # kept, not built again
    other = state.list_shifts_wire(_query(DAY + timedelta(days=1)))[1]
    assert other != first and other == _built(state, _query(DAY + timedelta(days=1)))
    assert state.list_shifts_wire(_query())[1] is first  # another day's query keeps it


def test_every_change_and_knob_shows_through() -> None:
    state = WiwState(timezone="Europe/London")
    ids = state.seed(120, days=[DAY], seed=9)
    seen = [state.list_shifts_wire(_query())[1]]

    def fresh() -> bytes:
        body = state.list_shifts_wire(_query())[1]
        assert body == _built(state, _query())
        assert all(body != before for before in seen)
        seen.append(body)
        return body

    state.change(ids[0], notes="changed")
    fresh()
    state.move(ids[1], datetime(2031, 3, 9, 23, tzinfo=UTC))  # leaves the day
    fresh()
    state.delete(ids[2])
    fresh()
    state.add(datetime(2031, 3, 10, 9, tzinfo=UTC), datetime(2031, 3, 10, 17, tzinfo=UTC))
    fresh()
    state.malformed_ids = {ids[3]}  # a knob set as an attribute, not through set_knobs
    fresh()
    state.set_knobs(malformed_style="missing_start_time")
    fresh()
    state.seed(50, days=[DAY], seed=10)
    fresh()
    state.reset()
    assert state.list_shifts_wire(_query())[1] == _built(state, _query())


def test_errors_are_answered_as_before() -> None:
    state = WiwState()
    status, body = state.list_shifts_wire({"start": "not a date"})
    assert status == 400 and b"Invalid parameter" in body
