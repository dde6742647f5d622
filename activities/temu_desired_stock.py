"""Step 1 of a TEMU inventory run: the ERP's desired-stock messages into Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from activities.temu_stock_plan import desired_from_message
from infra.consumer import CommittingReader, Consumed
from infra.inventory_store import InventoryStore


async def load_desired(
    reader: CommittingReader,
    store: InventoryStore,
    shop: str,
    dead_letters: Callable[[list[Consumed]], Awaitable[None]],
    *,
    poll_max: int,
    poll_seconds: float,
) -> tuple[int, int]:
    """Read ``reader`` to its end, storing each valid message's stock; ``(loaded, invalid)``.

    Invalid messages go to ``dead_letters``. A poll's offsets are committed only after its
    Redis write, so a crash re-reads (and rewrites the same values) instead of losing a
    change.
    """
    loaded = invalid = 0
    while True:
        batch = await asyncio.to_thread(reader.next_batch, poll_max, poll_seconds)
        if not batch:
            return loaded, invalid
        args: list[str] = []
        dead: list[Consumed] = []
        for msg in batch:
            stock = desired_from_message(msg.value) if msg.key else None
            if stock is None:
                dead.append(msg)
                continue
            args += [msg.key, str(stock), f"{msg.partition}-{msg.offset}"]
        if dead:
            await dead_letters(dead)
        if args:
            await store.materialise(shop, args)
        last: dict[int, Consumed] = {}
        for msg in batch:  # committing a partition's last message covers the rest
            last[msg.partition] = msg
        for msg in last.values():
            await asyncio.to_thread(reader.commit, msg)
        loaded += len(args) // 3
        invalid += len(dead)
