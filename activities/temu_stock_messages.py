"""The Kafka messages of TEMU inventory runs: audit events and dead letters."""

from __future__ import annotations

from typing import Any

from activities.messages import audit_message, deadletter_message
from activities.temu_stock_plan import Edit, SkuChange, audit_event_id
from connectors.temu.inventory import SOURCE
from infra.consumer import Consumed
from infra.publisher import OutMessage


def invalid_stock_message(topic: str, shop: str, msg: Consumed, trace: str) -> OutMessage:
    """Dead letter of an ERP stock message that names no SKU or no valid stock."""
    raw: Any = msg.value.decode(errors="replace")
    return deadletter_message(
        topic=topic,
        source=SOURCE,
        partition=shop,
        key=msg.key or None,
        reason=(
            f"invalid desired-stock message at {msg.topic}[{msg.partition}]@{msg.offset}: "
            'expected key = seller SKU and value {"stock": <integer >= 0>} or null'
        ),
        raw=raw,
        trace=trace,
    )


def _edit_fields(edit: Edit, c: SkuChange) -> dict[str, Any]:
    return {
        "goods_id": c.goods_id,
        "sku_id": c.sku_id,
        "from": c.from_stock,
        "to": c.to,
        "version": c.version,
        "request_unique_key": edit.key,
    }


def audit_event(topic: str, shop: str, edit: Edit, c: SkuChange, trace: str) -> OutMessage:
    """Audit event of a change TEMU applied; its ``event_id`` repeats on a re-publish."""
    return audit_message(
        topic=topic,
        source=SOURCE,
        key=c.sku,
        event=audit_event_id(shop, c.sku, c.version, c.to, c.gen),
        body={"shop": shop, "sku": c.sku, **_edit_fields(edit, c)},
        trace=trace,
    )


def rejected_edit(
    topic: str, shop: str, edit: Edit, c: SkuChange, why: str, trace: str
) -> OutMessage:
    """Dead letter of a SKU change TEMU rejected (the SKU is retried by the next run)."""
    return deadletter_message(
        topic=topic,
        source=SOURCE,
        partition=shop,
        key=c.sku,
        reason=f"TEMU rejected the stock update (kept for retry): {why}",
        raw=_edit_fields(edit, c),
        trace=trace,
    )
