"""BASELINE ONLY: the per-record loop our users run today (slot_sync's), with no Temporal.

This is the honest baseline of ``make bench`` (issue 11): what synchub replaces, written the
way slot_sync wrote it, so "N times faster" compares with something people actually run:

* one ``GET /2/shifts`` for the whole window (``deleted=true`` like the engine asks);
* then for each shift, one after another: convert its dates to UTC ISO 8601 with
  ``email.utils``, the canonical JSON with stdlib ``json``, a Redis ``GET`` of its md5, and
  on a difference a ``SETEX`` with a one-week TTL;
* a Kafka produce with ``acks=all`` and a ``flush`` after every message.

It runs in a child process of the benchmark (``python -m bench.loop SPEC_JSON``) so its CPU
time and peak RSS are its own, against the same simulator, Redis and Kafka as the engine;
the benchmark then reads its topic and checks that every expected key arrived exactly once.
The child prints one JSON line with its counts, wall time (first request to last flush),
CPU seconds and peak RSS. Deletions are not handled (slot_sync did not see them either).
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import redis
from confluent_kafka import Producer

TTL_SECONDS = 7 * 86_400
"""slot_sync kept each shift's md5 for a week."""
DATE_FIELDS = (
    "start_time",
    "end_time",
    "published_date",
    "created_at",
    "updated_at",
    "notified_at",
    "acknowledged_at",
)
"""The dates slot_sync re-emitted as UTC ISO 8601."""


def _utc(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        return value or None
    parsed = parsedate_to_datetime(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _peak_rss_mib() -> float:
    """This process's peak RSS (``VmHWM``): ``getrusage`` would count the parent's from
    before the ``exec``, which Linux carries over."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """One pass of the loop over the window in ``spec``; returns what it did.

    Args:
        spec: ``api_url``, ``token``, ``start``, ``end`` (ISO 8601), ``redis_url``,
            ``prefix`` (Redis key prefix), ``brokers``, ``topic``.

    Raises:
        RuntimeError: a message was not delivered.

    """
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    producer = Producer(
        {
            "bootstrap.servers": spec["brokers"],
            "client.id": "bench-loop",
            "acks": "all",
            "linger.ms": 0,
        }
    )
    store = redis.Redis.from_url(spec["redis_url"])
    http = httpx.Client(base_url=spec["api_url"], timeout=300.0, headers={"W-Token": spec["token"]})
    cpu0 = time.process_time()
    began = time.perf_counter()
    params = {"start": spec["start"], "end": spec["end"], "deleted": "true"}
    response = http.get("/2/shifts", params=params)
    response.raise_for_status()
    shifts = response.json()["shifts"]
    upserted = unchanged = 0
    for shift in shifts:
        data = dict(shift)
        for name in DATE_FIELDS:
            if name in data:
                data[name] = _utc(data[name])
        body = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        digest = hashlib.md5(body).hexdigest()
        key = f"{spec['prefix']}{data['id']}"
        old = store.get(key)
        if old is not None and (old.decode() if isinstance(old, bytes) else old) == digest:
            unchanged += 1
            continue
        producer.produce(
            spec["topic"], key=str(data["id"]).encode(), value=body, on_delivery=on_delivery
        )
        if producer.flush(30) or errors:
            raise RuntimeError(f"loop publish failed: {errors[:1] or 'not delivered'}")
        store.setex(key, TTL_SECONDS, digest)
        upserted += 1
    wall = time.perf_counter() - began
    cpu = time.process_time() - cpu0
    http.close()
    store.close()
    producer.flush(10)
    return {
        "fetched": len(shifts),
        "upserted": upserted,
        "unchanged": unchanged,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_mib": _peak_rss_mib(),
    }


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))), flush=True)
