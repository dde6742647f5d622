"""``starter.py dev``: the embedded default, everything started for the user on loopback.

Temporal dev server with Web UI (history in ``.synchub/temporal.db``, kept across restarts),
tansu (Kafka protocol), valkey (Redis protocol), a codec server, the simulator of every
registered source (``ConnectorSpec.simulator``, each package's ``DEV`` hooks: seeding, the
settings that point the connector at it, churn that keeps records changing), a worker, the
schedules and one immediate run per source. Ctrl-C stops every process it started.

Nothing here names a source: a source with a simulator package is part of the dev run by its
registry line alone.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr
from temporalio.client import Client

from connectors import REGISTRY
from connectors.schedules import schedule_definitions, source_intervals
from devstack.banner import banner
from devstack.services import DevStack, ServiceError
from devstack.simulator import (
    DevContext,
    DevSimulator,
    Simulated,
    SimulatorHookError,
    registry_simulators,
)
from infra.codec import EncryptionCodec, dev_key_entry
from infra.codec_server import make_codec_app
from infra.metrics import MetricsAddressError
from infra.observability import set_intervals, start_telemetry
from infra.schedule_check import watch_schedules
from infra.schedules import apply_schedules
from infra.temporal import connect, ensure_search_attributes
from models.clock import now
from settings import KafkaSettings, RedisSettings, Settings, TemporalSettings
from simulators.server import PortInUseError, ThreadedServer

log = logging.getLogger("synchub.dev")


class WorkerBundle(Protocol):
    """What the dev run uses of ``worker.WorkerBundle``: the worker, its sources, a close."""

    @property
    def worker(self) -> AbstractAsyncContextManager[Any]: ...  # noqa: D102
    @property
    def connectors(self) -> Mapping[str, Any]: ...  # noqa: D102
    async def aclose(self) -> None: ...  # noqa: D102


class StartedRun(Protocol):
    """What the dev run uses of a started run's handle: its workflow id."""

    @property
    def id(self) -> str: ...  # noqa: D102


@dataclass(frozen=True)
class EntryPoints:
    """What the dev run needs from the entry points, handed in by ``starter.py dev``.

    The dev stack never imports ``starter``, ``worker`` or ``cli``: they import it. Passing
    their functions in keeps the dependency one way (no ``starter -> devstack -> starter``
    cycle) and lets a test hand in its own worker.
    """

    build_worker: Callable[[Client, Settings], Awaitable[WorkerBundle]]
    """``worker.build_worker``: the worker with every configured source."""
    start_sync: Callable[[Client, Settings, str, dict[str, Any]], Awaitable[StartedRun]]
    """Start one sync-all run of a source with parameters (``cli.run`` with defaults)."""
    configure_logging: Callable[[], None] = lambda: None
    """``worker.configure_logging``: the log format operators read."""


CHURN_SEED = 7
"""Seed of the churn's choices: a dev run changes the same records each time."""


async def churn(
    simulators: list[Simulated], settings: Settings, every: float, stop: asyncio.Event
) -> None:
    """Change a few records of every simulator now and then, so runs have something to publish."""
    rng = random.Random(CHURN_SEED)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            context = DevContext(
                settings, settings.kafka.brokers, rng, stamp=f"changed at {now():%H:%M:%S}"
            )
            for sim in simulators:
                await asyncio.to_thread(sim.seeded.churn, context)


async def first_runs(
    entry: EntryPoints,
    client: Client,
    settings: Settings,
    simulators: Mapping[str, Simulated],
    sources: list[str],
) -> list[tuple[str, str]]:
    """One run now per configured source with a simulator, in registry order: (source, id)."""
    started: list[tuple[str, str]] = []
    for source in sources:
        sim = simulators.get(REGISTRY[source].simulator)
        if sim is not None:
            params = dict(sim.hooks.first_runs.get(source, {}))
            handle = await entry.start_sync(client, settings, source, params)
            started.append((source, handle.id))
    return started


async def serve(
    settings: Settings,
    stack: DevStack,
    simulators: dict[str, Simulated],
    started: float,
    entry: EntryPoints,
) -> None:
    """Worker, schedules and a first run per source; then wait for Ctrl-C."""
    telemetry = start_telemetry("synchub-dev", settings)
    client = await connect(settings.temporal, runtime=telemetry.runtime)
    await ensure_search_attributes(client)
    bundle = await entry.build_worker(client, settings)
    sources = list(bundle.connectors)
    set_intervals(source_intervals(settings, sources))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with telemetry.exporter, bundle.worker:
            watch = asyncio.create_task(watch_schedules(client, stop))  # skipped/missed runs
            schedules = await apply_schedules(
                client, settings, schedule_definitions(settings, sources)
            )
            runs = await first_runs(entry, client, settings, simulators, sources)
            topics = [c.topic for c in bundle.connectors.values()]
            first_topic = bundle.connectors[runs[0][0]].topic if runs else ""
            text = banner(
                settings,
                stack,
                list(simulators.values()),
                [*topics, settings.kafka.deadletter_topic],
                schedules,
                runs,
                first_topic,
                telemetry.url or telemetry.problem or "off",
                time.monotonic() - started,
            )
            print(text, flush=True)
            every = max(10.0, settings.sync.interval_seconds / 2)
            churner = asyncio.create_task(churn(list(simulators.values()), settings, every, stop))
            await stop.wait()
            print("stopping: worker, simulators, Temporal, Kafka, Redis ...", flush=True)
            await churner
            await watch
    finally:
        await bundle.aclose()


def run_dev(settings: Settings, entry: EntryPoints) -> int:
    """Start everything, run until Ctrl-C, stop everything. Returns the exit code."""
    entry.configure_logging()
    # SIGTERM would otherwise end Python without unwinding, leaving the services running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        return _run_dev(settings, started, entry)
    except (PortInUseError, ServiceError, MetricsAddressError, SimulatorHookError) as exc:
        # Nothing is left running (the stack stops what it started); say what to change.
        print(f"starter.py dev: {exc}", file=sys.stderr, flush=True)
        return 1


def build_stack(
    settings: Settings, simulators: Mapping[str, DevSimulator] | None = None
) -> DevStack:
    """The dev stack of ``settings``: its topics and port check cover the simulators too.

    ``simulators`` defaults to every simulator the registry names.
    """
    dev = settings.dev
    hooks = registry_simulators(REGISTRY) if simulators is None else simulators
    topics: list[str] = []
    for sim in hooks.values():
        topics += [t for t in sim.topics(settings) if t not in topics]
    return DevStack.from_settings(
        dev,
        topics=[*topics, settings.kafka.deadletter_topic],
        topic_partitions=settings.kafka.topic_partitions,
        ui_codec_endpoint=f"http://{dev.host}:{dev.codec_port}",
        extra_ports=[
            *(
                (sim.port(settings), f"the {sim.title}", sim.port_setting)
                for sim in hooks.values()
                if sim.port(settings)  # 0: a free port, picked when it starts
            ),
            (dev.codec_port, "the codec server", "SYNCHUB_CODEC_PORT"),
        ],
    )


def local_settings(
    settings: Settings, stack: DevStack, temporal: TemporalSettings, simulators: list[Simulated]
) -> Settings:
    """``settings`` pointed at the stack's services and at every simulator."""
    update: dict[str, Any] = {
        "temporal": temporal,
        "kafka": KafkaSettings(**{**settings.kafka.model_dump(), "brokers": stack.kafka_brokers}),
        "redis": RedisSettings(url=stack.redis_url, expire_cache=settings.redis.expire_cache),
    }
    pointed = [
        section
        for sim in simulators
        for section in sim.seeded.settings_update(settings, sim.server.url).values()
    ]
    return settings.model_copy(update=update).with_sections(*pointed)


def _run_dev(settings: Settings, started: float, entry: EntryPoints) -> int:
    dev = settings.dev
    hooks = registry_simulators(REGISTRY)
    stack = build_stack(settings, hooks)
    # history is encrypted in the embedded default too: a key of its own under the state dir
    codec_keys = settings.temporal.codec_keys or SecretStr(dev_key_entry(dev.state_dir))
    temporal = TemporalSettings(
        address=stack.temporal_address,
        namespace=settings.temporal.namespace,
        task_queue=settings.temporal.task_queue,
        codec_keys=codec_keys,
        codec_active_key=settings.temporal.codec_active_key,
    )
    keys, active = temporal.codec()
    ui = stack.ui_url or f"http://{dev.host}:{dev.ui_port}"
    codec_server = ThreadedServer(
        make_codec_app(EncryptionCodec(keys, active), [ui, ui.replace("127.0.0.1", "localhost")]),
        dev.host,
        dev.codec_port,
    )
    simulators: dict[str, Simulated] = {}
    for package, sim in hooks.items():
        seeded = sim.seed(settings)
        server = ThreadedServer(seeded.app, dev.host, sim.port(settings))
        simulators[package] = Simulated(sim, seeded, server)
    with stack:
        try:
            for running in simulators.values():
                running.server.start()
            codec_server.start()
            local = local_settings(settings, stack, temporal, list(simulators.values()))
            context = DevContext(local, stack.kafka_brokers, random.Random(CHURN_SEED))
            for running in simulators.values():
                running.seeded.prepare(context)
            asyncio.run(serve(local, stack, simulators, started, entry))
        finally:
            codec_server.stop()
            for running in reversed(simulators.values()):
                running.server.stop()
    print("stopped.", flush=True)
    return 0
