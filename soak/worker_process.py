"""The soak's worker: ``worker.py`` as a subprocess, started, SIGKILLed and stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from models import clock
from soak.plan import SourcePlan

if TYPE_CHECKING:
    from devstack.services import DevStack

ROOT = Path(__file__).resolve().parent.parent
"""Repository root: the worker subprocess runs ``worker.py`` from here."""
EXPIRE_CACHE_SECONDS = 86_400
"""The worker's ``EXPIRE_CACHE`` in real seconds: never reached during a soak."""
TOPIC_PARTITIONS = 2


@dataclass(frozen=True)
class Services:
    """Where a soak finds Temporal, tansu and valkey (picklable, for a soak in a subprocess)."""

    host: str
    redis_port: int
    temporal_address: str
    namespace: str
    kafka_brokers: str

    @classmethod
    def of(cls, stack: DevStack | Services) -> Services:
        """The addresses of a running stack."""
        if isinstance(stack, Services):
            return stack
        return cls(
            stack.host,
            stack.redis_port,
            stack.temporal_address,
            stack.namespace,
            stack.kafka_brokers,
        )


class WorkerProcess:
    """One source's worker subprocess against the soak's services.

    Args:
        plan: the source's plan (its topic setting and simulator settings).
        stack: the services.
        task_queue, topic, deadletter, redis_url: the soak's own names.
        clock_file: the simulated "now" the worker reads (``SYNCHUB_CLOCK_FILE``).
        log: file the worker's output is appended to.
    """

    def __init__(
        self,
        plan: SourcePlan,
        stack: Services,
        *,
        task_queue: str,
        topic: str,
        deadletter: str,
        redis_url: str,
        clock_file: Path,
        log: Path,
    ) -> None:
        self.plan = plan
        self.stack = stack
        self.task_queue = task_queue
        self.topic = topic
        self.deadletter = deadletter
        self.redis_url = redis_url
        self.clock_file = clock_file
        self.log = log
        self._worker: subprocess.Popen[bytes] | None = None

    def env(self, sim_url: str) -> dict[str, str]:
        """The worker's environment: the soak's services, topics, clock file and simulator."""
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            {
                "TEMPORAL_ADDRESS": self.stack.temporal_address,
                "TEMPORAL_NAMESPACE": self.stack.namespace,
                "TEMPORAL_TASK_QUEUE": self.task_queue,
                "KAFKA_BROKERS": self.stack.kafka_brokers,
                "KAFKA_DEADLETTER_TOPIC": self.deadletter,
                "KAFKA_TOPIC_PARTITIONS": str(TOPIC_PARTITIONS),
                self.plan.topic_env: self.topic,
                "REDIS_URL": self.redis_url,
                "EXPIRE_CACHE": str(EXPIRE_CACHE_SECONDS),
                clock.CLOCK_FILE_ENV: str(self.clock_file),
                **self.plan.worker_env(sim_url),
            }
        )
        return env

    def start(self, env: dict[str, str]) -> None:
        """Start ``worker.py`` in a session of its own, appending to its log."""
        with self.log.open("ab") as out:
            self._worker = subprocess.Popen(
                [sys.executable, "worker.py"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the worker's process group, as a crash would."""
        if self._worker is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._worker.pid, signal.SIGKILL)
        self._worker.wait(10)
        self._worker = None

    def stop(self) -> None:
        """SIGINT (let running pages finish), SIGKILL after 30 s."""
        if self._worker is None:
            return
        worker, self._worker = self._worker, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGINT)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
