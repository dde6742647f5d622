r"""Kaufland order units as synchub records: one partition per storefront, read incrementally.

Wire facts (Kaufland Marketplace Seller API v2). [V] = verified in Kaufland's public
documentation (sellerapi.kaufland.com: "Rest API", "Code Examples", "Managing Orders",
"Rate Limits", "Changelog") or in at least two independent SDKs (phodoval/kaufland-marketplace
(PHP), the generated ``kaufland`` Python/PHP clients, mendezona/buybridge (TS)); [I] = inferred:
the simulator has a knob for each behaviour and this client survives both.

* Base URL ``https://sellerapi.kaufland.com/v2`` for every storefront [V].
* Headers on every request: ``Shop-Client-Key`` (client key, 32 chars), ``Shop-Timestamp``
  (unix seconds), ``Shop-Signature``, ``User-Agent`` (name of the partner solution),
  ``Accept: application/json`` [V]. (v1 called them ``Hm-*``.)
* Signature: HMAC-SHA256, lower-case hex, keyed with the secret key (64 chars), over
  ``METHOD\nURI\nBODY\nTIMESTAMP`` where URI is the full URL with scheme, host and the
  URL-encoded query, and BODY is ``""`` for a GET [V].
* Clock tolerance for ``Shop-Timestamp`` [I]: not documented; the simulator defaults to
  ±300 s (knob ``timestamp_tolerance_seconds``). A refused key/signature/timestamp answers
  401 [I] (knob ``auth_error_status``: 401 or 403); both are permanent errors naming
  ``KAUFLAND_CLIENT_KEY/KAUFLAND_SECRET_KEY`` and the worker's clock.
* Storefronts: a ``storefront`` query parameter (``de``, ``at``, ``cz``, ``sk``, ``pl``, ...)
  selects the country marketplace [V]; the list of codes grows, so settings accept any
  two-letter code.
* ``GET /order-units``: ``storefront``, ``status`` (repeatable), ``ts_created_from_iso``,
  ``ts_updated_from_iso`` ("updated after this timestamp", ``YYYY-MM-ddTHH:mm:ssZ``),
  ``fulfillment_type``, ``sort``, ``limit`` (max 100, default 30), ``offset`` [V]. There is no
  upper bound filter [V: none in the SDKs]. Whether ``..._from_iso`` includes its own second
  [I] (knob ``from_inclusive``): this connector asks from one second earlier and drops what
  is older, which is right either way. The values of ``sort`` (``ts_updated_iso:asc``) [I]
  (knob ``sort_supported``): an answer not in ascending ``ts_updated_iso`` order switches the
  pass to a full scan (below).
* Answers: ``{"data": [...], "pagination": {"offset", "limit", "total"}}`` [V]; timestamps
  ISO 8601 with seconds [V]. Error bodies [I]: ``{"message": ...}`` is read if present, the
  status code decides.
* Order unit: ``id_order_unit`` (int, unique), ``id_order``, ``status``, ``storefront``,
  ``ts_created_iso``, ``ts_updated_iso``, prices in cents, ``product``, ... [V]. Statuses:
  ``open``, ``need_to_be_sent``, ``sent``, ``received``, ``cancelled``, ``returned``,
  ``returned_paid``, ``sent_and_autopaid`` [V, SDK enums]. Orders (``GET /orders``:
  ``id_order``, ``ts_created_iso``, ``ts_units_updated_iso``, ``order_units_count``) [V]
  group units; synchub publishes the units, which carry their ``id_order``.
* Rate limit: 111 requests per second per seller across all endpoints, then HTTP 429 [V];
  ``Retry-After`` [I] (knob ``retry_after``): honoured when sent, else doubling waits.

Reading (the overlap rule of the TEMU issue, for a list with only a lower bound): a pass
reads ``ts_updated >= checkpoint - KAUFLAND_ORDERS_OVERLAP_SECONDS`` (or ``days_back``) in
ascending ``ts_updated_iso`` order and never asks for page 2 of a window. It reads page 1
from its lower second, keeps every unit older than the page's newest second, and asks again
from that second: an update during the pass only moves a unit further up (to what is still
to be read), and a second is always read whole, from one answer. A page holding one second
only (a bulk change) is read by offsets, round after round, until as many distinct units
were read as the list has positions in that second; if that does not succeed within
``TIE_ROUNDS``, the checkpoint stays below that second. The checkpoint is the newest second
read whole, in Kaufland's own clock, so a skewed worker clock cannot move it past anything;
the overlap covers the list's index lag, and change detection keeps the re-read from
publishing twice. If Kaufland ignores ``sort``, the pass scans all pages of the window and
moves the checkpoint only if the list's ``total`` stayed the same throughout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import ConnectorBase, ConnectorSpec, chosen_partitions
from connectors.kaufland.client import MAX_LIMIT, KauflandClient
from connectors.kaufland.reading import SOURCE, Cursor, UnitReader, checkpoint_of, iso, raw_key
from connectors.kaufland.schedules import kaufland_orders_schedules
from connectors.kaufland.schemas import OrderUnit
from connectors.kaufland.settings import KauflandSettings
from connectors.overlap import pass_start
from models.clock import unix as unix_now
from models.errors import InvalidParamsError, NotConfiguredError
from models.records import Lookup, Malformed, Page, Record

if TYPE_CHECKING:
    import httpx

    from settings import Settings

log = logging.getLogger(__name__)

FIRST_PASS_DAYS = 7
"""Days read by a storefront's very first pass unless ``days_back`` is given."""


class KauflandOrdersParams(BaseModel):
    """Run parameters of ``kaufland-orders``."""

    model_config = ConfigDict(extra="forbid")

    days_back: int | None = Field(default=None, ge=0)
    """Re-read the last N days instead of continuing from the checkpoint."""
    storefronts: list[str] | None = None
    """Only these storefronts (codes from KAUFLAND_STOREFRONTS)."""


class KauflandOrdersConnector(ConnectorBase):
    """``connectors.base.Connector`` for the order units of the configured storefronts.

    Args:
        client: the seller's ``KauflandClient`` (owned: closed by ``aclose``).
        storefronts: storefront codes, one partition each.
        topic: Kafka topic of the order unit events.
        page_size: units per list request (at most 100).
        clock: unix seconds (worker's clock) for the first pass and ``days_back``.
        overlap_seconds: seconds before the checkpoint each pass reads again.
    """

    source = SOURCE
    partition_noun = "storefront"
    incremental = True

    def __init__(
        self,
        client: KauflandClient,
        storefronts: list[str],
        *,
        topic: str,
        page_size: int = MAX_LIMIT,
        clock: Callable[[], float] = unix_now,
        overlap_seconds: int = 600,
    ) -> None:
        if overlap_seconds < 0:
            raise ValueError("overlap_seconds must be >= 0 (KAUFLAND_ORDERS_OVERLAP_SECONDS)")
        self.client = client
        self.storefronts = list(storefronts)
        self.topic = topic
        self.page_size = max(2, min(page_size, MAX_LIMIT))
        self._clock = clock
        self.overlap_seconds = overlap_seconds
        self._reader = UnitReader(client, self.page_size)

    async def list_partitions(self, params: dict[str, Any]) -> list[str]:
        """The configured storefronts, or those named in ``storefronts``."""
        return chosen_partitions(
            _params(params).storefronts,
            list(self.storefronts),
            "Kaufland storefronts",
            "KAUFLAND_STOREFRONTS",
        )

    async def fetch_page(
        self,
        partition: str,
        cursor: str | None,
        params: dict[str, Any],
        known_digest: str | None = None,
        checkpoint: str | None = None,
    ) -> Page:
        """The next units of the storefront's window (see the module docstring)."""
        if partition not in self.storefronts:
            raise NotConfiguredError(
                f"Kaufland storefront {partition!r} is not configured on this worker",
                setting="KAUFLAND_STOREFRONTS",
            )
        if cursor is not None:
            at = Cursor.model_validate_json(cursor)
        else:
            at = self._window(partition, _params(params), checkpoint)
        if at.scan:
            items, calls, nxt, done = await self._reader.scan_step(partition, at)
        else:
            items, calls, nxt, done = await self._reader.keyset_step(partition, at)
        page = self._page(partition, items)
        page.requests = calls
        if not done:
            page.next_cursor = nxt.model_dump_json()
        elif nxt.covers:
            page.checkpoint = checkpoint_of(nxt)
        return page

    async def lookup(self, partition: str, keys: list[str], params: dict[str, Any]) -> list[Lookup]:
        """Never needed: an incremental pass has no missing keys (units are not deleted)."""
        return []

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    # -- reading --------------------------------------------------------------------------

    def _window(self, storefront: str, p: KauflandOrdersParams, checkpoint: str | None) -> Cursor:
        now = int(self._clock())
        since = int(checkpoint) if checkpoint else None
        start = pass_start(
            now,
            since,
            days_back=p.days_back,
            overlap_seconds=self.overlap_seconds,
            first_pass_days=FIRST_PASS_DAYS,
        )
        covers = since is None or start <= since
        log.info(
            "%s/%s: units updated from %s%s",
            SOURCE,
            storefront,
            iso(start),
            "" if covers else " (checkpoint kept)",
        )
        return Cursor(start=start, since=since, covers=covers)

    def _page(self, storefront: str, items: list[Any]) -> Page:
        page = Page()
        for raw in items:
            try:
                unit = OrderUnit.model_validate(raw)
            except ValidationError as exc:
                reason = "; ".join(
                    f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                page.malformed.append(Malformed(key=raw_key(raw), reason=reason, raw=raw))
                continue
            page.records.append(
                Record(
                    key=str(unit.id_order_unit),
                    data=raw,
                    partition=storefront,
                    version_marker=unit.ts_updated_iso,
                )
            )
        return page


def connector_from(
    cfg: KauflandSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = unix_now,
) -> KauflandOrdersConnector:
    """The connector of one settings section.

    Raises:
        NotConfiguredError: naming every ``KAUFLAND_*`` variable still to set.
    """
    missing = cfg.missing()
    if missing or cfg.client_key is None or cfg.secret_key is None:
        raise NotConfiguredError(
            f"Kaufland is not configured: set {', '.join(missing)}", setting=missing[0]
        )
    client = KauflandClient(
        cfg.api_url,
        cfg.client_key.get_secret_value(),
        cfg.secret_key.get_secret_value(),
        user_agent=cfg.user_agent,
        timeout=cfg.timeout_seconds,
        transport=transport,
        clock=clock,
    )
    return KauflandOrdersConnector(
        client,
        cfg.storefronts,
        topic=cfg.orders_topic,
        clock=clock,
        overlap_seconds=cfg.orders_overlap_seconds,
    )


def build_kaufland_orders(settings: Settings) -> KauflandOrdersConnector:
    """Registry factory: the connector of the worker's Kaufland settings."""
    return connector_from(settings.section(KauflandSettings))


def check_storefront(partition: str, settings: Settings) -> str:
    """A partition named by an operator must be a configured storefront.

    Raises:
        InvalidParamsError: listing the storefronts in ``KAUFLAND_STOREFRONTS``.
    """
    configured = settings.section(KauflandSettings).storefronts
    if partition not in configured:
        raise InvalidParamsError(
            f"unknown Kaufland storefront {partition!r}; configured in KAUFLAND_STOREFRONTS: "
            f"{', '.join(configured) or 'none'}"
        )
    return partition


SPEC = ConnectorSpec(
    source=SOURCE,
    build=build_kaufland_orders,
    params=KauflandOrdersParams,
    description="Kaufland order units per storefront, incremental by ts_updated_iso",
    check_partition=check_storefront,
    simulator="simulators.kaufland",
    schedules=kaufland_orders_schedules,
    settings=KauflandSettings,
)


def _params(params: Mapping[str, Any]) -> KauflandOrdersParams:
    try:
        return KauflandOrdersParams.model_validate(dict(params))
    except ValidationError as exc:
        raise InvalidParamsError(f"invalid {SOURCE} parameters: {exc.errors()[0]['msg']}") from None


__all__ = [
    "SPEC",
    "KauflandOrdersConnector",
    "KauflandOrdersParams",
    "build_kaufland_orders",
    "connector_from",
]
