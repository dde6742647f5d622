"""Redis state of TEMU inventory reconciliation, and the Lua scripts that keep it.

Layout (``<p>`` = ``synchub:temu-inventory:<shop>``), no TTL unless said:

* ``<p>:desired`` hash, seller SKU (TEMU ``outSkuSn``) -> ``"<stock>:<kafka partition>-<offset>"``:
  the ERP's desired stock and its version (the Kafka position of the message that set
  that value; a message repeating the value keeps the older version, see ``_MATERIALISE``).
* ``<p>:dirty`` set: SKUs whose desired stock arrived since they were last settled.
* ``<p>:retry`` set: SKUs TEMU rejected (or whose edit must be verified): re-checked by the
  next quick run, so a failure is never silently dropped.
* ``<p>:pushed`` hash, SKU -> ``"<version>;<gen>;<unix ts>;<1|0>"``: the last edit TEMU
  answered for the SKU (applied or rejected) and its generation
  (``activities.temu_stock_plan.plan_batch``).
* ``<p>:work:<run_token>`` list (one day TTL): the SKUs of one run, addressed by index, so a
  retried batch re-reads the same SKUs.
* ``<p>:batch:<run_token>:<cursor>`` string (one day TTL): the batch's plan (its counts and
  the edits with their ``requestUniqueKey`` s), and ``...:done`` hash: TEMU's answer per
  edit. A retried batch replays the plan instead of diffing again.

A shop's runs never overlap: the child workflow id ``sync/temu-inventory/<shop>`` is the
lock, so these keys have one writer at a time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from infra.redis_text import as_text

RUN_TTL_SECONDS = 86_400
"""Work lists and batch plans of a run that never finishes live a day at most."""

# Write desired stock, keeping the version when the value did not change (the ERP may
# re-publish a level unchanged: it must not look like a new change, or a stale TEMU read
# would make it push again under a new requestUniqueKey), and mark the SKU dirty.
# ARGV: sku1, stock1, version1, sku2, ... in topic order, so the last message of a key wins.
_MATERIALISE = """
for i = 1, #ARGV, 3 do
  local sku, stock, version = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local old = redis.call('HGET', KEYS[1], sku)
  if not old or string.match(old, '^([^:]*)') ~= stock then
    redis.call('HSET', KEYS[1], sku, stock .. ':' .. version)
  end
  redis.call('SADD', KEYS[2], sku)
end
return #ARGV / 3
"""

# Build the run's work list inside Redis (no SKU list crosses the network): quick = dirty
# plus retry, full = every SKU with a desired stock; sorted, so batches are reproducible.
_BUILD_WORK = """
redis.call('DEL', KEYS[4])
local skus
if ARGV[1] == 'full' then
  skus = redis.call('HKEYS', KEYS[1])
else
  skus = redis.call('SUNION', KEYS[2], KEYS[3])
end
table.sort(skus)
for i = 1, #skus, 1000 do
  redis.call('RPUSH', KEYS[4], unpack(skus, i, math.min(i + 999, #skus)))
end
if #skus > 0 then redis.call('EXPIRE', KEYS[4], ARGV[2]) end
return #skus
"""


class Settlement:
    """The SKU updates of one batch's answers, written in one transaction by ``execute``."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._pipe = redis.pipeline(transaction=True)
        self._p = prefix

    def applied(self, sku: str, pushed: str, *, verify: bool) -> None:
        """TEMU applied the SKU's edit; ``verify``: assumed applied, re-checked next run."""
        self._pipe.srem(f"{self._p}:dirty", sku)
        if verify:
            self._pipe.sadd(f"{self._p}:retry", sku)
        else:
            self._pipe.srem(f"{self._p}:retry", sku)
        self._pipe.hset(f"{self._p}:pushed", sku, pushed)

    def rejected(self, sku: str, pushed: str) -> None:
        """TEMU rejected the SKU's edit: retried by the next quick run."""
        self._pipe.srem(f"{self._p}:dirty", sku)
        self._pipe.sadd(f"{self._p}:retry", sku)
        self._pipe.hset(f"{self._p}:pushed", sku, pushed)

    async def execute(self) -> None:
        """Write every update at once."""
        await self._pipe.execute()


class InventoryStore:
    """The inventory keys of every shop (layout above).

    Args:
        redis: Redis client (owned by the caller).
    """

    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis
        self._materialise = redis.register_script(_MATERIALISE)
        self._build_work = redis.register_script(_BUILD_WORK)

    @staticmethod
    def prefix(shop: str) -> str:
        """Redis key prefix of a shop's inventory state."""
        return f"synchub:temu-inventory:{shop}"

    async def materialise(self, shop: str, args: Sequence[str]) -> None:
        """Store desired stock: ``args`` is ``sku, stock, version, ...`` in topic order."""
        p = self.prefix(shop)
        await self._materialise(keys=[f"{p}:desired", f"{p}:dirty"], args=list(args))

    async def build_work(self, shop: str, run_token: str, mode: str) -> int:
        """Fill the run's work list (``quick``: dirty + retry; ``full``: all); its length."""
        p = self.prefix(shop)
        keys = [f"{p}:desired", f"{p}:dirty", f"{p}:retry", f"{p}:work:{run_token}"]
        return int(await self._build_work(keys=keys, args=[mode, RUN_TTL_SECONDS]))

    async def work_slice(
        self, shop: str, run_token: str, cursor: int, size: int
    ) -> tuple[list[str], int]:
        """The SKUs at ``cursor`` of the run's work list, and the list's length."""
        key = f"{self.prefix(shop)}:work:{run_token}"
        pipe = self._r.pipeline(transaction=False)
        pipe.lrange(key, cursor, cursor + size - 1)
        pipe.llen(key)
        raw, total = await pipe.execute()
        return [as_text(s) for s in raw], int(total)

    async def desired_and_pushed(
        self, shop: str, skus: list[str]
    ) -> tuple[list[bytes | None], list[bytes | None]]:
        """The desired and the last pushed value of each SKU, in ``skus`` order."""
        p = self.prefix(shop)
        pipe = self._r.pipeline(transaction=False)
        pipe.hmget(f"{p}:desired", skus)
        pipe.hmget(f"{p}:pushed", skus)
        desired, pushed = await pipe.execute()
        return desired, pushed

    async def settle_unsent(self, shop: str, settled: list[str], pending: list[str]) -> None:
        """SKUs that need no edit leave ``dirty``; ``settled`` ones leave ``retry`` too."""
        if not settled and not pending:
            return
        p = self.prefix(shop)
        pipe = self._r.pipeline(transaction=True)
        pipe.srem(f"{p}:dirty", *settled, *pending)
        if settled:
            pipe.srem(f"{p}:retry", *settled)
        await pipe.execute()

    def settlement(self, shop: str) -> Settlement:
        """Collects the SKU updates of a batch's answers."""
        return Settlement(self._r, self.prefix(shop))

    def _batch(self, shop: str, run_token: str, cursor: int) -> str:
        return f"{self.prefix(shop)}:batch:{run_token}:{cursor}"

    async def stored_plan(self, shop: str, run_token: str, cursor: int) -> str | None:
        """The plan an earlier attempt of this batch stored (JSON), if any."""
        return as_text(await self._r.get(self._batch(shop, run_token, cursor)))

    async def store_plan(self, shop: str, run_token: str, cursor: int, plan: str) -> None:
        """Keep the batch's plan for its retries."""
        await self._r.set(self._batch(shop, run_token, cursor), plan, ex=RUN_TTL_SECONDS)

    async def answers(self, shop: str, run_token: str, cursor: int) -> dict[str, Any]:
        """TEMU's answers to the batch's edits so far, by ``requestUniqueKey``."""
        done = await self._r.hgetall(f"{self._batch(shop, run_token, cursor)}:done")
        return {as_text(k): json.loads(as_text(v)) for k, v in done.items()}

    async def record_answer(
        self, shop: str, run_token: str, cursor: int, key: str, outcome: dict[str, Any]
    ) -> None:
        """Keep TEMU's answer to one edit, so a retried batch does not send it again."""
        done = f"{self._batch(shop, run_token, cursor)}:done"
        await self._r.hset(done, key, json.dumps(outcome))
        await self._r.expire(done, RUN_TTL_SECONDS)

    async def finish_run(self, shop: str, run_token: str) -> int:
        """Delete the run's work list and batch plans; how many keys were removed."""
        p = self.prefix(shop)
        keys = [f"{p}:work:{run_token}"]
        async for key in self._r.scan_iter(match=f"{p}:batch:{run_token}:*", count=1000):
            keys.append(as_text(key))
        removed = 0
        for start in range(0, len(keys), 500):
            removed += int(await self._r.delete(*keys[start : start + 500]))
        return removed
