"""TEMU steps that are not pages: confirming shipments the ERP reports.

The ERP publishes one message per shipment on ``erp.shipments`` (key = parent order,
value ``{"shop", "parent_order_sn", "order_sns", "carrier_id", "tracking_number"}``). Each
shop reads the topic as its own consumer group, acts on its own messages and commits every
offset only after TEMU has answered, so a crash re-sends at most the message in flight.
What TEMU answers to such a repeat is not documented: success, success marked duplicate, or
a rejection. So a rejection is checked before it is believed: the order's detail is read,
and if the shipment's lines are already shipped, the confirmation counts as a duplicate (it
was confirmed before). A confirmation TEMU really rejects goes to the dead-letter topic
with TEMU's message and is committed: retrying cannot change TEMU's mind. One the client
refuses before sending (an order with nothing left to ship, a line not in the order) is
dead-lettered as "not sent to TEMU" and counted ``refused``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio import activity

from activities.errors import translate_errors
from activities.heartbeat import heartbeating
from activities.messages import deadletter_message, traceparent
from activities.worker_deps import WorkerDeps
from connectors.base import Connector
from connectors.temu.client import TemuClient
from connectors.temu.connector import TemuOrdersConnector
from connectors.temu.errors import TemuBusinessError, TemuLocalRefusal
from connectors.temu.schemas import ParentOrder, ParentOrderStatus
from infra.consumer import CommittingReader, Consumed
from infra.publisher import KafkaPublisher
from infra.telemetry import publishing
from models import activity_names
from models.errors import NotConfiguredError
from models.sync import StepInput, StepResult

log = logging.getLogger("synchub.temu")

MAX_PER_RUN = 1_000
"""Confirmations handled per run and shop; the rest wait for the next run (bounded work)."""
POLL_SECONDS = 0.5
"""How long one poll of the shipments topic waits for its first message. An empty poll ends
the run only once the backlog that existed at its start is read (``CommittingReader``)."""


class Shipment(BaseModel):
    """One shipment confirmation as the ERP publishes it."""

    shop: str
    parent_order_sn: str
    order_sns: list[str]
    carrier_id: str
    tracking_number: str


class TemuActivities:
    """TEMU activities beyond pages; built in ``worker.py`` with the shops' clients."""

    def __init__(
        self,
        clients: Mapping[str, TemuClient],
        publisher: KafkaPublisher,
        *,
        brokers: str,
        shipments_topic: str,
        deadletter_topic: str,
        kafka_security: Mapping[str, Any] | None = None,
    ) -> None:
        self._clients = clients
        self._publisher = publisher
        self._brokers = brokers
        self._security = kafka_security
        self._shipments = shipments_topic
        self._deadletter = deadletter_topic

    @activity.defn(name=activity_names.CONFIRM_SHIPMENTS)
    @translate_errors
    async def confirm_shipments(self, input: StepInput) -> StepResult:
        """Confirm the shop's pending shipments at TEMU, committing each after TEMU answered."""
        async with heartbeating():
            return await self._confirm(input)

    async def _confirm(self, input: StepInput) -> StepResult:
        shop = input.partition
        client = self._clients.get(shop)
        if client is None:
            raise NotConfiguredError(f"TEMU shop {shop!r} is not configured", setting="TEMU_SHOPS")
        counts = {"confirmed": 0, "duplicates": 0, "rejected": 0, "refused": 0, "invalid": 0}
        reader = await asyncio.to_thread(
            CommittingReader,
            self._brokers,
            self._shipments,
            f"synchub-temu-shipments-{shop}",
            self._security,
        )
        try:
            handled = 0
            while handled < MAX_PER_RUN:
                batch = await asyncio.to_thread(reader.next_batch, 100, POLL_SECONDS)
                if not batch:
                    break
                for msg in batch:
                    outcome = await self._one(client, shop, msg, input.run_token)
                    if outcome is not None:
                        counts[outcome] += 1
                        handled += 1
                    await asyncio.to_thread(reader.commit, msg)
        finally:
            await asyncio.to_thread(reader.close)
        if any(counts.values()):
            log.info("temu-orders/%s: shipments %s", shop, counts)
        return StepResult(name=activity_names.CONFIRM_SHIPMENTS, counts=counts)

    async def _one(
        self, client: TemuClient, shop: str, msg: Consumed, run_token: str
    ) -> str | None:
        """Act on one message; ``None`` when it belongs to another shop."""
        try:
            raw: Any = json.loads(msg.value)
        except ValueError:
            raw = msg.value.decode(errors="replace")
        if isinstance(raw, dict) and raw.get("shop") not in (None, shop):
            return None
        try:
            shipment = Shipment.model_validate(raw)
        except ValidationError as exc:
            await self._dead(
                shop, msg.key, f"invalid shipment message: {exc.errors()[0]['msg']}", raw, run_token
            )
            return "invalid"
        try:
            result = await client.confirm_shipment(
                parent_order_sn=shipment.parent_order_sn,
                order_sns=shipment.order_sns,
                carrier_id=shipment.carrier_id,
                tracking_number=shipment.tracking_number,
            )
        except TemuLocalRefusal as exc:  # never reached TEMU
            await self._dead(
                shop, shipment.parent_order_sn, f"shipment not sent to TEMU: {exc}", raw, run_token
            )
            return "refused"
        except TemuBusinessError as exc:  # TEMU said no; maybe to a repeat of a confirmed one
            if await self._already_shipped(client, shipment):
                log.info(
                    "temu-orders/%s: %s already shipped; TEMU's refusal of the repeat ignored",
                    shop,
                    shipment.parent_order_sn,
                )
                return "duplicates"
            await self._dead(
                shop, shipment.parent_order_sn, f"TEMU rejected the shipment: {exc}", raw, run_token
            )
            return "rejected"
        return "duplicates" if isinstance(result, dict) and result.get("duplicate") else "confirmed"

    @staticmethod
    async def _already_shipped(client: TemuClient, shipment: Shipment) -> bool:
        """True when TEMU's order shows every line of the shipment shipped (or received).

        An empty ``order_sns`` means every line not cancelled. An order TEMU cannot find or
        answers in an unknown shape is not shipped: the rejection stands.
        """
        try:
            order = ParentOrder.model_validate(await client.order_detail(shipment.parent_order_sn))
        except (TemuBusinessError, ValidationError):
            return False
        wanted = shipment.order_sns or [
            line.orderSn for line in order.orderList if (line.quantity or 0) > 0
        ]
        done = {ParentOrderStatus.SHIPPED, ParentOrderStatus.RECEIPTED}
        lines = [order.line(sn) for sn in wanted]
        return bool(lines) and all(line is not None and line.orderStatus in done for line in lines)

    async def _dead(
        self, shop: str, key: str | None, reason: str, raw: Any, run_token: str
    ) -> None:
        with publishing("temu-orders", shop):  # the dead letter carries this span's context
            message = deadletter_message(
                topic=self._deadletter,
                source="temu-orders",
                partition=shop,
                key=key,
                reason=reason,
                raw=raw,
                trace=traceparent(run_token),
            )
            await self._publisher.publish([message])


def worker_activities(connector: Connector, deps: WorkerDeps) -> list[Callable[..., Any]]:
    """``confirm_shipments`` over the order connector's shop clients (``SPEC.activities``).

    Raises:
        TypeError: ``connector`` is not the TEMU orders connector (a wiring mistake).

    """
    if not isinstance(connector, TemuOrdersConnector):
        raise TypeError(f"temu-orders activities need TemuOrdersConnector, got {connector!r}")
    settings = deps.settings
    temu = TemuActivities(
        connector.clients,
        deps.publisher,
        brokers=settings.kafka.brokers,
        shipments_topic=settings.temu.shipments_topic,
        deadletter_topic=settings.kafka.deadletter_topic,
        kafka_security=deps.kafka_security,
    )
    return [temu.confirm_shipments]
