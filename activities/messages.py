"""The published message format: JSON envelope, key, and headers (ARCHITECTURE § Kafka)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from infra.publisher import OutMessage

Op = Literal["upsert", "delete"]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _json(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _headers(event: str, source: str, op: str, trace: str) -> list[tuple[str, str | bytes | None]]:
    """The headers every synchub message carries (ARCHITECTURE § Kafka)."""
    return [
        ("event_id", event.encode()),
        ("source", source.encode()),
        ("op", op.encode()),
        ("traceparent", trace.encode()),
    ]


def canonical(data: Any) -> bytes:
    """Canonical JSON of a record: the input of its fingerprint."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def traceparent(run_token: str) -> str:
    """W3C traceparent tying every message of one partition pass together."""
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
) -> OutMessage:
    """An upsert or tombstone event, keyed by the record key for per-key order."""
    envelope = {
        "event_id": event,
        "source": source,
        "partition": partition,
        "key": key,
        "op": op,
        "fingerprint": fp,
        "observed_at": _now(),
        "data": data,
    }
    return OutMessage(
        topic=topic,
        key=key.encode(),
        value=_json(envelope),
        headers=_headers(event, source, op, trace),
    )


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


def deadletter_message(
    *, topic: str, source: str, partition: str, key: str | None, reason: str, raw: Any, trace: str
) -> OutMessage:
    """A malformed upstream record with the reason it was rejected, so nothing is lost."""
    body = {
        "source": source,
        "partition": partition,
        "key": key,
        "reason": reason,
        "raw": raw,
        "observed_at": _now(),
    }
    event = hashlib.sha256(canonical({"s": source, "k": key, "r": reason, "raw": raw})).hexdigest()[
        :32
    ]
    return OutMessage(
        topic=topic,
        key=(key or "").encode(),
        value=_json(body),
        headers=_headers(event, source, "deadletter", trace),
    )
