"""``Record.of``: the fast constructor equals the validated one in every respect used."""

from __future__ import annotations

import pytest

from models.records import Page, Record


@pytest.mark.parametrize(
    ("partition", "marker"), [("2026-03-07", "Sat, 07 Mar 2026 08:00:00 +0000"), (None, None)]
)
def test_of_equals_the_validated_record(partition: str | None, marker: str | None) -> None:
    data = {"id": 7, "notes": "ü", "nested": {"a": [1, 2.5, None]}}
    fast = Record.of("7", data, partition, marker)
    slow = Record(key="7", data=data, partition=partition, version_marker=marker)
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set
    assert repr(fast) == repr(slow)
    assert fast.data is data  # not copied: the connector hands over its only copy


def test_of_records_go_into_pages_and_copies() -> None:
    rec = Record.of("1", {"id": 1}, "p", None)
    page = Page(records=[rec])
    assert page.records == [Record(key="1", data={"id": 1}, partition="p")]
    moved = rec.model_copy(update={"partition": "q"})
    assert (moved.partition, rec.partition) == ("q", "p")
