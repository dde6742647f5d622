"""Temporal's metrics reach Prometheus under their own names and labels (``infra.metrics``).

Core hands each buffered update over with a metric object and an attribute-set object that
it reuses only while it holds them. A counter a workflow creates where a run is skipped is
freed after use, and a later metric can be born at the same address: the SDK's exporter,
which caches by ``id()``, then counted it under the earlier one's name or labels. Here
metrics are created and dropped the way workflows do, and every count must arrive where it
belongs. No services: a real core runtime with a metric buffer, drained by hand.
"""

from __future__ import annotations

import gc
from collections import Counter

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from temporalio.contrib.opentelemetry import MetricsExporter
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from infra.metrics import ExactMetricsExporter

ROUNDS = 60


def _exported(
    exporter_class: type[MetricsExporter],
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """Counts as exported, and as recorded, by (metric name, label value)."""
    buffer = MetricBuffer(10_000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    reader = InMemoryMetricReader()
    exporter = exporter_class(buffer, MeterProvider(metric_readers=[reader]))
    recorded: Counter[tuple[str, str]] = Counter()
    for i in range(ROUNDS):
        name, reason = f"synchub_test_{i % 7}", f"r{i % 3}"
        counter = runtime.metric_meter.create_counter(name, "made and dropped, as workflows do")
        counter.add(1, {"reason": reason})
        recorded[(name, reason)] += 1
        del counter
        gc.collect()  # frees the metric and attribute objects core no longer holds
        exporter._drain_once()  # what run() does every poll interval
    exported: Counter[tuple[str, str]] = Counter()
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    assert isinstance(point, NumberDataPoint), metric.name  # counters only
                    label = dict(point.attributes or {}).get("reason")
                    exported[(metric.name, str(label))] += int(point.value)
    return exported, recorded


def test_every_count_arrives_under_its_own_name_and_labels() -> None:
    exported, recorded = _exported(ExactMetricsExporter)
    assert sum(recorded.values()) == ROUNDS
    assert exported == recorded
