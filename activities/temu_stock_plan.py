"""What one TEMU inventory batch decides, as pure functions: no Redis, no HTTP, no clock.

``activities.temu_inventory`` reads the inputs (desired stock and last pushes from
``infra.inventory_store``, TEMU's current stock from the client), asks ``plan_batch`` what
to send, and stores the plan so a retried batch sends the same edits with the same keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from infra.redis_text import as_text
from models.inventory import InventoryCounts

STALE_READ_SECONDS = 60.0
"""TEMU's stock reads lag its edits by about 5 s. A SKU whose edit TEMU confirmed less than
this long ago and that still reads differently is taken as "not visible yet", not as drift."""


class SkuChange(BaseModel):
    """One SKU to set: what TEMU showed and what the ERP wants."""

    sku: str
    """Seller SKU (``outSkuSn``), the ERP's key."""
    sku_id: int
    goods_id: int
    from_stock: int | None = None
    """TEMU's stock as read (may lag our own recent edits by ~5 s)."""
    to: int
    version: str
    """Version of the desired value (``<kafka partition>-<offset>``)."""
    gen: int = 0
    """Deliberate re-pushes of this version (after a rejection or after drift)."""


class Edit(BaseModel):
    """One ``bg.local.goods.stock.edit`` call: the changes of one product."""

    goods_id: int
    key: str
    """``requestUniqueKey`` (see ``request_unique_key``)."""
    changes: list[SkuChange]


class BatchPlan(BaseModel):
    """What a batch decided before calling TEMU; stored so a retry does the same."""

    counts: InventoryCounts = Field(default_factory=InventoryCounts)
    """fetched / unchanged / not_listed (the edits add applied / failed)."""
    edits: list[Edit] = Field(default_factory=list)
    next_cursor: int | None = None


@dataclass(frozen=True)
class Decision:
    """``plan_batch``'s answer: the plan, and the SKUs that need no edit."""

    plan: BatchPlan
    settled: list[str]
    """Equal at TEMU, or unknown to the ERP or TEMU: no longer dirty, no longer retried."""
    pending: list[str]
    """Our own recent edit not visible yet: no longer dirty, but still retried."""


def request_unique_key(shop: str, goods_id: int, changes: list[SkuChange]) -> str:
    """TEMU's idempotency key of one edit, derived from the desired state it establishes.

    Inputs are the shop, the product and, per SKU, ``(skuId, target, version, gen)``, sorted:
    never the attempt, the time or the run. So an activity that is retried after TEMU
    applied its edit (worker crash, lost answer, timeout) sends the same key and TEMU
    answers "duplicate" instead of applying it again.

    This is also why TEMU's eventually consistent reads (an edit shows in queries only after
    about 5 s) are harmless: a read taken before our own edit became visible may make a
    later pass want the same change again, but that change has the same desired state,
    hence the same key, and TEMU refuses to apply it twice. A stock that really changed at
    TEMU in between (a sale) is therefore never bumped back up by a stale read. A truly new
    change (new ERP value -> new version) or a deliberate re-push (a rejection, or drift
    seen long after our edit -> ``gen`` + 1) gets a new key.
    """
    parts = sorted((c.sku_id, c.to, c.version, c.gen) for c in changes)
    raw = json.dumps([shop, goods_id, parts], separators=(",", ":"))
    return "synchub-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def audit_event_id(shop: str, sku: str, version: str, to: int, gen: int = 0) -> str:
    """Deterministic ``event_id`` of an applied change: a re-published audit repeats it.

    ``gen`` (a deliberate re-push of the same desired value after drift) enters only when
    non-zero, so the usual id is exactly hash(shop, sku, version, to).
    """
    raw = f"{shop}\x1f{sku}\x1f{version}\x1f{to}" + (f"\x1f{gen}" if gen else "")
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Pushed:
    """The last edit TEMU answered for a SKU, as kept in the ``pushed`` hash."""

    version: str
    gen: int
    at: float
    ok: bool

    @classmethod
    def parse(cls, raw: bytes | str | None) -> Pushed | None:
        """``"<version>;<gen>;<unix ts>;<1|0>"`` -> ``Pushed``; ``None`` if absent or unreadable."""
        value = as_text(raw)
        if not value:
            return None
        try:
            version, gen, at, ok = value.split(";")
            return cls(version, int(gen), float(at), ok == "1")
        except ValueError:
            return None

    def dump(self) -> str:
        """The ``pushed`` hash's form of this answer."""
        return f"{self.version};{self.gen};{self.at:.3f};{int(self.ok)}"


def parse_desired(raw: bytes | str | None) -> tuple[int, str] | None:
    """``"<stock>:<version>"`` from the desired hash -> ``(stock, version)``."""
    value = as_text(raw)
    if not value:
        return None
    stock, _, version = value.partition(":")
    try:
        return int(stock), version
    except ValueError:
        return None


def desired_from_message(value: bytes | None) -> int | None:
    """The stock an ERP message's value asks for; ``None`` when the message is malformed.

    A tombstone (null value: the ERP withdrew the SKU) means desired stock 0. Forgetting
    the SKU instead would leave TEMU selling its last stock level with nothing behind it;
    0 stops sales and stays visible (and reversible) in the audit trail.
    """
    if not value:
        return 0
    try:
        body = json.loads(value)
    except ValueError:
        return None
    stock = body.get("stock") if isinstance(body, dict) else None
    if isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
        return None
    return stock


def plan_batch(
    shop: str,
    skus: Sequence[str],
    desired_raw: Sequence[bytes | str | None],
    pushed_raw: Sequence[bytes | str | None],
    current: Mapping[str, Mapping[str, Any]],
    now: float,
) -> Decision:
    """Decide the edits of one batch from the desired, the last pushed and TEMU's stock.

    ``gen`` counts deliberate re-pushes of the same desired version: after TEMU rejected
    it (the retry must not be refused as a duplicate), or after TEMU confirmed it but
    shows a different stock more than ``STALE_READ_SECONDS`` later (drift, e.g. an
    operator's edit in the seller center). Within that window a difference is our own
    edit not visible yet, and nothing is sent.

    Args:
        shop: the shop id (part of every edit's ``requestUniqueKey``).
        skus: the batch's seller SKUs.
        desired_raw: the desired hash's value per SKU (same order).
        pushed_raw: the pushed hash's value per SKU (same order).
        current: TEMU's stock rows by seller SKU (``outSkuSn``).
        now: unix seconds, to tell a stale read from drift.
    """
    plan = BatchPlan()
    settled: list[str] = []
    pending: list[str] = []
    by_goods: dict[int, list[SkuChange]] = {}
    plan.counts.fetched = len(skus)
    for sku, d_raw, pu_raw in zip(skus, desired_raw, pushed_raw, strict=True):
        desired = parse_desired(d_raw)
        row = current.get(sku)
        if desired is None or row is None:  # the ERP or TEMU does not know the SKU
            plan.counts.not_listed += 1
            settled.append(sku)
            continue
        target, version = desired
        have = row.get("stock")
        if have == target:
            plan.counts.unchanged += 1
            settled.append(sku)
            continue
        gen = 0
        pushed = Pushed.parse(pu_raw)
        if pushed is not None and pushed.version == version:
            if pushed.ok and now - pushed.at < STALE_READ_SECONDS:
                plan.counts.unchanged += 1
                pending.append(sku)
                continue
            gen = pushed.gen + 1 if pushed.ok else pushed.gen
        change = SkuChange(
            sku=sku,
            sku_id=int(row["skuId"]),
            goods_id=int(row["goodsId"]),
            from_stock=have if isinstance(have, int) else None,
            to=target,
            version=version,
            gen=gen,
        )
        by_goods.setdefault(change.goods_id, []).append(change)
    plan.edits = [
        Edit(goods_id=g, key=request_unique_key(shop, g, cs), changes=cs)
        for g, cs in sorted(by_goods.items())
    ]
    return Decision(plan=plan, settled=settled, pending=pending)


def verified_outcome(edit: Edit, shown: Mapping[int, Any], answer: str) -> dict[str, Any]:
    """An edit TEMU answered ambiguously, decided by the stock TEMU shows for its SKUs.

    A SKU showing the target counts as applied (typically a repeat of an edit TEMU applied
    before, answered with whatever code that TEMU uses); any other SKU as not applied, with
    TEMU's answer as the reason, so it is dead-lettered and re-pushed under a new key by
    the next run.

    Args:
        edit: the edit TEMU answered with a business error.
        shown: TEMU's current stock by ``skuId``.
        answer: TEMU's answer, the reason of SKUs not applied.
    """
    skus: dict[str, list[Any]] = {}
    for c in edit.changes:
        have = shown.get(c.sku_id)
        if have == c.to:
            skus[str(c.sku_id)] = [True, None]
        else:
            skus[str(c.sku_id)] = [False, f"{answer}; TEMU shows stock {have}, not {c.to}"]
    return {"dup": True, "verified": True, "skus": skus}
