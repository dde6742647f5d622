"""What a simulator package offers the dev stack: one ``DEV`` object per package.

A source names its simulator package in its registry entry (``ConnectorSpec.simulator``, e.g.
``"simulators.wiw"``). The dev stack imports that package by name (production never does) and
uses its ``DEV`` object, a ``DevSimulator``: the port it listens on, the topics to create, how
to seed it, how to point the connector's settings at it, and what to change now and then so
runs have something to publish. Two sources may share one simulator (TEMU orders and TEMU
inventory); it is started once.

A simulator package implements these protocols structurally: it imports nothing from here at
run time, so ``simulators`` never depends on ``devstack``.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from simulators.server import ThreadedServer

if TYPE_CHECKING:
    from connectors.base import ConnectorSpec
    from settings import Settings

DEV_ATTRIBUTE = "DEV"
"""The name a simulator package exposes its ``DevSimulator`` under."""


@dataclass(frozen=True)
class DevContext:
    """What a seeded simulator may use once the stack is up."""

    settings: Settings
    """The dev run's settings, already pointed at the local services and simulators."""
    kafka_brokers: str
    """Bootstrap servers of the dev stack's broker (for simulators that play the ERP)."""
    rng: random.Random
    """Shared random source, seeded, so a dev run changes the same records each time."""
    stamp: str = ""
    """A human-readable "changed at" text for churn edits (empty for ``prepare``)."""


@runtime_checkable
class SeededSimulator(Protocol):
    """One simulator with its data, ready to be served over HTTP."""

    @property
    def app(self) -> Any:
        """The ASGI app serving the seeded state."""
        ...

    def settings_update(self, settings: Settings, url: str) -> dict[str, Any]:
        """Settings sections (name → section) that point the source's connectors at ``url``.

        Each replaces the section of its type (``Settings.with_sections``): a field of the
        tree or a section the source declares in its registry entry.

        ``url`` is the simulator's base URL (``http://host:port``). Credentials are the
        simulator's own non-secret ones.
        """
        ...

    def prepare(self, context: DevContext) -> None:
        """Seed what lives outside the simulator once the stack is up (blocking)."""
        ...

    def churn(self, context: DevContext) -> None:
        """Change a few records (blocking; called now and then from a worker thread)."""
        ...

    def summary(self) -> str:
        """What it holds, for the banner (``"(200 shifts)"``)."""
        ...


@runtime_checkable
class DevSimulator(Protocol):
    """The dev-stack hooks of one simulator package, exposed as ``<package>.DEV``."""

    title: str
    """Name in the banner and in port errors ("WIW simulator")."""
    port_setting: str
    """Environment variable that sets its port (named when the port is taken)."""
    first_runs: Mapping[str, dict[str, Any]]
    """Parameters of the run the dev stack starts at once, per source it simulates."""

    def port(self, settings: Settings) -> int:
        """Port to listen on; 0 picks a free one."""
        ...

    def topics(self, settings: Settings) -> list[str]:
        """Kafka topics its sources read or write, created when the broker starts."""
        ...

    def seed(self, settings: Settings) -> SeededSimulator:
        """Build and seed the simulator's state from the settings."""
        ...


@dataclass
class Simulated:
    """One running simulator of the dev run."""

    hooks: DevSimulator
    seeded: SeededSimulator
    server: ThreadedServer


class SimulatorHookError(RuntimeError):
    """A registry entry names a simulator package that has no usable ``DEV`` object."""


def load_simulator(package: str, source: str) -> DevSimulator:
    """The ``DEV`` object of ``package``, which ``source``'s registry entry names.

    Raises:
        SimulatorHookError: the package cannot be imported or has no ``DevSimulator`` named
            ``DEV``; says which source's ``simulator=`` to fix.
    """
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise SimulatorHookError(
            f"source {source!r}: simulator={package!r} cannot be imported ({exc})"
        ) from None
    hooks = getattr(module, DEV_ATTRIBUTE, None)
    if not isinstance(hooks, DevSimulator):
        raise SimulatorHookError(
            f"source {source!r}: simulator package {package!r} has no {DEV_ATTRIBUTE} object "
            "implementing devstack.simulator.DevSimulator"
        )
    return hooks


def registry_simulators(registry: Mapping[str, ConnectorSpec]) -> dict[str, DevSimulator]:
    """Every simulator the registry names, by package, each once, in registry order.

    Raises:
        SimulatorHookError: a named package has no usable ``DEV`` object.
    """
    found: dict[str, DevSimulator] = {}
    for source, spec in registry.items():
        if spec.simulator and spec.simulator not in found:
            found[spec.simulator] = load_simulator(spec.simulator, source)
    return found
