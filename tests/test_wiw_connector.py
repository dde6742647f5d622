"""WiwClient / WiwConnector against the When I Work simulator over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors import REGISTRY
from connectors.http import retry_after
from connectors.wiw import SPEC, WiwClient, WiwConnector, build_wiw
from connectors.wiw.client import _SECONDS
from models.errors import InvalidParamsError, NotConfiguredError, PermanentError, RetryableError
from settings import KafkaSettings, Settings, SyncSettings, WiwSettings
from simulators.server import ThreadedServer, free_port
from simulators.wiw import FIRST_ID, WiwState, create_app

TZ = "America/Denver"
DENVER = ZoneInfo(TZ)
TODAY = date(2026, 11, 24)
DEV_KEY = "dev-key-4f1c9a"
EMAIL = "api@example.com"
PASSWORD = "pw-very-secret-77"
STATIC = "static-token-0b7e2d"


@dataclass
class Sim:
    state: WiwState
    url: str


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    state = WiwState(
        developer_key=DEV_KEY, email=EMAIL, password=PASSWORD, static_token=STATIC, timezone=TZ
    )
    server = ThreadedServer(create_app(state)).start()
    yield Sim(state, server.url)
    server.stop()


@pytest.fixture(autouse=True)
def fresh_sim(sim: Sim) -> None:
    sim.state.reset()
    sim.state.static_token = STATIC


def wiw_settings(url: str, **overrides: Any) -> WiwSettings:
    """Every credential explicit, so nothing leaks in from the environment."""
    values: dict[str, Any] = {
        "api_url": url,
        "login_url": None,
        "token": None,
        "developer_key": None,
        "email": None,
        "password": None,
        "user_id": None,
        "timeout_seconds": 5.0,
    }
    values.update(overrides)
    return WiwSettings(**values)


LOGIN = {"developer_key": DEV_KEY, "email": EMAIL, "password": PASSWORD}


def make_connector(sim: Sim, **settings: Any) -> WiwConnector:
    client = WiwClient(wiw_settings(sim.url, **settings))
    return WiwConnector(
        client, topic="wiw.shifts", timezone=TZ, days_ahead=1, days_prior=0, today=lambda: TODAY
    )


@pytest.fixture
async def connector(sim: Sim) -> AsyncIterator[WiwConnector]:
    conn = make_connector(sim, token=STATIC)
    yield conn
    await conn.aclose()


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=DENVER)


def local(rfc1123: str) -> datetime:
    return parsedate_to_datetime(rfc1123).astimezone(DENVER)


def assert_no_secrets(exc: BaseException) -> None:
    """Neither the error nor anything chained to it may carry a credential."""
    seen: BaseException | None = exc
    while seen is not None:
        text = f"{seen} {seen!r} {getattr(seen, 'request', '')!r}"
        for secret in (PASSWORD, DEV_KEY, STATIC):
            assert secret not in text
        assert not hasattr(seen, "request"), "an httpx error (holding the request) is chained"
        seen = seen.__cause__ or seen.__context__


# -- partitions and params ---------------------------------------------------------------


async def test_partitions_cover_window_and_params_override(connector: WiwConnector) -> None:
    assert await connector.list_partitions({}) == ["2026-11-24", "2026-11-25"]
    assert await connector.list_partitions({"days_ahead": 3, "days_prior": 1}) == [
        "2026-11-23",
        "2026-11-24",
        "2026-11-25",
        "2026-11-26",
        "2026-11-27",
    ]
    assert await connector.list_partitions({"days_ahead": 0}) == ["2026-11-24"]
    with pytest.raises(InvalidParamsError, match="days_ahead"):
        await connector.list_partitions({"days_ahead": -1})
    with pytest.raises(InvalidParamsError, match="YYYY-MM-DD"):
        await connector.fetch_page("tomorrow", None, {})


async def test_default_today_is_taken_in_the_timezone(sim: Sim) -> None:
    client = WiwClient(wiw_settings(sim.url, token=STATIC))
    conn = WiwConnector(client, topic="t", timezone="Pacific/Kiritimati", days_ahead=0)
    try:
        today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat()
        assert await conn.list_partitions({}) == [today]
    finally:
        await conn.aclose()


def test_spec_validates_params_and_is_registered() -> None:
    assert REGISTRY["wiw"] is SPEC
    assert SPEC.validate_params({"days_ahead": 2}) == {"days_ahead": 2}
    with pytest.raises(InvalidParamsError, match="days_prior"):
        SPEC.validate_params({"days_prior": -3})
    with pytest.raises(InvalidParamsError, match="location"):
        SPEC.validate_params({"location": 5})


async def test_build_wiw_needs_credentials(sim: Sim) -> None:
    bare = Settings(wiw=wiw_settings(sim.url))
    with pytest.raises(NotConfiguredError) as err:
        build_wiw(bare)
    assert "WIW_KEY" in str(err.value) and "WIW_DEVELOPER_KEY" in str(err.value)

    settings = Settings(
        wiw=wiw_settings(sim.url, token=STATIC),
        kafka=KafkaSettings(wiw_topic="uk.london.quiqup.slots"),
        sync=SyncSettings(timezone=TZ, days_ahead=2, days_prior=1),
    )
    conn = build_wiw(settings)
    try:
        assert (conn.source, conn.topic, conn.days_ahead, conn.days_prior) == (
            "wiw",
            "uk.london.quiqup.slots",
            2,
            1,
        )
        assert len(await conn.list_partitions({})) == 4
    finally:
        await conn.aclose()


# -- windowing and the published shape ---------------------------------------------------


async def test_shift_belongs_to_its_start_day(sim: Sim, connector: WiwConnector) -> None:
    st = sim.state
    day_shift = st.add(at(24, 9), at(24, 17))
    overnight = st.add(at(24, 22), at(25, 2))
    next_day = st.add(at(25, 8), at(25, 12))
    from_before = st.add(at(23, 23), at(24, 3))
    midnight_start = st.add(at(25, 0), at(25, 6))

    page24 = await connector.fetch_page("2026-11-24", None, {})
    page25 = await connector.fetch_page("2026-11-25", None, {})

    assert [r.key for r in page24.records] == [str(day_shift), str(overnight)]
    assert [r.key for r in page25.records] == [str(midnight_start), str(next_day)]
    assert {r.partition for r in page24.records} == {"2026-11-24"}
    assert page24.next_cursor is None and page24.stable and not page24.malformed
    # the upstream did return the overlapping shifts; the connector dropped them
    raw25 = await connector.client.shifts(at(25, 0), at(26, 0))
    assert {s["id"] for s in raw25["shifts"]} >= {overnight, next_day}
    raw24 = await connector.client.shifts(at(24, 0), at(25, 0))
    assert from_before in {s["id"] for s in raw24["shifts"]}


async def test_dates_become_utc_iso_and_other_fields_are_kept(
    sim: Sim, connector: WiwConnector
) -> None:
    evening = sim.state.add(
        "Tue, 24 Nov 2026 20:30:00 -0700",
        "Wed, 25 Nov 2026 04:00:00 -0700",
        created_at="Mon, 16 Nov 2026 10:00:00 -0700",
        updated_at="Mon, 23 Nov 2026 15:27:30 +0100",
        published_date="Mon, 16 Nov 2026 11:00:00 -0700",
        notified_at=None,
        acknowledged_at=None,
        break_time=0.5,
        linked_users=[1, 2],
        is_shared=True,
    )
    # 06:00 +0100 is 22:00 the previous evening in Denver: still the 24th
    foreign = sim.state.add("Wed, 25 Nov 2026 06:00:00 +0100", "Wed, 25 Nov 2026 09:00:00 +0100")

    wire = sim.state.shift(evening)
    assert wire is not None and wire["start_time"] == "Tue, 24 Nov 2026 20:30:00 -0700"

    page = await connector.fetch_page("2026-11-24", None, {})
    records = {r.key: r for r in page.records}
    assert set(records) == {str(evening), str(foreign)}
    data = records[str(evening)].data
    assert data["start_time"] == "2026-11-25T03:30:00Z"
    assert data["end_time"] == "2026-11-25T11:00:00Z"
    assert data["created_at"] == "2026-11-16T17:00:00Z"
    assert data["updated_at"] == "2026-11-23T14:27:30Z"
    assert data["published_date"] == "2026-11-16T18:00:00Z"
    assert data["notified_at"] is None and data["acknowledged_at"] is None
    assert data["id"] == evening and isinstance(data["id"], int)
    assert data["break_time"] == 0.5 and data["linked_users"] == [1, 2]
    assert data["is_shared"] is True and data["color"] == "74a611"
    assert records[str(foreign)].data["start_time"] == "2026-11-25T05:00:00Z"


async def test_deleted_ids_are_reported_for_the_window(sim: Sim, connector: WiwConnector) -> None:
    keep = sim.state.add(at(24, 9), at(24, 17))
    gone = sim.state.add(at(24, 10), at(24, 14))
    sim.state.delete(gone)

    page = await connector.fetch_page("2026-11-24", None, {})
    assert [r.key for r in page.records] == [str(keep)]
    assert page.deleted_keys == [str(gone)]
    later = await connector.fetch_page("2026-11-26", None, {})
    assert later.deleted_keys == [] and later.records == []


async def test_malformed_shift_is_reported_and_the_rest_still_comes(
    sim: Sim, connector: WiwConnector
) -> None:
    first = sim.state.add(at(24, 8), at(24, 12))
    broken = sim.state.add(at(24, 9), at(24, 13))
    last = sim.state.add(at(24, 10), at(24, 14))
    sim.state.malformed_ids = {broken}

    page = await connector.fetch_page("2026-11-24", None, {})
    assert [r.key for r in page.records] == [str(first), str(last)]
    assert len(page.malformed) == 1
    bad = page.malformed[0]
    assert bad.key == str(broken) and "start_time" in bad.reason and "not a date" in bad.reason
    assert bad.raw["id"] == broken and bad.raw["start_time"] == "not a date"

    sim.state.malformed_style = "missing_start_time"
    page = await connector.fetch_page("2026-11-24", None, {})
    assert [m.key for m in page.malformed] == [str(broken)]
    assert "start_time" in page.malformed[0].reason and "required" in page.malformed[0].reason
    assert len(page.records) == 2


# -- point lookups -----------------------------------------------------------------------


async def test_lookup_finds_moved_shift_and_reports_deleted_ones(
    sim: Sim, connector: WiwConnector
) -> None:
    moved = sim.state.add(at(24, 9), at(24, 17))
    gone = sim.state.add(at(24, 10), at(24, 12))
    before = sim.state.shift(moved)
    sim.state.move(moved, at(25, 13))
    sim.state.delete(gone)

    unknown = str(FIRST_ID - 1)
    found = await connector.lookup("2026-11-24", [str(moved), str(gone), unknown, "abc"], {})

    by_key = {item.key: item for item in found}
    assert set(by_key) == {str(moved), str(gone), unknown, "abc"}
    record = by_key[str(moved)].record
    assert record is not None and record.partition == "2026-11-25"
    assert record.data["start_time"] == "2026-11-25T20:00:00Z"
    assert record.data["end_time"] == "2026-11-26T04:00:00Z"  # duration kept
    assert before is not None and record.data["updated_at"] != before["updated_at"]
    assert by_key[str(gone)].record is None and by_key[unknown].record is None
    assert by_key["abc"].record is None
    assert sim.state.requests["GET /2/shifts/{id}"] == 3  # "abc" never asked


async def test_lookup_concurrency_is_bounded(sim: Sim) -> None:
    ids = [sim.state.add(at(24, 8 + i), at(24, 9 + i)) for i in range(6)]
    sim.state.latency_ms = 60
    client = WiwClient(wiw_settings(sim.url, token=STATIC, lookup_concurrency=2))
    conn = WiwConnector(client, topic="t", timezone=TZ, today=lambda: TODAY)
    try:
        found = await conn.lookup("2026-11-24", [str(i) for i in ids], {})
    finally:
        await conn.aclose()
    assert all(item.record is not None for item in found) and len(found) == 6
    assert sim.state.peak_in_flight == 2


# -- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize("login_path", ["/2/login", "/login"])
async def test_login_with_developer_key_once(sim: Sim, login_path: str) -> None:
    shift = sim.state.add(at(24, 9), at(24, 17))
    conn = make_connector(sim, **LOGIN, login_url=f"{sim.url}{login_path}")
    try:
        pages = await asyncio.gather(
            conn.fetch_page("2026-11-24", None, {}), conn.fetch_page("2026-11-25", None, {})
        )
        again = await conn.fetch_page("2026-11-24", None, {})
    finally:
        await conn.aclose()
    assert [r.key for r in pages[0].records] == [str(shift)] == [r.key for r in again.records]
    assert sim.state.requests[f"POST {login_path}"] == 1
    assert sim.state.statuses[401] == 0


async def test_revoked_token_triggers_one_relogin(sim: Sim) -> None:
    ids = [sim.state.add(at(24, 8 + i), at(24, 9 + i)) for i in range(5)]
    conn = make_connector(sim, token=STATIC, **LOGIN)
    try:
        await conn.fetch_page("2026-11-24", None, {})
        assert sim.state.requests["POST /2/login"] == 0  # the pre-issued WIW_KEY was enough

        sim.state.revoke_tokens()
        page = await conn.fetch_page("2026-11-24", None, {})
        assert len(page.records) == 5
        assert sim.state.statuses[401] == 1
        assert sim.state.requests["POST /2/login"] == 1

        # concurrent calls that all hit 401 share one login
        sim.state.revoke_tokens()
        found = await conn.lookup("2026-11-24", [str(i) for i in ids], {})
        assert all(item.record is not None for item in found)
        assert sim.state.requests["POST /2/login"] == 2
    finally:
        await conn.aclose()


async def test_bad_password_is_permanent_and_names_the_setting(sim: Sim) -> None:
    conn = make_connector(sim, developer_key=DEV_KEY, email=EMAIL, password="wrong-pw-123")
    try:
        with pytest.raises(PermanentError) as err:
            await conn.fetch_page("2026-11-24", None, {})
    finally:
        await conn.aclose()
    assert "WIW_PASSWORD" in str(err.value) and "401" in str(err.value)
    assert "wrong-pw-123" not in f"{err.value} {err.value!r}"
    assert_no_secrets(err.value)
    assert sim.state.requests["GET /2/shifts"] == 0


async def test_bad_token_without_login_names_wiw_key(sim: Sim) -> None:
    conn = make_connector(sim, token="bad-token-31337")
    try:
        with pytest.raises(PermanentError) as err:
            await conn.fetch_page("2026-11-24", None, {})
    finally:
        await conn.aclose()
    assert err.value.setting == "WIW_KEY" and "WIW_KEY" in str(err.value)
    assert "bad-token-31337" not in f"{err.value} {err.value!r}"
    assert sim.state.statuses[401] == 1 and sim.state.requests["POST /2/login"] == 0


async def test_fresh_token_rejected_again_is_permanent(sim: Sim) -> None:
    sim.state.reject_tokens = True
    conn = make_connector(sim, **LOGIN)
    try:
        with pytest.raises(PermanentError) as err:
            await conn.fetch_page("2026-11-24", None, {})
    finally:
        await conn.aclose()
    assert "WIW_DEVELOPER_KEY" in str(err.value)
    assert_no_secrets(err.value)
    # first login, 401, one more login, 401 again: no loop
    assert sim.state.requests["POST /2/login"] == 2
    assert sim.state.statuses[401] == 2


# -- rate limits and server errors -------------------------------------------------------


async def test_rolling_rate_limit_waits_retry_after_and_succeeds(
    sim: Sim, connector: WiwConnector
) -> None:
    sim.state.add(at(24, 9), at(24, 17))
    sim.state.set_knobs(rate_limit_per_minute=2, rate_limit_window_seconds=1.0)
    started = time.monotonic()
    pages = [await connector.fetch_page("2026-11-24", None, {}) for _ in range(3)]
    elapsed = time.monotonic() - started
    assert all(len(p.records) == 1 for p in pages)
    assert sim.state.statuses[429] == 1
    assert sim.state.requests["GET /2/shifts"] == 4
    assert elapsed >= 0.9  # Retry-After: 1 was honoured


async def test_persistent_429_becomes_retryable_with_retry_after(sim: Sim) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    sim.state.set_knobs(throttle_next=100, throttle_retry_after=7)
    client = WiwClient(wiw_settings(sim.url, token=STATIC), sleep=record)
    try:
        with pytest.raises(RetryableError) as err:
            await client.shifts(at(24, 0), at(25, 0))
    finally:
        await client.aclose()
    assert err.value.retry_after == 7
    assert waits == [7, 7, 7]
    assert sim.state.statuses[429] == 4
    assert_no_secrets(err.value)


async def test_403_rate_limit_variant_is_retried(sim: Sim) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    shift = sim.state.add(at(24, 9), at(24, 17))
    sim.state.set_knobs(rate_limit_status=403, throttle_next=1, throttle_retry_after=45)
    client = WiwClient(wiw_settings(sim.url, token=STATIC), sleep=record)
    try:
        body = await client.shifts(at(24, 0), at(25, 0))
    finally:
        await client.aclose()
    assert [s["id"] for s in body["shifts"]] == [shift]
    assert sim.state.statuses[403] == 1
    assert waits == [30.0]  # capped


def test_retry_after_falls_back_to_the_message() -> None:
    message = "Rate limit exceeded, please wait 12 seconds"
    assert retry_after(httpx.Response(429, json={"error": message}), message, _SECONDS) == 12
    assert retry_after(httpx.Response(429, headers={"Retry-After": "3"}), "", _SECONDS) == 3
    assert retry_after(httpx.Response(429), "slow down", _SECONDS) is None


async def test_server_errors_timeouts_and_refused_connections_are_retryable(
    sim: Sim, connector: WiwConnector
) -> None:
    sim.state.fail_next = 1
    with pytest.raises(RetryableError, match="503") as err:
        await connector.fetch_page("2026-11-24", None, {})
    assert_no_secrets(err.value)
    await connector.fetch_page("2026-11-24", None, {})  # the next call goes through

    sim.state.error_rate = 1.0
    with pytest.raises(RetryableError, match="500"):
        await connector.lookup("2026-11-24", ["2076300001"], {})
    sim.state.error_rate = 0.0

    sim.state.latency_ms = 400
    slow = make_connector(sim, token=STATIC, timeout_seconds=0.1)
    try:
        with pytest.raises(RetryableError, match="timed out"):
            await slow.fetch_page("2026-11-24", None, {})
    finally:
        await slow.aclose()

    nowhere = WiwClient(wiw_settings(f"http://127.0.0.1:{free_port()}", token=STATIC))
    try:
        with pytest.raises(RetryableError, match="ConnectError") as err:
            await nowhere.shift(1)
    finally:
        await nowhere.aclose()
    assert_no_secrets(err.value)


# -- simulator ---------------------------------------------------------------------------


def test_seeded_generator_is_deterministic_and_spreads_over_days() -> None:
    days = [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)]
    a, b, c = (WiwState(timezone=TZ) for _ in range(3))
    ids = a.seed(30, days=days, seed=42)
    assert b.seed(30, start=days[0], end=days[-1], seed=42) == ids
    assert a.all_shifts() == b.all_shifts()
    c.seed(30, days=days, seed=43)
    assert c.all_shifts() != a.all_shifts()

    assert len(set(ids)) == 30 and min(ids) > 2_000_000_000
    shifts = a.all_shifts()
    assert {local(s["start_time"]).date() for s in shifts} == set(days)
    assert all(local(s["end_time"]) > local(s["start_time"]) for s in shifts)
    assert all(s["start_time"].endswith("-0700") for s in shifts)
    assert any(local(s["end_time"]).date() > local(s["start_time"]).date() for s in shifts)


async def test_sideloads_and_limit_header(sim: Sim) -> None:
    sim.state.seed(12, days=[TODAY], seed=5)
    async with httpx.AsyncClient(base_url=sim.url, headers={"W-Token": STATIC}) as http:
        first = await http.get(
            "/2/shifts", params={"start": "2026-11-24", "end": "2026-11-24T23:59:59"}
        )
        second = await http.get(
            "/2/shifts", params={"start": "2026-11-24T00:00:00-07:00", "end": "2026-11-25"}
        )
        anonymous = await http.get("/2/shifts", headers={"W-Token": ""})
        bearer = await http.get("/2/shifts/1", headers={"Authorization": f"Bearer {STATIC}"})
    assert first.status_code == 200 and second.status_code == 200
    # each request lowers it (by more when a request of an earlier test lands in between)
    assert int(first.headers["W-Limit-Remaining"]) > int(second.headers["W-Limit-Remaining"])
    body = first.json()
    assert body["start"] == "Tue, 24 Nov 2026 00:00:00 -0700"
    assert len(body["shifts"]) >= 1
    assert {u["id"] for u in body["users"]} == {s["user_id"] for s in body["shifts"]} - {0}
    assert {loc["id"] for loc in body["locations"]} == {s["location_id"] for s in body["shifts"]}
    assert {p["id"] for p in body["positions"]} == {s["position_id"] for s in body["shifts"]}
    assert "deleted_ids" not in body
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "User not authenticated", "code": 1000}
    assert bearer.status_code == 404 and bearer.json()["error"] == "Shift not found"


async def test_admin_endpoints_drive_the_same_state(sim: Sim) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as http:
        knobs = (await http.post("/_admin/knobs", json={"latency_ms": 5})).json()
        assert knobs["latency_ms"] == 5 and sim.state.latency_ms == 5
        assert (await http.post("/_admin/knobs", json={"nope": 1})).status_code == 400

        seeded = await http.post("/_admin/seed", json={"n_shifts": 4, "days": ["2026-11-24"]})
        assert len(seeded.json()["ids"]) == 4

        added = await http.post(
            "/_admin/shifts",
            json={"start_time": "2026-11-24T09:00:00", "end_time": "2026-11-24T17:00:00"},
        )
        shift_id = added.json()["shift"]["id"]
        assert added.json()["shift"]["start_time"] == "Tue, 24 Nov 2026 09:00:00 -0700"

        patched = await http.patch(f"/_admin/shifts/{shift_id}", json={"notes": "late"})
        assert patched.json()["shift"]["notes"] == "late"
        moved = await http.post(
            f"/_admin/shifts/{shift_id}/move", json={"start": "2026-11-25T10:00:00-07:00"}
        )
        assert moved.json()["shift"]["end_time"] == "Wed, 25 Nov 2026 18:00:00 -0700"
        assert (await http.delete(f"/_admin/shifts/{shift_id}")).status_code == 204
        assert (await http.delete(f"/_admin/shifts/{shift_id}")).status_code == 404

        stats = (await http.get("/_admin/stats")).json()
        assert stats["shifts"] == 4 and stats["deleted"] == 1
        assert (await http.post("/_admin/revoke")).status_code == 204
    assert sim.state.requests["GET /2/shifts"] == 0  # admin calls are not API calls
    assert not sim.state.token_valid(STATIC)
