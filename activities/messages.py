"""The published message format: JSON envelope, key, and headers (ARCHITECTURE § Kafka)."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import orjson

from activities.encoding import DEFAULT_OUTPUT, Output, UnencodableRecordError, tombstone
from infra.change_store import TOMBSTONE, Version
from infra.publisher import OutMessage
from infra.telemetry import current_traceparent
from models import clock
from models.records import Record

if TYPE_CHECKING:
    from activities.plan import Plan

Op = Literal["upsert", "delete"]


_ORJSON_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
"""orjson as close to ``_json_stdlib`` as it goes: datetimes through ``default=str``."""


_STR_KEYS_OPTS = orjson.OPT_PASSTHROUGH_DATETIME
"""``_ORJSON_OPTS`` for values whose keys are all strings, tried first: the same bytes, and
``OPT_NON_STR_KEYS`` costs 0.65 µs per WIW shift even where no key needs it."""


def _now() -> str:
    return clock.now().isoformat().replace("+00:00", "Z")


def _json_stdlib(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _json(body: Any) -> bytes:
    """Compact UTF-8 JSON of a message value (orjson; stdlib for what orjson refuses).

    Not a fingerprint input (that is ``canonical``): the bytes only need to be valid JSON
    of the same value, so orjson's float spelling (``0.00001`` for ``1e-05``) is fine.
    """
    try:  # the result is kept (a message value): owned, see ``_owned``
        return _owned(orjson.dumps(body, default=str, option=_STR_KEYS_OPTS))
    except orjson.JSONEncodeError:  # a key that is not a string, or what the next refuses
        pass
    try:
        return _owned(orjson.dumps(body, default=str, option=_ORJSON_OPTS))
    except orjson.JSONEncodeError:  # e.g. an int beyond 64 bits
        return _json_stdlib(body)


def _headers(event: str, source: str, op: str, trace: str) -> list[tuple[str, str | bytes | None]]:
    """The headers every synchub message carries (ARCHITECTURE § Kafka)."""
    return [("event_id", event.encode()), *_shared_headers(source, op, trace)]


@functools.lru_cache(maxsize=256)
def _shared_headers(source: str, op: str, trace: str) -> tuple[tuple[str, bytes], ...]:
    """The headers a page's messages share, encoded once per page instead of per message."""
    return (("source", source.encode()), ("op", op.encode()), ("traceparent", trace.encode()))


_CANONICAL_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
"""Sorted keys; dates and times through ``default=str``, as the stdlib form has them."""


def canonical_stdlib(data: Any) -> bytes:
    """The reference canonical JSON (stdlib): what every fingerprint ever stored hashed."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def canonical(data: Any) -> bytes:
    """Canonical JSON of a record: the input of its fingerprint.

    Byte-identical to ``canonical_stdlib`` (else every record would be republished under a
    new event id after an upgrade), at a seventh of its cost: orjson writes the same bytes
    for strings (unescaped UTF-8, the same escapes), ints, finite floats from 1e-4 up,
    nested containers and sorted string keys. Where it would not, the stdlib writes them:
    orjson refuses the value (non-string keys, ints beyond 64 bits, nesting deeper than
    254), the output holds a float it spells otherwise (below 1e-4 orjson writes
    ``1e-5``/``0.00001`` where the stdlib writes ``1e-05``; both spellings contain ``e-``
    or ``0.0000``, so a string holding them only costs the slow path), or a ``null`` that
    may stand for NaN or an infinity. A flat record of strings, ints, bools and nulls (a
    WIW shift) has no float to check, so its bytes are orjson's without a look (that look
    was a third of a fingerprint's cost). Proven over tricky values in
    ``tests/test_canonical``.
    """
    try:
        out = orjson.dumps(data, default=str, option=_CANONICAL_OPTS)
    except orjson.JSONEncodeError:
        return canonical_stdlib(data)
    if type(data) is dict and _SCALARS.issuperset(map(type, data.values())):
        return out  # no float at all (a flat record of strings, ints, bools and nulls)
    if b"e-" in out or b"0.0000" in out or (b"null" in out and not _all_finite(data)):
        return canonical_stdlib(data)
    return out


_SCALARS = frozenset((str, int, bool, type(None)))


def _all_finite(value: Any) -> bool:
    """True when no float in ``value`` (nested) is NaN or infinite (orjson writes null).

    Runs on records with a ``null`` that are not flat records of scalars (``canonical``
    takes those without looking further), so the common scalar types are skipped with
    one set lookup.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return True


def traceparent(run_token: str) -> str:
    """W3C traceparent of the span publishing the messages (a consumer continues its trace).

    Without a recorded span (tracing off), a stable id from the run token still ties every
    message of one partition pass together.
    """
    current = current_traceparent()
    if current is not None:
        return current
    digest = hashlib.sha256(run_token.encode()).hexdigest()
    return f"00-{digest[:32]}-{digest[32:48]}-01"


def change_message(
    *,
    topic: str,
    source: str,
    partition: str,
    key: str,
    op: Op,
    fp: str,
    event: str,
    data: dict[str, Any] | None,
    trace: str,
    observed_at: str | None = None,
) -> OutMessage:
    """An upsert or tombstone event, keyed by the record key for per-key order.

    The envelope is encoded once without ``data`` and the data's bytes are spliced in as
    its last member, so a record's content is encoded exactly once. ``observed_at``
    defaults to now; a batch passes one instant for all its messages.
    """
    head = orjson.dumps(
        {
            "event_id": event,
            "source": source,
            "partition": partition,
            "key": key,
            "op": op,
            "fingerprint": fp,
            "observed_at": observed_at or _now(),
        }
    )
    return OutMessage(
        topic=topic,
        key=key.encode(),
        value=b"".join((head[:-1], b',"data":', _json(data), b"}")),
        headers=_headers(event, source, op, trace),
    )


def envelopes(
    versions: Mapping[str, Version],
    records: Mapping[str, Record],
    fps: Mapping[str, str],
    topic: str,
    source: str,
    partition: str,
    trace: str,
    observed_at: str,
) -> list[OutMessage]:
    """The upsert envelopes of ``versions``: ``change_message``'s bytes, at less of its cost.

    A first sync builds one per new record, so the per-message Python is cut down: the
    envelope is one ``orjson.dumps`` with ``data`` inside (the same bytes as the spliced
    head and ``_json(data)``: every head member is a string). The event id and headers
    come from ``Version.event`` and ``_headers``, as for every message. A value orjson
    refuses takes ``change_message`` (the stdlib fallback). Proven equal to
    ``change_message`` in ``tests/test_messages_fast.py``.
    """
    out: list[OutMessage] = []
    append = out.append
    for key, ver in versions.items():
        fp = fps[key]
        data = records[key].data
        event = ver.event(source, key)
        try:
            value = _owned(
                _dumps(
                    {
                        "event_id": event,
                        "source": source,
                        "partition": partition,
                        "key": key,
                        "op": "upsert",
                        "fingerprint": fp,
                        "observed_at": observed_at,
                        "data": data,
                    },
                    default=str,
                    option=_STR_KEYS_OPTS,
                )
            )
        except orjson.JSONEncodeError:
            append(
                change_message(
                    topic=topic,
                    source=source,
                    partition=partition,
                    key=key,
                    op="upsert",
                    fp=fp,
                    event=event,
                    data=data,
                    trace=trace,
                    observed_at=observed_at,
                )
            )
            continue
        append(OutMessage(topic, key.encode(), value, _headers(event, source, "upsert", trace)))
    return out


_dumps = orjson.dumps


def _owned(value: bytes) -> bytes:
    """A right-sized copy of an ``orjson.dumps`` result that is kept (e.g. a message value).

    Measured on the 2-core VM: a page of kept orjson results costs about two minor page
    faults per result (5 µs each result), a page of copies none (0.1 µs each), whatever
    the size. Seemingly each result keeps a fresh heap block of orjson's write buffer,
    while a copy lets that buffer be freed and reused by the next call at once.
    """
    return _join((value, b""))


_join = b"".join


def plan_messages(
    plan: Plan,
    records: Mapping[str, Record],
    fps: Mapping[str, str],
    *,
    topic: str,
    deadletter_topic: str,
    source: str,
    partition: str,
    trace: str,
    output: Output | None = None,
) -> list[OutMessage]:
    """The messages of a plan: upserts, republished states, deletes, dead letters.

    An upsert carries the record's (possibly enriched) data and the fingerprint of the
    record as fetched (``fps``). ``output`` says the source's value format and whether a
    tombstone follows each delete event (``activities.encoding``; default: the envelope,
    with tombstones). A record the source's Avro schema cannot hold is dead-lettered
    instead, and the plan's counts say so (dead-lettered, not upserted or republished),
    so the run totals and metrics match what reached Kafka.
    """
    now = _now()
    output = output or DEFAULT_OUTPUT
    flat = output.format(source) == "flat"
    unfit = {"upserted": 0, "republished": 0}

    def change(key: str, ver: Version, rec: Record | None, counted: str = "upserted") -> OutMessage:
        if flat:  # a flat delete is a null value: the delete event and tombstone in one
            try:
                value = None if rec is None else output.flat_value(source, rec.data, _json)
            except UnencodableRecordError as exc:  # the page goes on; the state is reported
                assert rec is not None
                unfit[counted] += 1
                return deadletter_message(
                    topic=deadletter_topic,
                    source=source,
                    partition=partition,
                    key=key,
                    reason=str(exc),
                    raw=rec.data,
                    trace=trace,
                )
            return OutMessage(
                topic=topic,
                key=key.encode(),
                value=value,
                headers=_headers(
                    ver.event(source, key), source, "delete" if rec is None else "upsert", trace
                ),
            )
        return change_message(
            topic=topic,
            source=source,
            partition=partition,
            key=key,
            op="upsert" if rec is not None else "delete",
            fp=fps[key] if rec is not None else TOMBSTONE,
            event=ver.event(source, key),
            data=rec.data if rec is not None else None,
            trace=trace,
            observed_at=now,
        )

    if flat:
        out = [change(k, v, records[k]) for k, v in plan.upserts.items()]
        out += [change(k, v, records[k], "republished") for k, v in plan.republish.items()]
    else:
        out = envelopes(plan.upserts, records, fps, topic, source, partition, trace, now)
        out += envelopes(plan.republish, records, fps, topic, source, partition, trace, now)
    plan.counts.upserted -= unfit["upserted"]
    plan.counts.republished -= unfit["republished"]
    plan.counts.dead_lettered += unfit["upserted"] + unfit["republished"]
    for k, v in plan.deletes.items():
        event = change(k, v, None)
        out += (event, tombstone(event)) if output.tombstones and not flat else (event,)
    out += [
        deadletter_message(
            topic=deadletter_topic,
            source=source,
            partition=partition,
            key=bad.key,
            reason=bad.reason,
            raw=bad.raw,
            trace=trace,
        )
        for bad in plan.dead_letters
    ]
    return out


def audit_message(
    *, topic: str, source: str, key: str, event: str, body: dict[str, Any], trace: str
) -> OutMessage:
    """An audit event of a change synchub made upstream (e.g. a TEMU stock edit).

    Unlike ``change_message`` the value is the flat ``body`` (what was changed, from what
    to what, under which idempotency key) plus ``event_id`` and ``observed_at``; headers
    are the same, with ``op=upsert``, so consumers deduplicate all topics alike.
    """
    value = {"event_id": event, **body, "observed_at": _now()}
    return OutMessage(
        topic=topic,
        key=key.encode(),
        value=_json(value),
        headers=_headers(event, source, "upsert", trace),
    )


def deadletter_event(source: str, key: str | None, reason: str, raw: Any) -> str:
    """The ``event_id`` of a dead letter: one per bad record per state, whatever the partition.

    The partition is left out, so a bad record that two windows return (a shift crossing
    midnight whose start cannot be read) has one id, and the change store sends it once.
    """
    return hashlib.sha256(canonical({"s": source, "k": key, "r": reason, "raw": raw})).hexdigest()[
        :32
    ]


_FIELD = re.compile(r"([A-Za-z_][\w.\[\]-]*): ")


def reason_field(reason: str) -> str | None:
    """The field a rejection reason names first (``"start_time: Input should be ..."``).

    Connectors write reasons as ``<field>: <why>; <field>: <why>`` (pydantic's error
    locations); a reason about the record as a whole names no field.
    """
    match = _FIELD.match(reason)
    return match.group(1) if match else None


def deadletter_message(
    *, topic: str, source: str, partition: str, key: str | None, reason: str, raw: Any, trace: str
) -> OutMessage:
    """A malformed upstream record with the reason it was rejected, so nothing is lost.

    The value says which source, partition and field, and why. The Kafka key is the
    record's id, or when none is readable ``<source>/<partition>/<event id>``: never empty,
    so a consumer can tell the bad records apart and a compacted topic keeps each.
    """
    event = deadletter_event(source, key, reason, raw)
    body = {
        "source": source,
        "partition": partition,
        "key": key,
        "field": reason_field(reason),
        "reason": reason,
        "raw": raw,
        "observed_at": _now(),
    }
    return OutMessage(
        topic=topic,
        key=(key or f"{source}/{partition}/{event}").encode(),
        value=_json(body),
        headers=_headers(event, source, "deadletter", trace),
    )
