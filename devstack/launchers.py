"""The command line, log file and readiness probe of each embedded service.

Each function returns an unstarted ``ServiceProcess``; ``devstack.services.DevStack``
decides which services run, on which ports, and starts and stops them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from devstack.binaries import kafka_binary, temporal_binary, valkey_binary
from devstack.probes import kafka_probe, redis_probe, temporal_probe
from devstack.process import ServiceProcess

TEMPORAL_DYNAMIC_CONFIG: Mapping[str, str] = {
    "history.transferProcessorMaxPollRPS": "1000",
    "history.timerProcessorMaxPollRPS": "1000",
    "history.visibilityProcessorMaxPollRPS": "1000",
}
"""Dynamic config of the dev server: its one history shard polls each task queue (child
starts, workflow tasks, close notifications, timers, visibility) at most 20 times a second
by default, which held a sync-all fan-out to about 7 children a second with the server
mostly idle (issue 11; ``tests/test_devstack_fanout.py``). A cluster has many shards."""

TEMPORAL_SQLITE_PRAGMAS: tuple[str, ...] = ("journal_mode=WAL", "synchronous=NORMAL")
"""SQLite pragmas of the dev server's history file: every workflow task, child start and
child close is a transaction, and the default rollback journal syncs the disk twice per
commit, which held a sync-all parent's workflow tasks (one after another) to the disk's
pace (issue 11; ``tests/test_devstack_sqlite.py``). In WAL mode only checkpoints sync: a
crashed server loses nothing, a power loss at most the last commits."""


def temporal_process(
    host: str,
    port: int,
    *,
    ui_port: int | None,
    db: Path,
    namespace: str,
    search_attributes: Mapping[str, str],
    ui_codec_endpoint: str | None,
    log_dir: Path,
    startup_timeout: float,
) -> ServiceProcess:
    """``temporal server start-dev`` with its SQLite history in ``db``.

    Args:
        host: address to bind.
        port: frontend (gRPC) port.
        ui_port: Web UI port; ``None`` runs headless.
        db: SQLite file of the history (kept across restarts).
        namespace: namespace created at start and checked by the probe.
        search_attributes: custom search attributes registered at every start.
        ui_codec_endpoint: codec server the Web UI decodes payloads with.
        log_dir: folder of ``temporal.log``.
        startup_timeout: seconds until the frontend (and UI) must answer.

    """
    argv = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        host,
        "--port",
        str(port),
        "--db-filename",
        str(db),
        "--namespace",
        namespace,
        "--log-level",
        "warn",
    ]
    for name, kind in search_attributes.items():
        argv += ["--search-attribute", f"{name}={kind}"]
    for key, value in TEMPORAL_DYNAMIC_CONFIG.items():
        argv += ["--dynamic-config-value", f"{key}={value}"]
    for pragma in TEMPORAL_SQLITE_PRAGMAS:
        argv += ["--sqlite-pragma", pragma]
    if ui_port is None:
        argv.append("--headless")
    else:
        # The news feed is fetched from the internet; offline machines only get errors.
        argv += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"]
        if ui_codec_endpoint:
            argv += ["--ui-codec-endpoint", ui_codec_endpoint]
    ui_url = None if ui_port is None else f"http://{host}:{ui_port}"
    return ServiceProcess(
        "Temporal dev server",
        argv,
        log_dir / "temporal.log",
        temporal_probe(host, port, namespace, dict(search_attributes), ui_url),
        startup_timeout=startup_timeout,
    )


def kafka_process(host: str, port: int, *, log_dir: Path, startup_timeout: float) -> ServiceProcess:
    """tansu, a Kafka-protocol broker keeping its topics in memory."""
    url = f"tcp://{host}:{port}"
    argv = [
        kafka_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    return ServiceProcess(
        "Kafka broker (tansu)",
        argv,
        log_dir / "tansu.log",
        kafka_probe(host, port),
        startup_timeout=startup_timeout,
        stop_grace=5.0,
    )


def valkey_process(
    host: str, port: int, *, data_dir: Path | None, log_dir: Path, startup_timeout: float
) -> ServiceProcess:
    """valkey, a Redis-protocol server; with ``data_dir`` persisted in an append-only file.

    The file is fsynced every second, so a restarted valkey keeps its keys; without
    ``data_dir`` everything stays in memory.
    """
    argv = [
        valkey_binary(),
        "--port",
        str(port),
        "--bind",
        host,
        "--save",
        "",
        "--daemonize",
        "no",
    ]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        argv += ["--dir", str(data_dir.resolve()), "--appendonly", "yes"]
        argv += ["--appendfsync", "everysec"]
    else:
        argv += ["--appendonly", "no"]
    return ServiceProcess(
        "Redis server (valkey)",
        argv,
        log_dir / "valkey.log",
        redis_probe(host, port),
        startup_timeout=startup_timeout,
        stop_grace=5.0,
    )
