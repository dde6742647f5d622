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


def test_a_record_avro_cannot_encode_is_dead_lettered_not_retried_forever() -> None:
    """WIW sent a field of another type than slot_sync's schema has: the page goes on."""
    import json
    from pathlib import Path

    import fastavro

    from infra.avro import AvroValues
    from models.records import Record

    schema = fastavro.parse_schema(json.loads(Path("schemas/avro/wiw.avsc").read_text()))
    output = Output(formats={"wiw": "flat"}, avro=AvroValues({"wiw": (7, schema)}))
    good = {"id": 1, "start_time": "2026-01-01T08:00:00Z", "end_time": "2026-01-01T12:00:00Z"}
    bad = {**good, "id": 2, "notes": 12345}
    plan = Plan(upserts={"1": Version(1, "f1", "m"), "2": Version(1, "f2", "m")})
    records = {k: Record(key=k, data=d) for k, d in (("1", good), ("2", bad))}
    msgs = plan_messages(
        plan,
        records,
        {"1": "f1", "2": "f2"},
        topic="t",
        deadletter_topic="dl",
        source="wiw",
        partition="p",
        trace="tr",
        output=output,
    )
    assert [(m.topic, m.key) for m in msgs] == [("t", b"1"), ("dl", b"2")]
    assert msgs[0].value is not None and msgs[0].value[:5] == b"\x00\x00\x00\x00\x07"
    body = json.loads(msgs[1].value or b"")
    assert body["field"] == "notes" and "Avro" in body["reason"] and body["raw"] == bad
