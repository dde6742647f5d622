"""Schedules come from the connector registry, and stay exactly what running deployments have.

``schedules apply`` updates schedules in place by id, so an id, a workflow id suffix or an
interval that changed would leave a deployment with a duplicate schedule or a changed cadence.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel

from connectors import REGISTRY, Connector, ConnectorSpec
from connectors.schedules import schedule_definitions, source_intervals
from infra.schedules import ScheduleDef
from models.errors import NotConfiguredError
from settings import AdvowareSettings, Settings, SyncSettings, TemuSettings, load_settings

SOURCES = ["wiw", "advoware", "temu-orders", "temu-inventory"]


@pytest.fixture
def settings() -> Settings:
    """Intervals unlike the defaults, so each one is seen coming from its own setting."""
    return load_settings(
        sync=SyncSettings(interval_seconds=90),
        advoware=AdvowareSettings(interval_minutes=7),
        temu=TemuSettings(
            orders_interval_minutes=3,
            inventory_interval_minutes=20,
            inventory_full_cron="15 2 * * *",
        ),
    )


def test_the_four_sources_keep_their_schedule_ids_suffixes_and_cadence(settings: Settings) -> None:
    got = [
        (d.schedule_id, d.source, d.every, d.cron, d.offset, d.params, d.id_suffix, d.overlap)
        for d in schedule_definitions(settings, SOURCES)
    ]
    assert got == [
        ("synchub-wiw", "wiw", timedelta(seconds=90), None, timedelta(0), {}, "scheduled", "skip"),
        (
            "synchub-advoware",
            "advoware",
            timedelta(minutes=7),
            None,
            timedelta(0),
            {},
            "scheduled",
            "skip",
        ),
        (
            "synchub-temu-orders",
            "temu-orders",
            timedelta(minutes=3),
            None,
            timedelta(0),
            {},
            "scheduled",
            "skip",
        ),
        (
            "synchub-temu-inventory-quick",
            "temu-inventory",
            timedelta(minutes=20),
            None,
            timedelta(minutes=10),
            {"mode": "quick"},
            "scheduled-quick",
            "skip",
        ),
        (
            "synchub-temu-inventory-full",
            "temu-inventory",
            None,
            "15 2 * * *",
            timedelta(0),
            {"mode": "full"},
            "scheduled-full",
            "skip",
        ),
    ]
    notes = [d.note for d in schedule_definitions(settings, SOURCES)]
    for setting in (
        "SYNC_SLEEP_PERIOD_SECONDS",
        "ADVOWARE_SYNC_INTERVAL_MINUTES",
        "TEMU_ORDERS_INTERVAL_MINUTES",
        "TEMU_INVENTORY_INTERVAL_MINUTES",
        "TEMU_INVENTORY_FULL_CRON",
    ):
        assert any(setting in note for note in notes), (setting, notes)


def test_only_the_configured_sources_are_scheduled(settings: Settings) -> None:
    ids = [d.schedule_id for d in schedule_definitions(settings, ["temu-orders", "wiw"])]
    assert ids == ["synchub-wiw", "synchub-temu-orders"]  # registry order, not argument order


class _NoParams(BaseModel):
    pass


def _demo_build(settings: Settings) -> Connector:
    raise NotConfiguredError("demo is never built here", setting="DEMO")


def test_a_new_source_is_scheduled_by_its_registry_entry_alone(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = ConnectorSpec(
        source="demo",
        build=_demo_build,
        params=_NoParams,
        schedules=lambda s: [
            ScheduleDef("synchub-demo", "demo", timedelta(seconds=s.sync.interval_seconds * 2)),
            ScheduleDef("synchub-demo-nightly", "demo", None, cron="0 3 * * *", id_suffix="n"),
        ],
    )
    monkeypatch.setitem(REGISTRY, "demo", spec)
    defs = schedule_definitions(settings, ["wiw", "demo"])
    assert [d.schedule_id for d in defs] == ["synchub-wiw", "synchub-demo", "synchub-demo-nightly"]
    assert source_intervals(settings, ["demo"]) == {"demo": 180.0}
