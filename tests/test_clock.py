"""The clock plumbing: connectors and simulators take "now" from ``models.clock``.

A ``FileClock`` lets another process (the soak harness) move the worker's "now"; these tests
move it by rewriting the file and check that the WIW and Advoware windows and the simulators'
change stamps follow, with no wall clock involved.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.advoware.client import AdvowareClient
from connectors.advoware.connector import AdvowareConnector
from connectors.wiw.client import WiwClient
from connectors.wiw.connector import WiwConnector
from models import clock
from settings import AdvowareSettings, WiwSettings
from simulators.advoware import AdvowareState
from simulators.wiw import WiwState

FAR = datetime(2031, 3, 9, 23, 30, tzinfo=UTC)
"""Years away from any wall clock, so a connector still on the wall clock is noticed."""


@pytest.fixture
def file_clock(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "now"
    clock.FileClock.write(path, FAR)
    before = clock.default_clock()
    installed = clock.install_from_env({clock.CLOCK_FILE_ENV: str(path)})
    assert isinstance(installed, clock.FileClock)
    try:
        yield path
    finally:
        clock.set_default_clock(before)


async def test_wiw_window_follows_the_file_clock(file_clock: Path) -> None:
    conn = WiwConnector(WiwClient(WiwSettings(api_url="http://127.0.0.1:9")), topic="t")
    try:
        assert await conn.list_partitions({}) == ["2031-03-09", "2031-03-10"]
        clock.FileClock.write(file_clock, FAR + timedelta(days=2))
        assert await conn.list_partitions({}) == ["2031-03-11", "2031-03-12"]
    finally:
        await conn.aclose()


async def test_advoware_window_is_today_in_berlin_from_the_file_clock(file_clock: Path) -> None:
    conn = AdvowareConnector(
        AdvowareClient(
            AdvowareSettings(
                api_url="http://127.0.0.1:9/",
                app_id="A",
                api_key=SecretStr("a2V5"),
                kanzlei="K",
                database="D",
                user="U",
                password=SecretStr("p"),
            )
        ),
        topic="t",
        days_back=1,
        days_ahead=2,
    )
    try:
        # 23:30 UTC is already the next day in Berlin
        assert conn.window({}) == (date(2031, 3, 9), date(2031, 3, 12))
    finally:
        await conn.aclose()


def test_simulators_stamp_changes_with_the_clock(file_clock: Path) -> None:
    wiw = WiwState(timezone="UTC")
    sid = wiw.add("2031-03-10T08:00:00+00:00", "2031-03-10T12:00:00+00:00")
    clock.FileClock.write(file_clock, FAR + timedelta(hours=5))
    changed = wiw.change(sid, notes="x")
    assert changed["updated_at"] == "Mon, 10 Mar 2031 04:30:00 +0000"
    adv = AdvowareState()
    frnr = adv.add("SB", datetime(2031, 3, 10, 9), datetime(2031, 3, 10, 10))
    assert adv.appointment(frnr)["zuletztGeaendertAm"] == "2031-03-10T04:30:00.000"  # type: ignore[index]
    clock.FileClock.write(file_clock, FAR + timedelta(hours=6))
    assert adv.change(frnr, text="y")["zuletztGeaendertAm"] == "2031-03-10T05:30:00.000"


def test_a_bad_clock_file_names_the_variable(tmp_path: Path) -> None:
    bad = tmp_path / "now"
    bad.write_text("tomorrow")
    with pytest.raises(ValueError, match="SYNCHUB_CLOCK_FILE"):
        clock.FileClock(bad)
    with pytest.raises(ValueError, match="SYNCHUB_CLOCK_FILE"):
        clock.FileClock(tmp_path / "missing")
