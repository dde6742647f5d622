"""Composition root: settings -> clients -> connectors -> activities -> Worker.

Run it with ``python worker.py``; settings come from the environment (see README).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.encoding import Output
from activities.sync import SyncActivities
from activities.worker_deps import (
    WorkerDeps,
    build_avro,
    open_publisher,
    open_store,
    restore_freshness,
    source_activities,
)
from connectors import REGISTRY, Connector
from connectors.http import warm_http_stack
from connectors.schedules import source_intervals
from infra.cache_epochs import CacheEpochs
from infra.connections import kafka_security
from infra.gc_tuning import tune_gc
from infra.loop_stall import LoopStallMonitor
from infra.observability import set_intervals, start_telemetry
from infra.schedule_check import watch_schedules
from infra.temporal import connect, ensure_search_attributes
from models import clock
from models.errors import NotConfiguredError
from settings import Settings, SettingsError, load_settings
from workflows.sync_all import SyncAllWorkflow
from workflows.sync_partition import SyncPartitionWorkflow
from workflows.temu_inventory import TemuInventoryWorkflow

log = logging.getLogger("synchub.worker")

WORKFLOWS = [SyncAllWorkflow, SyncPartitionWorkflow, TemuInventoryWorkflow]
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows", "models")
)
"""The sandbox, with our workflow modules imported once per worker instead of once per run.

By default the sandbox imports a workflow's module afresh for every workflow run; where no
bytecode is cached (``PYTHONDONTWRITEBYTECODE``) that compiles its source each time, about
25 ms of CPU per run on the critical path of every partition (a third of a no-change run's
worker CPU, issue 11). The modules hold no state (ARCHITECTURE rule 8: no import-time side
effects, only ``workflow.*`` calls), so sharing them between runs changes nothing; what
the workflows call is still restricted by the sandbox.
"""


@dataclass
class WorkerBundle:
    """A ready worker and what must be closed after it stops."""

    worker: Worker
    connectors: dict[str, Connector]
    unconfigured: dict[str, str]
    resources: AsyncExitStack

    async def aclose(self) -> None:
        """Close HTTP clients, the Redis pool and the Kafka producer."""
        await self.resources.aclose()


def build_connectors(settings: Settings) -> tuple[dict[str, Connector], dict[str, str]]:
    """Every registered source whose settings are present; the others with the reason."""
    connectors: dict[str, Connector] = {}
    unconfigured: dict[str, str] = {}
    for source, spec in REGISTRY.items():
        try:
            connectors[source] = spec.build(settings)
        except NotConfiguredError as exc:
            unconfigured[source] = str(exc)
    return connectors, unconfigured


def build_output(settings: Settings) -> Output:
    """The value formats and tombstones of ``settings.output``, checked against the registry.

    Raises:
        SettingsError: ``SYNCHUB_OUTPUT_FORMATS`` names a source synchub does not have.

    """
    unknown = sorted(set(settings.output.formats) - set(REGISTRY))
    if unknown:
        raise SettingsError(
            f"SYNCHUB_OUTPUT_FORMATS names unknown sources {', '.join(unknown)} "
            f"(known: {', '.join(REGISTRY)})"
        )
    return Output(formats=dict(settings.output.formats), tombstones=settings.output.tombstones)


def assemble_worker(
    client: Client, settings: Settings, activities: list[Callable[..., Any]]
) -> Worker:
    """The Temporal worker of ``WORKFLOWS`` and ``activities`` on the settings' task queue."""
    return Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        activities=activities,
        max_concurrent_activities=settings.sync.max_concurrent * 2,
        # heartbeats carry the committed cursor; the SDK's default throttle (80 % of the
        # 20 s heartbeat timeout) would hold it back until after a crash
        max_heartbeat_throttle_interval=timedelta(0),
        # SIGTERM: running pages finish and commit (a flush is bounded by the Kafka
        # delivery timeout) instead of being cancelled and redone by the next worker
        graceful_shutdown_timeout=timedelta(seconds=settings.temporal.graceful_shutdown_seconds),
    )


async def build_worker(client: Client, settings: Settings) -> WorkerBundle:
    """Build every dependency once, check the services answer, and assemble the worker."""
    resources = AsyncExitStack()
    try:
        connectors, unconfigured = build_connectors(settings)
        for conn in connectors.values():
            resources.push_async_callback(conn.aclose)
        await warm_http_stack()  # the first upstream request would pay the lazy imports
        tune_gc()  # a big page's objects: no collection walks them again and again
        store = await open_store(settings, resources)
        await restore_freshness(settings, connectors, resources)
        publisher = await open_publisher(settings, connectors, resources)
        deps = WorkerDeps(settings, publisher, kafka_security(settings.kafka), resources)
        sync = SyncActivities(
            connectors,
            store,
            publisher,
            settings.kafka.deadletter_topic,
            unconfigured,
            epochs=CacheEpochs(deps.redis(), settings.redis.expire_cache),
            output=await build_avro(settings, build_output(settings), connectors),
        )
        generic: list[Callable[..., Any]] = [
            sync.list_partitions,
            sync.sync_page,
            sync.finish_partition,
            sync.sync_partition_pass,
        ]
        worker = assemble_worker(client, settings, generic + source_activities(connectors, deps))
    except BaseException:
        await resources.aclose()
        raise
    return WorkerBundle(worker, connectors, unconfigured, resources)


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then let running activities finish their page."""
    telemetry = start_telemetry("synchub-worker", settings)
    client = await connect(settings.temporal, runtime=telemetry.runtime)
    added = await ensure_search_attributes(client)
    if added:
        log.info("registered search attributes %s", ", ".join(added))
    bundle = await build_worker(client, settings)
    active = settings.temporal.codec()[1]
    if active:
        log.info("payloads in Temporal history are encrypted with codec key %r", active)
    else:
        log.warning("SYNCHUB_CODEC_KEYS is not set: payloads in Temporal history are plaintext")
    set_intervals(source_intervals(settings, list(bundle.connectors)))
    if telemetry.url:
        log.info("metrics for Prometheus at %s", telemetry.url)
    for source, why in bundle.unconfigured.items():
        log.warning("source %s disabled: %s", source, why)
    log.info(
        "worker polling task queue %r on %s; sources: %s",
        settings.temporal.task_queue,
        settings.temporal.address,
        ", ".join(bundle.connectors) or "none",
    )
    stop = asyncio.Event()
    monitor = LoopStallMonitor().start()  # CPU work holding the loop delays heartbeats
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with telemetry.exporter, bundle.worker:
            watch = asyncio.create_task(watch_schedules(client, stop))  # skipped/missed runs
            await stop.wait()
            await watch
            log.info(
                "shutting down: running activities get up to %.0f s to finish",
                settings.temporal.graceful_shutdown_seconds,
            )
    finally:
        longest = await monitor.stop()  # while serving; closing may block on purpose
        log.info(
            "longest event-loop stall: %.0f ms (%d over 100 ms)",
            longest * 1000,
            monitor.stalls_over_100ms,
        )
        await bundle.aclose()


def configure_logging() -> None:
    """Plain, greppable log lines (what operators tail)."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


def main() -> int:
    """Entry point of ``python worker.py``."""
    configure_logging()
    try:
        clock.install_from_env()  # test/dev only: a simulated "now" (SYNCHUB_CLOCK_FILE)
        settings = load_settings()
    except (SettingsError, ValueError) as exc:
        print(f"synchub worker: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_worker(settings))
    except (RuntimeError, OSError) as exc:
        print(f"synchub worker: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    # Skip interpreter finalization: the Temporal client's Rust threads can abort it
    # (SIGABRT), turning a clean exit code into -6 (temporalio/sdk-python#300).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
