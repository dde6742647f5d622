"""The page diff and the lookup diff, rule by rule, with no services (``activities.plan``)."""

from __future__ import annotations

import json

from activities.messages import plan_messages
from activities.plan import diff_lookups, diff_page
from infra.change_store import TOMBSTONE, Snapshot, Version, event_id
from infra.publisher import OutMessage
from models.records import Lookup, Malformed, Record

SRC, PART = "wiw", "2026-11-29"


def _value(msg: OutMessage) -> dict[str, object]:
    assert msg.value is not None
    value: dict[str, object] = json.loads(msg.value)
    return value


def _rec(
    key: str, marker: str | None = None, partition: str | None = PART, **data: object
) -> Record:
    return Record(key=key, data={"id": key, **data}, version_marker=marker, partition=partition)


def _snap(cached: dict[str, str | None], versions: dict[str, Version] | None = None) -> Snapshot:
    versions = versions or {}
    return Snapshot(cached=dict(cached), versions={k: versions.get(k, Version()) for k in cached})


def _page(*recs: Record) -> tuple[dict[str, Record], dict[str, str]]:
    return {r.key: r for r in recs}, {r.key: f"fp-{r.key}-{r.data.get('v', 0)}" for r in recs}


def test_unchanged_key_is_counted_and_only_marked_seen() -> None:
    records, fps = _page(_rec("a"))
    snap = _snap({"a": fps["a"]}, {"a": Version(1, fps["a"])})
    plan = diff_page(snap, records, fps, [])
    assert plan.counts.unchanged == 1 and plan.counts.upserted == 0
    assert not plan.upserts and not plan.commit.set_fp and not plan.commit.set_versions
    assert plan.commit.seen == ["a"] and plan.enrich == []


def test_changed_key_gets_the_next_version_with_its_marker_and_no_enrichment() -> None:
    records, fps = _page(_rec("a", marker="t2", v=2))
    snap = _snap({"a": "old"}, {"a": Version(3, "old", "t1")})
    plan = diff_page(snap, records, fps, [])
    assert plan.upserts == {"a": Version(4, fps["a"], "t2")}
    assert plan.commit.set_versions == plan.upserts and plan.commit.set_fp == {"a": fps["a"]}
    assert plan.enrich == [] and plan.counts.upserted == 1


def test_first_time_key_is_upserted_as_version_1_and_enriched() -> None:
    records, fps = _page(_rec("a", marker="t1"))
    plan = diff_page(_snap({"a": None}), records, fps, [])
    assert plan.upserts == {"a": Version(1, fps["a"], "t1")}
    assert plan.enrich == ["a"]


def test_moved_in_key_already_published_elsewhere_is_cached_but_not_published() -> None:
    records, fps = _page(_rec("a"))
    snap = _snap({"a": None}, {"a": Version(2, fps["a"])})
    plan = diff_page(snap, records, fps, [])
    assert plan.counts.unchanged == 1 and not plan.upserts and not plan.republish
    assert plan.commit.set_fp == {"a": fps["a"]} and plan.commit.set_versions == {}


def test_void_cache_republishes_under_the_current_version() -> None:
    records, fps = _page(_rec("a"), _rec("b"), _rec("c", v=1))
    current = {"a": Version(2, fps["a"], "m"), "b": Version(5, fps["b"]), "c": Version(1, "x")}
    snap = _snap({"a": fps["a"], "b": None, "c": "x"}, current)
    plan = diff_page(snap, records, fps, [], void=True)
    assert plan.republish == {"a": current["a"], "b": current["b"]}
    assert plan.upserts == {"c": Version(2, fps["c"])}
    assert plan.counts.republished == 2 and plan.counts.unchanged == 0
    assert plan.enrich == ["a", "b"]  # republished states are enriched like first ones
    assert "a" not in plan.commit.set_versions  # the version stays: same event id
    msgs = plan_messages(
        plan,
        records,
        fps,
        topic="t",
        deadletter_topic="dl",
        source=SRC,
        partition=PART,
        trace="tr",
    )
    by_key = {m.key.decode(): _value(m) for m in msgs}
    assert by_key["a"]["event_id"] == current["a"].event(SRC, "a")
    assert by_key["b"]["event_id"] == event_id(SRC, "b", 5, fps["b"])


def test_deleted_feed_tombstones_only_keys_cached_here() -> None:
    records, fps = _page()
    snap = _snap({"mine": "f1", "theirs": None}, {"mine": Version(2, "f1", "t9")})
    plan = diff_page(snap, records, fps, ["mine", "theirs"])
    assert plan.deletes == {"mine": Version(3, TOMBSTONE, "t9")}
    assert plan.commit.drop_fp == ["mine"] and plan.counts.deleted == 1
    assert plan.commit.set_versions == plan.deletes


def test_deleted_key_already_tombstoned_is_dropped_but_not_deleted_again() -> None:
    snap = _snap({"a": "f1"}, {"a": Version(4, TOMBSTONE)})
    plan = diff_page(snap, {}, {}, ["a"])
    assert plan.commit.drop_fp == ["a"] and not plan.deletes and plan.counts.deleted == 0


def test_markers_make_the_event_ids_and_tombstones_keep_the_marker() -> None:
    records, fps = _page(_rec("a", marker="2026-11-29T10:00:00Z"))
    snap = _snap({"a": None, "gone": "f"}, {"gone": Version(1, "f", "m7")})
    plan = diff_page(snap, records, fps, ["gone"])
    msgs = plan_messages(
        plan,
        records,
        fps,
        topic="t",
        deadletter_topic="dl",
        source=SRC,
        partition=PART,
        trace="tr",
    )
    up, tomb = (_value(m) for m in msgs[:2])
    assert msgs[2].value is None and msgs[2].headers == msgs[1].headers  # Kafka's tombstone
    assert up["event_id"] == event_id(SRC, "a", "m:2026-11-29T10:00:00Z", fps["a"])
    assert up["op"] == "upsert" and up["data"] == records["a"].data
    assert tomb["event_id"] == event_id(SRC, "gone", "d:m7", TOMBSTONE)
    assert tomb["op"] == "delete" and tomb["data"] is None and tomb["fingerprint"] == TOMBSTONE


def test_malformed_records_are_dead_lettered_once_with_their_reason() -> None:
    bad = Malformed(key="x", reason="start_time: not a date", raw={"id": "x"})
    plan = diff_page(_snap({}), {}, {}, [], [bad])
    assert plan.dead_letters == [bad] and plan.counts.dead_lettered == 1
    (msg,) = plan_messages(
        plan, {}, {}, topic="t", deadletter_topic="dl", source=SRC, partition=PART, trace="tr"
    )
    assert msg.topic == "dl" and _value(msg)["reason"] == bad.reason


def test_stable_page_commits_its_digest_and_keys() -> None:
    records, fps = _page(_rec("a"), _rec("b"))
    plan = diff_page(_snap({"a": None, "b": None}), records, fps, [], page=("start", "d1"))
    assert plan.commit.page == ("start", "d1", ["a", "b"])
    assert diff_page(_snap({"a": None, "b": None}), records, fps, []).commit.page is None


def test_lookup_gone_tombstones_unless_already_deleted() -> None:
    snap = _snap({"a": "f", "b": "g"}, {"a": Version(1, "f"), "b": Version(2, TOMBSTONE)})
    plan = diff_lookups(PART, snap, [Lookup(key="a"), Lookup(key="b")], {})
    assert plan.deletes == {"a": Version(2, TOMBSTONE)}
    assert plan.commit.drop_fp == ["a", "b"] and plan.counts.deleted == 1


def test_lookup_moved_elsewhere_leaves_the_cache_and_publishes_only_a_new_state() -> None:
    moved, same = _rec("m", partition="2026-11-30", v=2), _rec("s", partition="2026-11-30")
    fps = {"m": "new", "s": "published"}
    snap = _snap({"m": "old", "s": "old"}, {"m": Version(1, "old"), "s": Version(2, "published")})
    plan = diff_lookups(
        PART, snap, [Lookup(key="m", record=moved), Lookup(key="s", record=same)], fps
    )
    assert plan.upserts == {"m": Version(2, "new")}
    assert plan.commit.drop_fp == ["m", "s"] and not plan.commit.set_fp and not plan.commit.seen


def test_lookup_outside_the_window_leaves_the_cache() -> None:
    rec = _rec("o", partition=None)
    snap = _snap({"o": "f"}, {"o": Version(1, "f")})
    plan = diff_lookups(PART, snap, [Lookup(key="o", record=rec)], {"o": "f"})
    assert plan.commit.drop_fp == ["o"] and not plan.upserts and not plan.deletes


def test_lookup_appeared_here_is_cached_seen_and_published_if_changed() -> None:
    rec = _rec("h", marker="t3")
    snap = _snap({"h": "f1"}, {"h": Version(1, "f1")})
    plan = diff_lookups(PART, snap, [Lookup(key="h", record=rec)], {"h": "f2"})
    assert plan.commit.set_fp == {"h": "f2"} and plan.commit.seen == ["h"]
    assert plan.upserts == {"h": Version(2, "f2", "t3")} and plan.counts.upserted == 1
    same = diff_lookups(PART, snap, [Lookup(key="h", record=rec)], {"h": "f1"})
    assert not same.upserts and same.commit.seen == ["h"]
