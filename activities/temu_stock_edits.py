"""Sending a batch's stock edits to TEMU, each at most once per ``requestUniqueKey``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from activities.temu_stock_plan import Edit, verified_outcome
from connectors.temu.client import TemuClient
from connectors.temu.errors import TemuBusinessError
from connectors.temu.inventory import SOURCE

log = logging.getLogger("synchub.temu.inventory")


async def send_edits(
    client: TemuClient,
    edits: list[Edit],
    answered: Mapping[str, Any],
    record: Callable[[str, dict[str, Any]], Awaitable[None]],
    concurrency: int,
) -> list[dict[str, Any] | BaseException]:
    """TEMU's answer to each edit (or the error that stopped it), in ``edits`` order.

    Edits in ``answered`` (by an earlier attempt) are not sent again; every new answer is
    handed to ``record`` as soon as it arrives, so a retry after a crash skips it. An answer
    is ``{"dup": bool, "skus": {sku_id: [ok, reason]}}`` (``"verified": True`` when TEMU's
    stock decided it, see ``verify``).
    """
    gate = asyncio.Semaphore(concurrency)

    async def send(edit: Edit) -> dict[str, Any]:
        if edit.key in answered:
            return dict(answered[edit.key])
        targets = {c.sku_id: c.to for c in edit.changes}
        async with gate:
            try:
                statuses = await client.stock_edit(
                    goods_id=edit.goods_id, targets=targets, request_unique_key=edit.key
                )
                outcome: dict[str, Any] = {
                    "dup": False,
                    "skus": {str(s): [ok, msg] for s, (ok, msg) in statuses.items()},
                }
            except TemuBusinessError as exc:
                # neither "applied" nor a per-SKU rejection: a repeated key (whatever
                # code TEMU gives it) or a refused product. TEMU's stock decides.
                outcome = await verify(client, edit, exc)
            await record(edit.key, outcome)
        return outcome

    return await asyncio.gather(*(send(e) for e in edits), return_exceptions=True)


async def verify(client: TemuClient, edit: Edit, answer: TemuBusinessError) -> dict[str, Any]:
    """Decide an edit TEMU answered ambiguously from TEMU's current stock of its SKUs.

    See ``verified_outcome``. A read taken within TEMU's ~5 s visibility lag of an earlier
    attempt may still show the old stock: then the SKU is pushed once more with the same
    absolute target, which sets nothing new.
    """
    shown = {
        int(row["skuId"]): row.get("stock")
        for row in await client.stock_query(sku_ids=[c.sku_id for c in edit.changes])
        if row.get("skuId") is not None
    }
    outcome = verified_outcome(edit, shown, str(answer))
    skus = outcome["skus"]
    log.info(
        "%s/%s: edit of goods %d answered %s; verified %d of %d applied",
        SOURCE,
        client.shop_id,
        edit.goods_id,
        answer.code,
        sum(1 for ok, _ in skus.values() if ok),
        len(skus),
    )
    return outcome
