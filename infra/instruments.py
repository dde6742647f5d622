"""Metrics: synchub's instruments and the freshness of every partition.

The instruments (``Metrics``, built lazily as ``METRICS``) and Temporal's SDK metrics go
through one OpenTelemetry ``MeterProvider`` to one Prometheus endpoint
(``infra.metrics``, ``infra.observability``), so an operator scrapes one address per worker.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, Observation

from models import clock

if TYPE_CHECKING:
    from infra.last_success import LastSuccess

log = logging.getLogger("synchub.telemetry")

TRACER_NAME = "synchub"
SOURCE = contextvars.ContextVar[str]("synchub_source", default="")
"""The source whose activity runs in this task; labels HTTP and Redis metrics."""

FRESHNESS_RETENTION_SECONDS = 7 * 86400.0
"""Partitions not synced for this long leave the freshness gauge (a WIW day that left the
window); far above any alert threshold (three sync intervals)."""


@dataclass
class _Freshness:
    """Last successful sync per (source, partition), read by the gauges at scrape time."""

    last: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    store: LastSuccess | None = None
    """Where successes are also kept, so a restarted worker knows them (``restore``)."""

    def mark(self, source: str, partition: str) -> float:
        """Record a success now; returns its unix time (for ``persist``)."""
        now = clock.unix()
        with self.lock:
            self.last[(source, partition)] = now
            for key, when in list(self.last.items()):
                if now - when > FRESHNESS_RETENTION_SECONDS:
                    del self.last[key]
        return now

    async def restore(self, store: LastSuccess, sources: Iterable[str]) -> None:
        """At a worker's start: load the stored successes of ``sources``, then keep writing.

        The newer stamp wins, so the gauges have no blind spot after a restart.
        """
        loaded = await store.load(sources)
        now = clock.unix()
        with self.lock:
            for key, when in loaded.items():
                if now - when <= FRESHNESS_RETENTION_SECONDS:
                    self.last[key] = max(when, self.last.get(key, 0.0))
            self.store = store

    def detach(self, store: LastSuccess) -> None:
        """A closing worker's store is no longer written (another worker may have attached)."""
        with self.lock:
            if self.store is store:
                self.store = None

    async def persist(self, source: str, partition: str, when: float) -> None:
        """Write a success to the store; a failure is logged, never fails the activity."""
        if self.store is None:
            return
        try:
            await self.store.save(source, partition, when)
        except Exception as exc:  # the sync succeeded: the gauge in memory is still right
            log.warning("%s/%s: last success not stored in Redis: %s", source, partition, exc)

    def ages(self, _options: CallbackOptions) -> list[Observation]:
        now = clock.unix()
        with self.lock:
            return [
                Observation(max(0.0, now - when), {"source": s, "partition": p})
                for (s, p), when in self.last.items()
            ]

    def stamps(self, _options: CallbackOptions) -> list[Observation]:
        with self.lock:
            return [
                Observation(when, {"source": s, "partition": p})
                for (s, p), when in self.last.items()
            ]


class Metrics:
    """synchub's own instruments, labelled by source; created on the global meter provider.

    Built lazily (``METRICS``) so a meter provider installed later (the worker's Prometheus
    reader, a test's in-memory reader) receives them: the API's proxy meter forwards.
    """

    def __init__(self) -> None:
        m = otel_metrics.get_meter(TRACER_NAME)
        self.records = m.create_counter(
            "synchub_records", unit="1", description="records by outcome (fetched, unchanged, "
            "upserted, deleted, dead_lettered, republished)",
        )  # fmt: skip
        self.point_lookups = m.create_counter(
            "synchub_point_lookups", description="keys missing from a pass looked up upstream"
        )
        self.upstream_requests = m.create_counter(
            "synchub_upstream_requests", description="upstream HTTP requests by status class"
        )
        self.upstream_429 = m.create_counter(
            "synchub_upstream_429", description="upstream answers 429 Too Many Requests"
        )
        self.rate_limit_waits = m.create_counter(
            "synchub_rate_limit_waits", description="waits for a rate-limit token"
        )
        self.rate_limit_wait_seconds = m.create_counter(
            "synchub_rate_limit_wait_seconds", unit="s", description="time spent waiting"
        )
        self.pages = m.create_counter("synchub_pages", description="pages synced")
        self.page_seconds = m.create_histogram(
            "synchub_page_seconds", unit="s", description="fetch+diff+publish+commit of a page"
        )
        self.publish_seconds = m.create_histogram(
            "synchub_publish_seconds", unit="s", description="one Kafka publish batch (acks=all)"
        )
        self.redis_round_trips = m.create_counter(
            "synchub_redis_round_trips", description="Redis commands and pipelines sent"
        )
        self.skipped_runs = m.create_counter(
            "synchub_skipped_runs",
            description="runs skipped: schedule overlap or partition already running",
        )
        self.freshness = _Freshness()
        m.create_observable_gauge(
            "synchub_freshness_seconds",
            callbacks=[self.freshness.ages],
            unit="s",
            description="seconds since the last successful sync of a partition",
        )
        m.create_observable_gauge(
            "synchub_last_success_timestamp_seconds",
            callbacks=[self.freshness.stamps],
            unit="s",
            description="unix time of the last successful sync of a partition",
        )
        self.intervals: dict[str, float] = {}
        m.create_observable_gauge(
            "synchub_sync_interval_seconds",
            callbacks=[self._intervals],
            unit="s",
            description="the schedule interval of a source (the alert's yardstick)",
        )

    def _intervals(self, _options: CallbackOptions) -> list[Observation]:
        return [Observation(v, {"source": s}) for s, v in self.intervals.items()]

    def upstream_request(self, source: str, status: int) -> None:
        """Count one upstream answer by status class (``2xx``, ``4xx``, ...)."""
        self.upstream_requests.add(1, {"source": source, "status_class": f"{status // 100}xx"})
        if status == 429:
            self.upstream_429.add(1, {"source": source})

    def rate_limit_wait(self, seconds: float) -> None:
        """Count one wait for a rate-limit token."""
        attrs = {"source": SOURCE.get()}
        self.rate_limit_waits.add(1, attrs)
        self.rate_limit_wait_seconds.add(seconds, attrs)


class _LazyMetrics:
    """``METRICS.x`` builds the instruments on first use."""

    _built: Metrics | None = None

    def __getattr__(self, name: str) -> Any:
        if _LazyMetrics._built is None:
            _LazyMetrics._built = Metrics()
        return getattr(_LazyMetrics._built, name)


METRICS: Any = _LazyMetrics()
"""The process's instruments (``METRICS.records.add(...)``)."""
