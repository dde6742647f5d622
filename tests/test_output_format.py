"""Output settings and formats without services: tombstones switch, formats setting."""

from __future__ import annotations

from typing import Any

import pytest

from activities.encoding import Output, flat_wiw_shift
from activities.messages import plan_messages
from activities.plan import Plan
from infra.change_store import TOMBSTONE, Version
from settings import OutputSettings, Settings, SettingsError
from worker import build_output


def test_tombstones_can_be_turned_off() -> None:
    plan = Plan(deletes={"k": Version(2, TOMBSTONE, "m")})
    kw: dict[str, Any] = {
        "topic": "t",
        "deadletter_topic": "dl",
        "source": "wiw",
        "partition": "p",
        "trace": "tr",
    }
    on = plan_messages(plan, {}, {}, **kw)
    assert [m.value is None for m in on] == [False, True]
    assert on[0].headers == on[1].headers and on[0].key == on[1].key == b"k"
    off = plan_messages(plan, {}, {}, output=Output(tombstones=False), **kw)
    assert [m.value is None for m in off] == [False]


def test_an_unknown_source_in_the_formats_setting_is_named() -> None:
    settings = Settings(output=OutputSettings(formats={"wiw": "flat", "wiww": "flat"}))
    with pytest.raises(SettingsError, match=r"SYNCHUB_OUTPUT_FORMATS.*wiww"):
        build_output(settings)


def test_formats_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCHUB_OUTPUT_FORMATS", '{"wiw": "flat"}')
    monkeypatch.setenv("KAFKA_TOMBSTONES", "false")
    out = OutputSettings()
    assert out.formats == {"wiw": "flat"} and out.tombstones is False
    monkeypatch.setenv("SYNCHUB_OUTPUT_FORMATS", '{"wiw": "avro"}')
    with pytest.raises(ValueError, match="envelope"):
        OutputSettings()


def test_flat_wiw_shift_has_slot_syncs_fields_and_no_linked_users() -> None:
    flat = flat_wiw_shift({"id": 7, "linked_users": [1], "extra": "x", "start_time": "s"})
    assert flat["linked_users"] is None and "extra" not in flat
    assert flat["id"] == 7 and flat["notes"] is None and len(flat) == 26
