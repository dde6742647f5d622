"""The contract every upstream connector fulfils; the engine knows nothing else about sources.

Adding a source = a folder under ``connectors/`` with ``client.py`` (httpx + auth),
``schemas.py`` (wire models) and ``connector.py`` (wire -> ``Record``), one line in
``connectors/__init__.py`` and a simulator under ``simulators/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from models.errors import InvalidParamsError, NotConfiguredError, RetryableError
from models.records import Lookup, Page, Record

if TYPE_CHECKING:
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


def iso_day(value: str, what: str) -> date:
    """A ``YYYY-MM-DD`` partition or cursor.

    Raises:
        InvalidParamsError: saying what the value was meant to be.
    """
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidParamsError(f"{what} must be a day as YYYY-MM-DD, got {value!r}") from None


T = TypeVar("T")

LOOKUP_ATTEMPTS = 5
"""Tries per point lookup before a transient failure fails the chunk (and the activity)."""
LOOKUP_BACKOFF_SECONDS = 0.2
"""First wait between tries of one lookup; doubled per try."""
LOOKUP_MAX_WAIT_SECONDS = 10.0
"""Longest wait between tries, also when the upstream asks for more (``Retry-After``)."""


async def retrying(
    call: Callable[[], Awaitable[T]],
    gate: asyncio.Semaphore | None = None,
    *,
    attempts: int = LOOKUP_ATTEMPTS,
    backoff: float = LOOKUP_BACKOFF_SECONDS,
) -> T:
    """``call()`` (inside ``gate``, if given), tried again on its own after a ``RetryableError``.

    Waits double from ``backoff`` (or are what the upstream asked for in ``Retry-After``),
    at most ``LOOKUP_MAX_WAIT_SECONDS``, outside the gate, so a waiting call does not hold
    a slot others could use. One failure among hundreds of calls then costs one more
    request, not the whole batch and every call of it again.

    Raises:
        RetryableError: the call still failed after ``attempts`` tries.
    """
    for attempt in range(1, attempts + 1):
        try:
            if gate is None:
                return await call()
            async with gate:
                return await call()
        except RetryableError as exc:
            if attempt >= attempts:
                raise
            wait = exc.retry_after or backoff * 2 ** (attempt - 1)
            await asyncio.sleep(min(wait, LOOKUP_MAX_WAIT_SECONDS))
    raise AssertionError("unreachable")  # pragma: no cover


async def point_lookups(
    keys: list[str],
    fetch: Callable[[int], Awaitable[dict[str, Any] | None]],
    convert: Callable[[str, dict[str, Any]], Lookup | None],
    concurrency: int,
    *,
    attempts: int = LOOKUP_ATTEMPTS,
    backoff: float = LOOKUP_BACKOFF_SECONDS,
) -> list[Lookup]:
    """Look up numeric record ids one by one, ``concurrency`` at a time.

    A key that is not a number cannot be an upstream id and ``fetch`` answering ``None``
    (404) both mean "does not exist": a deletion. ``convert`` turns a found raw record into
    its ``Lookup`` or returns ``None`` when it cannot be read: such a key gets no answer,
    so the engine leaves it as it is instead of guessing.

    Each lookup is retried on its own (``RetryableError``: 5xx, timeouts, rate limits) up to
    ``attempts`` times with doubling waits (or the upstream's ``Retry-After``), so one 500
    among hundreds of lookups costs one more request, not the whole chunk.

    Raises:
        RetryableError: a lookup still failed after ``attempts`` tries.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(key: str) -> Lookup | None:
        if not key.isdigit():
            return Lookup(key=key, record=None)
        raw = await retrying(lambda: fetch(int(key)), gate, attempts=attempts, backoff=backoff)
        return Lookup(key=key, record=None) if raw is None else convert(key, raw)

    found = await asyncio.gather(*(one(k) for k in keys))
    return [item for item in found if item is not None]


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
