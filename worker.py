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

import redis.asyncio as aioredis
from temporalio.client import Client
from temporalio.worker import Worker

from activities.sync import SyncActivities
from activities.temu import TemuActivities
from activities.temu_inventory import TemuInventoryActivities
from connectors import REGISTRY, Connector
from connectors.http import warm_http_stack
from connectors.temu.connector import TemuOrdersConnector
from connectors.temu.inventory import TemuInventoryConnector
from infra.cache_epochs import CacheEpochs
from infra.change_store import ChangeStore
from infra.gc_tuning import tune_gc
from infra.loop_stall import LoopStallMonitor
from infra.publisher import KafkaPublisher, ensure_topics
from infra.temporal import connect, ensure_search_attributes
from models import clock
from models.errors import NotConfiguredError
from settings import Settings, SettingsError, load_settings, redact_url
from workflows.sync_all import SyncAllWorkflow
from workflows.sync_partition import SyncPartitionWorkflow
from workflows.temu_inventory import TemuInventoryWorkflow

log = logging.getLogger("synchub.worker")

WORKFLOWS = [SyncAllWorkflow, SyncPartitionWorkflow, TemuInventoryWorkflow]


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


async def build_worker(client: Client, settings: Settings) -> WorkerBundle:
    """Build every dependency once, check the services answer, and assemble the worker."""
    resources = AsyncExitStack()
    try:
        connectors, unconfigured = build_connectors(settings)
        for conn in connectors.values():
            resources.push_async_callback(conn.aclose)
        await warm_http_stack()  # the first upstream request would pay the lazy imports
        tune_gc()  # a big page's objects: no collection walks them again and again
        store = ChangeStore.from_url(settings.redis.url, settings.redis.expire_cache)
        resources.push_async_callback(store.aclose)
        try:
            await store.ping()
        except Exception as exc:
            raise RuntimeError(
                f"cannot reach Redis at REDIS_HOST={redact_url(settings.redis.url)}: {exc}"
            ) from None
        topics = [c.topic for c in connectors.values()] + [settings.kafka.deadletter_topic]
        if "temu-orders" in connectors:
            topics.append(settings.temu.shipments_topic)
        if "temu-inventory" in connectors:
            topics.append(settings.temu.stock_topic)
        await asyncio.to_thread(
            ensure_topics, settings.kafka.brokers, topics, settings.kafka.topic_partitions
        )
        publisher = KafkaPublisher(
            settings.kafka.brokers,
            client_id="synchub-worker",
            delivery_timeout_seconds=settings.kafka.delivery_timeout_seconds,
            topic_partitions=settings.kafka.topic_partitions,
        )
        resources.callback(publisher.close)
        epochs_redis = aioredis.Redis.from_url(settings.redis.url)
        resources.push_async_callback(epochs_redis.aclose)
        activities = SyncActivities(
            connectors,
            store,
            publisher,
            settings.kafka.deadletter_topic,
            unconfigured,
            epochs=CacheEpochs(epochs_redis, settings.redis.expire_cache),
        )
        extra: list[Callable[..., Any]] = []
        orders = connectors.get("temu-orders")
        if isinstance(orders, TemuOrdersConnector):
            temu = TemuActivities(
                orders.clients,
                publisher,
                brokers=settings.kafka.brokers,
                shipments_topic=settings.temu.shipments_topic,
                deadletter_topic=settings.kafka.deadletter_topic,
            )
            extra.append(temu.confirm_shipments)
        inventory = connectors.get("temu-inventory")
        if isinstance(inventory, TemuInventoryConnector):
            inventory_redis = aioredis.Redis.from_url(settings.redis.url)
            resources.push_async_callback(inventory_redis.aclose)
            stock = TemuInventoryActivities(
                inventory.clients,
                inventory_redis,
                publisher,
                brokers=settings.kafka.brokers,
                stock_topic=settings.temu.stock_topic,
                audit_topic=settings.temu.inventory_topic,
                deadletter_topic=settings.kafka.deadletter_topic,
            )
            extra += [stock.load_desired_stock, stock.reconcile_batch, stock.finish_run]
        worker = Worker(
            client,
            task_queue=settings.temporal.task_queue,
            workflows=WORKFLOWS,
            activities=[
                activities.list_partitions,
                activities.sync_page,
                activities.finish_partition,
                activities.sync_partition_pass,
                *extra,
            ],
            max_concurrent_activities=settings.sync.max_concurrent * 2,
            # heartbeats carry the committed cursor; the SDK's default throttle (80 % of the
            # 20 s heartbeat timeout) would hold it back until after a crash
            max_heartbeat_throttle_interval=timedelta(0),
            # SIGTERM: running pages finish and commit (a flush is bounded by the Kafka
            # delivery timeout) instead of being cancelled and redone by the next worker
            graceful_shutdown_timeout=timedelta(
                seconds=settings.temporal.graceful_shutdown_seconds
            ),
        )
    except BaseException:
        await resources.aclose()
        raise
    return WorkerBundle(worker, connectors, unconfigured, resources)


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then let running activities finish their page."""
    client = await connect(settings.temporal)
    added = await ensure_search_attributes(client)
    if added:
        log.info("registered search attributes %s", ", ".join(added))
    bundle = await build_worker(client, settings)
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
        async with bundle.worker:
            await stop.wait()
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
