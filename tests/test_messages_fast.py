"""The fast envelope path (``activities.messages.envelopes``) against the reference bytes.

``plan_messages`` builds a page's upserts with one ``orjson.dumps`` per message (data
inside the envelope, string-keyed options first, the event id inlined, a named tuple)
instead of ``change_message``'s spliced head. Published bytes must not change, so each
message is compared with the reference below: the envelope as synchub built it before
(head and data encoded apart, ``OPT_NON_STR_KEYS`` always, stdlib for what orjson
refuses) and the event id from ``infra.change_store.event_id``. No services.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from activities.messages import _json, plan_messages
from activities.plan import Plan
from infra.change_store import TOMBSTONE, Version, event_id
from infra.publisher import OutMessage
from models import clock
from models.records import Record

SRC, PART, TOPIC, TRACE = "wiw", "2026-11-29", "wiw.shifts", "00-abc-def-01"
NOW = datetime(2026, 11, 29, 10, 0, 0, 123456, tzinfo=UTC)


def _reference_json(body: Any) -> bytes:
    """``_json`` as it was before the fast path: the bytes every message had."""
    try:
        return orjson.dumps(
            body, default=str, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
        )
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _reference(key: str, ver: Version, fp: str, data: Any, observed_at: str) -> OutMessage:
    version: int | str = ver.number
    if ver.marker is not None:
        version = f"{'d' if (ver.fingerprint or TOMBSTONE) == TOMBSTONE else 'm'}:{ver.marker}"
    event = event_id(SRC, key, version, ver.fingerprint or TOMBSTONE)
    head = orjson.dumps(
        {
            "event_id": event,
            "source": SRC,
            "partition": PART,
            "key": key,
            "op": "upsert",
            "fingerprint": fp,
            "observed_at": observed_at,
        }
    )
    return OutMessage(
        TOPIC,
        key.encode(),
        b"".join((head[:-1], b',"data":', _reference_json(data), b"}")),
        [
            ("event_id", event.encode()),
            ("source", SRC.encode()),
            ("op", b"upsert"),
            ("traceparent", TRACE.encode()),
        ],
    )


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


TRICKY: dict[str, Any] = {
    "plain": {"id": 1, "notes": "", "published": True, "linked_users": None, "x": 1.5},
    'quo"te\\': {"s": 'a "quoted" \\ back\nslash\t\x01', "k": "ü€😀"},
    "ünï": {"nested": {"b": [1, {"c": None}], "a": []}, "small": 1e-05, "big": 1e300},
    "dates": {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "day": date(2026, 1, 2)},
    "decimal": {"amount": Decimal("12.50")},
    "nan": {"f": float("nan"), "g": float("inf")},
    "bigint": {"n": 2**70},
    "nonstr": {"m": {1: "a", 2: "b"}},
    "deep": {"d": _nested(253)},
}
"""Values where a byte could differ: escapes, unicode, floats, dates, what orjson refuses."""


@pytest.fixture(autouse=True)
def _fixed_now() -> Any:
    previous = clock.default_clock()
    clock.set_default_clock(clock.ManualClock(NOW))
    yield
    clock.set_default_clock(previous)


def test_reference_covers_the_fallbacks() -> None:
    """The tricky values reach each fallback (else the comparison below proves less)."""
    with pytest.raises(orjson.JSONEncodeError):  # deep: fine alone, too deep in an envelope
        orjson.dumps({"data": TRICKY["deep"]})
    orjson.dumps(TRICKY["deep"])
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(TRICKY["bigint"])
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(TRICKY["nonstr"])


@pytest.mark.parametrize("republish", [False, True])
def test_envelopes_are_byte_identical_to_the_reference(republish: bool) -> None:
    versions = {
        key: Version(n + 1, f"fp{n:030d}", None if n % 2 else f"2026-11-2{n % 10}T00:00:00Z")
        for n, key in enumerate(TRICKY)
    }
    records = {
        k: Record(key=k, data=d, version_marker=versions[k].marker) for k, d in TRICKY.items()
    }
    fps = {k: v.fingerprint or "" for k, v in versions.items()}
    plan = Plan(republish=versions) if republish else Plan(upserts=versions)
    got = plan_messages(
        plan,
        records,
        fps,
        topic=TOPIC,
        deadletter_topic="dl",
        source=SRC,
        partition=PART,
        trace=TRACE,
    )
    observed_at = NOW.isoformat().replace("+00:00", "Z")
    want = [_reference(k, versions[k], fps[k], TRICKY[k], observed_at) for k in TRICKY]
    assert [m.key for m in got] == [m.key for m in want]
    for g, w in zip(got, want, strict=True):
        assert g.topic == w.topic
        assert g.value == w.value, g.key
        assert list(g.headers) == w.headers, g.key


@pytest.mark.parametrize("name", list(TRICKY))
def test_json_is_byte_identical_to_the_reference(name: str) -> None:
    """``_json`` (flat values, dead letters, audits) tries string keys first: same bytes."""
    assert _json(TRICKY[name]) == _reference_json(TRICKY[name])
