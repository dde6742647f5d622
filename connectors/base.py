"""The contract every upstream connector fulfils; the engine knows nothing else about sources.

Adding a source = a folder under ``connectors/`` with ``client.py`` (httpx + auth),
``schemas.py`` (wire models), ``connector.py`` (wire -> ``Record``), ``settings.py`` (its
settings section) and a ``SPEC`` that declares everything else (parameters, partitions,
schedules, settings section, its simulator), a simulator package under ``simulators/`` with a
``DEV`` object for the dev stack, and one line in ``connectors/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from connectors.lookups import (
    LOOKUP_ATTEMPTS,
    LOOKUP_BACKOFF_SECONDS,
    LOOKUP_MAX_WAIT_SECONDS,
    point_lookups,
    retrying,
)
from models.errors import InvalidParamsError, NotConfiguredError
from models.records import Lookup, Page, Record

if TYPE_CHECKING:
    from models.schedules import ScheduleDef
    from models.settings_section import Section
    from settings import Settings


class Connector(Protocol):
    """One upstream, as the generic engine sees every source: partitions to fan out over.

    What a partition's child workflow does with it is a capability of its own: sources
    whose partitions are pages of records (``SyncPartitionWorkflow``) are also
    ``PagedConnector`` s; others (TEMU inventory) have only this.
    """

    source: str
    """Registry name, also the ``source`` header and the Redis key prefix."""
    topic: str
    """Kafka topic for this source's change events."""
    partition_noun: str
    """What one partition is, for log lines operators read ("day", "employee", "shop")."""

    async def list_partitions(self, params: dict[str, Any]) -> list[str]:
        """Partition ids to fan out over (days, employees, shops), in sync order."""
        ...

    async def aclose(self) -> None:
        """Release HTTP clients."""
        ...


@runtime_checkable
class PagedConnector(Connector, Protocol):
    """A source whose partitions are pages of records.

    What ``sync_page`` and ``finish_partition`` (run by ``SyncPartitionWorkflow``) need.
    """

    incremental: bool
    """True when a pass reads only what changed since a checkpoint (TEMU orders): then keys
    absent from the pass are unchanged, not missing, and nothing is looked up."""

    async def fetch_page(
        self,
        partition: str,
        cursor: str | None,
        params: dict[str, Any],
        known_digest: str | None = None,
        checkpoint: str | None = None,
    ) -> Page:
        """Fetch one page of a partition starting at ``cursor`` (``None`` = start).

        ``checkpoint`` (first page only) is what an incremental connector returned as
        ``Page.checkpoint`` in the last pass that completed; it is stored when the pass ends,
        so a failed pass is read again from the same point.

        ``known_digest`` is the ``raw_digest`` of this page when it was last committed. A
        connector with stable pages that finds the same digest returns
        ``Page(unchanged=True, raw_digest=..., next_cursor=...)`` without parsing:
        most runs change nothing, so this is the hot path.
        """
        ...

    async def lookup(self, partition: str, keys: list[str], params: dict[str, Any]) -> list[Lookup]:
        """Point lookups for keys missing from the partition's window.

        Returns one ``Lookup`` per key; ``record=None`` means the upstream says the record
        does not exist (a deletion). A found record's ``partition`` says where it belongs
        in *this run's* window: the partition whose pages will return it, or ``None`` when
        none will (it aged out of the window or moved beyond it). Only a record whose
        ``partition`` equals ``partition`` stays in this partition's cache; any other is
        published once if it changed and then forgotten here, so it is never looked up
        again. Raises a ``RetryableError`` when it cannot tell.
        """
        ...

    async def enrich(self, partition: str, records: list[Record]) -> list[Record]:
        """Add details to records about to be published for the first time.

        Called after change detection, so expensive look-ups (TEMU shipping details) are
        made once per record, not once per run; the fingerprint is of the record before.
        """
        ...


def paged(connector: Connector) -> PagedConnector:
    """``connector`` as a source of pages, for the page activities.

    Raises:
        NotConfiguredError: the source has no pages (its partitions run another child
            workflow, named by its registry entry), so a page activity was started for it
            by mistake; retrying cannot help.
    """
    if not isinstance(connector, PagedConnector):
        raise NotConfiguredError(
            f"{connector.source} has no pages of records: its partitions run the child "
            "workflow named in its registry entry, not SyncPartitionWorkflow"
        )
    return connector


@runtime_checkable
class RawPages(Protocol):
    """A connector that can hand a page over before converting it (fingerprint-first).

    ``fetch_page_raw`` is ``fetch_page`` except that records whose raw form has a key come
    back unconverted in ``Page.raw`` as ``(key, raw fingerprint, raw)``; the engine converts
    only those whose raw fingerprint changed since the page was last committed. The raw
    fingerprint must cover everything that shapes the converted record (the raw bytes, the
    connector's output version, its settings and the partition), so equal raw fingerprints
    mean equal records.
    """

    async def fetch_page_raw(
        self,
        partition: str,
        cursor: str | None,
        params: dict[str, Any],
        known_digest: str | None = None,
        checkpoint: str | None = None,
    ) -> Page:
        """``fetch_page`` with the keyed records left in ``Page.raw``."""
        ...

    def convert(self, partition: str, raw: list[Any]) -> Page:
        """Convert raw records (third members of ``Page.raw`` items) into a page.

        Fills ``records`` and ``malformed``; records that belong to another partition are
        left out. CPU only (the engine runs it in a thread).
        """
        ...


def days_param(params: dict[str, Any], name: str, default: int) -> int:
    """A whole number of days >= 0 from run parameters, or ``default`` when absent.

    Raises:
        InvalidParamsError: naming the parameter and the value given.
    """
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParamsError(f"{name} must be a whole number >= 0, got {value!r}")
    return value


def check_shop(partition: str, settings: Settings) -> str:
    """A TEMU partition: the id of a shop configured in ``TEMU_SHOPS``.

    Raises:
        InvalidParamsError: listing the configured shops.
    """
    ids = [s.id for s in settings.temu.shops]
    if partition not in ids:
        raise InvalidParamsError(
            f"unknown TEMU shop {partition!r}; configured in TEMU_SHOPS: {', '.join(ids) or 'none'}"
        )
    return partition


def chosen_partitions(
    wanted: list[str] | None, configured: list[str], what: str, setting: str
) -> list[str]:
    """The configured partitions, or those of them a run names, in configured order.

    Raises:
        InvalidParamsError: naming the unknown ones and the setting that configures them.
    """
    if wanted is None:
        return list(configured)
    unknown = sorted(set(wanted) - set(configured))
    if unknown:
        raise InvalidParamsError(
            f"unknown {what} {', '.join(unknown)}; configured in {setting}: "
            f"{', '.join(configured) or 'none'}"
        )
    return [p for p in configured if p in wanted]


def iso_day(value: str, what: str) -> date:
    """A ``YYYY-MM-DD`` partition or cursor.

    Raises:
        InvalidParamsError: saying what the value was meant to be.
    """
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidParamsError(f"{what} must be a day as YYYY-MM-DD, got {value!r}") from None


class ConnectorBase:
    """Defaults of the optional parts of ``PagedConnector``; paged connectors inherit it."""

    incremental: bool = False

    async def enrich(self, partition: str, records: list[Record]) -> list[Record]:
        """Nothing to add by default."""
        return records


@dataclass(frozen=True)
class ConnectorSpec:
    """A registry entry: how to build a source's connector and check its parameters."""

    source: str
    """Registry name."""
    build: Callable[[Settings], Connector]
    """Factory from the worker's settings; raises ``NotConfiguredError`` naming the setting."""
    params: type[BaseModel]
    """Parameters accepted in workflow input / ``starter.py run --param``."""
    description: str = ""
    child_workflow: str = "SyncPartitionWorkflow"
    """Workflow type run per partition; it takes ``SyncPartitionInput`` and returns
    ``SyncPartitionResult`` and answers the same signals and ``progress`` query. Sources
    whose per-partition work is not "pages of records" (TEMU inventory) name their own."""
    steps: tuple[str, ...] = ()
    """Activities run per partition after its pages, before it is finished (e.g. TEMU's
    ``confirm_shipments``). A failing step is reported; it never undoes the pages."""
    check_partition: Callable[[str, Settings], object] | None = None
    """Checks one partition an operator named (``--partition``) against the settings the
    run will use, raising ``InvalidParamsError`` that says what a partition looks like; so a
    typo is rejected before a run starts instead of failing in the worker."""
    simulator: str = ""
    """Dotted name of the source's simulator package (``"simulators.wiw"``). Production code
    never imports it; the dev stack and the tests resolve it with ``importlib`` (the connector
    contract suite loads its ``contract`` module)."""
    schedules: Callable[[Settings], list[ScheduleDef]] | None = None
    """The source's default schedules from the settings (interval or cron, offset, overlap,
    workflow id suffix); ``schedules apply`` and the dev stack create or update them."""
    settings: type[Section] | None = None
    """The source's settings section (``connectors/<source>/settings.py``): ``load_settings``
    collects it into the tree, and the builder reads it with ``settings.section(...)``, so a
    new source adds no field to ``Settings``. Sources that share one name it each."""
    topics: Callable[[Settings], list[str]] | None = None
    """Kafka topics the source's own activities read or write besides its records topic
    (TEMU's ``erp.shipments``); the worker creates them at start with the others."""
    activities: str = ""
    """Dotted name ``"module:function"`` of the factory of the source's activities beyond the
    generic page activities (its ``steps``, its own child workflow's activities): called as
    ``factory(connector, WorkerDeps)``, it returns the activity methods the worker registers.
    A name, not a reference, so ``connectors/`` never imports ``activities/``."""

    def validate_partitions(self, partitions: list[str], settings: Settings) -> list[str]:
        """Check operator-named partitions before any work starts.

        Raises:
            InvalidParamsError: naming the first bad partition and what is expected.

        """
        for partition in partitions:
            if self.check_partition is not None:
                self.check_partition(partition, settings)
            elif not partition.strip():
                raise InvalidParamsError(f"a {self.source} partition must not be empty")
        return partitions

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check parameters before any work starts.

        Raises:
            InvalidParamsError: naming each bad parameter and what is expected.

        """
        try:
            model = self.params.model_validate(params)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidParamsError(f"invalid parameters for {self.source}: {problems}") from None
        return model.model_dump(mode="json", exclude_none=True)


__all__ = [  # the lookup helpers live in connectors.lookups; connectors import them from here
    "LOOKUP_ATTEMPTS",
    "LOOKUP_BACKOFF_SECONDS",
    "LOOKUP_MAX_WAIT_SECONDS",
    "Connector",
    "ConnectorBase",
    "ConnectorSpec",
    "PagedConnector",
    "RawPages",
    "check_shop",
    "chosen_partitions",
    "days_param",
    "iso_day",
    "paged",
    "point_lookups",
    "retrying",
]
