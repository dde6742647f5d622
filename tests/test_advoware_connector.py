"""AdvowareClient / AdvowareConnector against the Advoware simulator over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors import REGISTRY
from connectors.advoware import (
    SPEC,
    AdvowareClient,
    AdvowareConnector,
    build_advoware,
    sign,
)
from connectors.advoware.client import request_timestamp
from models.errors import InvalidParamsError, NotConfiguredError, PermanentError, RetryableError
from models.records import Page
from settings import AdvowareSettings, KafkaSettings, Settings
from simulators.advoware import AdvowareState, create_app, expected_signature
from simulators.server import ThreadedServer, free_port

APP_ID = "APP-7f3e21"
API_KEY = base64.b64encode(b"adv-secret-key-9c1d").decode()
KANZLEI = "KANZLEI42"
DATABASE = "ADVOWARE"
USER = "SB"
PASSWORD = "kennwort-geheim-4711"
TODAY = date(2026, 3, 10)
WINDOW = (TODAY - timedelta(days=30), TODAY + timedelta(days=365))


@dataclass
class Sim:
    state: AdvowareState
    url: str


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    state = AdvowareState(
        app_id=APP_ID, api_key=API_KEY, kanzlei=KANZLEI, database=DATABASE, users={USER: PASSWORD}
    )
    server = ThreadedServer(create_app(state)).start()
    yield Sim(state, server.url)
    server.stop()


@pytest.fixture(autouse=True)
def fresh_sim(sim: Sim) -> None:
    sim.state.reset()
    for code, aktiv in (("SB", True), ("AI", True), ("RO", True), ("XY", False)):
        sim.state.add_employee(code, name=f"Name {code}", aktiv=aktiv)


def adv_settings(url: str, **overrides: Any) -> AdvowareSettings:
    """Every field explicit, so nothing leaks in from the environment."""
    values: dict[str, Any] = {
        "app_id": APP_ID,
        "api_key": SecretStr(API_KEY),
        "kanzlei": KANZLEI,
        "database": DATABASE,
        "user": USER,
        "password": SecretStr(PASSWORD),
        "role": 2,
        "product": 64,
        "api_url": f"{url}/",
        "security_url": f"{url}/",
        "discovery_url": None,
        "timeout_seconds": 5.0,
        "token_refresh_seconds": 3180,
        "days_back": 30,
        "days_ahead": 365,
        "page_days": 31,
        "full_content": True,
        "debug_kuerzel": "",
        "lookup_concurrency": 8,
    }
    values.update(overrides)
    return AdvowareSettings(**values)


def make_connector(
    sim: Sim, *, settings: dict[str, Any] | None = None, **kw: Any
) -> AdvowareConnector:
    client = AdvowareClient(adv_settings(sim.url, **(settings or {})))
    options: dict[str, Any] = {
        "topic": "advoware.appointments",
        "days_back": 30,
        "days_ahead": 365,
        "page_days": 31,
        "full_content": True,
        "today": lambda: TODAY,
    }
    options.update(kw)
    return AdvowareConnector(client, **options)


@pytest.fixture
async def connector(sim: Sim) -> AsyncIterator[AdvowareConnector]:
    conn = make_connector(sim)
    yield conn
    await conn.aclose()


def at(month: int, day: int, hour: int = 9, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute)


SECRETS = (API_KEY, PASSWORD, base64.b64decode(API_KEY).decode())


def assert_no_secrets(exc: BaseException, *extra: str) -> None:
    """Neither the error nor anything chained to it may carry a credential or a token."""
    seen: BaseException | None = exc
    while seen is not None:
        text = f"{seen} {seen!r} {seen.args!r} {vars(seen)!r}"
        for secret in (*SECRETS, *extra):
            assert secret not in text
        assert not hasattr(seen, "request"), "an httpx error (holding the request) is chained"
        seen = seen.__cause__ or seen.__context__


async def all_pages(
    conn: AdvowareConnector, kuerzel: str, params: dict[str, Any] | None = None
) -> list[Page]:
    pages, cursor, seen = [], None, set()
    while True:
        page = await conn.fetch_page(kuerzel, cursor, params or {})
        pages.append(page)
        if page.next_cursor is None:
            return pages
        assert page.next_cursor not in seen, "cursor loop"
        seen.add(page.next_cursor)
        cursor = page.next_cursor


# -- signing and the token gateway -------------------------------------------------------


def test_signature_reproduces_the_reference_test_vector() -> None:
    key, nonce, stamp = (
        "dGVzdC1zZWNyZXQta2V5",
        "76f895f8-3d7b-447b-825b-7b1ff67dc637",
        "2021-01-29T14:04:26.7955547Z",
    )
    message = f"64:APPID:{nonce}:{stamp}".encode()
    independent = base64.b64encode(
        hmac.new(b"test-secret-key", message, hashlib.sha512).digest()
    ).decode()
    literal = (
        "oLmuLn882+BK8JP1TQoLl71mOjYeRtzQhr6taPI91rKT7bYrlZArcKXT7EokaqjwmQLJcdIbeX9rIbhRAlu8+w=="
    )
    assert independent == literal
    assert sign(key, 64, "APPID", nonce, stamp) == literal
    assert len(literal) == 88
    with pytest.raises(ValueError):
        sign("not base64 !!", 64, "APPID", nonce, stamp)


async def test_gateway_checks_signature_nonce_clock_and_login(sim: Sim) -> None:
    def body(**over: Any) -> dict[str, Any]:
        stamp, nonce = request_timestamp(), str(uuid.uuid4())
        values = {
            "AppID": APP_ID,
            "Kanzlei": KANZLEI,
            "Database": DATABASE,
            "User": USER,
            "Role": 2,
            "Product": 64,
            "Password": PASSWORD,
            "Nonce": nonce,
            "RequestTimeStamp": stamp,
            "HMAC512Signature": sign(API_KEY, 64, APP_ID, nonce, stamp),
        }
        values.update(over)
        return values

    async with httpx.AsyncClient(base_url=sim.url) as http:
        good = body()
        first = await http.post("/api/v1/Token", json=good)
        assert first.status_code == 200
        token = first.json()
        assert token["token_type"] == "bearer" and token["expires_in"] == 3300
        assert token["expiration_utc"].endswith("Z") and len(token["access_token"]) > 20

        replay = await http.post("/api/v1/Token", json=good)
        assert replay.status_code == 401 and "Nonce" in replay.json()["Message"]

        stale_stamp = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S+0000")
        nonce = str(uuid.uuid4())
        stale = await http.post(
            "/api/v1/Token",
            json=body(
                Nonce=nonce,
                RequestTimeStamp=stale_stamp,
                HMAC512Signature=sign(API_KEY, 64, APP_ID, nonce, stale_stamp),
            ),
        )
        assert stale.status_code == 401 and "Zeitfenster" in stale.json()["Message"]

        forged = await http.post(
            "/api/v1/Token", json=body(HMAC512Signature=base64.b64encode(b"x" * 64).decode())
        )
        assert forged.status_code == 401 and "Signatur" in forged.json()["Message"]

        wrong_pw = await http.post("/api/v1/Token", json=body(Password="nope"))
        assert wrong_pw.status_code == 401
        assert wrong_pw.json()["Message"] == "Falscher Name oder falsches Kennwort"

        missing = await http.post("/api/v1/Token", json={"AppID": APP_ID})
        assert missing.status_code == 400

        # the simulator's check agrees with an independent computation
        assert (
            expected_signature(API_KEY, 64, APP_ID, "n", "t")
            == base64.b64encode(
                hmac.new(
                    base64.b64decode(API_KEY), b"64:" + APP_ID.encode() + b":n:t", hashlib.sha512
                ).digest()
            ).decode()
        )

        no_token = await http.get("/api/v1/advonet/Employees")
        bearer = await http.get(
            "/api/v1/advonet/Employees",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
    assert no_token.status_code == 401
    assert bearer.status_code == 200 and {e["kuerzel"] for e in bearer.json()} == {
        "SB",
        "AI",
        "RO",
        "XY",
    }


# -- tokens: cached, shared, replaced ----------------------------------------------------


async def test_one_token_for_many_concurrent_calls(sim: Sim, connector: AdvowareConnector) -> None:
    sim.state.add("SB", at(2, 11), at(2, 11, 10))
    sim.state.latency_ms = 30  # keep the calls overlapping
    pages = await asyncio.gather(*(connector.fetch_page("SB", None, {}) for _ in range(10)))
    assert all(len(p.records) == 1 for p in pages)
    assert sim.state.requests["POST /api/v1/Token"] == 1
    assert sim.state.requests["GET /api/v1/advonet/Termine"] == 10
    await connector.list_partitions({})
    assert sim.state.requests["POST /api/v1/Token"] == 1  # reused, not per call
    assert sim.state.statuses[401] == 0


async def test_expired_token_is_replaced_and_the_call_succeeds(sim: Sim) -> None:
    frnr = sim.state.add("SB", at(2, 11), at(2, 11, 10))
    sim.state.token_ttl_seconds = 1.0
    conn = make_connector(sim)
    try:
        assert (await conn.lookup("SB", [str(frnr)], {}))[0].record is not None
        await asyncio.sleep(1.2)  # the token expired while the worker was idle
        assert (await conn.lookup("SB", [str(frnr)], {}))[0].record is not None
        assert sim.state.requests["POST /api/v1/Token"] == 2

        # revoked before the client thinks it is due: 401, one new token, retried once
        sim.state.token_ttl_seconds = 3300.0
        await conn.lookup("SB", [str(frnr)], {})
        tokens = sim.state.requests["POST /api/v1/Token"]
        sim.state.revoke_tokens()
        found = await asyncio.gather(*(conn.lookup("SB", [str(frnr)], {}) for _ in range(5)))
        assert all(f[0].record is not None for f in found)
        assert sim.state.requests["POST /api/v1/Token"] == tokens + 1
        assert sim.state.statuses[401] == 5
    finally:
        await conn.aclose()


async def test_token_rejected_again_after_renewal_is_permanent(sim: Sim) -> None:
    sim.state.token_ttl_seconds = 0.0  # every token is dead on arrival
    conn = make_connector(sim)
    try:
        with pytest.raises(PermanentError) as err:
            await conn.list_partitions({})
        token = conn.client.auth.current
    finally:
        await conn.aclose()
    assert "ADVOWARE_USER" in str(err.value)
    assert sim.state.requests["POST /api/v1/Token"] == 2 and sim.state.statuses[401] == 2
    assert token is not None and token not in repr(conn.client.auth)
    assert_no_secrets(err.value, token)


async def test_bad_api_key_is_permanent_and_leaks_nothing(
    sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_key = base64.b64encode(b"some-other-key").decode()
    conn = make_connector(sim, settings={"api_key": SecretStr(wrong_key)})
    try:
        with pytest.raises(PermanentError) as err:
            await conn.fetch_page("SB", None, {})
    finally:
        await conn.aclose()
    assert "ADVOWARE_API_KEY" in str(err.value) and "401" in str(err.value)
    assert_no_secrets(err.value, wrong_key)
    assert sim.state.requests["GET /api/v1/advonet/Termine"] == 0

    garbled = make_connector(sim, settings={"api_key": SecretStr("kein base64 !!")})
    try:
        with pytest.raises(PermanentError, match="ADVOWARE_API_KEY") as err:
            await garbled.list_partitions({})
    finally:
        await garbled.aclose()
    assert_no_secrets(err.value, "kein base64 !!")
    assert sim.state.requests["POST /api/v1/Token"] == 1  # the garbled key never left
    assert all(s not in caplog.text for s in (*SECRETS, wrong_key))


async def test_wrong_password_names_user_and_password(
    sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    conn = make_connector(sim, settings={"password": SecretStr("falsch-0815")})
    try:
        with pytest.raises(PermanentError) as err:
            await conn.list_partitions({})
    finally:
        await conn.aclose()
    message = str(err.value)
    assert "ADVOWARE_USER" in message and "ADVOWARE_PASSWORD" in message
    assert "Falscher Name oder falsches Kennwort" in message
    assert_no_secrets(err.value, "falsch-0815")
    assert "falsch-0815" not in caplog.text
    assert sim.state.requests["GET /api/v1/advonet/Employees"] == 0

    other_kanzlei = make_connector(sim, settings={"kanzlei": "ANDERE"})
    try:
        with pytest.raises(PermanentError, match="ADVOWARE_KANZLEI"):
            await other_kanzlei.list_partitions({})
    finally:
        await other_kanzlei.aclose()


async def test_discovery_by_kanzlei(sim: Sim) -> None:
    frnr = sim.state.add("SB", at(2, 11), at(2, 11, 10))
    discovery = f"{sim.url}/AdvonetConfigurator/api/Url"
    conn = make_connector(
        sim,
        settings={
            "api_url": None,
            "security_url": "http://127.0.0.1:9/",
            "discovery_url": discovery,
        },
    )
    try:
        page, _ = await asyncio.gather(conn.fetch_page("SB", None, {}), conn.list_partitions({}))
    finally:
        await conn.aclose()
    assert [r.key for r in page.records] == [str(frnr)]
    assert sim.state.requests["GET /AdvonetConfigurator/api/Url"] == 1  # cached

    unknown = make_connector(
        sim, settings={"api_url": None, "kanzlei": "NIEMAND", "discovery_url": discovery}
    )
    try:
        with pytest.raises(PermanentError, match="ADVOWARE_KANZLEI"):
            await unknown.list_partitions({})
    finally:
        await unknown.aclose()


# -- partitions --------------------------------------------------------------------------


async def test_partitions_are_active_employees_and_debug_filter(
    sim: Sim, connector: AdvowareConnector, caplog: pytest.LogCaptureFixture
) -> None:
    assert await connector.list_partitions({}) == ["SB", "AI", "RO"]  # XY is inactive

    caplog.set_level(logging.INFO)
    debug = make_connector(sim, debug_kuerzel=["sb", " RO ", "XY", "ZZ", ""])
    try:
        assert await debug.list_partitions({}) == ["SB", "RO"]
    finally:
        await debug.aclose()
    assert "filtered out 1: AI" in caplog.text
    assert "XY" in caplog.text and "ZZ" in caplog.text  # named but not active

    sim.state.pascal_case = True
    assert await connector.list_partitions({}) == ["SB", "AI", "RO"]


async def test_params_are_validated(connector: AdvowareConnector) -> None:
    for bad in (
        {"days_back": -1},
        {"days_ahead": "3"},
        {"full_content": "yes"},
        {"full_content_kuerzel": {"SB": "no"}},
        {"full_content_kuerzel": ["SB"]},
    ):
        with pytest.raises(InvalidParamsError):
            await connector.fetch_page("SB", None, bad)
    with pytest.raises(InvalidParamsError, match="YYYY-MM-DD"):
        await connector.fetch_page("SB", "next week", {})


def test_spec_is_registered_and_validates_params() -> None:
    assert REGISTRY["advoware"] is SPEC
    ok = {
        "days_back": 7,
        "days_ahead": 60,
        "full_content": False,
        "full_content_kuerzel": {"SB": True},
    }
    assert SPEC.validate_params(ok) == ok
    assert SPEC.validate_params({}) == {}
    with pytest.raises(InvalidParamsError, match="days_back"):
        SPEC.validate_params({"days_back": -3})
    with pytest.raises(InvalidParamsError, match="kuerzel"):
        SPEC.validate_params({"kuerzel": "SB"})


async def test_build_advoware_names_missing_settings(sim: Sim) -> None:
    bare = Settings(advoware=adv_settings(sim.url, app_id=None, password=None))
    with pytest.raises(NotConfiguredError) as err:
        build_advoware(bare)
    assert "ADVOWARE_APP_ID" in str(err.value) and "ADVOWARE_PASSWORD" in str(err.value)
    assert "ADVOWARE_USER" not in str(err.value)
    nowhere = Settings(advoware=adv_settings(sim.url, api_url=None))
    with pytest.raises(NotConfiguredError, match="ADVOWARE_API_URL"):
        build_advoware(nowhere)

    settings = Settings(
        advoware=adv_settings(
            sim.url, days_back=3, days_ahead=10, page_days=7, debug_kuerzel="SB, AI"
        ),
        kafka=KafkaSettings(advoware_topic="kanzlei.termine"),
    )
    conn = build_advoware(settings)
    try:
        assert (conn.source, conn.topic, conn.partition_noun) == (
            "advoware",
            "kanzlei.termine",
            "employee",
        )
        assert (conn.days_back, conn.days_ahead, conn.page_days) == (3, 10, 7)
        assert await conn.list_partitions({}) == ["SB", "AI"]
    finally:
        await conn.aclose()


# -- pages -------------------------------------------------------------------------------


async def test_chunks_cover_the_window_exactly_once(sim: Sim, connector: AdvowareConnector) -> None:
    first, last = WINDOW
    assert first == date(2026, 2, 8)  # chunks on the 31-day grid: Feb 8 - 22, Feb 23 - ...
    midnight = datetime.min.time()
    st = sim.state
    expected = {
        st.add("SB", at(2, 8), at(2, 8, 10)),  # first day of the window
        st.add("SB", at(2, 1), at(2, 20, 18), abwesenheit=1),  # begun before the window
        st.add("SB", at(2, 10, 8), at(2, 10, 9)),
        st.add("SB", at(3, 10, 17), at(3, 12, 12)),  # spans a chunk boundary
        st.add("SB", at(3, 13), at(3, 13, 10)),
        st.add("SB", at(7, 1), at(7, 1, 11)),
        st.add(
            "SB",
            datetime.combine(last, midnight),
            datetime.combine(last, midnight) + timedelta(hours=1),
        ),
        st.add(
            "SB",
            at(2, 2),
            at(2, 2, 10),
            dauertermin=1,
            turnus=1,
            turnusArt=2,
            until=date(2026, 6, 30),
        ),  # a series begun before the window
    }
    st.add("SB", at(2, 1), at(2, 7, 10))  # ended before the window
    after = datetime.combine(last + timedelta(days=1), midnight)
    st.add("SB", after, after + timedelta(hours=2))  # starts after it
    st.add("AI", at(2, 12), at(2, 12, 10))  # another employee's

    pages = await all_pages(connector, "sb")
    keys = [r.key for p in pages for r in p.records]
    assert len(keys) == len(set(keys)), "an appointment was published twice"
    assert set(keys) == {str(k) for k in expected}
    assert len(pages) == -(-((last - first).days + 1) // 31) + 1 == 14  # partial first, last
    assert all(p.stable and not p.malformed for p in pages)
    assert {r.partition for p in pages for r in p.records} == {"SB"}
    # the chunk requests tile the window: from=first ... to=last, no gaps, no overlap
    assert st.requests["GET /api/v1/advonet/Termine"] == 14


async def test_page_digest_skips_parsing_until_something_changes(
    sim: Sim, connector: AdvowareConnector
) -> None:
    frnr = sim.state.add("SB", at(2, 11), at(2, 11, 10))
    page = await connector.fetch_page("SB", None, {})
    assert page.raw_digest and not page.unchanged
    again = await connector.fetch_page("SB", None, {}, page.raw_digest)
    assert again.unchanged and again.records == [] and again.next_cursor == page.next_cursor
    redacted = await connector.fetch_page("SB", None, {"full_content": False}, page.raw_digest)
    assert not redacted.unchanged  # the content mode shapes the records
    sim.state.change(frnr, text="Verlegt")
    changed = await connector.fetch_page("SB", None, {}, page.raw_digest)
    assert not changed.unchanged and changed.records[0].data["subject"] == "Verlegt"


async def test_published_shape_and_both_casings(sim: Sim, connector: AdvowareConnector) -> None:
    frnr = sim.state.add(
        "SB",
        at(2, 11, 9),
        at(2, 11, 10, 30),
        text="Mandantengespräch Müller",
        notiz="Akte mitbringen",
        ort="Besprechungsraum 1",
        nr=1203,
        azRubrum="12/26 Müller ./. Meier",
        zuletztGeaendertAm=datetime(2026, 2, 1, 8, 12, 44, 123000),
    )
    series = sim.state.add(
        "SB",
        at(2, 12, 8),
        at(2, 12, 8, 30),
        dauertermin=1,
        turnus=1,
        turnusArt=2,
        until=date(2026, 5, 28),
    )
    absence = sim.state.add("SB", at(2, 16, 0), at(2, 20, 23, 59), abwesenheit=1, text="Urlaub")
    sim.state.add("SB", at(2, 11, 12), at(2, 11, 13), frnr=-7, text="Feiertag")

    camel = await connector.fetch_page("SB", None, {})
    sim.state.pascal_case = True
    assert "FrNr" in sim.state.appointments("SB")[0]
    pascal = await connector.fetch_page("SB", None, {})
    assert [r.model_dump() for r in camel.records] == [r.model_dump() for r in pascal.records]

    records = {r.key: r.data for r in camel.records}
    assert set(records) == {str(frnr), str(series), str(absence)}  # -7 skipped
    assert records[str(frnr)] == {
        "frNr": frnr,
        "kuerzel": "SB",
        "start": "2026-02-11T09:00:00",
        "end": "2026-02-11T10:30:00",
        "timezone": "Europe/Berlin",
        "all_day": False,
        "recurrence": {"dauertermin": False, "turnus": 0, "turnusArt": 0, "until": None},
        "private": False,
        "last_modified": "2026-02-01T08:12:44.123",
        "content_redacted": False,
        "subject": "Mandantengespräch Müller",
        "notes": "Akte mitbringen",
        "location": "Besprechungsraum 1",
        "case": {"nr": 1203, "rubrum": "12/26 Müller ./. Meier"},
    }
    assert records[str(series)]["recurrence"] == {
        "dauertermin": True,
        "turnus": 1,
        "turnusArt": 2,
        "until": "2026-05-28",
    }
    assert records[str(series)]["end"] == "2026-02-12T08:30:00"
    assert records[str(absence)]["all_day"] is True
    assert (records[str(absence)]["start"], records[str(absence)]["end"]) == (
        "2026-02-16T00:00:00",
        "2026-02-20T23:59:00",
    )


async def test_seeded_system_entries_are_skipped(sim: Sim, connector: AdvowareConnector) -> None:
    first, last = WINDOW
    created = sim.state.seed(4, 30, first, last, seed=3)
    raw_negative = [t for t in sim.state.appointments("SB") if t["frNr"] < 0]
    assert raw_negative, "the seed includes system entries"
    pages = await all_pages(connector, "SB")
    keys = {r.key for p in pages for r in p.records}
    assert keys == {str(t["frNr"]) for t in sim.state.appointments("SB") if t["frNr"] > 0}
    assert all(int(k) > 0 for k in keys) and keys <= {str(c) for c in created}


async def test_content_is_redacted_when_not_published(
    sim: Sim, connector: AdvowareConnector
) -> None:
    first, last = WINDOW
    sim.state.seed(3, 40, first, last, seed=11)
    private = sim.state.add(
        "SB",
        at(2, 11, 7),
        at(2, 11, 8),
        privat=1,
        text="Arzttermin Dr. Geheim",
        notiz="Befund",
        ort="Praxis",
    )
    secret_words = {"Arzttermin Dr. Geheim", "Befund", "Praxis"}
    bad = sim.state.add("SB", at(2, 12), at(2, 12, 10), text="Kaputt Geheimsache", notiz="Interna")
    sim.state.malformed_frnr = {bad}

    lean = await all_pages(connector, "SB", {"full_content": False})
    contents = {
        w
        for t in sim.state.appointments("SB")
        for w in (t["text"], t["notiz"], t["ort"], t["azRubrum"])
        if w
    }
    assert contents and {"Kaputt Geheimsache", "Interna"} <= contents
    for page in lean:
        for record in page.records:
            assert record.data["content_redacted"] is True
            assert not {"subject", "notes", "location", "case"} & set(record.data)
        blob = json.dumps(
            [r.data for r in page.records] + [m.model_dump() for m in page.malformed],
            ensure_ascii=False,
        )
        assert not [w for w in contents if w in blob]
    assert sum(len(p.malformed) for p in lean) == 1

    full = await all_pages(connector, "SB")
    records = {r.key: r.data for p in full for r in p.records}
    assert (
        records[str(private)]["private"] is True
        and records[str(private)]["content_redacted"] is True
    )
    assert not {"subject", "notes", "location", "case"} & set(records[str(private)])
    assert not [w for w in secret_words if w in json.dumps(records, ensure_ascii=False)]
    public = [d for d in records.values() if not d["private"]]
    assert public and all("subject" in d and d["content_redacted"] is False for d in public)

    per_employee = await connector.fetch_page(
        "SB", None, {"full_content": True, "full_content_kuerzel": {"sb": False}}
    )
    assert all(r.data["content_redacted"] for r in per_employee.records)
    lean_conn = make_connector(sim, full_content=False)
    try:
        opt_in = await lean_conn.fetch_page("SB", None, {"full_content_kuerzel": {"SB": True}})
    finally:
        await lean_conn.aclose()
    assert any(not r.data["content_redacted"] for r in opt_in.records)


async def test_malformed_appointment_is_reported_and_the_rest_flow(
    sim: Sim, connector: AdvowareConnector
) -> None:
    ok1 = sim.state.add("SB", at(2, 11, 8), at(2, 11, 9))
    bad = sim.state.add("SB", at(2, 11, 9), at(2, 11, 10))
    ok2 = sim.state.add("SB", at(2, 11, 10), at(2, 11, 11))
    sim.state.malformed_frnr = {bad}

    page = await connector.fetch_page("SB", None, {})
    assert [r.key for r in page.records] == [str(ok1), str(ok2)]
    assert len(page.malformed) == 1
    broken = page.malformed[0]
    assert broken.key == str(bad) and "datum" in broken.reason and "morgen früh" in broken.reason
    assert broken.raw["frNr"] == bad

    sim.state.malformed_style = "missing_datum"
    sim.state.pascal_case = True
    page = await connector.fetch_page("SB", None, {})
    assert [m.key for m in page.malformed] == [str(bad)] and "datum" in page.malformed[0].reason
    assert len(page.records) == 2
    # lookups leave a malformed appointment unresolved rather than calling it deleted
    assert await connector.lookup("SB", [str(bad)], {}) == []


# -- errors ------------------------------------------------------------------------------


async def test_employee_not_enabled_is_permanent_for_that_employee(
    sim: Sim, connector: AdvowareConnector
) -> None:
    sim.state.add("AI", at(2, 11), at(2, 11, 10))
    sim.state.fail_kuerzel = {"RO"}
    with pytest.raises(PermanentError) as err:
        await connector.fetch_page("RO", None, {})
    message = str(err.value)
    assert "RO" in message and "nicht freigeschaltet" in message and "ADVOWARE_USER" in message
    assert err.value.setting == "ADVOWARE_USER"
    assert_no_secrets(err.value)
    assert len((await connector.fetch_page("AI", None, {})).records) == 1  # others go on


async def test_offline_connector_and_server_errors_are_retryable(
    sim: Sim, connector: AdvowareConnector
) -> None:
    sim.state.connector_offline = True
    with pytest.raises(RetryableError, match="nicht angemeldet") as err:
        await connector.fetch_page("SB", None, {})
    assert "503" in str(err.value)
    assert_no_secrets(err.value)
    sim.state.connector_offline = False
    await connector.fetch_page("SB", None, {})

    sim.state.error_rate = 1.0
    with pytest.raises(RetryableError, match="500"):
        await connector.lookup("SB", ["48001"], {})
    sim.state.error_rate = 0.0

    sim.state.latency_ms = 400
    slow = make_connector(sim, settings={"timeout_seconds": 0.1})
    try:
        with pytest.raises(RetryableError, match="timed out") as err:
            await slow.list_partitions({})
    finally:
        await slow.aclose()
    assert_no_secrets(err.value)
    sim.state.latency_ms = 0

    nowhere = make_connector(
        sim,
        settings={
            "api_url": f"http://127.0.0.1:{free_port()}/",
            "security_url": f"http://127.0.0.1:{free_port()}/",
        },
    )
    try:
        with pytest.raises(RetryableError, match="ConnectError") as err:
            await nowhere.fetch_page("SB", None, {})
    finally:
        await nowhere.aclose()
    assert_no_secrets(err.value)


# -- point lookups -----------------------------------------------------------------------


async def test_lookup_follows_reassignment_and_reports_deletions(
    sim: Sim, connector: AdvowareConnector
) -> None:
    moved = sim.state.add("SB", at(2, 11), at(2, 11, 10), text="Übergabe")
    gone = sim.state.add("SB", at(2, 12), at(2, 12, 10))
    far = sim.state.add("SB", at(2, 13), at(2, 13, 10))
    before = sim.state.appointment(moved)
    sim.state.reassign(moved, "AI")
    sim.state.delete(gone)
    sim.state.move(far, at(9, 1, 10, year=2027))  # outside every window now

    found = {
        item.key: item
        for item in await connector.lookup(
            "SB", [str(moved), str(gone), str(far), "9999999", "abc"], {}
        )
    }
    assert set(found) == {str(moved), str(gone), str(far), "9999999", "abc"}
    record = found[str(moved)].record
    assert record is not None and record.partition == "AI" and record.data["kuerzel"] == "AI"
    assert record.data["subject"] == "Übergabe"
    assert before is not None and record.data["last_modified"] != before["zuletztGeaendertAm"]
    far_record = found[str(far)].record
    assert far_record is not None and far_record.data["start"] == "2027-09-01T10:00:00"
    assert found[str(gone)].record is None and found["9999999"].record is None
    assert found["abc"].record is None
    assert sim.state.requests["GET /api/v1/advonet/Termine?frnr"] == 4  # "abc" never asked

    lean = await connector.lookup("SB", [str(moved)], {"full_content_kuerzel": {"AI": False}})
    assert lean[0].record is not None and lean[0].record.data["content_redacted"] is True


async def test_lookup_concurrency_is_bounded(sim: Sim) -> None:
    keys = [str(sim.state.add("SB", at(2, 11, 8 + i), at(2, 11, 9 + i))) for i in range(6)]
    sim.state.latency_ms = 60
    conn = make_connector(sim, lookup_concurrency=2)
    try:
        found = await conn.lookup("SB", keys, {})
    finally:
        await conn.aclose()
    assert len(found) == 6 and all(item.record is not None for item in found)
    assert sim.state.peak_in_flight == 2


# -- simulator ---------------------------------------------------------------------------


def test_seed_is_deterministic_and_realistic() -> None:
    first, last = WINDOW
    a, b, c = AdvowareState(), AdvowareState(), AdvowareState()
    ids = a.seed(12, 25, first, last, seed=42)
    assert b.seed(12, 25, first, last, seed=42) == ids
    assert a.appointments() == b.appointments() and a.employees() == b.employees()
    c.seed(12, 25, first, last, seed=43)
    assert c.appointments() != a.appointments()

    employees = a.employees()
    codes = [e["kuerzel"] for e in employees]
    assert codes[:3] == ["SB", "AI", "RO"] and len(set(codes)) == 12
    assert all(2 <= len(code) <= 3 and code.isalpha() and code.isupper() for code in codes)
    assert any(not e["aktiv"] for e in employees)
    termine = [t for t in a.appointments() if t["frNr"] > 0]
    assert len(termine) == 12 * 25 and len(ids) == len(set(ids))
    assert any(t["privat"] for t in termine) and any(t["abwesenheit"] for t in termine)
    assert any(t["dauertermin"] and t["turnusArt"] for t in termine)
    assert any(t["frNr"] < 0 for t in a.appointments())
    assert all(first.isoformat() <= t["datum"][:10] <= last.isoformat() for t in termine)


async def test_admin_endpoints_drive_the_same_state(sim: Sim) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as http:
        knobs = (
            await http.post("/_admin/knobs", json={"latency_ms": 5, "fail_kuerzel": ["ai"]})
        ).json()
        assert knobs["latency_ms"] == 5 and sim.state.fail_kuerzel == {"AI"}
        assert (await http.post("/_admin/knobs", json={"nope": 1})).status_code == 400

        seeded = await http.post(
            "/_admin/seed",
            json={
                "n_employees": 3,
                "appointments_per_employee": 2,
                "start": "2026-02-01",
                "end": "2026-02-28",
            },
        )
        assert len(seeded.json()["frnrs"]) == 6

        added = await http.post(
            "/_admin/termine",
            json={
                "kuerzel": "SB",
                "start": "2026-02-11T09:00:00",
                "end": "2026-02-11T10:00:00",
                "text": "Neu",
            },
        )
        frnr = added.json()["termin"]["frNr"]
        assert added.json()["termin"]["uhrzeitBis"] == "10:00:00"
        patched = await http.patch(f"/_admin/termine/{frnr}", json={"text": "Geändert"})
        assert patched.json()["termin"]["text"] == "Geändert"
        moved = await http.post(
            f"/_admin/termine/{frnr}/move", json={"start": "2026-02-12T14:00:00"}
        )
        assert moved.json()["termin"]["uhrzeitBis"] == "15:00:00"
        reassigned = await http.post(f"/_admin/termine/{frnr}/reassign", json={"kuerzel": "ai"})
        assert reassigned.json()["termin"]["anwalt"] == "AI"
        listed = (await http.get("/_admin/termine", params={"kuerzel": "AI"})).json()["termine"]
        assert frnr in [t["frNr"] for t in listed]
        assert (await http.delete(f"/_admin/termine/{frnr}")).status_code == 204
        assert (await http.delete(f"/_admin/termine/{frnr}")).status_code == 404

        stats = (await http.get("/_admin/stats")).json()
        assert stats["termine"] == 6 + 3 and stats["employees"] == 3  # + one system entry each
        assert (await http.post("/_admin/revoke")).status_code == 204
    assert sim.state.requests["GET /api/v1/advonet/Termine"] == 0  # admin calls are not API calls


def test_sim_query_by_range_is_inclusive_and_by_owner() -> None:
    state = AdvowareState()
    inside = state.add("SB", at(2, 10, 23), at(2, 11, 1))
    state.add("AI", at(2, 10), at(2, 10, 10))
    state.add("SB", at(2, 12), at(2, 12, 10))
    assert [t["frNr"] for t in state.list_termine("sb", date(2026, 2, 11), date(2026, 2, 11))] == [
        inside
    ]
