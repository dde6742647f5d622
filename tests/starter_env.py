"""starter.py run as an operator runs it: a subprocess with settings in its environment.

The engine it talks to is in ``tests/starter_fixtures.py``.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from settings import Settings

ROOT = Path(__file__).parents[1]
_SETTING_PREFIXES = ("TEMPORAL_", "KAFKA_", "REDIS_", "SYNC_", "WIW_", "SYNCHUB_", "EXPIRE_CACHE")


@dataclass
class Ran:
    """A finished starter.py invocation."""

    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes starter.py see exactly ``settings`` (slot_sync's names)."""
    assert settings.wiw.token is not None
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SETTING_PREFIXES)}
    return {
        **base,
        "PYTHONUNBUFFERED": "1",
        "TEMPORAL_ADDRESS": settings.temporal.address,
        "TEMPORAL_NAMESPACE": settings.temporal.namespace,
        "TEMPORAL_TASK_QUEUE": settings.temporal.task_queue,
        "KAFKA_BROKERS": settings.kafka.brokers,
        "KAFKA_TOPIC_NAME": settings.kafka.wiw_topic,
        "KAFKA_DEADLETTER_TOPIC": settings.kafka.deadletter_topic,
        "KAFKA_TOPIC_PARTITIONS": str(settings.kafka.topic_partitions),
        "REDIS_HOST": settings.redis.url,
        "SYNC_DAYS_AHEAD": str(settings.sync.days_ahead),
        "SYNC_DAYS_PRIOR": str(settings.sync.days_prior),
        "SYNC_MAX_CONCURRENT": str(settings.sync.max_concurrent),
        "WIW_API_URL": settings.wiw.api_url,
        "WIW_KEY": settings.wiw.token.get_secret_value(),
    }


async def starter(env: dict[str, str], *args: str, limit: float = 60.0) -> Ran:
    """Run ``python starter.py ARGS`` without blocking the loop the worker runs on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "starter.py",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"starter.py {' '.join(args)} did not finish in {limit} s\n{out.decode()}\n"
            f"{err.decode()}"
        ) from None
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


def started_id(ran: Ran) -> str:
    """The workflow id ``run`` printed on its first line."""
    match = re.search(r"^started (\S+) \(run ", ran.out, re.M)
    assert match, str(ran)
    return match.group(1)
