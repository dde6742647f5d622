"""Kaufland order units against the Kaufland simulator over real HTTP, on an injected clock.

No Temporal here: each test drives whole passes of ``fetch_page`` the way the partition
workflow does (cursor by cursor, checkpoint stored at the end), so the overlap rule, ties,
paging and the error types are checked in a few seconds each.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.kaufland.client import KauflandAuthError, KauflandRetryableError
from connectors.kaufland.connector import KauflandOrdersConnector, connector_from
from connectors.kaufland.settings import KauflandSettings
from models.clock import ManualClock
from models.errors import NotConfiguredError
from simulators.kaufland import SIM_CLIENT_KEY, SIM_SECRET_KEY, KauflandState, make_sim_app
from simulators.server import ThreadedServer

pytestmark = pytest.mark.asyncio(loop_scope="session")
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[KauflandState, ThreadedServer, ManualClock]]:
    clock = ManualClock(T0)
    state, app = make_sim_app(clock=clock)
    server = ThreadedServer(app).start()
    yield state, server, clock
    server.stop()


@pytest.fixture
def sim(served) -> Iterator[tuple[KauflandState, ThreadedServer, ManualClock]]:
    state, server, clock = served
    state.reset()
    clock.set(T0)
    yield state, server, clock
    state.reset()


def settings(server: ThreadedServer, **kw: Any) -> KauflandSettings:
    values: dict[str, Any] = {
        "client_key": SecretStr(SIM_CLIENT_KEY),
        "secret_key": SecretStr(SIM_SECRET_KEY),
        "storefronts": ["de", "cz"],
        "api_url": f"{server.url}/v2",
        **kw,
    }
    return KauflandSettings(**values)


def connector(sim, *, skew: float = 0.0, **kw: Any) -> KauflandOrdersConnector:
    _, server, clock = sim
    return connector_from(settings(server, **kw), clock=lambda: clock.now().timestamp() + skew)


async def run_pass(
    conn: KauflandOrdersConnector, checkpoint: str | None, storefront: str = "de", **params: Any
) -> tuple[list[str], str | None, int, list[Any]]:
    """One pass as the partition workflow runs it: keys read, checkpoint, list calls."""
    keys: list[str] = []
    malformed: list[Any] = []
    calls = 0
    cursor: str | None = None
    stored = checkpoint
    for _ in range(1000):
        page = await conn.fetch_page(storefront, cursor, params, checkpoint=checkpoint)
        keys += [r.key for r in page.records]
        malformed += page.malformed
        calls += page.requests
        cursor = page.next_cursor
        if cursor is None:
            stored = page.checkpoint or stored
            return keys, stored, calls, malformed
    raise AssertionError("pass did not end")


async def test_first_pass_pages_through_every_unit_once(sim) -> None:
    state, _, _ = sim
    ids = state.add_units(250, at=T0.timestamp() - 3600, seed=1)
    state.add_units(5, storefront="cz", at=T0.timestamp() - 60)
    for i, uid in enumerate(ids[:120]):
        state.change([uid], status="need_to_be_sent", at=T0.timestamp() - 3000 + i)
    conn = connector(sim)
    try:
        keys, checkpoint, calls, _ = await run_pass(conn, None)
    finally:
        await conn.aclose()
    assert sorted(keys) == sorted(str(i) for i in ids)
    assert len(keys) == len(set(keys)) == 250
    assert checkpoint == str(int(T0.timestamp()) - 3000 + 119)  # newest second read
    # 130 units share the oldest second: 2 calls read it whole, 2 more skip past it (the
    # next request starts one second early, in case "from" is exclusive), then 2 for the rest
    assert 3 <= calls <= 6, calls


async def test_no_change_pass_rereads_only_the_overlap(sim) -> None:
    state, _, clock = sim
    old = state.add_units(20, at=T0.timestamp() - 7200)
    recent = state.add_units(30, at=T0.timestamp() - 3600)
    conn = connector(sim, orders_overlap_seconds=600)
    try:
        _, checkpoint, _, _ = await run_pass(conn, None)
        clock.advance(timedelta(minutes=5))
        keys, again, calls, _ = await run_pass(conn, checkpoint)
    finally:
        await conn.aclose()
    # the checkpoint is the newest change read; the overlap re-reads what changed in the
    # 600 s before it (fingerprints keep it from being published again), nothing older
    assert sorted(keys) == sorted(str(i) for i in recent) and old
    assert again == checkpoint and calls == 1


@pytest.mark.parametrize(("overlap", "read_late"), [(0, False), (600, True)])
async def test_list_lag_is_covered_by_the_overlap(sim, overlap: int, read_late: bool) -> None:
    """Changes stamped before the checkpoint but listed 60 s late are read by the next pass.

    Without the overlap (0) they are lost for good: the checkpoint moved past their second
    on a unit listed at once. That case is the one the overlap exists for.
    """
    state, _, clock = sim
    ids = state.add_units(10, at=T0.timestamp() - 3600)
    state.set_knobs(list_lag_seconds=60)
    state.change(ids[:4], status="sent")  # stamped T0, listed from T0 + 60
    state.set_knobs(list_lag_seconds=0)
    clock.advance(timedelta(seconds=30))
    newest = state.add_units(1)  # stamped T0 + 30, listed at once
    conn = connector(sim, orders_overlap_seconds=overlap)
    try:
        keys, checkpoint, _, _ = await run_pass(conn, str(int(T0.timestamp()) - 100))
        assert keys == [str(newest[0])]
        assert checkpoint == str(int(T0.timestamp()) + 30)
        clock.advance(timedelta(seconds=90))  # the lagged changes are listed now
        keys, _, _, _ = await run_pass(conn, checkpoint)
    finally:
        await conn.aclose()
    assert ({str(i) for i in ids[:4]} <= set(keys)) is read_late, keys


async def test_clock_skew_does_not_lose_changes(sim) -> None:
    """Kaufland's clock 200 s behind the worker: changes after a pass are read by the next."""
    state, _, clock = sim
    state.set_knobs(clock_offset_seconds=-200)
    ids = state.add_units(20)
    conn = connector(sim, orders_overlap_seconds=0)  # the checkpoint alone must be right
    try:
        _, checkpoint, _, _ = await run_pass(conn, None)
        clock.advance(timedelta(seconds=5))
        state.change(ids[:7], status="sent")
        keys, _, _, _ = await run_pass(conn, checkpoint)
    finally:
        await conn.aclose()
    assert {str(i) for i in ids[:7]} <= set(keys)  # plus the checkpoint's second, re-read
    assert int(checkpoint or 0) <= int(clock.now().timestamp()) - 200  # Kaufland's time


@pytest.mark.parametrize("inclusive", [True, False])
async def test_ties_in_unstable_order_are_read_whole(sim, inclusive: bool) -> None:
    """260 units changed in one second, shuffled on every request, none skipped."""
    state, _, _ = sim
    ids = state.add_units(300, at=T0.timestamp() - 3600, seed=3)
    tied_at = T0.timestamp() - 100
    state.change(ids[:260], status="sent", at=tied_at)
    state.set_knobs(unstable_ties=True, from_inclusive=inclusive)
    conn = connector(sim)
    try:
        keys, checkpoint, calls, _ = await run_pass(conn, None)
    finally:
        await conn.aclose()
    assert sorted(set(keys)) == sorted(str(i) for i in ids)
    assert checkpoint == str(int(tied_at))
    assert calls < 40, calls


async def test_sort_ignored_falls_back_to_a_scan(sim) -> None:
    state, _, _ = sim
    ids = state.add_units(230, at=T0.timestamp() - 3600, seed=4)
    state.change(ids[50:90], status="sent", at=T0.timestamp() - 50)
    state.set_knobs(sort_supported=False)
    conn = connector(sim)
    try:
        keys, checkpoint, _, _ = await run_pass(conn, None)
    finally:
        await conn.aclose()
    assert sorted(set(keys)) == sorted(str(i) for i in ids)
    assert checkpoint == str(int(T0.timestamp()) - 50)


@pytest.mark.parametrize("retry_after", [None, 0.1])
async def test_429_and_5xx_are_retried(sim, retry_after: float | None) -> None:
    state, _, _ = sim
    ids = state.add_units(12, at=T0.timestamp() - 600)
    state.set_knobs(fail_next=[429, 429, 503], retry_after=retry_after)
    conn = connector(sim)
    try:
        keys, _, _, _ = await run_pass(conn, None)
    finally:
        await conn.aclose()
    assert sorted(keys) == sorted(str(i) for i in ids)
    assert state.stats()["rate_limited"] == 2


async def test_429_left_unanswered_is_retryable(sim) -> None:
    state, _, _ = sim
    state.set_knobs(fail_next=[429] * 10, retry_after=0)
    conn = connector(sim)
    try:
        with pytest.raises(KauflandRetryableError, match="HTTP 429"):
            await conn.client.list_order_units("de")
    finally:
        await conn.aclose()


@pytest.mark.parametrize("status", [401, 403])
async def test_wrong_secret_is_permanent_names_the_setting_and_hides_keys(sim, status: int) -> None:
    state, _, _ = sim
    state.set_knobs(auth_error_status=status)
    wrong = "wrongsecret" + "9" * 53
    conn = connector(sim, secret_key=SecretStr(wrong))
    try:
        with pytest.raises(KauflandAuthError) as caught:
            await run_pass(conn, None)
    finally:
        await conn.aclose()
    text = str(caught.value)
    assert f"HTTP {status}" in text and "KAUFLAND_SECRET_KEY" in text
    assert wrong not in text and SIM_CLIENT_KEY not in text and SIM_SECRET_KEY not in text
    assert (
        caught.value.__context__ is None or "httpx" not in type(caught.value.__context__).__module__
    )
    assert state.stats()["auth_refused"] == 1  # not retried


@pytest.mark.parametrize(("skew", "ok"), [(-250, True), (400, False)])
async def test_timestamp_tolerance(sim, skew: float, ok: bool) -> None:
    state, _, _ = sim
    state.add_units(3, at=T0.timestamp() - 60)
    conn = connector(sim, skew=skew)
    try:
        if ok:
            body = await conn.client.list_order_units("de")
            assert len(body["data"]) == 3
        else:
            with pytest.raises(KauflandAuthError, match="clock"):
                await conn.client.list_order_units("de")
    finally:
        await conn.aclose()


async def test_malformed_unit_is_dead_lettered_with_reason(sim) -> None:
    state, _, _ = sim
    good = state.add_units(3, at=T0.timestamp() - 60)
    bad = state.add_malformed(at=T0.timestamp() - 30)
    conn = connector(sim)
    try:
        keys, _, _, malformed = await run_pass(conn, None)
    finally:
        await conn.aclose()
    assert sorted(keys) == sorted(str(i) for i in good)
    assert [m.key for m in malformed] == [str(bad)]
    assert "id_order" in malformed[0].reason and "ts_created_iso" in malformed[0].reason


async def test_storefronts_are_partitions(sim) -> None:
    conn = connector(sim)
    try:
        assert await conn.list_partitions({}) == ["de", "cz"]
        assert await conn.list_partitions({"storefronts": ["cz"]}) == ["cz"]
        with pytest.raises(Exception, match="KAUFLAND_STOREFRONTS"):
            await conn.list_partitions({"storefronts": ["xx"]})
    finally:
        await conn.aclose()


async def test_unconfigured_names_every_missing_variable() -> None:
    with pytest.raises(NotConfiguredError) as caught:
        connector_from(KauflandSettings(client_key=SecretStr("k")))
    assert "KAUFLAND_SECRET_KEY" in str(caught.value)
    assert "KAUFLAND_STOREFRONTS" in str(caught.value)


async def test_storefronts_from_a_comma_list_and_bad_codes_named() -> None:
    assert KauflandSettings.model_validate({"storefronts": "de, CZ"}).storefronts == ["de", "cz"]
    with pytest.raises(ValueError, match="KAUFLAND_STOREFRONTS"):
        KauflandSettings.model_validate({"storefronts": "germany"})


async def test_checkpoint_stays_below_a_second_not_read_whole(sim, monkeypatch) -> None:
    """Ties that cannot all be read in the rounds allowed keep the checkpoint below them."""
    import connectors.kaufland.reading as kaufland_reading

    state, _, _ = sim
    ids = state.add_units(300, at=T0.timestamp() - 3600, seed=5)
    tied_at = int(T0.timestamp()) - 100
    state.change(ids[:260], status="sent", at=tied_at)
    state.set_knobs(unstable_ties=True)
    monkeypatch.setattr(kaufland_reading, "TIE_ROUNDS", 1)
    conn = connector(sim)
    try:
        keys, checkpoint, _, _ = await run_pass(conn, None)
        assert len(set(keys) & {str(i) for i in ids[:260]}) < 260  # one round: some missed
        assert checkpoint is not None and int(checkpoint) < tied_at
        monkeypatch.setattr(kaufland_reading, "TIE_ROUNDS", 10)
        again, checkpoint, _, _ = await run_pass(conn, checkpoint)
    finally:
        await conn.aclose()
    assert {str(i) for i in ids[:260]} <= set(keys) | set(again)
    assert checkpoint == str(tied_at)


async def test_point_read_of_a_unit_and_of_a_missing_one(sim) -> None:
    state, _, _ = sim
    uid = state.add_units(1, storefront="cz")[0]
    conn = connector(sim)
    try:
        found = await conn.client.order_unit(uid, "cz")
        assert found is not None and found["id_order_unit"] == uid
        assert await conn.client.order_unit(1, "cz") is None
    finally:
        await conn.aclose()


async def test_registered_with_its_settings_schedule_and_simulator() -> None:
    """One registry line brings everything: section, schedule, simulator, partition check."""
    from connectors import REGISTRY
    from connectors.kaufland.connector import SPEC
    from connectors.schedules import schedule_definitions
    from settings import Settings

    assert REGISTRY["kaufland-orders"] is SPEC
    assert SPEC.settings is KauflandSettings and SPEC.simulator == "simulators.kaufland"
    settings = Settings().with_sections(
        KauflandSettings(storefronts=["de"], orders_interval_minutes=7)
    )
    (schedule,) = schedule_definitions(settings, ["kaufland-orders"])
    assert schedule.every == timedelta(minutes=7) and schedule.overlap == "skip"
    assert SPEC.validate_partitions(["de"], settings) == ["de"]
    with pytest.raises(Exception, match="KAUFLAND_STOREFRONTS"):
        SPEC.validate_partitions(["cz"], settings)
