"""What a simulator offers the connector contract suite (``tests/test_connector_contract.py``).

Every registered connector must pass the same contract against its simulator over real HTTP:
listing, paging to the end, stable raw digests, a missing key looked up, a malformed record
dead-lettered once, an auth failure that is not retried and names the setting, a rate-limit
answer that is retried, no secret in any error text. The suite knows no source: it finds a
spec's simulator package through ``ConnectorSpec.simulator``, imports its ``contract``
module and calls its ``contract_simulator(source)``, which returns a ``ContractSimulator``.
A new source gets the suite by setting ``simulator`` and writing that module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from simulators.server import ThreadedServer

if TYPE_CHECKING:
    from connectors.base import ConnectorSpec
    from settings import Settings

FACTORY = "contract_simulator"
"""Name of the function in ``<simulator package>.contract`` that builds the simulator."""


@runtime_checkable
class ContractSimulator(Protocol):
    """One source's simulator, driven through the few things the contract needs."""

    secrets: tuple[str, ...]
    """Distinctive secret values ``configure`` puts into the settings (and the simulator
    accepts); no error text may contain any of them."""
    auth_setting: str
    """The setting an authentication failure's message must name (e.g. ``WIW_KEY``)."""
    rate_limits: tuple[str, ...]
    """The rate-limit answers the upstream may give, documented or inferred (e.g. ``"429"``,
    ``"403"``); the contract waits out each one."""

    def start(self) -> None:
        """Serve the simulator on a free loopback port."""
        ...

    def stop(self) -> None:
        """Stop serving."""
        ...

    def reset(self) -> None:
        """No records, healthy knobs, the configured credentials accepted again."""
        ...

    def configure(self, settings: Settings) -> Settings:
        """``settings`` pointing the connector at this simulator, with ``secrets`` in them."""
        ...

    def params(self) -> dict[str, Any]:
        """Run parameters whose partitions hold every record ``seed`` makes."""
        ...

    def seed(self, n: int) -> list[str]:
        """Add ``n`` well-formed records in the partitions of ``params``; their keys."""
        ...

    def change(self, key: str) -> None:
        """Edit the record ``key`` upstream (new content, new change marker)."""
        ...

    def add_malformed(self) -> tuple[str, str]:
        """Add one record (in the partitions of ``params``) the connector cannot read.

        Returns:
            Its key, and the wire field the connector's reason must name.
        """
        ...

    def throttle(self, k: int, answer: str) -> None:
        """Answer the next ``k`` API requests with the rate-limit ``answer``.

        ``answer`` is one of ``rate_limits``; it asks for a short wait where it can say one.
        """
        ...

    def throttled(self) -> int:
        """Rate-limit answers served since the last ``reset``."""
        ...

    def reject_credentials(self) -> None:
        """Refuse the configured credentials from now on (until ``reset``)."""
        ...

    def missing_key(self) -> str:
        """A key in the source's format that no record has."""
        ...


def simulator_for(spec: ConnectorSpec) -> ContractSimulator:
    """The contract simulator of ``spec``'s simulator package (not started).

    Raises:
        LookupError: the spec names no simulator, or its package has no ``contract`` module
            with ``contract_simulator``; says what to add.
    """
    if not spec.simulator:
        raise LookupError(
            f"source {spec.source!r} names no simulator: set simulator= in its ConnectorSpec "
            "to its simulator package (e.g. 'simulators.wiw')"
        )
    module_name = f"{spec.simulator}.contract"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise LookupError(
            f"source {spec.source!r}: {module_name} does not exist; write it with "
            f"{FACTORY}(source) -> ContractSimulator (see simulators/contract.py)"
        ) from None
    factory = getattr(module, FACTORY, None)
    if factory is None:
        raise LookupError(f"source {spec.source!r}: {module_name} has no {FACTORY}(source)")
    simulator = factory(spec.source)
    if not isinstance(simulator, ContractSimulator):
        raise LookupError(f"{module_name}.{FACTORY} did not return a ContractSimulator")
    return simulator


class Served:
    """Start/stop of an ASGI app on a free port, for ``ContractSimulator`` implementations."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._server: ThreadedServer | None = None

    @property
    def url(self) -> str:
        """Base URL of the running simulator.

        Raises:
            RuntimeError: not started.
        """
        if self._server is None:
            raise RuntimeError("the simulator is not running: call start() first")
        return self._server.url

    def start(self) -> None:
        """Serve on a free loopback port."""
        if self._server is None:
            self._server = ThreadedServer(self._app).start()

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.stop()
            self._server = None
